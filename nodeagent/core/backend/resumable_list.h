#pragma once

// ResumableList: an optional capability of a Backend whose List visits names
// in ascending byte order (memcmp order) and can start after a given name.
// S3's ListObjectsV2 does both (start-after). The retrying wrapper uses it to
// resume a listing that failed midway without visiting any object twice;
// without it, a listing that already visited objects is not retried.
// Discovered with dynamic_cast on the wrapped Backend.

#include <functional>
#include <string_view>

#include "nodeagent/core/backend/backend.h"

namespace bunker::backend {

class ResumableList {
 public:
  // Like Backend::List, visiting only names > `start_after` (all of them
  // when it is empty), in ascending byte order.
  virtual Status ListAfter(std::string_view prefix, std::string_view start_after,
                           const std::function<Status(const ObjectInfo&)>& visit) = 0;

 protected:
  ~ResumableList() = default;
};

}  // namespace bunker::backend
