#include "core/parallel.h"

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/thread_name.h"

namespace fswap {
namespace {

// A fixed pool shared by every thread of the process. Each parallel_for posts a batch of
// chunks; batches from different threads are open at once (the decoder's conversion, the
// analysis, the face stages and the encoder's conversion run side by side), and idle workers
// take chunks from the oldest open batch. The caller works through its own batch's chunks,
// then waits for the ones workers took.
class WorkerPool {
 public:
  explicit WorkerPool(int threads) {
    for (int i = 0; i + 1 < threads; ++i)
      workers_.emplace_back([this] {
        name_this_thread("fswap-pool");
        loop();
      });
  }
  ~WorkerPool() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void run(int chunks, const std::function<void(int)>& chunk_fn) {
    Batch batch{&chunk_fn, 0, chunks, chunks};
    {
      std::lock_guard lock(mutex_);
      open_.push_back(&batch);
    }
    wake_.notify_all();
    for (;;) {
      int index;
      {
        std::lock_guard lock(mutex_);
        if (batch.next >= batch.total) break;
        index = claim(batch);
      }
      finish(batch, index);
    }
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return batch.pending == 0; });
  }

 private:
  struct Batch {
    const std::function<void(int)>* fn;
    int next, total, pending;
  };

  // Under mutex_: the batch's next chunk; a batch whose chunks are all claimed leaves open_.
  int claim(Batch& batch) {
    const int index = batch.next++;
    if (batch.next == batch.total) open_.erase(std::find(open_.begin(), open_.end(), &batch));
    return index;
  }
  void finish(Batch& batch, int index) {
    (*batch.fn)(index);
    std::lock_guard lock(mutex_);
    if (--batch.pending == 0) done_.notify_all();
  }
  void loop() {
    for (;;) {
      Batch* batch;
      int index;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || !open_.empty(); });
        if (stop_) return;
        batch = open_.front();
        index = claim(*batch);
      }
      finish(*batch, index);
    }
  }

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<Batch*> open_;  // batches with unclaimed chunks, oldest first
  bool stop_ = false;
};

std::mutex g_pool_mutex;
int g_threads = 0;  // 0 = hardware concurrency
std::unique_ptr<WorkerPool> g_pool;
thread_local bool t_inside = false;

WorkerPool& pool() {
  std::lock_guard lock(g_pool_mutex);
  if (!g_pool) {
    int n = g_threads > 0 ? g_threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    g_pool = std::make_unique<WorkerPool>(n);
  }
  return *g_pool;
}

}  // namespace

void set_worker_threads(int threads) {
  std::lock_guard lock(g_pool_mutex);
  g_threads = std::max(0, threads);
  g_pool.reset();
}

int worker_threads() { return pool().size(); }

void parallel_for(int n, const std::function<void(int, int)>& fn, int min_chunk) {
  if (n <= 0) return;
  WorkerPool& p = pool();
  const int max_chunks = std::max(1, n / std::max(1, min_chunk));
  const int chunks = std::min(max_chunks, p.size() * 4);
  if (chunks <= 1 || t_inside) {
    fn(0, n);
    return;
  }
  p.run(chunks, [&](int c) {
    const bool was_inside = t_inside;
    t_inside = true;
    const int begin = static_cast<int>(static_cast<long>(n) * c / chunks);
    const int end = static_cast<int>(static_cast<long>(n) * (c + 1) / chunks);
    fn(begin, end);
    t_inside = was_inside;
  });
}

int rows_per_chunk(int row_pixels) {
  constexpr int kMinChunkPixels = 1 << 15;
  const int pixels = std::max(1, row_pixels);
  return (kMinChunkPixels + pixels - 1) / pixels;
}

}  // namespace fswap
