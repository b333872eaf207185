// plan_weight_ring: loads stream in ring order, a chunk read across weightless nodes is copied
// once, one read again much later is copied again, and on random models every plan is safe: no
// copy overwrites bytes a node may still read, and no copy waits for a node that waits for it.
// On the simulated device (its hazard checks and clock), a pass issued as the CUDA executor's
// ring graph is (copies after their node, nodes after their copies) overlaps the copies with the
// kernels, and a plan whose copies waited one node less is caught.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>

#include "memory/simulated_device.h"
#include "memory/weight_ring.h"

using namespace fswap;
using namespace fswap::memory;

namespace {

constexpr std::uint64_t kMiB = 1ull << 20;

// The plan's guarantees, checked pairwise. Copies run in order on one stream, so copy k starts
// after the nodes every copy up to k waited for.
void expect_safe(const RingPlan& plan, const std::vector<std::vector<BlockId>>& nodes, std::uint64_t ring) {
  ASSERT_LE(plan.ring_bytes, ring);
  ASSERT_EQ(plan.node_loads.size(), nodes.size());
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    ASSERT_EQ(plan.node_loads[n].size(), nodes[n].size());
    for (std::size_t i = 0; i < nodes[n].size(); ++i) {
      const RingLoad& load = plan.loads.at(plan.node_loads[n][i]);
      EXPECT_EQ(load.block, nodes[n][i]);
      EXPECT_LE(load.first_node, n);
      EXPECT_GE(load.last_node, n);
    }
  }
  std::ptrdiff_t copy_waits_for = -1;  // the latest node any copy so far waited for
  for (std::size_t k = 0; k < plan.loads.size(); ++k) {
    const RingLoad& later = plan.loads[k];
    ASSERT_LE(later.offset + later.bytes, plan.ring_bytes);
    ASSERT_LT(later.after_node, static_cast<std::ptrdiff_t>(later.first_node)) << "load " << k << " would deadlock";
    if (k > 0) {
      EXPECT_GE(later.first_node, plan.loads[k - 1].first_node);
    }
    copy_waits_for = std::max(copy_waits_for, later.after_node);
    for (std::size_t j = 0; j < k; ++j) {
      const RingLoad& earlier = plan.loads[j];
      const bool overlap = earlier.offset < later.offset + later.bytes && later.offset < earlier.offset + earlier.bytes;
      if (overlap) {
        EXPECT_GE(copy_waits_for, static_cast<std::ptrdiff_t>(earlier.last_node))
            << "load " << k << " overwrites load " << j << " while node " << earlier.last_node << " may read it";
      }
    }
  }
}

// One pass of `plan` on `dev`, issued in CudaExecutor::capture_ring's order: the copies in plan
// order on the copy stream, each after the node it waits for; each node after the copies of the
// loads it reads first, computing `node_seconds` and reading its loads' bytes. The pass's seconds.
Result<double> ring_pass(SimulatedDevice& dev, const RingPlan& plan, std::size_t nodes, double node_seconds) {
  const double start = dev.now_seconds();
  FSWAP_ASSIGN_OR_RETURN(DevicePtr ring, dev.allocate(plan.ring_bytes));
  const std::vector<RingLoad>& loads = plan.loads;
  std::vector<DeviceEvent> node_done(nodes), copied(loads.size());
  std::size_t next_copy = 0;
  const auto issue_copies = [&](std::ptrdiff_t done) -> Status {
    for (; next_copy < loads.size() && loads[next_copy].after_node <= done; ++next_copy) {
      const RingLoad& l = loads[next_copy];
      std::vector<DeviceEvent> after;
      if (l.after_node >= 0) after.push_back(node_done[static_cast<std::size_t>(l.after_node)]);
      FSWAP_ASSIGN_OR_RETURN(copied[next_copy],
                             dev.copy_to_device(ring.offset(l.offset), nullptr, l.bytes, HostMemoryKind::kPinned, after));
    }
    return Status::ok();
  };
  FSWAP_RETURN_IF_ERROR(issue_copies(-1));
  std::size_t first_read = 0;
  for (std::size_t n = 0; n < nodes; ++n) {
    for (; first_read < loads.size() && loads[first_read].first_node == n; ++first_read)
      dev.compute_wait(copied[first_read]);
    std::vector<DeviceRange> reads;
    for (std::size_t load : plan.node_loads[n]) reads.push_back({ring.offset(loads[load].offset), loads[load].bytes});
    FSWAP_ASSIGN_OR_RETURN(node_done[n], dev.run_compute(node_seconds, reads));
    FSWAP_RETURN_IF_ERROR(issue_copies(static_cast<std::ptrdiff_t>(n)));
  }
  dev.synchronize();
  FSWAP_RETURN_IF_ERROR(dev.free(ring));
  return dev.now_seconds() - start;
}

