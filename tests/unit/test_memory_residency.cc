// ResidencyManager on the simulated device: the budget holds after every operation, Belady beats
// LRU on a known schedule (and matches the optimum on the textbook case), prefetch hides copies
// behind compute, chunks stream a model down to one layer plus its activations, and every
// injected allocation failure ends in a clean kOutOfMemory with nothing leaked.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <optional>

#include "memory/budget.h"
#include "memory/residency.h"
#include "memory/simulated_device.h"
#include "memory/weight_chunks.h"

using namespace fswap;
using namespace fswap::memory;

namespace {

constexpr std::uint64_t kMiB = 1ull << 20;

ArenaOptions exact(std::uint64_t cap) {  // one segment per allocation, 256-byte rounding only
  return {.cap_bytes = cap, .alignment = 256, .small_limit = 0, .small_segment_bytes = 256, .granularity = 256};
}

struct Rig {
  explicit Rig(std::uint64_t budget, SimulatedDeviceOptions o = {}) : dev(o), arena(dev, exact(budget)) {
    manager.emplace(arena);
  }
  SimulatedDevice dev;
  DeviceArena arena;
  std::optional<ResidencyManager> manager;
  ResidencyManager& rm() { return *manager; }
  const ResidencyManager& rm() const { return *manager; }

