#include "nodeagent/core/backend/probe.h"

#include <string>

#include "nodeagent/core/crypto/crypto.h"

namespace bunker::backend {

namespace {

constexpr int kSteps = 6;
constexpr size_t kProbeBytes = 4096;

}  // namespace

Status ProbeBackend(Backend* backend) {
  Bytes id(16);
  Bytes data(kProbeBytes);
  RETURN_IF_ERROR(crypto::RandomBytes(id));
  RETURN_IF_ERROR(crypto::RandomBytes(data));
  const std::string name = "probe/" + HexEncode(id);
  const std::string where = "probe of " + backend->Describe();
  auto fail = [&](int step, std::string_view what, const Status& st) {
    Status out(st.code(), where + ": step " + std::to_string(step) + "/" + std::to_string(kSteps) +
                              " (" + std::string(what) + " " + name + "): " + st.message());
    out.SetRetryable(st.IsRetryable());
    return out;
  };
  auto fail_and_clean = [&](int step, std::string_view what, const Status& st) {
    backend->Delete(name).IgnoreError();
    return fail(step, what, st);
  };

  if (Status st = backend->Put(name, data); !st.ok()) return fail(1, "write", st);

  Result<Bytes> got = backend->Get(name);
  if (!got.ok()) return fail_and_clean(2, "read back", got.status());
  if (*got != data) {
    return fail_and_clean(
        2, "read back",
        Corruption("read " + std::to_string(got->size()) + " bytes that differ from the " +
                   std::to_string(data.size()) + " written"));
  }
  Result<Bytes> part = backend->GetRange(name, 1000, 1000);
  if (!part.ok()) return fail_and_clean(3, "read a range of", part.status());
  if (*part != Bytes(data.begin() + 1000, data.begin() + 2000)) {
    return fail_and_clean(3, "read a range of",
                          Corruption("bytes 1000+1000 differ from those written"));
  }

  Result<ObjectInfo> info = backend->Stat(name);
  if (!info.ok()) return fail_and_clean(4, "stat", info.status());
  if (info->size != data.size()) {
    return fail_and_clean(4, "stat",
                          Corruption("size " + std::to_string(info->size) + ", wrote " +
                                     std::to_string(data.size())));
  }

  int seen = 0;
  Status listed = backend->List("probe/", [&](const ObjectInfo& o) {
    if (o.name == name) {
      ++seen;
      if (o.size != data.size()) {
        return Corruption("listed with size " + std::to_string(o.size) + ", wrote " +
                          std::to_string(data.size()));
      }
    }
    return Status::Ok();
  });
  if (!listed.ok()) return fail_and_clean(5, "list", listed);
  if (seen != 1) {
    return fail_and_clean(5, "list",
                          Corruption("the listing of probe/ showed the object " +
                                     std::to_string(seen) + " times, not once"));
  }

  if (Status st = backend->Delete(name); !st.ok()) return fail(6, "delete", st);
  Result<ObjectInfo> gone = backend->Stat(name);
  if (gone.ok()) return fail(6, "delete", FailedPrecondition("the object is still there"));
  if (gone.status().code() != Code::kNotFound) return fail(6, "delete", gone.status());
  return Status::Ok();
}

}  // namespace bunker::backend
