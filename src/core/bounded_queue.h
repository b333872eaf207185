// BoundedQueue<T>: a blocking FIFO with a fixed capacity, the link between pipeline stages.
//
//   BoundedQueue<Frame> q(4);
//   producer: if (!q.push(std::move(f))) return;   // false once the queue is closed
//   consumer: while (auto f = q.pop()) use(*f);     // nullopt once closed and drained
//
// push blocks while full (back-pressure keeps memory flat); close() wakes everyone. The capacity
// may change while in use (set_capacity): a larger one wakes blocked pushes, a smaller one makes
// pushes wait until the queue drains below it (nothing queued is dropped).
// Thread-safe for any number of producers and consumers.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>

namespace fswap {

template <class T>
class BoundedQueue {
 public:
  explicit BoundedQueue(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  // Blocks while full. Returns false (and drops item) if the queue was closed.
  bool push(T item) {
    std::unique_lock lock(mutex_);
    not_full_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
    if (closed_) return false;
    items_.push_back(std::move(item));
    not_empty_.notify_one();
    return true;
  }

  // Blocks while empty and open. Returns nullopt once closed and empty.
  std::optional<T> pop() {
    std::unique_lock lock(mutex_);
    not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
    if (items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return item;
  }

  // No more pushes; pops drain what is left. Idempotent.
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }

  // Close and drop queued items (used on cancellation and errors).
  void abort() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    items_.clear();
    not_empty_.notify_all();
    not_full_.notify_all();
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return items_.size();
  }
  std::size_t capacity() const {
    std::lock_guard lock(mutex_);
    return capacity_;
  }
  void set_capacity(std::size_t capacity) {
    std::lock_guard lock(mutex_);
    capacity_ = capacity == 0 ? 1 : capacity;
    not_full_.notify_all();
  }

 private:
  std::size_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable not_full_, not_empty_;
  std::deque<T> items_;
  bool closed_ = false;
};

}  // namespace fswap