  // The budget holds by the arena's count and by the device's.
  void check() const {
    ASSERT_LE(arena.reserved_bytes(), arena.cap_bytes());
    ASSERT_LE(dev.used_bytes(), arena.cap_bytes());
    ASSERT_EQ(dev.used_bytes(), arena.reserved_bytes());
    ASSERT_LE(rm().resident_bytes(), arena.allocated_bytes());
  }
  BlockId add(const std::string& name, const std::string& model, std::uint64_t bytes, void* host = nullptr) {
    Result<BlockId> id = rm().register_block({.name = name, .model = model, .bytes = bytes, .host = host});
    EXPECT_TRUE(id.is_ok());
    return *id;
  }
  // acquire → one kernel reading the block → release.
  Status run(BlockId id, double seconds) {
    FSWAP_ASSIGN_OR_RETURN(DevicePtr p, rm().acquire(id));
    const DeviceRange read{p, rm().block(id).bytes};
    Result<DeviceEvent> k = dev.run_compute(seconds, {&read, 1});
    Status released = rm().release(id);
    if (!k.is_ok()) return k.status();
    return released;
  }
};

// ---- eviction policy -----------------------------------------------------------------------

std::uint64_t textbook_h2d(bool belady) {
  // The classic reference string with 3 frames: OPT 7 faults, LRU 10.
  Rig r(3 * kMiB);
  std::vector<BlockId> id;
  for (int i = 1; i <= 5; ++i) id.push_back(r.add("page" + std::to_string(i), "m", kMiB));
  const int refs[] = {1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5};
  std::vector<BlockId> order;
  for (int x : refs) order.push_back(id[x - 1]);
  if (belady) r.rm().set_schedule(order, /*cyclic=*/false);
  for (BlockId b : order) {
    EXPECT_TRUE(r.run(b, 1e-3).is_ok());
    r.check();
  }
  return r.rm().stats().total.h2d_bytes;
}

TEST(Residency, BeladyMatchesTheOptimumOnTheTextbookCase) {
  const std::uint64_t lru = textbook_h2d(false), belady = textbook_h2d(true);
  std::printf("textbook 1,2,3,4,1,2,5,1,2,3,4,5 with 3 frames: H2D LRU %s, Belady %s\n", format_bytes(lru).c_str(),
              format_bytes(belady).c_str());
  EXPECT_EQ(lru, 10 * kMiB);
  EXPECT_EQ(belady, 7 * kMiB);
}

struct PolicyResult {
  std::uint64_t h2d = 0, evictions = 0;
};

PolicyResult pipeline_chunks(bool belady) {
  // Detector 200 MiB, swapper 550 MiB (2 blocks), enhancer 340 MiB; the budget holds two of them.
  Rig r(900 * kMiB);
  const BlockId det = r.add("det", "detector", 200 * kMiB);
  const BlockId sw1 = r.add("swap.a", "swapper", 300 * kMiB), sw2 = r.add("swap.b", "swapper", 250 * kMiB);
  const BlockId enh = r.add("enh", "enhancer", 340 * kMiB);
  const std::vector<BlockId> chunk = {det, sw1, sw2, enh};
  if (belady) r.rm().set_schedule(chunk, /*cyclic=*/true);
  for (int c = 0; c < 20; ++c)
    for (BlockId b : chunk) {
      EXPECT_TRUE(r.run(b, 4e-3).is_ok());
      r.check();
    }
  return {r.rm().stats().total.h2d_bytes, r.rm().stats().total.evictions};
}

TEST(Residency, BeladyBeatsLruOnACyclicPipeline) {
  const PolicyResult lru = pipeline_chunks(false), belady = pipeline_chunks(true);
  std::printf("20 chunks det→swap→enh, budget 900 MiB of 1090: H2D LRU %s (%llu evictions), Belady %s (%llu)\n",
              format_bytes(lru.h2d).c_str(), static_cast<unsigned long long>(lru.evictions),
              format_bytes(belady.h2d).c_str(), static_cast<unsigned long long>(belady.evictions));
  EXPECT_EQ(lru.h2d, 20 * 1090 * kMiB);  // cyclic access larger than the budget: LRU misses every time
  EXPECT_LT(belady.h2d, lru.h2d);
}

// The light pipeline of bench_native on the simulated device: a swapper and a face enhancer of
// few large blocks, then a frame enhancer of many small nodes; each run schedules only its own
// blocks (as the CUDA executor does), so the others' are all "never needed" to it. LRU then evicts
// the frame enhancer on every pass, whose reload costs the host its CUDA graph; with keep costs
// (nodes per byte) the two streamed models make room among themselves.
std::uint64_t frame_enhancer_reloads(bool keep_costs) {
  Rig r(200 * kMiB);
  struct Stage {
    std::string model;
    std::vector<BlockId> blocks;
    double nodes_per_mib;
  };
  std::vector<Stage> stages = {{"swapper", {}, 1.0}, {"face_enhancer", {}, 2.5}, {"frame_enhancer", {}, 24.0}};
  for (std::uint64_t mib : {60, 60}) stages[0].blocks.push_back(r.add("swap", "swapper", mib * kMiB));
  for (std::uint64_t mib : {80, 80}) stages[1].blocks.push_back(r.add("enh", "face_enhancer", mib * kMiB));
  stages[2].blocks.push_back(r.add("esrgan", "frame_enhancer", 30 * kMiB));
  if (keep_costs)
    for (const Stage& st : stages) r.rm().set_keep_cost(st.model, st.nodes_per_mib);
  for (int pass = 0; pass < 10; ++pass)
    for (const Stage& st : stages) {
      r.rm().set_schedule(st.blocks);
      for (BlockId b : st.blocks) EXPECT_TRUE(r.run(b, 1e-3).is_ok());
      r.check();
    }
  if (keep_costs) {
    // The room a model may take without touching dearer models' blocks: all of it for the
    // dearest, the budget less the frame enhancer's 30 MiB for the face enhancer, and less the
    // face enhancer's resident bytes too for the swapper.
    const auto& models = r.rm().stats().per_model;
    EXPECT_EQ(r.rm().room_beside_dearer("frame_enhancer"), 200 * kMiB);
    EXPECT_EQ(r.rm().room_beside_dearer("face_enhancer"), 170 * kMiB);
    EXPECT_EQ(r.rm().room_beside_dearer("swapper"), 170 * kMiB - models.at("face_enhancer").resident_bytes);
  }
  return r.rm().stats().per_model.at("frame_enhancer").h2d_copies;
}

TEST(Residency, KeepCostsSpareTheModelThatIsDearestToRunWithoutItsWeights) {
  const std::uint64_t lru = frame_enhancer_reloads(false), kept = frame_enhancer_reloads(true);
  std::printf("10 passes swapper 120 MiB → face enhancer 160 MiB → frame enhancer 30 MiB in 200 MiB: frame "
              "enhancer loaded %llu times by LRU, %llu with keep costs\n",
              static_cast<unsigned long long>(lru), static_cast<unsigned long long>(kept));
  EXPECT_EQ(lru, 10u);
  EXPECT_EQ(kept, 1u);
}

// 100 MiB holding a frame enhancer of 30 MiB, dear to run without its weights (24 nodes per MiB),
// beside a swapper of `blocks` blocks of `mib` MiB each (1 node per MiB).
struct EnhancerBesideSwapper {
  EnhancerBesideSwapper(int blocks, std::uint64_t mib) : esrgan(r.add("esrgan", "frame_enhancer", 30 * kMiB)) {
    for (int i = 0; i < blocks; ++i) swap.push_back(r.add("swap" + std::to_string(i), "swapper", mib * kMiB));
    r.rm().set_keep_cost("frame_enhancer", 24.0);
    r.rm().set_keep_cost("swapper", 1.0);
  }
  Rig r{100 * kMiB};
  BlockId esrgan;
  std::vector<BlockId> swap;
};

// A loop whose cheapest model loads more than every registered byte each pass (a swapper run for
// three faces a frame, streaming its blocks each time): the frame enhancer, used once a pass, is
// not idle, since a pass loads less than twice the registered bytes; with a margin of one it was
// evicted and reloaded every pass.
TEST(Residency, AModelOfTheLoopStaysWhenAPassLoadsMoreThanEveryRegisteredByte) {
  EnhancerBesideSwapper rig(4, 30);
  Rig& r = rig.r;
  const BlockId esrgan = rig.esrgan;
  const std::vector<BlockId>& swap = rig.swap;
  std::vector<BlockId> faces;
  for (int face = 0; face < 3; ++face) faces.insert(faces.end(), swap.begin(), swap.end());
  for (int pass = 0; pass < 10; ++pass) {
    r.rm().set_schedule(faces);
    for (BlockId b : faces) ASSERT_TRUE(r.run(b, 1e-3).is_ok());
    r.rm().set_schedule({esrgan});
    ASSERT_TRUE(r.run(esrgan, 1e-3).is_ok());
    r.check();
  }
  const auto& models = r.rm().stats().per_model;
  EXPECT_GT(models.at("swapper").h2d_bytes, 10 * 150 * kMiB);  // a pass loads more than the 150 MiB registered
  EXPECT_EQ(models.at("frame_enhancer").h2d_copies, 1u);
}

// A streamed swapper prefetching three blocks ahead, in room for its pinned block and two more
// beside a frame enhancer that fits: its look-ahead (sparing dearer models, as ChunkWalk's does)
// skips a block rather than push out the dearer frame enhancer, which would then be reloaded
// every pass (and run node by node). A plain prefetch, as the next model's head prefetch is, may.
TEST(Residency, AModelsLookAheadSparesADearerModel) {
  EnhancerBesideSwapper rig(6, 20);
  Rig& r = rig.r;
  const BlockId esrgan = rig.esrgan;
  const std::vector<BlockId>& swap = rig.swap;
  for (int pass = 0; pass < 10; ++pass) {
    r.rm().set_schedule(swap);
    for (std::size_t i = 0; i < swap.size(); ++i) {
      ASSERT_TRUE(r.rm().acquire(swap[i]).is_ok());
      for (std::size_t ahead = i + 1; ahead <= i + 3 && ahead < swap.size(); ++ahead)
        ASSERT_TRUE(r.rm().prefetch(swap[ahead], /*spare_dearer=*/true).is_ok());
      ASSERT_TRUE(r.rm().release(swap[i]).is_ok());
    }
    r.rm().set_schedule({esrgan});
    ASSERT_TRUE(r.run(esrgan, 1e-3).is_ok());
    r.check();
  }
  const auto& models = r.rm().stats().per_model;
  EXPECT_EQ(models.at("frame_enhancer").h2d_copies, 1u);
  EXPECT_GT(models.at("swapper").prefetches_skipped, 0u);
  r.rm().set_schedule(swap);
  ASSERT_TRUE(r.rm().acquire(swap[0]).is_ok());
  for (std::size_t ahead = 1; ahead <= 3; ++ahead) ASSERT_TRUE(r.rm().prefetch(swap[ahead]).is_ok());
  EXPECT_FALSE(r.rm().is_resident(esrgan));
  ASSERT_TRUE(r.rm().release(swap[0]).is_ok());
  r.check();
}

// A chunk its model can do without (a weight ring's resident chunk, which may stream instead)
// is acquired sparing a dearer model's blocks: out of memory rather than evicting them, while a
// plain acquire does evict them.
TEST(Residency, AnAcquireThatSparesDearerModelsLeavesThemResident) {
  Rig r(60 * kMiB);
  const BlockId esrgan = r.add("esrgan", "frame_enhancer", 30 * kMiB);
  const BlockId face = r.add("face", "face_enhancer", 40 * kMiB);
  r.rm().set_keep_cost("frame_enhancer", 24.0);
  r.rm().set_keep_cost("face_enhancer", 2.5);
  ASSERT_TRUE(r.run(esrgan, 1e-3).is_ok());
  Result<DevicePtr> spared = r.rm().acquire(face, /*spare_dearer=*/true);
  EXPECT_EQ(spared.status().code(), StatusCode::kOutOfMemory);
  EXPECT_NE(spared.status().message().find("but dearer models' blocks"), std::string::npos) << spared.status().message();
  EXPECT_TRUE(r.rm().is_resident(esrgan));
  ASSERT_TRUE(r.rm().acquire(face).is_ok());
  EXPECT_FALSE(r.rm().is_resident(esrgan));
  ASSERT_TRUE(r.rm().release(face).is_ok());
  r.check();
}

// The FaceFusion pipeline under turns: the source face's embedder (dear to run without its
// weights: many nodes per byte) runs once, then the swapper (cheap per byte) runs face after face.
// Keep costs alone would keep the embedder's idle bytes and have the swapper evict its own blocks
// on every face; once more than twice every registered byte was loaded since the embedder's last
// use, its blocks go first and the swapper's stay.
TEST(Residency, IdleBlocksGoBeforeKeepCostsProtectThem) {
  Rig r(200 * kMiB);
  const BlockId embed = r.add("embed", "embedder", 90 * kMiB);
  std::vector<BlockId> swap;
  for (int i = 0; i < 3; ++i) swap.push_back(r.add("swap" + std::to_string(i), "swapper", 40 * kMiB));
  r.rm().set_keep_cost("embedder", 3.0);
  r.rm().set_keep_cost("swapper", 1.0);
  ASSERT_TRUE(r.run(embed, 1e-3).is_ok());
  // 90 + 120 MiB do not fit 200: the swapper's own blocks make room while the embedder is recent.
  EXPECT_EQ(r.rm().room_beside_dearer("swapper"), 110 * kMiB);
  for (int face = 0; face < 20; ++face) {
    for (BlockId b : swap) ASSERT_TRUE(r.run(b, 1e-3).is_ok());
    r.check();
  }
  const auto& models = r.rm().stats().per_model;
  // 210 MiB registered: the embedder is idle once more than twice that was loaded after it (during
  // the fourth face). Until then the swapper evicts its own blocks (LRU over 3 blocks in room for 2:
  // 3 loads a face); then the embedder goes and the swapper stays resident.
  EXPECT_FALSE(r.rm().is_resident(embed));
  EXPECT_EQ(models.at("embedder").evictions, 1u);
  EXPECT_LE(models.at("swapper").h2d_copies, 12u);  // 60 if the embedder were kept
  EXPECT_EQ(r.rm().room_beside_dearer("swapper"), 200 * kMiB);
  std::printf("20 faces of a 120 MiB swapper beside a 90 MiB embedder used once, 200 MiB: swapper copies %llu\n",
              static_cast<unsigned long long>(models.at("swapper").h2d_copies));
}

// A model streaming through a weight ring acquires only its ring's resident prefix; a chunk that
// fell out of the prefix stays resident unacquired. The ring's copies run the idle clock, so that
// chunk turns idle and a cheaper model may take its room.
TEST(Residency, ARingsCopiesTurnAChunkItNoLongerKeepsIdle) {
  Rig r(200 * kMiB);
  const BlockId head = r.add("swap.head", "swapper", 60 * kMiB);
  const BlockId tail = r.add("swap.tail", "swapper", 60 * kMiB);
  r.add("enhance", "enhancer", 60 * kMiB);
  r.rm().set_keep_cost("swapper", 3.0);
  r.rm().set_keep_cost("enhancer", 1.0);
  ASSERT_TRUE(r.run(head, 1e-3).is_ok());
  ASSERT_TRUE(r.run(tail, 1e-3).is_ok());
  EXPECT_EQ(r.rm().room_beside_dearer("enhancer"), 80 * kMiB);
  // 180 MiB registered: idle once more than 360 MiB were loaded after the tail's last acquire.
  for (int pass = 0; pass < 3; ++pass) {
    ASSERT_TRUE(r.run(head, 1e-3).is_ok());  // the prefix, resident
    r.rm().count_ring_pass("swapper", 120 * kMiB, 4);
    EXPECT_EQ(r.rm().room_beside_dearer("enhancer"), 80 * kMiB) << "pass " << pass;
  }
  ASSERT_TRUE(r.run(head, 1e-3).is_ok());
  r.rm().count_ring_pass("swapper", 120 * kMiB, 4);
  EXPECT_TRUE(r.rm().is_resident(tail));
  EXPECT_EQ(r.rm().room_beside_dearer("enhancer"), 140 * kMiB);
}

// Stage-major windows: the swapper (dear per byte) runs every face of the window, then the
// enhancer. Without the hint the swapper's bytes stay protected and the enhancer streams its own
// on every face; once the caller says the swapper's stage ended, the enhancer may take the room,
// and the swapper is protected again once it runs in the next window.
TEST(Residency, EndStageLetsTheNextStageTakeTheRoomOfTheLastOne) {
  Rig r(200 * kMiB);
  const BlockId swap = r.add("swap", "swapper", 80 * kMiB);
  const BlockId enhance = r.add("enhance", "enhancer", 160 * kMiB);
  r.rm().set_keep_cost("swapper", 3.0);
  r.rm().set_keep_cost("enhancer", 1.0);
  ASSERT_TRUE(r.run(swap, 1e-3).is_ok());
  EXPECT_EQ(r.rm().room_beside_dearer("enhancer"), 120 * kMiB);  // 160 MiB do not fit: streamed
  r.rm().end_stage();
  EXPECT_EQ(r.rm().room_beside_dearer("enhancer"), 200 * kMiB);  // the swapper's bytes may go
  for (int face = 0; face < 5; ++face) ASSERT_TRUE(r.run(enhance, 1e-3).is_ok());
  r.check();
  EXPECT_FALSE(r.rm().is_resident(swap));
  EXPECT_EQ(r.rm().stats().per_model.at("enhancer").h2d_copies, 1u);  // loaded once for the stage
  r.rm().end_stage();
  ASSERT_TRUE(r.run(swap, 1e-3).is_ok());  // the next window's swapper evicts the idle enhancer
  EXPECT_EQ(r.rm().room_beside_dearer("enhancer"), 120 * kMiB);
}

TEST(Residency, PinnedBlocksAreNeverEvicted) {
  Rig r(2 * kMiB);
  const BlockId a = r.add("a", "m", kMiB), b = r.add("b", "m", kMiB), c = r.add("c", "m", kMiB);
  ASSERT_TRUE(r.rm().acquire(a).is_ok());
  ASSERT_TRUE(r.rm().acquire(b).is_ok());
  Result<DevicePtr> no = r.rm().acquire(c);
  EXPECT_EQ(no.status().code(), StatusCode::kOutOfMemory);
  EXPECT_NE(no.status().message().find("acquired (pinned)"), std::string::npos) << no.status().message();
  EXPECT_TRUE(r.rm().is_resident(a) && r.rm().is_resident(b) && !r.rm().is_resident(c));
  EXPECT_EQ(r.rm().evict(a).code(), StatusCode::kInvalidInput);
  ASSERT_TRUE(r.rm().acquire(a).is_ok());  // pins nest
  ASSERT_TRUE(r.rm().release(a).is_ok());
  ASSERT_TRUE(r.rm().release(b).is_ok());
  ASSERT_TRUE(r.rm().acquire(c).is_ok());  // evicts b: a is still pinned once
  EXPECT_FALSE(r.rm().is_resident(b));
  EXPECT_TRUE(r.rm().is_resident(a));
  EXPECT_EQ(r.rm().release(b).code(), StatusCode::kInvalidInput);
  r.check();
}

// ---- compute lanes --------------------------------------------------------------------------

TEST(ComputeLanes, KernelsOnTwoLanesOverlapAndEachWaitsOnlyForItsOwn) {
  SimulatedDevice dev({.compute_lanes = 2});
  ASSERT_EQ(dev.compute_lanes(), 2);
  EXPECT_EQ(dev.set_compute_lane(2).code(), StatusCode::kInvalidInput);
  ASSERT_TRUE(dev.run_compute(4e-3).is_ok());       // lane 0: [0, 4) ms
  ASSERT_TRUE(dev.set_compute_lane(1).is_ok());
  ASSERT_TRUE(dev.run_compute(1e-3).is_ok());       // lane 1: [0, 1) ms, beside it
  const DeviceEvent lane1 = dev.record_compute();
  ASSERT_TRUE(dev.wait(lane1).is_ok());
  EXPECT_DOUBLE_EQ(dev.now_seconds(), 1e-3);        // lane 1's work alone
  ASSERT_TRUE(dev.set_compute_lane(0).is_ok());
  dev.synchronize();
  EXPECT_DOUBLE_EQ(dev.now_seconds(), 4e-3);        // not 5 ms: the lanes ran at once
}

TEST(ComputeLanes, AnEvictionWaitsForEveryLaneThatReadTheBlock) {
  // Block a is read by a long kernel on lane 1, then by a short one on lane 0; b then takes its
  // bytes. The copy into them must wait for lane 1's kernel too (the simulated device refuses a
  // copy that overwrites bytes a kernel still reads).
  Rig r(kMiB, {.compute_lanes = 2});
  const BlockId a = r.add("a", "m", kMiB), b = r.add("b", "m", kMiB);
  ASSERT_TRUE(r.dev.set_compute_lane(1).is_ok());
  ASSERT_TRUE(r.run(a, 10e-3).is_ok());
  ASSERT_TRUE(r.dev.set_compute_lane(0).is_ok());
  ASSERT_TRUE(r.run(a, 1e-3).is_ok());
  Status loaded = r.run(b, 1e-3);
  ASSERT_TRUE(loaded.is_ok()) << loaded.to_string();
  EXPECT_FALSE(r.rm().is_resident(a));
  r.dev.synchronize();
  // a's copy (~19 µs), lane 1's 10 ms read, b's copy, then b's 1 ms kernel.
  EXPECT_GT(r.dev.now_seconds(), 11e-3);
  r.check();
}

TEST(ComputeLanes, ARangeFreedOnOneLaneIsReusedOnAnotherOnlyAfterItsWork) {
  Rig r(kMiB, {.compute_lanes = 2});
  Result<DeviceAllocation> first = r.arena.allocate(kMiB);
  ASSERT_TRUE(first.is_ok());
  const DeviceRange range{first->ptr, kMiB};
  ASSERT_TRUE(r.dev.copy_to_device(first->ptr, nullptr, kMiB, HostMemoryKind::kPinned).is_ok());
  r.dev.synchronize();
  ASSERT_TRUE(r.dev.set_compute_lane(1).is_ok());
  ASSERT_TRUE(r.dev.run_compute(5e-3, {&range, 1}).is_ok());  // lane 1 reads it for 5 ms
  ASSERT_TRUE(r.arena.free(first->ptr, std::vector<DeviceEvent>{r.dev.record_compute()}).is_ok());
  ASSERT_TRUE(r.dev.set_compute_lane(0).is_ok());
  Result<DeviceAllocation> again = r.arena.allocate(kMiB);
  ASSERT_TRUE(again.is_ok());
  ASSERT_EQ(again->ptr, first->ptr);  // the same bytes, handed out at once...
  ASSERT_FALSE(again->ready_after.empty());
  // ...with lane 1's event: a kernel on lane 0 that writes them without waiting is refused,
  EXPECT_EQ(r.dev.run_compute(1e-3, {}, {&range, 1}).status().code(), StatusCode::kInternal);
  // and after waiting on it runs.
  for (DeviceEvent e : again->ready_after) r.dev.compute_wait(e);
  EXPECT_TRUE(r.dev.run_compute(1e-3, {}, {&range, 1}).is_ok());
  ASSERT_TRUE(r.arena.free(again->ptr, std::vector<DeviceEvent>{r.dev.record_compute()}).is_ok());
}

TEST(Residency, DeviceWrittenBlocksAreWrittenBackOnEviction) {
  Rig r(kMiB, {.backing_store = true});
  std::vector<unsigned char> weights(512 * 1024, 7), state(512 * 1024);
  for (std::size_t i = 0; i < state.size(); ++i) state[i] = static_cast<unsigned char>(i * 31);
  const std::vector<unsigned char> original = state;
  const BlockId w = r.add("w", "m", weights.size(), weights.data());
  Result<BlockId> s = r.rm().register_block(
      {.name = "state", .model = "m", .bytes = state.size(), .host = state.data(), .device_writes = true});
  ASSERT_TRUE(s.is_ok());
  const BlockId other = r.add("other", "n", 768 * 1024);
  ASSERT_TRUE(r.run(w, 1e-3).is_ok());
  ASSERT_TRUE(r.run(*s, 1e-3).is_ok());
  std::fill(state.begin(), state.end(), 0);  // the host copy is stale: the device holds the truth
  ASSERT_TRUE(r.run(other, 1e-3).is_ok());   // evicts both
  EXPECT_FALSE(r.rm().is_resident(w));
  EXPECT_FALSE(r.rm().is_resident(*s));
  r.dev.synchronize();
  EXPECT_EQ(state, original);  // written back
  EXPECT_EQ(r.rm().stats().total.d2h_bytes, state.size());  // the read-only weights were just dropped
  EXPECT_EQ(r.rm().stats().per_model.at("m").evictions, 2u);
  r.check();
}

// ---- prefetch ------------------------------------------------------------------------------

struct Timing {
  double total_s = 0, stall_s = 0;
  std::uint64_t hits = 0, late = 0, misses = 0;
};

Timing four_stages(bool prefetch, bool schedule, double compute_s) {
  // Four 64 MiB stages in a loop, budget for two: every stage is reloaded each time. The host
  // waits for each stage (it reads results back), as a pipeline over chunks does.
  Rig r(128 * kMiB);
  std::vector<BlockId> stage;
  for (int i = 0; i < 4; ++i) stage.push_back(r.add("stage" + std::to_string(i), "model" + std::to_string(i), 64 * kMiB));
  if (schedule) r.rm().set_schedule(stage);
  const int steps = 32;
  for (int s = 0; s < steps; ++s) {
    const BlockId id = stage[s % 4];
    Result<DevicePtr> p = r.rm().acquire(id);
    EXPECT_TRUE(p.is_ok()) << p.status().to_string();
    const DeviceRange read{*p, 64 * kMiB};
    EXPECT_TRUE(r.dev.run_compute(compute_s, {&read, 1}).is_ok());
    if (prefetch && s + 1 < steps) {
      EXPECT_TRUE(r.rm().prefetch(stage[(s + 1) % 4]).is_ok());
    }
    EXPECT_TRUE(r.rm().release(id).is_ok());
    EXPECT_TRUE(r.dev.wait(r.dev.record_compute()).is_ok());  // the stage's results, not the copies
    r.check();
  }
  r.dev.synchronize();
  const ResidencyCounters& t = r.rm().stats().total;
  return {r.dev.now_seconds(), t.stall_seconds, t.prefetch_hits, t.prefetch_late, t.prefetch_misses};
}

TEST(Residency, PrefetchHidesCopiesBehindCompute) {
  SimulatedDevice probe;
  const double copy = probe.copy_seconds(64 * kMiB, true, HostMemoryKind::kPinned);  // 1.246 ms
  const double compute = 5e-3;
  for (bool schedule : {false, true}) {
    const Timing off = four_stages(false, schedule, compute), on = four_stages(true, schedule, compute);
    std::printf("%s: 32 stages x (5 ms compute, 64 MiB = %.3f ms copy): without prefetch %.3f ms (stall %.3f ms), "
                "with %.3f ms (stall %.3f ms, %llu hits)\n",
                schedule ? "Belady" : "LRU", copy * 1e3, off.total_s * 1e3, off.stall_s * 1e3, on.total_s * 1e3,
                on.stall_s * 1e3, static_cast<unsigned long long>(on.hits));
    // Without prefetch every load is exposed; Belady alone keeps one stage across the loop.
    EXPECT_EQ(off.misses, schedule ? 22u : 32u);
    EXPECT_NEAR(off.total_s, 32 * compute + static_cast<double>(off.misses) * copy, 1e-9);
    EXPECT_NEAR(off.stall_s, static_cast<double>(off.misses) * copy, 1e-9);
    EXPECT_NEAR(on.stall_s, copy, 1e-9);  // only the very first load is exposed
    EXPECT_NEAR(on.total_s, copy + 32 * compute, 1e-9);
    EXPECT_EQ(on.hits, 31u);
    EXPECT_EQ(on.misses, 1u);
    EXPECT_LT(on.total_s, off.total_s);
  }
}

TEST(Residency, PrefetchCannotHideCopiesLongerThanCompute) {
  SimulatedDevice probe;
  const double copy = probe.copy_seconds(64 * kMiB, true, HostMemoryKind::kPinned);
  const double compute = 0.5e-3;
  const Timing on = four_stages(true, true, compute), off = four_stages(false, true, compute);
  EXPECT_NEAR(on.stall_s, copy + 31 * (copy - compute), 1e-9);
  EXPECT_EQ(on.late, 31u);
  EXPECT_LT(on.total_s, off.total_s);
}

TEST(Residency, PrefetchNeverEvictsWhatIsNeededSooner) {
  // Budget for two; a, b resident; schedule a b c: prefetching c would have to evict a or b,
  // both needed before c: the hint is skipped.
  Rig r(2 * kMiB);
  const BlockId a = r.add("a", "m", kMiB), b = r.add("b", "m", kMiB), c = r.add("c", "m", kMiB);
  ASSERT_TRUE(r.run(a, 1e-3).is_ok());
  ASSERT_TRUE(r.run(b, 1e-3).is_ok());
  r.rm().set_schedule({a, b, c}, /*cyclic=*/false);
  ASSERT_TRUE(r.rm().prefetch(c).is_ok());
  EXPECT_FALSE(r.rm().is_resident(c));
  EXPECT_EQ(r.rm().stats().total.prefetches_skipped, 1u);
  ASSERT_TRUE(r.run(a, 1e-3).is_ok());
  ASSERT_TRUE(r.rm().prefetch(c).is_ok());  // a's next use is gone: it may go
  EXPECT_TRUE(r.rm().is_resident(c));
  EXPECT_FALSE(r.rm().is_resident(a));
  r.check();
}

// Two models of three 32 MiB blocks run in turn under room for four blocks; each prefetches its
// own next block as it goes (the chunk walk), and the host reads each model's outputs before the
// next starts. With `next_model`, once a model's kernels are issued the next model's first block
// is prefetched under the next model's schedule (CudaExecutor::prefetch_head after
// CudaRuntime::ran): the copy pushes out the model that just ran and overlaps its kernels.
ResidencyCounters two_models_in_turn(bool next_model) {
  Rig r(128 * kMiB);
  std::vector<BlockId> a, b;
  for (int i = 0; i < 3; ++i) {
    a.push_back(r.add("a" + std::to_string(i), "a", 32 * kMiB));
    b.push_back(r.add("b" + std::to_string(i), "b", 32 * kMiB));
  }
  for (int pass = 0; pass < 4; ++pass)
    for (const std::vector<BlockId>* model : {&a, &b}) {
      const std::vector<BlockId>& next = model == &a ? b : a;
      r.rm().set_schedule(*model);
      for (std::size_t i = 0; i < model->size(); ++i) {
        Result<DevicePtr> p = r.rm().acquire((*model)[i]);
        EXPECT_TRUE(p.is_ok()) << p.status().to_string();
        const DeviceRange read{*p, 32 * kMiB};
        EXPECT_TRUE(r.dev.run_compute(2e-3, {&read, 1}).is_ok());
        if (i + 1 < model->size()) {
          EXPECT_TRUE(r.rm().prefetch((*model)[i + 1]).is_ok());
        }
        EXPECT_TRUE(r.rm().release((*model)[i]).is_ok());
      }
      if (next_model) {
        r.rm().set_schedule(next);
        EXPECT_TRUE(r.rm().prefetch(next[0]).is_ok());
      }
      EXPECT_TRUE(r.dev.wait(r.dev.record_compute()).is_ok());  // the model's outputs
      r.check();
    }
  r.dev.synchronize();
  return r.rm().stats().total;
}

TEST(Residency, TheNextModelsFirstWeightsArePrefetchedWhileTheLastOneComputes) {
  SimulatedDevice probe;
  const double copy = probe.copy_seconds(32 * kMiB, true, HostMemoryKind::kPinned);
  const ResidencyCounters off = two_models_in_turn(false), on = two_models_in_turn(true);
  // Without it every run's first block is loaded on demand, the kernels waiting for its copy.
  EXPECT_EQ(off.prefetch_misses, 8u);
  EXPECT_NEAR(off.stall_seconds, 8 * copy, 1e-9);
  // With it only the very first run's is; the others find theirs copied behind the last model's
  // kernels. The bytes moved are the same but for the last run's prefetch of a run that never came.
  EXPECT_EQ(on.prefetch_misses, 1u);
  EXPECT_NEAR(on.stall_seconds, copy, 1e-9);
  EXPECT_EQ(on.prefetches_wasted, 0u);
  EXPECT_EQ(on.h2d_bytes, off.h2d_bytes + 32 * kMiB);
}

// ---- weight chunks -------------------------------------------------------------------------

TEST(WeightChunks, PackingKeepsRunOrderAndTheTarget) {
  const std::uint64_t t[] = {3 * kMiB, kMiB, 100, 0, 20 * kMiB, 512, 2 * kMiB, 2 * kMiB};
  Result<ChunkPacking> p = pack_chunks(t, 4 * kMiB);
  ASSERT_TRUE(p.is_ok());
  ASSERT_EQ(p->slots.size(), 8u);
  // [3 MiB, 1 MiB] | [100 B, 0 B] | [20 MiB, 512 B: a bias joins its oversized weight] | [2 MiB, 2 MiB]
  EXPECT_EQ(p->chunk_bytes.size(), 4u);
  EXPECT_EQ(p->slots[0].chunk, 0u);
  EXPECT_EQ(p->slots[1].chunk, 0u);
  EXPECT_EQ(p->slots[1].offset, 3 * kMiB);
  EXPECT_EQ(p->chunk_bytes[0], 4 * kMiB);
  EXPECT_EQ(p->slots[2].chunk, 1u);
  EXPECT_EQ(p->slots[3].offset, 256u);  // 100 bytes rounded to the alignment; 0 bytes take 256
  EXPECT_EQ(p->chunk_bytes[1], 512u);
  EXPECT_EQ(p->slots[4].chunk, 2u);
  EXPECT_EQ(p->slots[5].chunk, 2u);
  EXPECT_EQ(p->slots[5].offset, 20 * kMiB);
  EXPECT_EQ(p->chunk_bytes[2], 20 * kMiB + 512);
  EXPECT_EQ(p->slots[6].chunk, 3u);  // 2 MiB more would pass 20 MiB + a quarter of the target
  EXPECT_EQ(p->slots[7].chunk, 3u);
  EXPECT_EQ(p->slots[7].offset, 2 * kMiB);
  for (std::size_t i = 0; i < p->slots.size(); ++i) {
    EXPECT_EQ(p->slots[i].offset % 256, 0u);
    EXPECT_LE(p->slots[i].offset + std::max<std::uint64_t>(t[i], 1), p->chunk_bytes[p->slots[i].chunk]);
  }
  EXPECT_EQ(pack_chunks(t, 0).status().code(), StatusCode::kInvalidInput);
}

TEST(WeightChunks, GeometryFollowsTheBudget) {
  const ChunkGeometry big = chunk_geometry(80ull << 30);
  EXPECT_EQ(big.chunk_bytes, 16 * kMiB);
  EXPECT_EQ(big.segment_bytes, 64 * kMiB);
  EXPECT_EQ(big.small_limit, 32 * kMiB);
  EXPECT_EQ(big.prefetch_bytes, 64 * kMiB);
  const ChunkGeometry small = chunk_geometry(53 * kMiB);  // inswapper at 20% of its weights
  EXPECT_EQ(small.segment_bytes, 8 * kMiB);
  EXPECT_EQ(small.chunk_bytes, 2 * kMiB);
  EXPECT_EQ(small.prefetch_bytes, 26 * kMiB + 512 * 1024);  // half the budget
  EXPECT_EQ(chunk_geometry(kMiB).segment_bytes, 2 * kMiB);
}

TEST(WeightChunks, WalkHoldsABlockAcrossConsecutiveNodes) {
  ChunkWalk walk({{0, 1}, {1, 1}, {}, {1, 2}, {0}});
  // Node 1 keeps block 1 from node 0; node 2 reads nothing, so node 3 acquires block 1 again.
  EXPECT_EQ(walk.schedule(), (std::vector<BlockId>{0, 1, 1, 2, 0}));
  ASSERT_EQ(walk.blocks(1).size(), 1u);
  Rig r(64 * kMiB);
  for (int i = 0; i < 3; ++i) r.add("c" + std::to_string(i), "m", kMiB);
  r.rm().set_schedule(walk.schedule());
  for (std::size_t n = 0; n < walk.nodes(); ++n) {
    ASSERT_TRUE(walk.enter(r.rm(), n, 0).is_ok());
    for (std::size_t i = 0; i < walk.blocks(n).size(); ++i) {
      EXPECT_TRUE(r.rm().is_pinned(walk.blocks(n)[i]));
      EXPECT_TRUE(r.rm().is_resident(walk.blocks(n)[i]));
      EXPECT_FALSE(walk.pointers()[i].is_null());
    }
  }
  // Block 2 is held by node 3 only, block 0 by nodes 0 and 4: node 4 released blocks 1 and 2.
  EXPECT_FALSE(r.rm().is_pinned(1));
  EXPECT_FALSE(r.rm().is_pinned(2));
  ASSERT_TRUE(walk.leave(r.rm()).is_ok());
  for (BlockId b = 0; b < 3; ++b) EXPECT_FALSE(r.rm().is_pinned(b));
  EXPECT_EQ(r.rm().stats().total.acquires, 5u);  // the schedule's length
  EXPECT_EQ(r.rm().stats().total.h2d_copies, 3u);
}

// An inswapper-shaped model (GPU.md): an encoder, six style blocks of two 18 MiB convolutions and
// two 2 MiB style projections, a decoder; every weighted node also reads a bias and four small
// normalisation constants, as the real graphs do. 28 MiB of activations, 0.2 ms per node, and a
// convolution workspace of 4.7 MiB that the fifth node allocates mid-pass and keeps (as
// CudaRuntime::workspace does when cuDNN first asks for it).
struct Model {
  std::vector<std::vector<std::uint64_t>> node_tensors;  // bytes of each tensor a node reads
  std::uint64_t weight_bytes = 0, activation_bytes = 28 * kMiB, workspace_bytes = 47 * kMiB / 10;
  std::size_t workspace_node = 4;
  double compute_per_byte = 0;  // > 0: a node's compute is its weight bytes times this (else 0.2 ms)
  Model() {
    auto node = [&](std::uint64_t w) {
      node_tensors.push_back({w, 4096, 1024, 1024, 1024, 1024});
      for (std::uint64_t b : node_tensors.back()) weight_bytes += b;
    };
    for (std::uint64_t w : {std::uint64_t{12 * 1024}, kMiB / 2, 2 * kMiB, 9 * kMiB / 2}) node(w);
    for (int b = 0; b < 6; ++b)
      for (std::uint64_t w : {2 * kMiB, 18 * kMiB, 2 * kMiB, 18 * kMiB}) node(w);
    for (std::uint64_t w : {9 * kMiB / 2, 2 * kMiB, kMiB / 2, std::uint64_t{12 * 1024}}) node(w);
  }
};

struct PassOutcome {
  Status status = Status::ok();
  std::size_t blocks = 0;
  std::uint64_t h2d_copies_per_pass = 0, h2d_bytes_per_pass = 0;
  double seconds_per_pass = 0;
  std::uint64_t peak_device_bytes = 0;
};

enum class Layout {
  kTensors,  // one block per tensor, chunk_geometry(budget)'s arena
  kChunks,   // chunk_geometry(budget)
};

// Three passes of the model under `budget`. The budget must hold after every node.
PassOutcome run_model(const Model& m, std::uint64_t budget, Layout layout) {
  ChunkGeometry g = chunk_geometry(budget);
  if (layout != Layout::kChunks) g.chunk_bytes = 1;  // every tensor opens a chunk of its own
  SimulatedDevice dev;
  DeviceArena arena(dev, g.arena_options(budget));
  ResidencyManager rm(arena);
  PassOutcome out;
  std::vector<std::uint64_t> tensors;
  for (const auto& n : m.node_tensors) tensors.insert(tensors.end(), n.begin(), n.end());
  Result<ChunkPacking> packing = pack_chunks(tensors, g.chunk_bytes);  // chunk 1 byte: a block per tensor
  if (!packing.is_ok()) return {.status = packing.status()};
  for (std::size_t c = 0; c < packing->chunk_bytes.size(); ++c)
    (void)rm.register_block({.name = "chunk" + std::to_string(c), .model = "swapper", .bytes = packing->chunk_bytes[c]});
  out.blocks = packing->chunk_bytes.size();
  std::vector<std::vector<BlockId>> node_blocks;
  std::vector<std::vector<ChunkSlot>> node_slots;
  std::size_t t = 0;
  for (const auto& n : m.node_tensors) {
    node_blocks.emplace_back();
    node_slots.emplace_back();
    for (std::size_t i = 0; i < n.size(); ++i, ++t) {
      node_blocks.back().push_back(packing->slots[t].chunk);
      node_slots.back().push_back(packing->slots[t]);
    }
  }
  ChunkWalk walk(node_blocks);
  rm.set_schedule(walk.schedule());
  Result<DeviceAllocation> act = rm.allocate_scratch(m.activation_bytes);
  if (!act.is_ok()) return {.status = act.status()};
  std::optional<ScopedAllocation> workspace;
  std::uint64_t copies = 0, bytes = 0;
  double start = 0;
  for (int pass = 0; pass < 3 && out.status.is_ok(); ++pass) {
    if (pass == 1) {
      copies = rm.stats().total.h2d_copies;
      bytes = rm.stats().total.h2d_bytes;
      dev.synchronize();
      start = dev.now_seconds();
    }
    for (std::size_t n = 0; n < walk.nodes() && out.status.is_ok(); ++n) {
      out.status = walk.enter(rm, n, g.prefetch_bytes);
      if (!out.status.is_ok()) break;
      if (n == m.workspace_node && !workspace) {
        Result<DeviceAllocation> ws = rm.allocate_scratch(m.workspace_bytes);
        if (!ws.is_ok()) {
          out.status = ws.status();
          (void)walk.leave(rm);
          break;
        }
        workspace.emplace(arena, std::move(*ws));
      }
      std::vector<DeviceRange> reads;
      const DeviceRange writes{act->ptr, m.activation_bytes};
      for (std::size_t i = 0; i < m.node_tensors[n].size(); ++i) {
        const ChunkSlot slot = node_slots[n][i];
        const auto at = std::find(walk.blocks(n).begin(), walk.blocks(n).end(), slot.chunk) - walk.blocks(n).begin();
        reads.push_back({walk.pointers()[static_cast<std::size_t>(at)].offset(slot.offset), m.node_tensors[n][i]});
      }
      double node_bytes = 0;
      for (std::uint64_t b : m.node_tensors[n]) node_bytes += static_cast<double>(b);
      const double seconds = m.compute_per_byte > 0 ? node_bytes * m.compute_per_byte : 2e-4;
      out.status = dev.run_compute(seconds, reads, {&writes, 1}).status();
      EXPECT_LE(arena.reserved_bytes(), budget);
      EXPECT_LE(dev.used_bytes(), budget);
    }
    if (Status s = walk.leave(rm); out.status.is_ok()) out.status = s;
  }
  workspace.reset();
  dev.synchronize();
  out.h2d_copies_per_pass = (rm.stats().total.h2d_copies - copies) / 2;
  out.h2d_bytes_per_pass = (rm.stats().total.h2d_bytes - bytes) / 2;
  out.seconds_per_pass = (dev.now_seconds() - start) / 2;
  out.peak_device_bytes = dev.peak_used_bytes();
  const DeviceEvent done = dev.record_compute();
  EXPECT_TRUE(arena.free(act->ptr, {&done, 1}).is_ok());
  return out;
}

TEST(WeightChunks, ChunksMoveTheSameBytesInFarFewerCopies) {
  const Model m;
  const std::uint64_t w = m.weight_bytes;
  for (double share : {0.5, 0.25}) {
    const auto budget = m.activation_bytes + m.workspace_bytes + static_cast<std::uint64_t>(static_cast<double>(w) * share);
    SCOPED_TRACE(format_bytes(budget));
    const PassOutcome tensors = run_model(m, budget, Layout::kTensors), chunks = run_model(m, budget, Layout::kChunks);
    ASSERT_TRUE(tensors.status.is_ok()) << tensors.status.to_string();
    ASSERT_TRUE(chunks.status.is_ok()) << chunks.status.to_string();
    EXPECT_EQ(tensors.blocks, 6 * 32u);
    EXPECT_LT(chunks.blocks, 40u);
    EXPECT_LE(chunks.h2d_copies_per_pass * 5, tensors.h2d_copies_per_pass);
    EXPECT_LE(chunks.peak_device_bytes, budget);
    // Streaming costs at most a few chunks more than the whole model once per pass.
    EXPECT_GE(chunks.h2d_bytes_per_pass, w - budget);
    EXPECT_LE(chunks.h2d_bytes_per_pass, w);
    std::printf("budget %s (%.0f%% of weights beside the activations): per tensor %zu blocks, %llu copies / %s per "
                "pass, %.2f ms; chunks %zu blocks, %llu copies / %s per pass, %.2f ms\n",
                format_bytes(budget).c_str(), share * 100, tensors.blocks,
                static_cast<unsigned long long>(tensors.h2d_copies_per_pass),
                format_bytes(tensors.h2d_bytes_per_pass).c_str(), tensors.seconds_per_pass * 1e3, chunks.blocks,
                static_cast<unsigned long long>(chunks.h2d_copies_per_pass),
                format_bytes(chunks.h2d_bytes_per_pass).c_str(), chunks.seconds_per_pass * 1e3);
  }
}

TEST(WeightChunks, EveryBudgetDownToOneLayerPlusTheActivationsRuns) {
  // The issue's floor: the activations and workspace plus the largest node's weights (18 MiB + 8 KiB).
  const Model m;
  const std::uint64_t floor = m.activation_bytes + m.workspace_bytes + 18 * kMiB + 8 * 1024;
  int tried = 0, chunk_failures = 0;
  for (std::uint64_t budget = floor + kMiB; budget < m.activation_bytes + m.weight_bytes; budget += 4 * kMiB) {
    ++tried;
    const PassOutcome chunks = run_model(m, budget, Layout::kChunks);
    EXPECT_TRUE(chunks.status.is_ok()) << format_bytes(budget) << ": " << chunks.status.to_string();
    chunk_failures += chunks.status.is_ok() ? 0 : 1;
  }
  std::printf("budgets from %s to the weights in 4 MiB steps (%d): chunks fail at %d\n", format_bytes(floor + kMiB).c_str(),
              tried, chunk_failures);
  const PassOutcome too_small = run_model(m, floor - kMiB, Layout::kChunks);
  EXPECT_EQ(too_small.status.code(), StatusCode::kOutOfMemory) << too_small.status.to_string();
}

// Streaming hides its copies when the compute outlasts them: with each node's compute
// proportional to its weight bytes (k × the time those bytes take over the 54 GB/s link), a pass
// under budgets down to 25% of the weights stays within a few percent of unlimited. This is the
// policy (chunks, prefetch depth, Belady eviction) on the simulated device, where host issue is
// free; a real GPU adds the host's per-node issue time, which streamed runs (no CUDA graph) pay.
TEST(WeightChunks, StreamingHidesCopiesWhenComputeOutlastsThem) {
  for (double k : {1.0, 1.5, 4.0}) {
    Model m;
    m.compute_per_byte = k / 54e9;
    const PassOutcome unlimited = run_model(m, 8ull << 30, Layout::kChunks);
    ASSERT_TRUE(unlimited.status.is_ok()) << unlimited.status.to_string();
    for (double share : {0.5, 0.25}) {
      const auto budget =
          m.activation_bytes + m.workspace_bytes + static_cast<std::uint64_t>(static_cast<double>(m.weight_bytes) * share);
      const PassOutcome o = run_model(m, budget, Layout::kChunks);
      ASSERT_TRUE(o.status.is_ok()) << o.status.to_string();
      const double ratio = unlimited.seconds_per_pass / o.seconds_per_pass;
      std::printf("compute %.1f× the copy time, %.0f%% of %s of weights: %.2f ms per pass vs %.2f unlimited (%.2f×), "
                  "%s copied in %llu chunks\n",
                  k, share * 100, format_bytes(m.weight_bytes).c_str(), o.seconds_per_pass * 1e3,
                  unlimited.seconds_per_pass * 1e3, ratio, format_bytes(o.h2d_bytes_per_pass).c_str(),
                  static_cast<unsigned long long>(o.h2d_copies_per_pass));
      EXPECT_GE(o.h2d_bytes_per_pass, m.weight_bytes - budget);  // it did stream
      EXPECT_GE(ratio, k >= 1.5 ? 0.95 : 0.9) << "k " << k << ", " << share * 100 << "%";
    }
  }
}

// ---- failure injection ---------------------------------------------------------------------

// Three models through two chunks with prefetch, an activation scratch, and a model walked chunk by chunk.
Status scenario(Rig& r, std::vector<BlockId>& ids) {
  ids = {r.add("det", "detector", 3 * kMiB), r.add("swap.a", "swapper", 4 * kMiB), r.add("swap.b", "swapper", 2 * kMiB),
         r.add("enh", "enhancer", 5 * kMiB)};
  r.rm().set_schedule({ids[0], ids[1], ids[2], ids[3]});
  for (int chunk = 0; chunk < 2; ++chunk) {
    FSWAP_ASSIGN_OR_RETURN(DeviceAllocation scratch, r.rm().allocate_scratch(kMiB));
    ScopedAllocation act(r.arena, std::move(scratch));  // freed on the error paths too
    for (std::size_t i = 0; i < 4; ++i) {
      FSWAP_ASSIGN_OR_RETURN(DevicePtr p, r.rm().acquire(ids[i]));
      const DeviceRange read{p, r.rm().block(ids[i]).bytes};
      Result<DeviceEvent> k = r.dev.run_compute(1e-3, {&read, 1});
      Status pre = r.rm().prefetch(ids[(i + 1) % 4]);
      FSWAP_RETURN_IF_ERROR(r.rm().release(ids[i]));
      FSWAP_RETURN_IF_ERROR(k.status());
      FSWAP_RETURN_IF_ERROR(pre);
      r.check();
    }
    FSWAP_RETURN_IF_ERROR(act.reset());
    FSWAP_RETURN_IF_ERROR(r.arena.release_cached());  // force fresh device allocations next chunk
  }
  // A model of 12 MiB beside the others streams: its nodes walk its chunks (the executor's loop).
  std::vector<std::vector<BlockId>> nodes;
  for (std::uint64_t mib : {3, 5, 4}) nodes.push_back({r.add("big" + std::to_string(mib), "big", mib * kMiB)});
  ChunkWalk walk(std::move(nodes));
  r.rm().set_schedule(walk.schedule());
  for (std::size_t n = 0; n < walk.nodes(); ++n) {
    FSWAP_RETURN_IF_ERROR(walk.enter(r.rm(), n, 4 * kMiB));  // on failure it holds nothing
    const DeviceRange read{walk.pointers()[0], r.rm().block(walk.blocks(n)[0]).bytes};
    if (Status k = r.dev.run_compute(1e-3, {&read, 1}).status(); !k.is_ok()) {
      (void)walk.leave(r.rm());
      return k;
    }
    r.check();
  }
  return walk.leave(r.rm());
}

void expect_nothing_leaked(std::unique_ptr<Rig>& r) {
  // While the manager lives, the arena holds exactly the resident blocks.
  std::uint64_t resident = 0;
  for (BlockId id = 0; id < 16; ++id)
    if (r->rm().is_resident(id)) resident += (r->rm().block(id).bytes + 255) / 256 * 256;
  EXPECT_EQ(r->arena.allocated_bytes(), resident);
  r->manager.reset();
  EXPECT_EQ(r->arena.allocated_bytes(), 0u);
  EXPECT_TRUE(r->arena.release_cached().is_ok());
  EXPECT_EQ(r->dev.used_bytes(), 0u);
  EXPECT_EQ(r->dev.live_allocations(), 0u);
}

TEST(FailureInjection, EveryAllocationFailureIsCleanAndLeaksNothing) {
  int total_calls = 0;
  {
    auto r = std::make_unique<Rig>(12 * kMiB);
    std::vector<BlockId> ids;
    Status st = scenario(*r, ids);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    total_calls = r->dev.allocation_calls();
    std::printf("scenario: %d device allocations, H2D %s, %llu evictions\n", total_calls,
                format_bytes(r->rm().stats().total.h2d_bytes).c_str(),
                static_cast<unsigned long long>(r->rm().stats().total.evictions));
    expect_nothing_leaked(r);
  }
  ASSERT_GE(total_calls, 6);
  for (int i = 1; i <= total_calls; ++i) {
    SCOPED_TRACE("allocations fail from #" + std::to_string(i));
    auto r = std::make_unique<Rig>(12 * kMiB);
    r->dev.fail_allocations_from(i);
    std::vector<BlockId> ids;
    Status st = scenario(*r, ids);
    EXPECT_EQ(st.code(), StatusCode::kOutOfMemory) << st.to_string();
    EXPECT_NE(st.message().find("device refused"), std::string::npos) << st.message();
    r->check();
    expect_nothing_leaked(r);
  }
  for (int i = 1; i <= total_calls; ++i) {  // one failure only: recovered or clean
    SCOPED_TRACE("allocation #" + std::to_string(i) + " fails");
    auto r = std::make_unique<Rig>(12 * kMiB);
    r->dev.fail_allocation(i);
    std::vector<BlockId> ids;
    Status st = scenario(*r, ids);
    EXPECT_TRUE(st.is_ok() || st.code() == StatusCode::kOutOfMemory) << st.to_string();
    r->check();
    expect_nothing_leaked(r);
  }
}

}  // namespace
