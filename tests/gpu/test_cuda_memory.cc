// The memory layer on a real GPU: the simulated-device scenarios (budget, failure injection,
// eviction and prefetch) against CudaDevice, with real copies and cudaMemGetInfo as the witness.
// Timing checks compare ratios of two measurements in the same process, never absolute times.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "memory/budget.h"
#include "memory/cuda/cuda_device.h"
#include "memory/device_arena.h"
#include "memory/residency.h"

namespace fswap::memory {
namespace {

constexpr std::uint64_t kMiB = 1ull << 20;
constexpr std::uint64_t kGiB = 1ull << 30;
// cudaMemGetInfo also moves with the runtime's own bookkeeping (event pools, staging buffers).
constexpr std::int64_t kInfoSlack = 64 * kMiB;

#define ASSERT_OK(expr)                                  \
  do {                                                   \
    const ::fswap::Status s_ = (expr);                   \
    ASSERT_TRUE(s_.is_ok()) << s_.to_string();           \
  } while (0)

std::unique_ptr<CudaDevice> make_device() {
  auto dev = CudaDevice::create();
  if (!dev) {
    ADD_FAILURE() << dev.status().to_string();
    return nullptr;
  }
  return std::move(*dev);
}

// Device bytes in use card-wide (total − free).
std::int64_t device_used() {
  std::size_t free_b = 0, total_b = 0;
  EXPECT_EQ(cudaMemGetInfo(&free_b, &total_b), cudaSuccess);
  return static_cast<std::int64_t>(total_b - free_b);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::uint32_t pattern(std::uint32_t block, std::uint64_t i) {
  return static_cast<std::uint32_t>((i * 2654435761u) ^ (block * 40503u + 0x9e3779b9u));
}

void fill(void* host, std::uint64_t bytes, std::uint32_t block) {
  auto* p = static_cast<std::uint32_t*>(host);
  for (std::uint64_t i = 0; i < bytes / 4; ++i) p[i] = pattern(block, i);
}

// Index of the first word that differs from the pattern, or -1.
std::int64_t first_mismatch(const void* host, std::uint64_t bytes, std::uint32_t block) {
  const auto* p = static_cast<const std::uint32_t*>(host);
  for (std::uint64_t i = 0; i < bytes / 4; ++i)
    if (p[i] != pattern(block, i)) return static_cast<std::int64_t>(i);
  return -1;
}

void CUDART_CB sleep_ms(void* ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(reinterpret_cast<std::intptr_t>(ms)));
}
// Keeps the compute stream busy for `ms` without a kernel (this target has no .cu).
void busy_compute(CudaDevice& dev, int ms) {
  ASSERT_EQ(cudaLaunchHostFunc(dev.compute_stream(), sleep_ms, reinterpret_cast<void*>(static_cast<std::intptr_t>(ms))),
            cudaSuccess);
}

TEST(CudaDevice, CreatesAndReportsTheCard) {
  auto dev = make_device();
  ASSERT_NE(dev, nullptr);
  std::printf("device: %s, %s total, %s free\n", dev->name().c_str(), format_bytes(dev->total_bytes()).c_str(),
              format_bytes(dev->free_bytes()).c_str());
  EXPECT_GT(dev->total_bytes(), 0u);
  EXPECT_LE(dev->free_bytes(), dev->total_bytes());
}

TEST(CudaDevice, ErrorsNameTheCallAndOutOfMemoryIsClean) {
  auto dev = make_device();
  ASSERT_NE(dev, nullptr);
  auto too_big = dev->allocate(dev->total_bytes() + 64 * kGiB);
  ASSERT_FALSE(too_big.is_ok());
  EXPECT_EQ(too_big.status().code(), StatusCode::kOutOfMemory) << too_big.status().to_string();
  EXPECT_NE(too_big.status().message().find("cuMem"), std::string::npos) << too_big.status().message();
  EXPECT_NE(too_big.status().message().find("cuda_device.cc:"), std::string::npos) << too_big.status().message();
  EXPECT_EQ(dev->live_allocations(), 0u);
  // The failure left no error behind: the next allocation and copy work.
  auto p = dev->allocate(kMiB);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  std::vector<unsigned char> host(kMiB, 7);
  auto e = dev->copy_to_device(*p, host.data(), kMiB, HostMemoryKind::kPageable);
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  ASSERT_OK(dev->wait(*e));
  ASSERT_OK(dev->free(*p));
  EXPECT_EQ(dev->free(*p).code(), StatusCode::kInternal);  // double free is caught
}

// What the card holds is the live allocations in whole mapping units (2 MiB on the H100), by the
// device's count and by cudaMemGetInfo; freeing gives every byte back at once, and the memory is
// usable from a copy stream as soon as allocate() returns.
TEST(CudaDevice, MapsWholeGranularityUnitsAndFreesAtOnce) {
  auto dev = make_device();
  ASSERT_NE(dev, nullptr);
  const std::uint64_t g = dev->mapping_granularity();
  ASSERT_GE(g, 64u * 1024);
  ASSERT_LE(g, 32 * kMiB);
  ASSERT_OK(dev->synchronize());
  const std::int64_t used0 = device_used();
  std::vector<DevicePtr> live;
  std::uint64_t expected = 0;
  for (std::uint64_t bytes : {std::uint64_t{1}, 3 * kMiB + 1, 65 * kMiB, 161 * kMiB + 12345}) {
    auto p = dev->allocate(bytes);
    ASSERT_TRUE(p.is_ok()) << p.status().to_string();
    live.push_back(*p);
    expected += (bytes + g - 1) / g * g;
    EXPECT_EQ(dev->held_bytes(), expected);
  }
  const std::int64_t grown = device_used() - used0;
  EXPECT_GE(grown, static_cast<std::int64_t>(expected) - 2 * static_cast<std::int64_t>(g));
  EXPECT_LE(grown, static_cast<std::int64_t>(expected) + kInfoSlack);
  std::printf("granularity %s: %s held for 4 allocations, cudaMemGetInfo grew %s\n", format_bytes(g).c_str(),
              format_bytes(expected).c_str(), format_bytes(static_cast<std::uint64_t>(std::max<std::int64_t>(grown, 0))).c_str());

  // A copy right after allocate(), on the host→device stream, lands.
  std::vector<std::uint32_t> up(kMiB / 4), down(kMiB / 4);
  fill(up.data(), kMiB, 7);
  auto in = dev->copy_to_device(live[2], up.data(), kMiB, HostMemoryKind::kPageable);
  ASSERT_TRUE(in.is_ok()) << in.status().to_string();
  auto out = dev->copy_to_host(down.data(), live[2], kMiB, HostMemoryKind::kPageable, std::vector<DeviceEvent>{*in});
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  ASSERT_OK(dev->wait(*out));
  EXPECT_EQ(first_mismatch(down.data(), kMiB, 7), -1);

  for (DevicePtr p : live) ASSERT_OK(dev->free(p));
  EXPECT_EQ(dev->held_bytes(), 0u);
  EXPECT_LE(std::abs(device_used() - used0), 4 * static_cast<std::int64_t>(kMiB)) << "freed bytes must go back at once";
}

TEST(CudaDevice, EventsArePooledAndIdsStayValid) {
  auto dev = make_device();
  ASSERT_NE(dev, nullptr);
  auto p = dev->allocate(64 * kMiB);
  ASSERT_TRUE(p.is_ok());
  auto pinned = PinnedHostPool::create(64 * kMiB);
  ASSERT_TRUE(pinned.is_ok()) << pinned.status().to_string();
  auto buf = pinned->allocate(4096);
  ASSERT_TRUE(buf.is_ok());
  std::vector<DeviceEvent> old;
  for (int i = 0; i < 2000; ++i) {
    auto e = dev->copy_to_device(p->offset((i % 64) * 4096), *buf, 4096, HostMemoryKind::kPinned);
    ASSERT_TRUE(e.is_ok()) << e.status().to_string();
    if (i % 100 == 0) old.push_back(*e);
    if (i % 10 == 9) ASSERT_OK(dev->wait(*e));
  }
  ASSERT_OK(dev->synchronize());
  EXPECT_LT(dev->events_created(), 200u) << "events must be pooled, not created per copy";
  for (DeviceEvent e : old) {
    EXPECT_TRUE(dev->is_done(e));
    ASSERT_OK(dev->wait(e));  // a retired id reads as complete
  }
  ASSERT_OK(pinned->free(*buf));
  ASSERT_OK(dev->free(*p));
}

// ComputeSpan on CUDA: timing-enabled events around 20 ms of stream work read at least 19 ms and
// no more than the host saw pass; reading before the end completed fails instead of blocking;
// the timed events are pooled and released with their span; misuse is kInternal.
TEST(CudaDevice, ComputeSpanTimesTheStreamWithoutBlocking) {
  auto dev = make_device();
  ASSERT_NE(dev, nullptr);
  std::size_t created_before = dev->events_created();
  for (int i = 0; i < 5; ++i) {
    if (i == 1) created_before = dev->events_created();  // the pools hold what one span needs
    const auto t0 = std::chrono::steady_clock::now();
    ComputeSpan span(*dev);
    busy_compute(*dev, 20);
    const DeviceEvent end = span.mark_end();
    EXPECT_EQ(span.seconds().status().code(), StatusCode::kInternal) << "the stream is still busy: must not block";
    ASSERT_OK(dev->wait(end));
    const double wall = seconds_since(t0);
    EXPECT_TRUE(dev->is_done(end));
    auto seconds = span.seconds();
    ASSERT_TRUE(seconds.is_ok()) << seconds.status().to_string();
    EXPECT_GE(*seconds, 0.019);
    EXPECT_LE(*seconds, wall);
    EXPECT_EQ(dev->elapsed_seconds(end, span.begin()).status().code(), StatusCode::kInternal);  // swapped
    if (i == 0) {
      EXPECT_EQ(dev->elapsed_seconds(dev->record_compute(), end).status().code(), StatusCode::kInternal);  // untimed
    }
    EXPECT_EQ(dev->timed_events_held(), 2u);
    if (i == 0) std::printf("a 20 ms host function on the compute stream: span %.3f ms, host %.3f ms\n", *seconds * 1e3, wall * 1e3);
  }
  EXPECT_EQ(dev->timed_events_held(), 0u);
  EXPECT_LE(dev->events_created() - created_before, 2u) << "timed events must be pooled, not created per span";
}

TEST(DeviceArenaOnCuda, BudgetIsNeverExceeded) {
  const std::uint64_t budget = 2 * kGiB;
  auto dev = make_device();
  ASSERT_NE(dev, nullptr);
  ASSERT_OK(dev->synchronize());
  const std::int64_t used0 = device_used();
  std::int64_t max_delta = 0;
  std::uint64_t max_held = 0;
  {
    DeviceArena arena(*dev, {.cap_bytes = budget});
    std::mt19937_64 rng(42);
    std::vector<DeviceAllocation> live;
    int budget_failures = 0;
    for (int op = 0; op < 600; ++op) {
      const bool do_free = !live.empty() && (rng() % 100 < 40);
      if (do_free) {
        const std::size_t i = rng() % live.size();
        ASSERT_OK(arena.free(live[i].ptr, std::vector<DeviceEvent>{dev->record_compute()}));
        live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        // Log-uniform sizes from 4 KiB to 512 MiB.
        const double lg = 12.0 + static_cast<double>(rng() % 1000) / 1000.0 * 17.0;
        const auto bytes = static_cast<std::uint64_t>(std::pow(2.0, lg));
        auto a = arena.allocate(bytes);
        if (a.is_ok()) {
          live.push_back(std::move(*a));
        } else {
          ASSERT_EQ(a.status().code(), StatusCode::kOutOfMemory) << a.status().to_string();
          ASSERT_EQ(arena.last_failure(), ArenaFailure::kBudget) << a.status().to_string();
          ++budget_failures;
        }
      }
      if (op % 97 == 96) ASSERT_OK(arena.release_cached());
      ASSERT_LE(arena.reserved_bytes(), budget);
      ASSERT_OK(dev->synchronize());  // let the runtime settle before reading the card
      max_held = std::max(max_held, dev->held_bytes());
      const std::int64_t delta = device_used() - used0;
      max_delta = std::max(max_delta, delta);
      ASSERT_LE(delta, static_cast<std::int64_t>(budget) + kInfoSlack)
          << "after op " << op << ": arena reserved " << format_bytes(arena.reserved_bytes()) << " in "
          << arena.stats().segments << " segments, device holds " << format_bytes(dev->held_bytes());
    }
    std::printf("budget %s: arena peak %s, device held peak %s, cudaMemGetInfo peak delta %s, %d budget refusals\n",
                format_bytes(budget).c_str(), format_bytes(arena.stats().peak_reserved_bytes).c_str(),
                format_bytes(max_held).c_str(), format_bytes(static_cast<std::uint64_t>(max_delta)).c_str(),
                budget_failures);
    EXPECT_GT(budget_failures, 0) << "the workload should press against the budget";
    EXPECT_LE(max_held, budget);  // mapped in 2 MiB units: what the card holds is the arena's count
    for (auto& a : live) ASSERT_OK(arena.free(a.ptr));
  }
  EXPECT_EQ(dev->live_allocations(), 0u);
  ASSERT_OK(dev->synchronize());
  EXPECT_LE(std::abs(device_used() - used0), 4 * static_cast<std::int64_t>(kMiB));
}

TEST(DeviceArenaOnCuda, InjectedFailureIsCleanAndLeaksNothing) {
  auto dev = make_device();
  ASSERT_NE(dev, nullptr);
  ASSERT_OK(dev->synchronize());
  const std::int64_t used0 = device_used();
  {
    DeviceArena arena(*dev, {.cap_bytes = 2 * kGiB});
    // From the 3rd call on: the arena retries a refused segment with smaller sizes, so a single
    // injected failure would be absorbed by the retry.
    dev->fail_allocations_from(3);
    auto a = arena.allocate(256 * kMiB);
    auto b = arena.allocate(256 * kMiB);
    ASSERT_TRUE(a.is_ok() && b.is_ok());
    auto c = arena.allocate(256 * kMiB);
    ASSERT_FALSE(c.is_ok());
    EXPECT_EQ(c.status().code(), StatusCode::kOutOfMemory);
    EXPECT_EQ(arena.last_failure(), ArenaFailure::kDevice);
    EXPECT_EQ(arena.reserved_bytes(), 512 * kMiB);
    EXPECT_EQ(dev->live_allocations(), 2u);
    ASSERT_OK(arena.free(a->ptr));
    ASSERT_OK(arena.free(b->ptr));
    dev->fail_allocations_from(0);
  }
  // The same through the residency manager: the 2nd device allocation and all later ones fail.
  {
    auto pinned = PinnedHostPool::create(256 * kMiB);
    ASSERT_TRUE(pinned.is_ok()) << pinned.status().to_string();
    DeviceArena arena(*dev, {.cap_bytes = 2 * kGiB});
    ResidencyManager rm(arena);
    std::vector<BlockId> ids;
    for (int i = 0; i < 2; ++i) {
      auto host = pinned->allocate(96 * kMiB);
      ASSERT_TRUE(host.is_ok());
      auto id = rm.register_block({.name = "w" + std::to_string(i), .model = "m", .bytes = 96 * kMiB, .host = *host});
      ASSERT_TRUE(id.is_ok());
      ids.push_back(*id);
    }
    dev->fail_allocations_from(dev->allocation_calls() + 2);
    auto p0 = rm.acquire(ids[0]);
    ASSERT_TRUE(p0.is_ok()) << p0.status().to_string();
    auto p1 = rm.acquire(ids[1]);
    ASSERT_FALSE(p1.is_ok());
    EXPECT_EQ(p1.status().code(), StatusCode::kOutOfMemory) << p1.status().to_string();
    EXPECT_FALSE(rm.is_resident(ids[1]));
    EXPECT_TRUE(rm.is_resident(ids[0]));  // the pinned block was not evicted to make room
    ASSERT_OK(rm.release(ids[0]));
  }
  dev->fail_allocations_from(0);
  EXPECT_EQ(dev->live_allocations(), 0u);
  ASSERT_OK(dev->synchronize());
  EXPECT_LE(std::abs(device_used() - used0), 4 * static_cast<std::int64_t>(kMiB)) << "device memory leaked";
}

TEST(ResidencyOnCuda, DataSurvivesEvictionAndReload) {
  constexpr std::uint64_t kBlock = 64 * kMiB;
  constexpr int kBlocks = 8;
  const std::uint64_t budget = 256 * kMiB;  // half the weight set
  auto dev = make_device();
  ASSERT_NE(dev, nullptr);
  auto pinned = PinnedHostPool::create((kBlocks + 3) * kBlock);
  ASSERT_TRUE(pinned.is_ok()) << pinned.status().to_string();
  DeviceArena arena(*dev, {.cap_bytes = budget});
  ResidencyManager rm(arena);
  std::vector<BlockId> ids;
  for (int i = 0; i < kBlocks; ++i) {
    auto host = pinned->allocate(kBlock);
    ASSERT_TRUE(host.is_ok());
    fill(*host, kBlock, static_cast<std::uint32_t>(i));
    auto id = rm.register_block({.name = "w" + std::to_string(i), .model = i < 4 ? "a" : "b", .bytes = kBlock, .host = *host});
    ASSERT_TRUE(id.is_ok());
    ids.push_back(*id);
  }
  void* check = *pinned->allocate(kBlock);
  rm.set_schedule(ids);
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < kBlocks; ++i) {
      auto p = rm.acquire(ids[i]);
      ASSERT_TRUE(p.is_ok()) << p.status().to_string();
      ASSERT_OK(rm.prefetch(ids[(i + 1) % kBlocks]));
      std::memset(check, 0xAB, kBlock);  // poison: every word must come from the device
      const DeviceEvent deps[] = {dev->record_compute()};
      auto back = dev->copy_to_host(check, *p, kBlock, HostMemoryKind::kPinned, deps);
      ASSERT_TRUE(back.is_ok()) << back.status().to_string();
      ASSERT_OK(dev->wait(*back));
      ASSERT_EQ(first_mismatch(check, kBlock, static_cast<std::uint32_t>(i)), -1) << "block " << i << " round " << round;
      ASSERT_OK(rm.release(ids[i]));
      ASSERT_LE(arena.reserved_bytes(), budget);
    }
  }
  const ResidencyCounters& t = rm.stats().total;
  std::printf("residency: %llu evictions, %llu prefetch hits, %llu late, %llu misses, H2D %s\n",
              static_cast<unsigned long long>(t.evictions), static_cast<unsigned long long>(t.prefetch_hits),
              static_cast<unsigned long long>(t.prefetch_late), static_cast<unsigned long long>(t.prefetch_misses),
              format_bytes(t.h2d_bytes).c_str());
  EXPECT_GT(t.evictions, 0u);
  EXPECT_GT(t.prefetch_hits + t.prefetch_late, 0u);

