// GpuTurns: the two threads of a video's face work (pipeline/swap_job.cc: the analysis thread and
// the processor-stage thread) take turns on the GPU instead of interleaving their model calls,
// for when their models' weights cannot all be resident: each turn then loads its side's weights
// once, instead of both sides evicting each other's on every call.
//
//   GpuTurns turns;
//   // analysis thread, per window:                  // stage thread, per window:
//   {                                                 {
//     FSWAP_ASSIGN_OR_RETURN(GpuTurns::Turn turn,       FSWAP_ASSIGN_OR_RETURN(GpuTurns::Turn turn,
//         turns.take(GpuTurns::Side::kAnalysis));           turns.take(GpuTurns::Side::kStages));
//     analyse the window's frames;                      run the processors over the window;
//   }  // the turn ends here                          }
//   // on an error or a stop anywhere:
//   turns.abort();  // every take() waiting now or later returns kCancelled
//
// Contract:
//   - at most one turn is held at a time, over both sides;
//   - fair: when a turn ends while the other side waits, the other side has the next one, so
//     turns alternate strictly while both keep asking; a side whose other is not waiting may take
//     turn after turn without waiting;
//   - take() blocks on a condition variable (no spinning) until the turn is the caller's, or
//     until abort(): then it returns kCancelled, as does every take() after it. A turn held when
//     abort() is called stays valid until it ends;
//   - one thread per side, one turn at a time per side: take() by a side that holds a turn is a
//     programmer error (FSWAP_CHECK);
//   - Turn is move-only; it ends when destroyed or release()d; a default-constructed Turn holds
//     none. A Turn must not outlive its GpuTurns;
//   - thread-safe; stats() may be called from any thread.
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>

#include "core/status.h"

namespace fswap {

class GpuTurns {
 public:
  enum class Side { kAnalysis = 0, kStages = 1 };

  class Turn {
   public:
    Turn() = default;  // holds no turn
    Turn(Turn&& other) noexcept;
    Turn& operator=(Turn&& other) noexcept;
    Turn(const Turn&) = delete;
    Turn& operator=(const Turn&) = delete;
    ~Turn() { release(); }
    // Ends the turn now (nothing when it holds none).
    void release();
    bool held() const { return turns_ != nullptr; }

   private:
    friend class GpuTurns;
    Turn(GpuTurns* turns, Side side) : turns_(turns), side_(side) {}
    GpuTurns* turns_ = nullptr;  // null: no turn
    Side side_ = Side::kAnalysis;
  };

  // Per side, since construction.
  struct SideStats {
    std::uint64_t turns = 0;  // turns taken
    std::uint64_t waits = 0;  // take() calls that had to wait (counted when the wait starts)
    double waited_s = 0;      // time those calls spent waiting, seconds
  };
  struct Stats {
    std::array<SideStats, 2> sides;  // indexed by Side
    SideStats operator[](Side side) const { return sides[static_cast<std::size_t>(side)]; }
  };

  GpuTurns() = default;
  GpuTurns(const GpuTurns&) = delete;
  GpuTurns& operator=(const GpuTurns&) = delete;

  // The next turn for `side` (see the contract); kCancelled once abort() was called.
  Result<Turn> take(Side side);
  // Wakes every waiting take() with kCancelled and refuses later ones. Idempotent.
  void abort();
  Stats stats() const;

 private:
  void end_turn(Side side);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Side> holder_;      // the side holding the turn now
  std::optional<Side> last_;        // the side that took the latest turn
  std::array<bool, 2> waiting_{};   // a side blocked in take()
  bool aborted_ = false;
  Stats stats_;
};

}  // namespace fswap
