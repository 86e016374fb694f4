#pragma once

// Status and Result<T>: errors as values on the data path.
//
// A Status is either OK or carries a Code and a message. Each layer adds its
// context with Annotate() ("upload pack 3f2a…: s3 PUT: 503 Slow Down"), so the
// message a user finally sees names every step that failed. Whether a failure
// may succeed on retry is a property of the code (IsRetryable), decided where
// the error is first converted (errno, OpenSSL, HTTP status).
//
// Thread-safety: values; copy freely.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace bunker {

enum class Code : uint8_t {
  kOk = 0,
  kNotFound,            // the object, file or snapshot does not exist
  kAlreadyExists,       // create-only target exists
  kCorruption,          // data read back is damaged or forged (MAC, hash, bounds)
  kIOError,             // a local or remote I/O operation failed
  kPermissionDenied,    // wrong password, wrong credentials, EACCES
  kUnavailable,         // transient: server down, timeout, 5xx; retryable
  kInvalidArgument,     // bad input from the caller (URL, flag, name)
  kFailedPrecondition,  // state forbids it: repo locked, lease lost, exists
  kUnimplemented,
  kAborted,   // cancelled, interrupted, lease expired
  kInternal,  // a bug on our side
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // True for codes a caller may retry: kUnavailable and kIOError marked retryable.
  bool IsRetryable() const { return code_ == Code::kUnavailable || retryable_; }
  Status& SetRetryable(bool retryable) {
    retryable_ = retryable;
    return *this;
  }

  // Prefixes context: "what we were doing: <previous message>". No-op on OK.
  Status& Annotate(std::string_view context);
  Status Annotated(std::string_view context) const {
    Status copy = *this;
    copy.Annotate(context);
    return copy;
  }

  // "Corruption: pack 3f2a…: bad MAC" (or "OK").
  std::string ToString() const;

  void IgnoreError() const {}

 private:
  Code code_ = Code::kOk;
  bool retryable_ = false;
  std::string message_;
};

// Constructors for the common codes.
inline Status NotFound(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
inline Status AlreadyExists(std::string msg) { return {Code::kAlreadyExists, std::move(msg)}; }
inline Status Corruption(std::string msg) { return {Code::kCorruption, std::move(msg)}; }
inline Status IOError(std::string msg) { return {Code::kIOError, std::move(msg)}; }
inline Status PermissionDenied(std::string msg) {
  return {Code::kPermissionDenied, std::move(msg)};
}
inline Status Unavailable(std::string msg) { return {Code::kUnavailable, std::move(msg)}; }
inline Status InvalidArgument(std::string msg) { return {Code::kInvalidArgument, std::move(msg)}; }
inline Status FailedPrecondition(std::string msg) {
  return {Code::kFailedPrecondition, std::move(msg)};
}
inline Status Unimplemented(std::string msg) { return {Code::kUnimplemented, std::move(msg)}; }
inline Status Aborted(std::string msg) { return {Code::kAborted, std::move(msg)}; }
inline Status Internal(std::string msg) { return {Code::kInternal, std::move(msg)}; }

// Converts an errno value into a Status: ENOENT → NotFound, EACCES/EPERM →
// PermissionDenied, EEXIST → AlreadyExists, EINTR/EAGAIN → retryable IOError,
// anything else → IOError. `what` names the operation and the object.
Status ErrnoStatus(std::string_view what, int err);

// Result<T>: a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    if (std::get<Status>(v_).ok()) {
      v_ = Status(Code::kInternal, "Result constructed from an OK status without a value");
    }
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // Returns the Status with context added (for propagating).
  Status Annotated(std::string_view context) const { return status().Annotated(context); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace bunker

#define BUNKER_CONCAT_INNER(a, b) a##b
#define BUNKER_CONCAT(a, b) BUNKER_CONCAT_INNER(a, b)

// Returns from the enclosing function if `expr` (a Status) is not OK.
#define RETURN_IF_ERROR(expr)                \
  do {                                       \
    ::bunker::Status _bunker_st = (expr);    \
    if (!_bunker_st.ok()) return _bunker_st; \
  } while (0)

// Same, adding context (a string expression evaluated only on failure).
#define RETURN_IF_ERROR_CTX(expr, ctx)                     \
  do {                                                     \
    ::bunker::Status _bunker_st = (expr);                  \
    if (!_bunker_st.ok()) return _bunker_st.Annotate(ctx); \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, MakeX());` — unwraps a Result or returns its Status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(BUNKER_CONCAT(_bunker_res_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL(res, lhs, expr) \
  auto res = (expr);                          \
  if (!res.ok()) return res.status();         \
  lhs = std::move(res).value()