// 48 nodes of 0.1 ms, two in three reading a 4 MiB chunk of their own (32 chunks, 128 MiB).
std::vector<std::vector<BlockId>> enhancer_like_nodes() {
  std::vector<std::vector<BlockId>> nodes;
  BlockId next = 0;
  for (int n = 0; n < 48; ++n) nodes.push_back(n % 3 == 2 ? std::vector<BlockId>{} : std::vector<BlockId>{next++});
  return nodes;
}

}  // namespace

TEST(WeightRing, APassOnTheSimulatedDeviceOverlapsCopiesWithKernels) {
  const auto nodes = enhancer_like_nodes();
  const std::vector<std::uint64_t> bytes(32, 4 * kMiB);
  Result<RingPlan> plan = plan_weight_ring(nodes, bytes, 16 * kMiB);
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  SimulatedDevice dev;
  const double node_s = 1e-4, copy_s = dev.copy_seconds(4 * kMiB, true, HostMemoryKind::kPinned);
  Result<double> pass = ring_pass(dev, *plan, nodes.size(), node_s);
  ASSERT_TRUE(pass.is_ok()) << pass.status().to_string();  // the device's hazard checks passed
  const double compute_s = static_cast<double>(nodes.size()) * node_s, copies_s = 32 * copy_s;
  // Copies (78 µs each) are shorter than the kernels between them: the pass is the kernels plus
  // the first copy, not the two one after the other.
  EXPECT_LE(*pass, compute_s + 2 * copy_s);
  EXPECT_LT(*pass, 0.75 * (compute_s + copies_s));
  std::printf("ring pass: %.2f ms (kernels %.2f ms, copies of 128 MiB through a 16 MiB ring %.2f ms)\n", *pass * 1e3,
              compute_s * 1e3, copies_s * 1e3);
}

TEST(WeightRing, CopiesThatWaitOneNodeLessAreCaughtOnTheSimulatedDevice) {
  const auto nodes = enhancer_like_nodes();
  const std::vector<std::uint64_t> bytes(32, 4 * kMiB);
  Result<RingPlan> plan = plan_weight_ring(nodes, bytes, 16 * kMiB);
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  for (RingLoad& l : plan->loads)
    if (l.after_node >= 0) --l.after_node;
  SimulatedDevice dev;
  Result<double> pass = ring_pass(dev, *plan, nodes.size(), 1e-4);
  ASSERT_FALSE(pass.is_ok());
  EXPECT_EQ(pass.status().code(), StatusCode::kInternal) << pass.status().to_string();
}

TEST(WeightRing, ChunksStreamInRingOrder) {
  const std::vector<std::vector<BlockId>> nodes = {{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}};
  const std::vector<std::uint64_t> bytes(8, 4 * kMiB);
  Result<RingPlan> plan = plan_weight_ring(nodes, bytes, 12 * kMiB);
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  ASSERT_EQ(plan->loads.size(), 8u);
  EXPECT_EQ(plan->ring_bytes, 12 * kMiB);
  EXPECT_EQ(plan->load_bytes, 32 * kMiB);
  for (std::size_t j = 0; j < 8; ++j) {
    EXPECT_EQ(plan->loads[j].offset, (j % 3) * 4 * kMiB) << j;
    // The first three copies start at once; each later one after the node that read its bytes.
    EXPECT_EQ(plan->loads[j].after_node, std::max<std::ptrdiff_t>(static_cast<std::ptrdiff_t>(j) - 3, -1)) << j;
  }
  expect_safe(*plan, nodes, 12 * kMiB);
}

