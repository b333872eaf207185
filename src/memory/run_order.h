// RunOrder: which model run followed which, learnt per lane from the order runs are issued in, so
// that when a run has been issued the weights of the one expected next can be prefetched while
// its kernels execute (the CUDA runtime's next-model prefetch).
//
//   RunOrder order;
//   if (const void* next = order.ran(lane, exec)) prefetch_head_of(next);
//   ...
//   order.forget(exec);  // before exec goes
//
// The prediction is the other run that followed this one last time, and only when this one did not
// run again right after itself last time: a pipeline of models run in turn (swapper, enhancer,
// frame enhancer, swapper, ...) predicts its next model, while a model that runs several times in
// a row (a window of frames through one stage, pipeline/stage_plan.h) predicts nothing, since
// prefetching the next stage's weights after its first run would push out its own weights for the
// next frame.
// Runs are identified by any stable pointer (an executor). Plain data; not thread-safe.
#pragma once

#include <map>

namespace fswap::memory {

class RunOrder {
 public:
  // `run` was issued on `lane`: it becomes the successor of the lane's previous run. Returns the
  // run expected next (see above), or null.
  const void* ran(int lane, const void* run);
  // Forgets `run` (as a run and as anyone's successor).
  void forget(const void* run);

 private:
  std::map<int, const void*> last_;          // per lane: its latest run
  std::map<const void*, const void*> next_;  // per run: the other run that followed it, last time
  std::map<const void*, bool> repeated_;     // per run: it ran again right after itself, in its latest streak
};

}  // namespace fswap::memory
