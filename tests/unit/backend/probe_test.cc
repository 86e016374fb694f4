// ProbeBackend: succeeds on a working backend and leaves nothing behind;
// names the failing step, the location and the backend's error otherwise.

#include "nodeagent/core/backend/probe.h"

#include <gtest/gtest.h>

#include "tests/unit/backend/fake_backends.h"

namespace bunker::backend {
namespace {

size_t CountObjects(Backend* b) {
  size_t n = 0;
  EXPECT_TRUE(b->List("", [&](const ObjectInfo&) {
                 ++n;
                 return Status::Ok();
               }).ok());
  return n;
}

TEST(ProbeTest, SucceedsOnAWorkingBackendAndCleansUp) {
  MemoryBackend memory;
  Status st = ProbeBackend(&memory);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(CountObjects(&memory), 0u);
}

struct FailingStep {
  std::string op;
  int step;
  std::string words;
};

TEST(ProbeTest, NamesTheFailingStepAndKeepsTheBackendsError) {
  for (const FailingStep& f : std::vector<FailingStep>{{"put", 1, "(write probe/"},
                                                       {"get", 2, "(read back probe/"},
                                                       {"get_range", 3, "(read a range of probe/"},
                                                       {"stat", 4, "(stat probe/"},
                                                       {"list", 5, "(list probe/"},
                                                       {"delete", 6, "(delete probe/"}}) {
    MemoryBackend memory;
    FaultyBackend faulty(&memory, [&](std::string_view op, std::string_view) {
      return op == f.op ? PermissionDenied("s3 " + f.op + ": 403 AccessDenied: Access Denied")
                        : Status::Ok();
    });
    Status st = ProbeBackend(&faulty);
    EXPECT_EQ(st.code(), Code::kPermissionDenied) << f.op;
    EXPECT_NE(st.message().find("probe of faulty mem://test: step " + std::to_string(f.step) +
                                "/6 " + f.words),
              std::string::npos)
        << st.message();
    EXPECT_NE(st.message().find("403 AccessDenied"), std::string::npos) << st.message();
    if (f.op != "delete") {
      EXPECT_EQ(CountObjects(&memory), 0u) << "probe object left behind after " << f.op;
    }
  }
}

TEST(ProbeTest, DetectsABackendThatReturnsWrongBytes) {
  MemoryBackend memory;
  FaultyBackend faulty(&memory, [](std::string_view, std::string_view) { return Status::Ok(); });
  faulty.mutate_get = [](Bytes* b) { (*b)[100] ^= 1; };
  Status st = ProbeBackend(&faulty);
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.message().find("step 2/6 (read back"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("differ"), std::string::npos) << st.message();
}

TEST(ProbeTest, KeepsRetryabilitySoCallersCanTellOutagesFromMisconfiguration) {
  MemoryBackend memory;
  FaultyBackend down(&memory, [](std::string_view, std::string_view) {
    return Unavailable("s3 PUT: connect failed: Connection refused");
  });
  Status st = ProbeBackend(&down);
  EXPECT_EQ(st.code(), Code::kUnavailable);
  EXPECT_TRUE(st.IsRetryable());
}

}  // namespace
}  // namespace bunker::backend
