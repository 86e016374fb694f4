#include "appliance/api/location_probe.h"

#include <memory>

#include "nodeagent/core/crypto/crypto.h"

namespace bunker::api {

Status ProbeLocation(const std::string& url, const backend::BackendOptions& options) {
  Result<std::unique_ptr<backend::Backend>> opened = backend::OpenBackend(url, options, false);
  if (!opened.ok()) {
    return opened.Annotated("probe: open");
  }
  backend::Backend& b = **opened;
  Bytes nonce(16);
  RETURN_IF_ERROR(crypto::RandomBytes(nonce));
  const std::string name = "probe/" + HexEncode(nonce);
  const std::string what = "probe of " + b.Describe() + ": ";
  Bytes payload(4096);
  RETURN_IF_ERROR(crypto::RandomBytes(payload));

  RETURN_IF_ERROR_CTX(b.Put(name, payload), what + "step 1/5 (write " + name + ")");
  Status st = [&]() -> Status {
    Result<Bytes> back = b.Get(name);
    RETURN_IF_ERROR_CTX(back.status(), what + "step 2/5 (read " + name + ")");
    if (*back != payload) {
      return Corruption(what + "step 2/5 (read " + name +
                        "): content differs from what was written");
    }
    Result<backend::ObjectInfo> info = b.Stat(name);
    RETURN_IF_ERROR_CTX(info.status(), what + "step 3/5 (stat " + name + ")");
    if (info->size != payload.size()) {
      return Corruption(what + "step 3/5 (stat " + name + "): wrong size");
    }
    bool listed = false;
    RETURN_IF_ERROR_CTX(b.List("probe/",
                               [&](const backend::ObjectInfo& o) {
                                 listed = listed || o.name == name;
                                 return Status::Ok();
                               }),
                        what + "step 4/5 (list probe/)");
    if (!listed) {
      return FailedPrecondition(what + "step 4/5 (list probe/): the probe object is not listed");
    }
    return Status::Ok();
  }();
  Status deleted = b.Delete(name);
  RETURN_IF_ERROR(st);
  RETURN_IF_ERROR_CTX(deleted, what + "step 5/5 (delete " + name + ")");
  return Status::Ok();
}

}  // namespace bunker::api
