#include "memory/run_order.h"

#include <iterator>
#include <utility>

namespace fswap::memory {

const void* RunOrder::ran(int lane, const void* run) {
  const void* previous = std::exchange(last_[lane], run);
  if (previous == run) {
    repeated_[run] = true;
    return nullptr;
  }
  if (previous != nullptr) next_[previous] = run;
  const bool repeated = std::exchange(repeated_[run], false);  // in the streak before this one
  const auto next = next_.find(run);
  return !repeated && next != next_.end() ? next->second : nullptr;
}

void RunOrder::forget(const void* run) {
  next_.erase(run);
  repeated_.erase(run);
  for (auto it = next_.begin(); it != next_.end();) it = it->second == run ? next_.erase(it) : std::next(it);
  for (auto& [lane, last] : last_)
    if (last == run) last = nullptr;
}

}  // namespace fswap::memory
