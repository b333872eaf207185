#include "pipeline/gpu_turns.h"

#include <chrono>
#include <utility>

namespace fswap {
namespace {

std::size_t index_of(GpuTurns::Side side) { return static_cast<std::size_t>(side); }

GpuTurns::Side other_of(GpuTurns::Side side) {
  return side == GpuTurns::Side::kAnalysis ? GpuTurns::Side::kStages : GpuTurns::Side::kAnalysis;
}

}  // namespace

GpuTurns::Turn::Turn(Turn&& other) noexcept
    : turns_(std::exchange(other.turns_, nullptr)), side_(other.side_) {}

GpuTurns::Turn& GpuTurns::Turn::operator=(Turn&& other) noexcept {
  if (this != &other) {
    release();
    turns_ = std::exchange(other.turns_, nullptr);
    side_ = other.side_;
  }
  return *this;
}

void GpuTurns::Turn::release() {
  if (turns_ != nullptr) std::exchange(turns_, nullptr)->end_turn(side_);
}

Result<GpuTurns::Turn> GpuTurns::take(Side side) {
  std::unique_lock lock(mu_);
  FSWAP_CHECK(holder_ != side, "GpuTurns::take: this side already holds the turn");
  // Free, and not this side's again while the other one waits (fairness).
  auto mine = [&] { return aborted_ || (!holder_ && !(last_ == side && waiting_[index_of(other_of(side))])); };
  if (!mine()) {
    SideStats& stats = stats_.sides[index_of(side)];
    ++stats.waits;
    waiting_[index_of(side)] = true;
    const auto start = std::chrono::steady_clock::now();
    cv_.wait(lock, mine);
    waiting_[index_of(side)] = false;
    stats.waited_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  if (aborted_) return cancelled("face work stopped while waiting for a turn on the GPU");
  holder_ = side;
  last_ = side;
  ++stats_.sides[index_of(side)].turns;
  return Turn(this, side);
}

void GpuTurns::end_turn(Side side) {
  {
    std::lock_guard lock(mu_);
    FSWAP_CHECK(holder_ == side, "GpuTurns: a turn ended that was not held");
    holder_.reset();
  }
  cv_.notify_all();
}

void GpuTurns::abort() {
  {
    std::lock_guard lock(mu_);
    aborted_ = true;
  }
  cv_.notify_all();
}

GpuTurns::Stats GpuTurns::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace fswap
