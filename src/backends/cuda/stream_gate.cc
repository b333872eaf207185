#include "backends/cuda/stream_gate.h"

#include <cuda_runtime_api.h>

#include <condition_variable>
#include <mutex>

#include "backends/cuda/libraries.h"

namespace fswap::cuda {

struct StreamGate::State {
  std::mutex mutex;
  std::condition_variable opened;
  bool open = false;
  bool expired = false;
};

void StreamGate::hold(void* state) {
  const std::unique_ptr<std::shared_ptr<State>> owned(static_cast<std::shared_ptr<State>*>(state));
  State& s = **owned;
  std::unique_lock<std::mutex> lock(s.mutex);
  s.expired = !s.opened.wait_for(lock, kGateLimit, [&s] { return s.open; });
}

StreamGate::StreamGate() : state_(std::make_shared<State>()) {}

StreamGate::~StreamGate() { open(); }

Status StreamGate::close(const char* op, CUstream_st* stream) {
  auto* held = new std::shared_ptr<State>(state_);
  const cudaError_t e = cudaLaunchHostFunc(stream, &hold, held);
  if (e != cudaSuccess) delete held;
  return cuda_runtime_status(static_cast<int>(e), op, "cudaLaunchHostFunc");
}

void StreamGate::open() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->open = true;
  }
  state_->opened.notify_all();
}

bool StreamGate::expired() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->expired;
}

}  // namespace fswap::cuda
