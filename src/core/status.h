// Status and Result<T>: how errors travel inside fswap.
//
//   Result<Image> img = read_image(path);
//   if (!img) return img.status();          // or FSWAP_ASSIGN_OR_RETURN(auto img, read_image(path));
//
// Exceptions are used only at the CLI and HTTP edges, where a Status becomes an exit code
// or a JSON error. Messages say what failed, on which input, and what to do.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace fswap {

enum class StatusCode {
  kOk = 0,
  kInvalidInput,   // the user's file, option or data is wrong (CLI exit code 2)
  kNotFound,       // a file or model is missing (exit code 2)
  kUnsupported,    // a format, model or device this build cannot handle (exit code 2)
  kNoFace,         // no usable face where one is required (exit code 2)
  kCancelled,      // stopped on request
  kOutOfMemory,    // an allocation failed
  kInternal,       // a bug or a failure of a library we call (exit code 1)
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid input: <message>"
  std::string to_string() const;
  // True for errors caused by the user's input rather than by fswap itself.
  bool is_user_error() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status invalid_input(std::string m) { return {StatusCode::kInvalidInput, std::move(m)}; }
inline Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
inline Status no_face(std::string m) { return {StatusCode::kNoFace, std::move(m)}; }
inline Status cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
inline Status out_of_memory(std::string m) { return {StatusCode::kOutOfMemory, std::move(m)}; }
inline Status internal_error(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// A value or the Status explaining why there is none.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::move(v)) {}                               // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {                 // NOLINT: implicit by design
    if (std::get<Status>(v_).is_ok()) v_ = Status(StatusCode::kInternal, "Result built from an ok Status");
  }
  bool is_ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const {
    static const Status kOkStatus;
    return is_ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

[[noreturn]] void check_failed(const char* expr, const char* file, int line, const std::string& message);

}  // namespace fswap

#define FSWAP_CONCAT_INNER(a, b) a##b
#define FSWAP_CONCAT(a, b) FSWAP_CONCAT_INNER(a, b)

#define FSWAP_RETURN_IF_ERROR(expr)                 \
  do {                                              \
    ::fswap::Status fswap_status_ = (expr);         \
    if (!fswap_status_.is_ok()) return fswap_status_; \
  } while (0)

#define FSWAP_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.is_ok()) return tmp.status();            \
  lhs = std::move(tmp).value()

#define FSWAP_ASSIGN_OR_RETURN(lhs, expr) \
  FSWAP_ASSIGN_OR_RETURN_IMPL(FSWAP_CONCAT(fswap_result_, __LINE__), lhs, expr)

// Programmer errors only (broken invariants), never bad user input.
#define FSWAP_CHECK(cond, message)                                              \
  do {                                                                          \
    if (!(cond)) ::fswap::check_failed(#cond, __FILE__, __LINE__, (message));   \
  } while (0)
