#include "nodeagent/core/util/status.h"

#include <cerrno>
#include <cstring>
#include <string>

namespace bunker {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "OK";
    case Code::kNotFound:
      return "NotFound";
    case Code::kAlreadyExists:
      return "AlreadyExists";
    case Code::kCorruption:
      return "Corruption";
    case Code::kIOError:
      return "IOError";
    case Code::kPermissionDenied:
      return "PermissionDenied";
    case Code::kUnavailable:
      return "Unavailable";
    case Code::kInvalidArgument:
      return "InvalidArgument";
    case Code::kFailedPrecondition:
      return "FailedPrecondition";
    case Code::kUnimplemented:
      return "Unimplemented";
    case Code::kAborted:
      return "Aborted";
    case Code::kInternal:
      return "Internal";
  }
  return "Unknown";
}

Status& Status::Annotate(std::string_view context) {
  if (ok() || context.empty()) {
    return *this;
  }
  std::string m;
  m.reserve(context.size() + 2 + message_.size());
  m.append(context);
  if (!message_.empty()) {
    m.append(": ");
    m.append(message_);
  }
  message_ = std::move(m);
  return *this;
}

std::string Status::ToString() const {
  if (ok()) {
    return "OK";
  }
  std::string s(CodeName(code_));
  s.append(": ");
  s.append(message_);
  return s;
}

Status ErrnoStatus(std::string_view what, int err) {
  std::string msg(what);
  msg.append(": ");
  msg.append(std::strerror(err));
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return NotFound(std::move(msg));
    case EACCES:
    case EPERM:
    case EROFS:
      return PermissionDenied(std::move(msg));
    case EEXIST:
    case ENOTEMPTY:
      return AlreadyExists(std::move(msg));
    case EINTR:
    case EAGAIN:
    case ETIMEDOUT:
    case ECONNRESET:
    case ECONNREFUSED:
      return IOError(std::move(msg)).SetRetryable(true);
    case EINVAL:
      return InvalidArgument(std::move(msg));
    default:
      return IOError(std::move(msg));
  }
}

}  // namespace bunker
