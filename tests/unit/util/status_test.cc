#include "nodeagent/core/util/status.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace bunker {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument("odd: " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(StatusTest, AnnotateAddsContextOutermostFirst) {
  Status s = IOError("disk full");
  s.Annotate("write pack 3f2a");
  s.Annotate("backup vol-1");
  EXPECT_EQ(s.message(), "backup vol-1: write pack 3f2a: disk full");
  EXPECT_EQ(s.ToString(), "IOError: backup vol-1: write pack 3f2a: disk full");
}

TEST(StatusTest, AnnotateOnOkStaysOk) {
  Status s;
  s.Annotate("anything");
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, ErrnoMapsToCodes) {
  EXPECT_EQ(ErrnoStatus("open x", ENOENT).code(), Code::kNotFound);
  EXPECT_EQ(ErrnoStatus("open x", EACCES).code(), Code::kPermissionDenied);
  EXPECT_EQ(ErrnoStatus("open x", EEXIST).code(), Code::kAlreadyExists);
  EXPECT_TRUE(ErrnoStatus("read x", EINTR).IsRetryable());
  EXPECT_FALSE(ErrnoStatus("read x", EIO).IsRetryable());
  EXPECT_NE(ErrnoStatus("open /x/y", ENOENT).message().find("/x/y"), std::string::npos);
}

TEST(StatusTest, ResultPropagatesFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "odd: 3");
}

TEST(StatusTest, ResultFromOkStatusIsAnInternalError) {
  Result<int> r{Status::Ok()};
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInternal);
}

}  // namespace
}  // namespace bunker
