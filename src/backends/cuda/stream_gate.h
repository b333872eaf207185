// StreamGate: holds a CUDA stream while the host enqueues work behind it, so the GPU then runs that
// work back to back, undelayed by the host's launch rate. Event timing of such work is the GPU's
// own time, as in the CUDA graphs the executor replays (a profiled run's nodes, the convolution
// search's candidates at batch 1, whose cuDNN launches cost the host more than their kernels
// cost the GPU).
//
//   StreamGate gate;
//   FSWAP_RETURN_IF_ERROR(gate.close("Conv", stream));  // a host function on `stream` that blocks
//   ... record an event, enqueue the work, record an event ...
//   gate.open();                                         // also on destruction, on every return
//
// The gate opens by itself after kGateLimit: a host blocked on a full launch queue (about a
// thousand launches) then lets the GPU go, and the backlog it queued keeps the GPU busy after.
#pragma once

#include <chrono>
#include <memory>

#include "core/status.h"

struct CUstream_st;

namespace fswap::cuda {

inline constexpr std::chrono::milliseconds kGateLimit{500};

class StreamGate {
 public:
  StreamGate();
  ~StreamGate();
  StreamGate(const StreamGate&) = delete;
  StreamGate& operator=(const StreamGate&) = delete;

  // Holds `stream` from here until open() (or kGateLimit). kInternal naming `op` if the host
  // function cannot be enqueued.
  Status close(const char* op, CUstream_st* stream);
  void open();
  // Whether the stream went on at kGateLimit, before open(). Read once the stream passed the gate.
  bool expired() const;

 private:
  struct State;
  // The host function (on CUDA's thread: no CUDA calls): blocks until open() or kGateLimit.
  static void hold(void* state);
  std::shared_ptr<State> state_;  // shared with the host function, which may outlive the gate
};

}  // namespace fswap::cuda