  // A block kernels write is written back on eviction: emulate the kernel with a copy ordered on compute.
  auto wb_host = pinned->allocate(kBlock);
  ASSERT_TRUE(wb_host.is_ok());
  fill(*wb_host, kBlock, 100);
  auto wb = rm.register_block({.name = "scratch", .model = "c", .bytes = kBlock, .host = *wb_host, .device_writes = true});
  ASSERT_TRUE(wb.is_ok());
  auto p = rm.acquire(*wb);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  fill(check, kBlock, 200);
  const DeviceEvent deps[] = {dev->record_compute()};
  auto written = dev->copy_to_device(*p, check, kBlock, HostMemoryKind::kPinned, deps);
  ASSERT_TRUE(written.is_ok());
  dev->compute_wait(*written);
  ASSERT_OK(rm.release(*wb));
  ASSERT_OK(rm.evict(*wb));
  ASSERT_OK(dev->synchronize());
  EXPECT_EQ(first_mismatch(*wb_host, kBlock, 200), -1) << "write-back lost the device's bytes";
  EXPECT_GE(rm.stats().total.d2h_bytes, kBlock);
}

// Medians of a few host-timed runs of `f` (which waits for its copies).
template <class F>
double median_seconds(int runs, F&& f) {
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(seconds_since(t0));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

TEST(CudaCopies, PinnedBeatsPageableAndDirectionsOverlap) {
  constexpr std::uint64_t kBytes = 1 * kGiB;
  auto dev = make_device();
  ASSERT_NE(dev, nullptr);
  auto pinned = PinnedHostPool::create(2 * kBytes);
  ASSERT_TRUE(pinned.is_ok()) << pinned.status().to_string();
  void* up = *pinned->allocate(kBytes);
  void* down = *pinned->allocate(kBytes);
  fill(up, kBytes, 1);
  std::vector<unsigned char> pageable(kBytes);
  fill(pageable.data(), kBytes, 1);
  auto d0 = dev->allocate(kBytes), d1 = dev->allocate(kBytes);
  ASSERT_TRUE(d0.is_ok() && d1.is_ok());
  auto copy = [&](DevicePtr dst, const void* src, HostMemoryKind kind) {
    auto e = dev->copy_to_device(dst, src, kBytes, kind);
    ASSERT_TRUE(e.is_ok()) << e.status().to_string();
    ASSERT_OK(dev->wait(*e));
  };
  copy(*d0, up, HostMemoryKind::kPinned);  // warm-up
  copy(*d1, pageable.data(), HostMemoryKind::kPageable);
  const double t_pinned = median_seconds(5, [&] { copy(*d0, up, HostMemoryKind::kPinned); });
  const double t_pageable = median_seconds(3, [&] { copy(*d1, pageable.data(), HostMemoryKind::kPageable); });
  const double t_down = median_seconds(5, [&] {
    auto e = dev->copy_to_host(down, *d1, kBytes, HostMemoryKind::kPinned);
    ASSERT_TRUE(e.is_ok());
    ASSERT_OK(dev->wait(*e));
  });
  const double t_both = median_seconds(5, [&] {
    auto u = dev->copy_to_device(*d0, up, kBytes, HostMemoryKind::kPinned);
    auto d = dev->copy_to_host(down, *d1, kBytes, HostMemoryKind::kPinned);
    ASSERT_TRUE(u.is_ok() && d.is_ok());
    ASSERT_OK(dev->wait(*u));
    ASSERT_OK(dev->wait(*d));
  });
  const double gb = static_cast<double>(kBytes) / 1e9;
  std::printf("H2D pinned %.1f GB/s, pageable %.1f GB/s (x%.1f); D2H pinned %.1f GB/s; both at once %.1f GB/s (%.2f of serial)\n",
              gb / t_pinned, gb / t_pageable, t_pageable / t_pinned, gb / t_down, 2 * gb / t_both, t_both / (t_pinned + t_down));
  EXPECT_GT(t_pageable / t_pinned, 1.5) << "pinned host→device should be much faster than pageable";
  EXPECT_LT(t_both, 0.85 * (t_pinned + t_down)) << "the two copy streams should overlap";
  EXPECT_EQ(first_mismatch(down, kBytes, 1), -1);  // d1 came from the pageable pattern
  ASSERT_OK(dev->free(*d0));
  ASSERT_OK(dev->free(*d1));
}

TEST(ResidencyOnCuda, PrefetchOverlapsBusyCompute) {
  constexpr std::uint64_t kBlock = 1 * kGiB;  // ~20 ms at ~54 GB/s
  constexpr int kComputeMs = 30;
  auto dev = make_device();
  ASSERT_NE(dev, nullptr);
  auto pinned = PinnedHostPool::create(kBlock);
  ASSERT_TRUE(pinned.is_ok()) << pinned.status().to_string();
  void* host = *pinned->allocate(kBlock);
  fill(host, kBlock, 9);
  DeviceArena arena(*dev, {.cap_bytes = 2 * kGiB});
  ResidencyManager rm(arena);
  auto id = rm.register_block({.name = "next_stage", .model = "b", .bytes = kBlock, .host = host});
  ASSERT_TRUE(id.is_ok());
  // One stage: compute runs, the host waits for it, then the next stage acquires its weights.
  auto stage = [&](bool prefetch, std::vector<double>& times) {
    ASSERT_OK(rm.evict(*id));
    ASSERT_OK(dev->synchronize());
    const auto t0 = std::chrono::steady_clock::now();
    if (prefetch) ASSERT_OK(rm.prefetch(*id));
    busy_compute(*dev, kComputeMs);
    ASSERT_OK(dev->wait(dev->record_compute()));
    auto p = rm.acquire(*id);
    ASSERT_TRUE(p.is_ok()) << p.status().to_string();
    ASSERT_OK(dev->wait(dev->record_compute()));
    ASSERT_OK(rm.release(*id));
    times.push_back(seconds_since(t0));
  };
  std::vector<double> serial, overlapped;
  stage(false, serial);  // warm-up
  serial.clear();
  for (int i = 0; i < 5; ++i) {
    stage(false, serial);
    stage(true, overlapped);
  }
  ASSERT_EQ(serial.size(), 5u);
  ASSERT_EQ(overlapped.size(), 5u);
  std::sort(serial.begin(), serial.end());
  std::sort(overlapped.begin(), overlapped.end());
  const double s = serial[2], o = overlapped[2];
  std::printf("stage with a %d ms compute: serial load %.1f ms, prefetched %.1f ms (%.2f); prefetch hits %llu\n",
              kComputeMs, s * 1e3, o * 1e3, o / s, static_cast<unsigned long long>(rm.stats().total.prefetch_hits));
  EXPECT_LT(o, 0.85 * s) << "the prefetch should overlap the busy compute stream";
  EXPECT_GE(rm.stats().total.prefetch_hits, 4u);
}

}  // namespace
}  // namespace fswap::memory
