// SimulatedDevice (cost model, virtual clock, hazard checks, failure injection, timed compute
// spans) and DeviceArena
// (hard cap, best-fit reuse, coalescing, stream-ordered reuse, clean failures).
#include <gtest/gtest.h>

#include <random>

#include "memory/budget.h"
#include "memory/device_arena.h"
#include "memory/simulated_device.h"

using namespace fswap;
using namespace fswap::memory;

namespace {

constexpr std::uint64_t kMiB = 1ull << 20;

ArenaOptions exact(std::uint64_t cap) {  // one segment per allocation, no rounding beyond 256 B
  return {.cap_bytes = cap, .alignment = 256, .small_limit = 0, .small_segment_bytes = 256, .granularity = 256};
}

TEST(SimulatedDevice, CopyCostModel) {
  SimulatedDevice dev;
  EXPECT_NEAR(dev.copy_seconds(1'000'000'000, true, HostMemoryKind::kPinned), 3e-6 + 1.0 / 54.0, 1e-12);
  EXPECT_NEAR(dev.copy_seconds(1'000'000'000, true, HostMemoryKind::kPageable), 3e-6 + 1.0 / 7.8, 1e-12);
  auto p = dev.allocate(64 * kMiB);
  ASSERT_TRUE(p.is_ok());
  // Two copies queue on the H2D stream; compute waits only for the first.
  auto a = dev.copy_to_device(*p, nullptr, 32 * kMiB, HostMemoryKind::kPinned);
  auto b = dev.copy_to_device(p->offset(32 * kMiB), nullptr, 32 * kMiB, HostMemoryKind::kPinned);
  ASSERT_TRUE(a.is_ok() && b.is_ok());
  const double c = dev.copy_seconds(32 * kMiB, true, HostMemoryKind::kPinned);
  dev.compute_wait(*a);
  EXPECT_NEAR(dev.compute_stall_seconds(), c, 1e-12);
  auto k = dev.run_compute(1e-3, {{{*p, 32 * kMiB}}});
  ASSERT_TRUE(k.is_ok()) << k.status().to_string();
  EXPECT_FALSE(dev.is_done(*b));
  dev.synchronize();
  EXPECT_NEAR(dev.now_seconds(), std::max(2 * c, c + 1e-3), 1e-12);
  EXPECT_TRUE(dev.is_done(*b));
  EXPECT_EQ(dev.h2d_bytes(), 64 * kMiB);
  EXPECT_TRUE(dev.free(*p).is_ok());
  EXPECT_EQ(dev.used_bytes(), 0u);
}

TEST(SimulatedDevice, HazardsAreReported) {
  SimulatedDevice dev;
  auto p = *dev.allocate(kMiB);
  // A kernel that reads bytes nothing wrote, or reads before the copy ends.
  EXPECT_EQ(dev.run_compute(1e-3, {{{p, kMiB}}}).status().code(), StatusCode::kInternal);
  auto copied = *dev.copy_to_device(p, nullptr, kMiB, HostMemoryKind::kPinned);
  EXPECT_EQ(dev.run_compute(1e-3, {{{p, kMiB}}}).status().code(), StatusCode::kInternal);
  dev.compute_wait(copied);
  auto k = dev.run_compute(1e-3, {{{p, kMiB}}});
  ASSERT_TRUE(k.is_ok());
  // Overwriting bytes the kernel still reads; then correctly ordered after it.
  EXPECT_EQ(dev.copy_to_device(p, nullptr, kMiB, HostMemoryKind::kPinned).status().code(), StatusCode::kInternal);
  EXPECT_TRUE(dev.copy_to_device(p, nullptr, kMiB, HostMemoryKind::kPinned, {{*k}}).is_ok());
  // Freeing with work pending, then after waiting; copies into unallocated memory.
  EXPECT_EQ(dev.free(p).code(), StatusCode::kInternal);
  dev.synchronize();
  EXPECT_TRUE(dev.free(p).is_ok());
  EXPECT_EQ(dev.copy_to_device(p, nullptr, 16, HostMemoryKind::kPinned).status().code(), StatusCode::kInternal);
  EXPECT_EQ(dev.free(p).code(), StatusCode::kInternal);
}

TEST(SimulatedDevice, FailureInjectionAndBackingStore) {
  SimulatedDevice dev({.capacity_bytes = 4 * kMiB, .backing_store = true});
  dev.fail_allocation(2);
  auto a = dev.allocate(kMiB);
  EXPECT_TRUE(a.is_ok());
  EXPECT_EQ(dev.allocate(kMiB).status().code(), StatusCode::kOutOfMemory);
  auto c = dev.allocate(kMiB);
  EXPECT_TRUE(c.is_ok());
  EXPECT_EQ(dev.allocate(3 * kMiB).status().code(), StatusCode::kOutOfMemory);  // capacity
  std::vector<int> host(256), back(256);
  for (int i = 0; i < 256; ++i) host[i] = i * 7;
  auto up = *dev.copy_to_device(*a, host.data(), 1024, HostMemoryKind::kPinned);
  auto down = dev.copy_to_host(back.data(), *a, 1024, HostMemoryKind::kPinned, {{up}});
  ASSERT_TRUE(down.is_ok()) << down.status().to_string();
  EXPECT_EQ(host, back);
  dev.fail_allocations_from(5);
  EXPECT_EQ(dev.allocate(16).status().code(), StatusCode::kOutOfMemory);
  EXPECT_EQ(dev.allocate(16).status().code(), StatusCode::kOutOfMemory);
}

// A ComputeSpan is the compute stream's virtual time from its start mark to its end mark: the
// stall on its input copy, its kernels and a gap where the host issued nothing, but not the
// stream's idle time before it started.
TEST(SimulatedDevice, ComputeSpanIsTheVirtualClockDifference) {
  SimulatedDevice dev;
  auto p = *dev.allocate(512 * kMiB);
  const double c64 = dev.copy_seconds(64 * kMiB, true, HostMemoryKind::kPinned);
  const double c128 = dev.copy_seconds(128 * kMiB, true, HostMemoryKind::kPinned);
  const double c256 = dev.copy_seconds(256 * kMiB, true, HostMemoryKind::kPinned);
  // Before the span: 2 ms of kernels, then the host waits for a copy (~5 ms) while the stream idles.
  ASSERT_TRUE(dev.run_compute(2e-3).is_ok());
  ASSERT_TRUE(dev.wait(*dev.copy_to_device(p.offset(256 * kMiB), nullptr, 256 * kMiB, HostMemoryKind::kPinned)).is_ok());
  ASSERT_GT(c256, 2e-3);
  const double start = dev.now_seconds();
  EXPECT_DOUBLE_EQ(start, c256);
  DeviceEvent begin, end;
  {
    ComputeSpan span(dev);
    begin = span.begin();
    EXPECT_EQ(dev.timed_events_held(), 1u);
    // The run's input copy (the stream stalls on it), 1 ms of kernels reading it; the host then
    // waits for a longer copy before issuing 3 ms more, so the stream idles inside the span.
    auto in = *dev.copy_to_device(p, nullptr, 64 * kMiB, HostMemoryKind::kPinned, {{span.begin()}});
    dev.compute_wait(in);
    ASSERT_TRUE(dev.run_compute(1e-3, {{{p, 64 * kMiB}}}).is_ok());
    ASSERT_TRUE(dev.wait(*dev.copy_to_device(p.offset(64 * kMiB), nullptr, 128 * kMiB, HostMemoryKind::kPinned)).is_ok());
    const double gap = (c64 + c128) - (c64 + 1e-3);
    ASSERT_GT(gap, 0);
    ASSERT_TRUE(dev.run_compute(3e-3).is_ok());
    end = span.mark_end();
    EXPECT_EQ(span.seconds().status().code(), StatusCode::kInternal);  // not complete yet: never blocks
    ASSERT_TRUE(dev.wait(end).is_ok());
    auto seconds = span.seconds();
    ASSERT_TRUE(seconds.is_ok()) << seconds.status().to_string();
    EXPECT_NEAR(*seconds, c64 + 1e-3 + gap + 3e-3, 1e-12);  // stall + kernel + host gap + kernel
    EXPECT_NEAR(*seconds, dev.now_seconds() - start, 1e-12);
    EXPECT_NEAR(dev.compute_busy_seconds(), 2e-3 + 1e-3 + 3e-3, 1e-12);  // kernels alone, before the span too
    // Misuse is kInternal: an untimed event, the marks swapped.
    EXPECT_EQ(dev.elapsed_seconds(dev.record_compute(), end).status().code(), StatusCode::kInternal);
    EXPECT_EQ(dev.elapsed_seconds(end, begin).status().code(), StatusCode::kInternal);
    EXPECT_EQ(dev.timed_events_held(), 2u);
  }
  // The span released its events; a span over no work on an idle stream is 0 s.
  EXPECT_EQ(dev.timed_events_held(), 0u);
  EXPECT_EQ(dev.elapsed_seconds(begin, end).status().code(), StatusCode::kInternal);
  ComputeSpan idle(dev);
  ASSERT_TRUE(dev.wait(idle.mark_end()).is_ok());
  EXPECT_EQ(*idle.seconds(), 0.0);
  dev.synchronize();
  EXPECT_TRUE(dev.free(p).is_ok());
}

TEST(DeviceArena, BestFitReuseAndCoalescing) {
  SimulatedDevice dev;
  DeviceArena arena(dev, {.cap_bytes = 64 * kMiB, .small_limit = kMiB, .small_segment_bytes = 4 * kMiB, .granularity = 2 * kMiB});
  // Small requests share one 4 MiB segment.
  auto a = *arena.allocate(1000), b = *arena.allocate(300 * 1024), c = *arena.allocate(1000);
  EXPECT_EQ(arena.stats().segments, 1u);
  EXPECT_EQ(arena.allocated_bytes(), 1024u + 300 * 1024 + 1024);
  EXPECT_EQ(arena.reserved_bytes(), 4 * kMiB);
  // A large request gets its own segment rounded to the granularity.
  auto big = *arena.allocate(5 * kMiB);
  EXPECT_EQ(arena.reserved_bytes(), 4 * kMiB + 6 * kMiB);
  // Free b: a hole of 300 KiB; a 200 KiB request goes there (best fit), not into the tail.
  ASSERT_TRUE(arena.free(b.ptr).is_ok());
  auto d = *arena.allocate(200 * 1024);
  EXPECT_EQ(d.ptr, b.ptr);
  // Free everything in the small segment: it coalesces back to one range.
  ASSERT_TRUE(arena.free(a.ptr).is_ok());
  ASSERT_TRUE(arena.free(c.ptr).is_ok());
  EXPECT_GT(arena.stats().free_ranges, 1u);
  ASSERT_TRUE(arena.free(d.ptr).is_ok());
  ASSERT_TRUE(arena.free(big.ptr).is_ok());
  ArenaStats s = arena.stats();
  EXPECT_EQ(s.free_ranges, 2u);  // one per segment
  EXPECT_EQ(s.largest_free_range, 6 * kMiB);
  EXPECT_NEAR(s.fragmentation(), 1.0 - 6.0 / 10.0, 1e-12);
  EXPECT_EQ(s.allocated_bytes, 0u);
  EXPECT_EQ(arena.free(a.ptr).code(), StatusCode::kInternal);  // double free
  ASSERT_TRUE(arena.release_cached().is_ok());
  EXPECT_EQ(arena.reserved_bytes(), 0u);
  EXPECT_EQ(dev.used_bytes(), 0u);
}

TEST(DeviceArena, CapIsHardAndFailuresAreClean) {
  SimulatedDevice dev;
  DeviceArena arena(dev, exact(10 * kMiB));
  auto a = *arena.allocate(6 * kMiB);
  auto fail = arena.allocate(5 * kMiB);
  EXPECT_EQ(fail.status().code(), StatusCode::kOutOfMemory);
  EXPECT_EQ(arena.last_failure(), ArenaFailure::kBudget);
  EXPECT_NE(fail.status().message().find("10 MiB budget"), std::string::npos) << fail.status().message();
  EXPECT_EQ(arena.reserved_bytes(), 6 * kMiB);
  EXPECT_EQ(dev.used_bytes(), 6 * kMiB);
  // A cached free segment that cannot hold the request is returned to the device to make room.
  auto b = *arena.allocate(4 * kMiB);
  ASSERT_TRUE(arena.free(b.ptr).is_ok());
  ASSERT_TRUE(arena.free(a.ptr).is_ok());
  auto c = arena.allocate(9 * kMiB);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_LE(dev.used_bytes(), 10 * kMiB);
  // The device refusing memory the budget allows: kDevice, nothing held for the failed call.
  dev.fail_allocation(dev.allocation_calls() + 1);
  ASSERT_TRUE(arena.free(c->ptr).is_ok());
  ASSERT_TRUE(arena.release_cached().is_ok());
  auto d = arena.allocate(kMiB);
  EXPECT_EQ(d.status().code(), StatusCode::kOutOfMemory);
  EXPECT_EQ(arena.last_failure(), ArenaFailure::kDevice);
  EXPECT_EQ(arena.reserved_bytes(), 0u);
  EXPECT_EQ(dev.used_bytes(), 0u);
  EXPECT_EQ(arena.allocate(0).status().code(), StatusCode::kInvalidInput);
}

TEST(DeviceArena, SmallRequestsAndScratchNeverSplitALargeHole) {
  // 8 MiB small segments for requests below 4 MiB; larger ones and scratch get segments of their own.
  SimulatedDevice dev;
  DeviceArena arena(dev, {.cap_bytes = 40 * kMiB, .small_limit = 4 * kMiB, .small_segment_bytes = 8 * kMiB,
                          .granularity = 64 * 1024});
  auto big = *arena.allocate(18 * kMiB);
  auto small = *arena.allocate(2 * kMiB);
  EXPECT_EQ(arena.reserved_bytes(), 26 * kMiB);  // 18 + one small segment
  ASSERT_TRUE(arena.free(big.ptr).is_ok());
  // The 18 MiB hole stays whole for the next large request: small ones fill their own segment.
  auto small2 = *arena.allocate(2 * kMiB);
  auto small3 = *arena.allocate(3 * kMiB);
  EXPECT_EQ(arena.reserved_bytes(), 26 * kMiB);
  // Scratch (a workspace) does not carve the hole either: it gets a segment of its own.
  auto workspace = *arena.allocate(5 * kMiB, {.scratch = true});
  EXPECT_EQ(arena.reserved_bytes(), 31 * kMiB);
  auto big2 = arena.allocate(18 * kMiB);
  ASSERT_TRUE(big2.is_ok()) << big2.status().to_string();
  EXPECT_EQ(big2->ptr, big.ptr);
  EXPECT_EQ(arena.stats().segment_allocations, 3u);
  ASSERT_TRUE(arena.free(workspace.ptr).is_ok());
  // Charged bytes (managed memory outside the arena) share the cap.
  EXPECT_EQ(arena.charge(20 * kMiB).code(), StatusCode::kOutOfMemory);
  EXPECT_EQ(arena.last_failure(), ArenaFailure::kBudget);
  ASSERT_TRUE(arena.charge(14 * kMiB).is_ok());
  EXPECT_EQ(arena.stats().charged_bytes, 14 * kMiB);
  EXPECT_EQ(arena.stats().peak_reserved_bytes, 40 * kMiB);
  EXPECT_EQ(arena.allocate(6 * kMiB).status().code(), StatusCode::kOutOfMemory);  // no room for its segment
  arena.uncharge(14 * kMiB);
  auto small4 = arena.allocate(3 * kMiB);
  ASSERT_TRUE(small4.is_ok()) << small4.status().to_string();
  for (DevicePtr p : {small.ptr, small2.ptr, small3.ptr, small4->ptr, big2->ptr}) ASSERT_TRUE(arena.free(p).is_ok());
}

// A scratch hole over four times a request stays whole while the request's own segment fits the
// budget, so the buffer it held can come back at the same place; under a tight budget the hole
// is carved rather than failing.
TEST(DeviceArena, AFarLargerHoleIsKeptWholeWhileTheBudgetHasRoom) {
  SimulatedDevice dev;
  DeviceArena arena(dev, {.cap_bytes = 100 * kMiB, .small_limit = kMiB, .granularity = 2 * kMiB});
  auto activations = *arena.allocate(80 * kMiB, {.scratch = true});
  ASSERT_TRUE(arena.free(activations.ptr).is_ok());
  auto region = *arena.allocate(4 * kMiB, {.scratch = true});  // its own segment: 84 of 100 MiB
  EXPECT_NE(region.ptr, activations.ptr);
  EXPECT_EQ(arena.reserved_bytes(), 84 * kMiB);
  auto again = *arena.allocate(80 * kMiB, {.scratch = true});
  EXPECT_EQ(again.ptr, activations.ptr);  // the hole was whole
  ASSERT_TRUE(arena.free(again.ptr).is_ok());
  // Within four times the request the hole is used: 30 MiB into 80.
  auto workspace = *arena.allocate(30 * kMiB, {.scratch = true});
  EXPECT_EQ(workspace.ptr, activations.ptr);
  ASSERT_TRUE(arena.free(workspace.ptr).is_ok());
  // No room for a segment of its own (84 + 18 > 100): the hole is carved.
  auto tight = *arena.allocate(17 * kMiB, {.scratch = true});
  EXPECT_EQ(tight.ptr, activations.ptr);
  EXPECT_EQ(arena.reserved_bytes(), 84 * kMiB);
  for (DevicePtr p : {region.ptr, tight.ptr}) ASSERT_TRUE(arena.free(p).is_ok());
}

TEST(DeviceArena, SegmentsTheDeviceMapsInLargerPiecesAreTakenWhole) {
  // As CUDA's pool: 32 MiB pieces; a 65 MiB segment holds 96 MiB of the card.
  SimulatedDevice dev({.mapping_granularity = 32 * kMiB});
  DeviceArena arena(dev, {.cap_bytes = 100 * kMiB, .small_limit = kMiB, .small_segment_bytes = 2 * kMiB,
                          .granularity = 64 * 1024});
  auto big = arena.allocate(65 * kMiB);
  ASSERT_TRUE(big.is_ok()) << big.status().to_string();
  EXPECT_EQ(arena.reserved_bytes(), 96 * kMiB);  // the arena counts what the card holds
  EXPECT_EQ(dev.held_bytes(), 96 * kMiB);
  // The 31 MiB the device maps anyway serve the next large request: no second segment, which the
  // card would hold as another 32 MiB piece, past the 100 MiB budget.
  auto next = arena.allocate(20 * kMiB);
  ASSERT_TRUE(next.is_ok()) << next.status().to_string();
  EXPECT_EQ(arena.stats().segment_allocations, 1u);
  EXPECT_EQ(dev.held_bytes(), 96 * kMiB);
  // A small request's segment is a whole piece too (pieces are never shared): with no room for
  // another piece, the large segment's slack serves it rather than a refusal.
  auto small = arena.allocate(100 * 1024);
  ASSERT_TRUE(small.is_ok()) << small.status().to_string();
  EXPECT_EQ(arena.stats().segment_allocations, 1u);
  EXPECT_EQ(dev.held_bytes(), 96 * kMiB);
  auto too_big = arena.allocate(20 * kMiB);  // neither a piece nor a cached range holds it
  EXPECT_EQ(too_big.status().code(), StatusCode::kOutOfMemory);
  for (DevicePtr p : {big->ptr, next->ptr, small->ptr}) ASSERT_TRUE(arena.free(p).is_ok());
  auto after = arena.allocate(100 * 1024);
  ASSERT_TRUE(after.is_ok()) << after.status().to_string();
  EXPECT_EQ(arena.reserved_bytes() % (32 * kMiB), 0u);
  EXPECT_EQ(dev.held_bytes(), arena.reserved_bytes());
  ASSERT_TRUE(arena.free(after->ptr).is_ok());
}

TEST(DeviceArena, StreamOrderedReuse) {
  SimulatedDevice dev;
  DeviceArena arena(dev, exact(4 * kMiB));
  auto a = *arena.allocate(2 * kMiB);
  auto copied = *dev.copy_to_device(a.ptr, nullptr, 2 * kMiB, HostMemoryKind::kPinned, a.ready_after);
  dev.compute_wait(copied);
  auto kernel = *dev.run_compute(5e-3, {{{a.ptr, 2 * kMiB}}});
  // Freed while the kernel still reads it: the range is reusable at once, tagged with the event.
  ASSERT_TRUE(arena.free(a.ptr, {{kernel}}).is_ok());
  auto b = *arena.allocate(2 * kMiB);
  EXPECT_EQ(b.ptr, a.ptr);
  ASSERT_EQ(b.ready_after.size(), 1u);
  EXPECT_EQ(b.ready_after[0], kernel);
  // Ignoring ready_after would overwrite bytes the kernel reads; honouring it orders the copy.
  EXPECT_EQ(dev.copy_to_device(b.ptr, nullptr, 2 * kMiB, HostMemoryKind::kPinned).status().code(), StatusCode::kInternal);
  auto next = dev.copy_to_device(b.ptr, nullptr, 2 * kMiB, HostMemoryKind::kPinned, b.ready_after);
  ASSERT_TRUE(next.is_ok()) << next.status().to_string();
  EXPECT_EQ(dev.now_seconds(), 0.0);  // the host never blocked
  ASSERT_TRUE(arena.free(b.ptr, {{*next}}).is_ok());
  // A request that needs the segment back: a prefetch (may_block false) gives up rather than
  // making the host wait for the copy; an acquire waits.
  auto refused = arena.allocate(3 * kMiB, {.may_block = false});
  EXPECT_EQ(refused.status().code(), StatusCode::kOutOfMemory);
  EXPECT_EQ(dev.now_seconds(), 0.0);
  EXPECT_EQ(dev.used_bytes(), 2 * kMiB);
  // Returning the segment to the device waits for the copy on the host.
  ASSERT_TRUE(arena.release_cached().is_ok());
  EXPECT_GT(dev.now_seconds(), 5e-3);
  EXPECT_EQ(dev.used_bytes(), 0u);
}

TEST(DeviceArena, RandomWorkloadNeverExceedsTheCap) {
  SimulatedDevice dev;
  const std::uint64_t cap = 48 * kMiB;
  DeviceArena arena(dev, {.cap_bytes = cap, .small_limit = 512 * 1024, .small_segment_bytes = 4 * kMiB, .granularity = kMiB});
  std::mt19937 rng(7);
  std::vector<DeviceAllocation> live;
  std::uint64_t expected = 0;
  int failures = 0;
  for (int step = 0; step < 5000; ++step) {
    if (!live.empty() && (rng() % 100 < 45 || failures > 3)) {
      const std::size_t i = rng() % live.size();
      expected -= (live[i].bytes + 255) / 256 * 256;
      ASSERT_TRUE(arena.free(live[i].ptr).is_ok());
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
      failures = 0;
    } else {
      const std::uint64_t bytes = rng() % 2 == 0 ? 1 + rng() % (256 * 1024) : 1 + rng() % (12 * kMiB);
      auto a = arena.allocate(bytes);
      if (a.is_ok()) {
        expected += (bytes + 255) / 256 * 256;
        live.push_back(std::move(*a));
      } else {
        ASSERT_EQ(a.status().code(), StatusCode::kOutOfMemory);
        ++failures;
      }
    }
    ASSERT_LE(arena.reserved_bytes(), cap);
    ASSERT_EQ(dev.used_bytes(), arena.reserved_bytes());
    ASSERT_EQ(arena.allocated_bytes(), expected);
    ASSERT_LE(arena.allocated_bytes(), arena.reserved_bytes());
  }
  const ArenaStats s = arena.stats();
  EXPECT_GT(s.reused_allocations, 0u);
  EXPECT_GT(s.budget_failures, 0u);
  EXPECT_LE(s.peak_reserved_bytes, cap);
  for (auto& a : live) ASSERT_TRUE(arena.free(a.ptr).is_ok());
  ASSERT_TRUE(arena.release_cached().is_ok());
  EXPECT_EQ(dev.used_bytes(), 0u);
  EXPECT_EQ(dev.live_allocations(), 0u);
  std::printf("random workload: peak reserved %s of %s, %llu reused, %llu budget failures\n",
              format_bytes(s.peak_reserved_bytes).c_str(), format_bytes(cap).c_str(),
              static_cast<unsigned long long>(s.reused_allocations), static_cast<unsigned long long>(s.budget_failures));
}

}  // namespace
