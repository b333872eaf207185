#include "core/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace fswap {
namespace {

// A fixed pool; each parallel_for posts one batch of chunks and waits for it.
class WorkerPool {
 public:
  explicit WorkerPool(int threads) {
    for (int i = 0; i + 1 < threads; ++i) workers_.emplace_back([this] { loop(); });
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
    std::unique_lock submit(submit_mutex_);  // one batch at a time
    {
      std::lock_guard lock(mutex_);
      job_ = &chunk_fn;
      next_ = 0;
      total_ = chunks;
      pending_ = chunks;
      ++generation_;
    }
    wake_.notify_all();
    work();
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void work() {
    for (;;) {
      int index;
      const std::function<void(int)>* job;
      {
        std::lock_guard lock(mutex_);
        if (job_ == nullptr || next_ >= total_) return;
        index = next_++;
        job = job_;
      }
      (*job)(index);
      std::lock_guard lock(mutex_);
      if (--pending_ == 0) done_.notify_all();
    }
  }
  void loop() {
    long seen = 0;
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      work();
    }
  }

  std::vector<std::thread> workers_;
  std::mutex submit_mutex_, mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* job_ = nullptr;
  int next_ = 0, total_ = 0, pending_ = 0;
  long generation_ = 0;
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

}  // namespace fswap
