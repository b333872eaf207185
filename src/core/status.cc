#include "core/status.h"

namespace fswap {

const char* status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidInput: return "invalid input";
    case StatusCode::kNotFound: return "not found";
    case StatusCode::kUnsupported: return "unsupported";
    case StatusCode::kNoFace: return "no face";
    case StatusCode::kCancelled: return "cancelled";
    case StatusCode::kOutOfMemory: return "out of memory";
    case StatusCode::kInternal: return "internal error";
  }
  return "unknown";
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  return std::string(status_code_name(code_)) + ": " + message_;
}

bool Status::is_user_error() const {
  switch (code_) {
    case StatusCode::kInvalidInput:
    case StatusCode::kNotFound:
    case StatusCode::kUnsupported:
    case StatusCode::kNoFace:
      return true;
    default:
      return false;
  }
}

void check_failed(const char* expr, const char* file, int line, const std::string& message) {
  std::fprintf(stderr, "fswap: check failed: %s at %s:%d: %s\n", expr, file, line, message.c_str());
  std::abort();
}

}  // namespace fswap
