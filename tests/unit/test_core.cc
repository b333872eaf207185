#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <cmath>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/bounded_queue.h"
#include "core/half.h"
#include "core/parallel.h"
#include "core/status.h"
#include "core/tensor.h"
#include "core/thread_name.h"
#include "core/time_ledger.h"

namespace fswap {
namespace {

Result<int> half(int v) {
  if (v % 2) return invalid_input("odd");
  return v / 2;
}
Result<int> quarter(int v) {
  FSWAP_ASSIGN_OR_RETURN(int h, half(v));
  return half(h);
}

TEST(Status, ResultCarriesValueOrError) {
  EXPECT_EQ(*quarter(8), 2);
  const auto bad = quarter(6);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidInput);
  EXPECT_TRUE(bad.status().is_user_error());
  EXPECT_FALSE(internal_error("x").is_user_error());
  EXPECT_EQ(invalid_input("odd").to_string(), "invalid input: odd");
}

TEST(Tensor, ShapeAndBytes) {
  Tensor t = Tensor::zeros(DType::kFloat32, {1, 3, 4, 5});
  EXPECT_EQ(t.elements(), 60);
  EXPECT_EQ(t.bytes(), 240u);
  EXPECT_EQ(shape_to_string(t.shape()), "[1,3,4,5]");
  t.data<float>()[59] = 2.f;
  EXPECT_EQ(t.data<float>()[59], 2.f);
}

TEST(BoundedQueue, KeepsOrderAndAppliesBackPressure) {
  BoundedQueue<int> q(2);
  std::atomic<int> pushed{0};
  std::thread producer([&] {
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(q.push(i));
      ++pushed;
    }
    q.close();
  });
  // The producer cannot run ahead of the consumer by more than the capacity.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_LE(pushed.load(), 3);
  int expected = 0;
  while (auto v = q.pop()) EXPECT_EQ(*v, expected++);
  EXPECT_EQ(expected, 100);
  producer.join();
}