TEST(WeightRing, AChunkReadAcrossWeightlessNodesIsCopiedOnce) {
  const std::vector<std::vector<BlockId>> nodes = {{0}, {}, {0}, {0, 1}, {}, {1}};
  const std::vector<std::uint64_t> bytes = {3 * kMiB, 2 * kMiB};
  Result<RingPlan> plan = plan_weight_ring(nodes, bytes, 8 * kMiB);
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  ASSERT_EQ(plan->loads.size(), 2u);
  EXPECT_EQ(plan->loads[0].last_node, 3u);
  EXPECT_EQ(plan->loads[1].first_node, 3u);
  EXPECT_EQ(plan->load_bytes, 5 * kMiB);
  expect_safe(*plan, nodes, 8 * kMiB);
}

TEST(WeightRing, AChunkReadAgainAfterMuchElseIsCopiedAgain) {
  // Block 0 is read first and last (a shared constant); in between 16 MiB go through an 8 MiB ring.
  std::vector<std::vector<BlockId>> nodes = {{0}};
  for (BlockId b = 1; b <= 8; ++b) nodes.push_back({b});
  nodes.push_back({0});
  const std::vector<std::uint64_t> bytes(9, 2 * kMiB);
  Result<RingPlan> plan = plan_weight_ring(nodes, bytes, 8 * kMiB);
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  ASSERT_EQ(plan->loads.size(), 10u);
  EXPECT_EQ(plan->loads.front().block, 0u);
  EXPECT_EQ(plan->loads.back().block, 0u);
  EXPECT_EQ(plan->loads.back().first_node, 9u);
  expect_safe(*plan, nodes, 8 * kMiB);
}

TEST(WeightRing, ARingTooSmallForANodeIsAnOutOfMemoryNamingIt) {
  const std::vector<std::vector<BlockId>> nodes = {{0}, {1, 2}};
  const std::vector<std::uint64_t> bytes = {kMiB, 4 * kMiB, 4 * kMiB};
  Result<RingPlan> plan = plan_weight_ring(nodes, bytes, 6 * kMiB);
  ASSERT_FALSE(plan.is_ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kOutOfMemory);
  EXPECT_NE(plan.status().message().find("node 1"), std::string::npos) << plan.status().message();
  EXPECT_TRUE(plan_weight_ring(nodes, bytes, 9 * kMiB).is_ok());

  EXPECT_EQ(plan_weight_ring(nodes, bytes, 0).status().code(), StatusCode::kInvalidInput);
  const std::vector<std::vector<BlockId>> outside = {{3}};
  EXPECT_EQ(plan_weight_ring(outside, bytes, 8 * kMiB).status().code(), StatusCode::kInvalidInput);
}

TEST(WeightRing, RandomModelsGetSafePlans) {
  std::mt19937 rng(7);
  int planned = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const std::size_t blocks = 1 + rng() % 24;
    std::vector<std::uint64_t> bytes(blocks);
    for (std::uint64_t& b : bytes) b = 1 + rng() % (3 * kMiB);
    // Nodes read blocks mostly in order (chunks are packed in run order), with weightless nodes,
    // pairs straddling a chunk boundary and now and then an early block again.
    std::vector<std::vector<BlockId>> nodes;
    BlockId next = 0;
    while (next < blocks) {
      const unsigned kind = rng() % 6;
      if (kind == 0) {
        nodes.push_back({});
      } else if (kind == 1 && next + 1 < blocks) {
        nodes.push_back({next, static_cast<BlockId>(next + 1)});
        ++next;
      } else if (kind == 2 && next > 0) {
        nodes.push_back({static_cast<BlockId>(rng() % next)});
      } else {
        nodes.push_back({next++});
      }
    }
    const std::uint64_t ring = (2 + rng() % 10) * kMiB;
    Result<RingPlan> plan = plan_weight_ring(nodes, bytes, ring);
    if (!plan.is_ok()) {
      EXPECT_EQ(plan.status().code(), StatusCode::kOutOfMemory) << plan.status().to_string();
      continue;
    }
    ++planned;
    expect_safe(*plan, nodes, ring);
  }
  EXPECT_GT(planned, 200);
}