TEST(BoundedQueue, AbortWakesABlockedProducer) {
  BoundedQueue<int> q(1);
  ASSERT_TRUE(q.push(1));
  std::thread producer([&] { EXPECT_FALSE(q.push(2)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  q.abort();
  producer.join();
  EXPECT_FALSE(q.pop().has_value());
}

// A larger capacity wakes a blocked producer; a smaller one drops nothing queued and holds pushes
// back until the queue drained below it.
TEST(BoundedQueue, CapacityChangesWhileInUse) {
  BoundedQueue<int> q(1);
  ASSERT_TRUE(q.push(0));
  std::atomic<int> pushed{0};
  std::thread producer([&] {
    for (int i = 1; i < 4; ++i) {
      ASSERT_TRUE(q.push(i));
      ++pushed;
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(pushed.load(), 0);  // full at 1
  q.set_capacity(4);
  producer.join();
  EXPECT_EQ(q.size(), 4u);
  q.set_capacity(2);  // 4 queued stay queued
  EXPECT_EQ(q.capacity(), 2u);
  std::thread late([&] { EXPECT_TRUE(q.push(4)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(q.size(), 4u);  // waits until fewer than 2 are queued
  for (int expected = 0; expected < 3; ++expected) EXPECT_EQ(q.pop(), expected);
  late.join();
  q.close();
  std::vector<int> rest;
  while (auto v = q.pop()) rest.push_back(*v);
  EXPECT_EQ(rest, (std::vector<int>{3, 4}));
}

TEST(ParallelFor, CoversEveryIndexOnce) {
  std::vector<std::atomic<int>> hits(1000);
  parallel_for(1000, [&](int b, int e) {
    for (int i = b; i < e; ++i) ++hits[i];
  });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  // Nested calls run inline and still cover everything.
  std::atomic<int> total{0};
  parallel_for(10, [&](int b, int e) {
    for (int i = b; i < e; ++i) parallel_for(10, [&](int b2, int e2) { total += e2 - b2; });
  });
  EXPECT_EQ(total.load(), 100);
}

// One thread's batch waits, inside its chunks, for another thread's whole parallel_for: the
// second batch must run while the first is open (one batch at a time would never end it; the
// wait gives up after 10 s so such a pool fails the test rather than hanging it).
// A named thread shows its name (the first 15 bytes: Linux's limit), and the pool's workers
// theirs.
TEST(ThreadName, NamesTheCallingThreadAndThePoolsWorkers) {
  char name[32] = {};
  std::thread([&] {
    name_this_thread("fswap-a-name-longer-than-fifteen");
    pthread_getname_np(pthread_self(), name, sizeof name);
  }).join();
  EXPECT_STREQ(name, "fswap-a-name-lo");
  std::mutex mutex;
  std::set<std::string> pool_names;
  parallel_for(64, [&](int, int) {
    char n[32] = {};
    pthread_getname_np(pthread_self(), n, sizeof n);
    std::lock_guard lock(mutex);
    pool_names.insert(n);
  });
  // The caller takes part; any other thread was a worker.
  char caller[32] = {};
  pthread_getname_np(pthread_self(), caller, sizeof caller);
  pool_names.erase(caller);
  for (const std::string& n : pool_names) EXPECT_EQ(n, "fswap-pool");
}

TEST(ParallelFor, BatchesFromTwoThreadsRunSideBySide) {
  std::mutex mutex;
  std::condition_variable cv;
  bool second_done = false;
  std::atomic<int> first_waiting{0}, timed_out{0};
  std::thread first([&] {
    parallel_for(4, [&](int b, int e) {
      for (int i = b; i < e; ++i) {
        ++first_waiting;
        std::unique_lock lock(mutex);
        if (!cv.wait_for(lock, std::chrono::seconds(10), [&] { return second_done; })) ++timed_out;
      }
    });
  });
  while (first_waiting.load() == 0) std::this_thread::yield();
  std::vector<std::atomic<int>> hits(256);
  parallel_for(256, [&](int b, int e) {
    for (int i = b; i < e; ++i) ++hits[i];
  });
  {
    std::lock_guard lock(mutex);
    second_done = true;
  }
  cv.notify_all();
  first.join();
  EXPECT_EQ(timed_out.load(), 0);
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
}

// A face's region (200 × 200 px) stays on the calling thread; a frame's rows are chunked.
TEST(ParallelFor, SmallImagesRunOnTheCallingThread) {
  EXPECT_EQ(rows_per_chunk(1920), 18);
  EXPECT_EQ(rows_per_chunk(1 << 16), 1);
  EXPECT_EQ(rows_per_chunk(0), 1 << 15);
  std::mutex mutex;
  std::vector<std::thread::id> ran_on;
  parallel_for(200, [&](int, int) {
    std::lock_guard lock(mutex);
    ran_on.push_back(std::this_thread::get_id());
  }, rows_per_chunk(200));
  ASSERT_EQ(ran_on.size(), 1u);
  EXPECT_EQ(ran_on[0], std::this_thread::get_id());
}

// Many threads at once, each its own sums: every index of every batch covered once.
TEST(ParallelFor, ConcurrentCallersEachCoverTheirOwnRange) {
  constexpr int kThreads = 6, kRounds = 50, kSize = 333;
  std::vector<long> sums(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        std::atomic<long> sum{0};
        parallel_for(kSize, [&](int b, int e) {
          for (int i = b; i < e; ++i) sum += i;
        });
        sums[t] += sum.load();
      }
    });
  }
  for (auto& th : threads) th.join();
  for (long s : sums) EXPECT_EQ(s, static_cast<long>(kRounds) * kSize * (kSize - 1) / 2);
}

TEST(TimeLedger, AccumulatesPerStage) {
  TimeLedger ledger;
  ledger.add("decode", 0.5);
  ledger.add("swap", 0.25);
  ledger.add("decode", 0.5);
  ASSERT_EQ(ledger.entries().size(), 2u);
  EXPECT_EQ(ledger.entries()[0].stage, "decode");
  EXPECT_EQ(ledger.entries()[0].calls, 2);
  EXPECT_DOUBLE_EQ(ledger.seconds("decode"), 1.0);
  { ScopedTimer t(&ledger, "scoped"); }
  EXPECT_EQ(ledger.entries().size(), 3u);
}

}  // namespace
}  // namespace fswap

namespace fswap {
namespace {

TEST(Half, EveryHalfRoundTripsThroughFloat) {
  for (std::uint32_t bits = 0; bits <= 0xFFFFu; ++bits) {
    const auto h = static_cast<std::uint16_t>(bits);
    const float f = half_to_float(h);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(half_to_float(float_to_half(f))));
      continue;
    }
    ASSERT_EQ(float_to_half(f), h) << std::hex << bits;
    // GCC's _Float16 is the oracle for the value.
    ASSERT_EQ(std::bit_cast<std::uint16_t>(static_cast<_Float16>(f)), h) << std::hex << bits;
  }
}

TEST(Half, FloatsRoundToNearestEvenLikeTheCompiler) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::uint32_t> any_bits;
  for (int i = 0; i < 200000; ++i) {
    const float f = std::bit_cast<float>(any_bits(rng));
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_to_half(f), std::bit_cast<std::uint16_t>(static_cast<_Float16>(f))) << f;
  }
  for (float f : {65504.0f, 65519.99f, 65520.0f, 1e-8f, 2.98e-8f, 5.96e-8f, -0.0f, 0.1f, 3.0e-5f}) {
    EXPECT_EQ(float_to_half(f), std::bit_cast<std::uint16_t>(static_cast<_Float16>(f))) << f;
  }
  EXPECT_EQ(float_to_half(0.1f), 0x2E66);
}

}  // namespace
}  // namespace fswap
