#include "runtime/memory_plan.h"

#include <algorithm>
#include <iterator>
#include <limits>
#include <map>
#include <numeric>

namespace fswap {
namespace {

std::size_t align_up(std::size_t n) {
  return (n + MemoryPlan::kAlignment - 1) / MemoryPlan::kAlignment * MemoryPlan::kAlignment;
}

// A range of the arena: one value, or a chain of in-place values, live over steps [first, last]
// (node indices; -1: before node 0, nn: after the last node).
struct Block {
  std::size_t size = 0;
  int first = 0, last = 0;
  std::size_t offset = 0;
  std::vector<int> values;  // in the order they take the block over
};

// Free space in the arena: offset → size, coalesced, plus the arena's current end.
class BestFit {
 public:
  std::size_t allocate(std::size_t size) {
    auto best = free_.end();
    for (auto it = free_.begin(); it != free_.end(); ++it)
      if (it->second >= size && (best == free_.end() || it->second < best->second)) best = it;
    if (best != free_.end()) {
      const std::size_t offset = best->first, rest = best->second - size;
      free_.erase(best);
      if (rest > 0) free_.emplace(offset + size, rest);
      return offset;
    }
    // Nothing fits: grow, reusing a free block that ends at the arena's end.
    std::size_t offset = end_;
    if (!free_.empty()) {
      auto last = std::prev(free_.end());
      if (last->first + last->second == end_) {
        offset = last->first;
        free_.erase(last);
      }
    }
    end_ = offset + size;
    peak_ = std::max(peak_, end_);
    return offset;
  }

  void release(std::size_t offset, std::size_t size) {
    auto [it, inserted] = free_.emplace(offset, size);
    if (auto next = std::next(it); next != free_.end() && it->first + it->second == next->first) {
      it->second += next->second;
      free_.erase(next);
    }
    if (it != free_.begin()) {
      auto prev = std::prev(it);
      if (prev->first + prev->second == it->first) {
        prev->second += it->second;
        free_.erase(it);
      }
    }
  }

  std::size_t peak() const { return peak_; }

 private:
  std::map<std::size_t, std::size_t> free_;
  std::size_t end_ = 0, peak_ = 0;
};

// Offsets in order of first use: at each step the blocks born there take the best-fitting free
// range (or grow the arena), then the blocks dying there are freed. Returns the arena's size.
std::size_t place_in_order(std::vector<Block>& blocks, int nn) {
  std::vector<std::vector<std::size_t>> born(static_cast<std::size_t>(nn) + 2), dying(static_cast<std::size_t>(nn) + 2);
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    if (blocks[i].size == 0) continue;
    born[static_cast<std::size_t>(blocks[i].first + 1)].push_back(i);
    dying[static_cast<std::size_t>(blocks[i].last + 1)].push_back(i);
  }
  BestFit arena;
  for (std::size_t step = 0; step < born.size(); ++step) {
    for (std::size_t i : born[step]) blocks[i].offset = arena.allocate(blocks[i].size);
    for (std::size_t i : dying[step]) arena.release(blocks[i].offset, blocks[i].size);
  }
  return arena.peak();
}

// Sets every block's offset so blocks live at the same step never share bytes; returns the
// arena's size. Largest first, each into the tightest gap among the blocks placed so far that are
// live when it is (else above them all): large blocks fix the layout, small ones fill the holes
// (greedy by size, Pisarchyk and Lee 2020), which wastes less than placing in order of first use.
std::size_t place_largest_first(std::vector<Block>& blocks) {
  std::vector<std::size_t> order(blocks.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return blocks[a].size != blocks[b].size ? blocks[a].size > blocks[b].size : blocks[a].first < blocks[b].first;
  });
  std::vector<std::size_t> placed, beside;
  std::size_t arena = 0;
  for (std::size_t i : order) {
    Block& b = blocks[i];
    if (b.size == 0) continue;
    beside.clear();
    for (std::size_t p : placed)
      if (blocks[p].first <= b.last && b.first <= blocks[p].last) beside.push_back(p);
    std::sort(beside.begin(), beside.end(), [&](std::size_t x, std::size_t y) { return blocks[x].offset < blocks[y].offset; });
    std::size_t end = 0, best = 0, best_gap = std::numeric_limits<std::size_t>::max();
    for (std::size_t p : beside) {
      const Block& q = blocks[p];
      if (q.offset >= end + b.size && q.offset - end < best_gap) {
        best = end;
        best_gap = q.offset - end;
      }
      end = std::max(end, q.offset + q.size);
    }
    b.offset = best_gap == std::numeric_limits<std::size_t>::max() ? end : best;
    arena = std::max(arena, b.offset + b.size);
    placed.push_back(i);
  }
  return arena;
}

std::int64_t node_flops(const Graph& g, const Node& n) {
  auto shape = [&](int i) -> const Shape& { return g.values[n.inputs[i]].shape; };
  const Shape& y = g.values[n.outputs[0]].shape;
  switch (n.op) {
    case OpType::kConv: {
      const Shape& w = shape(1);  // [Cout, Cin/group, k...]
      return 2 * shape_elements(y) * shape_elements(Shape(w.begin() + 1, w.end()));
    }
    case OpType::kConvTranspose: {
      const Shape& w = shape(1);  // [Cin, Cout/group, k...]: every input element scatters into Cout/group·k outputs
      return 2 * shape_elements(shape(0)) * shape_elements(Shape(w.begin() + 1, w.end()));
    }
    case OpType::kMatMul: {
      const Shape& a = shape(0);
      const std::int64_t k = a.empty() ? 1 : a.back();
      return 2 * shape_elements(y) * k;
    }
    case OpType::kGemm: {
      const Shape& a = shape(0);
      const std::int64_t k = n.attrs.i("transA", 0) ? a[0] : a[1];
      return 2 * shape_elements(y) * k;
    }
    default: {
      std::int64_t total = 0;
      for (int v : n.outputs)
        if (v >= 0) total += shape_elements(g.values[v].shape);
      return total;
    }
  }
}

}  // namespace

bool writes_over_input(const Graph& g, const Node& n) {
  if (n.inputs.empty() || n.outputs.empty() || n.inputs[0] < 0 || n.outputs[0] < 0) return false;
  const Value &x = g.values[n.inputs[0]], &y = g.values[n.outputs[0]];
  if (dtype_size(x.dtype) != dtype_size(y.dtype)) return false;
  switch (n.op) {
    case OpType::kReshape: case OpType::kFlatten: case OpType::kSqueeze: case OpType::kUnsqueeze:
      return shape_elements(x.shape) == shape_elements(y.shape);
    case OpType::kCast: return false;  // the output's dtype differs
    default: break;
  }
  const bool element_wise = (is_elementwise_unary(n.op) || is_broadcasting(n.op) || n.op == OpType::kDropout ||
                             n.op == OpType::kClip) &&
                            !is_comparison(n.op);
  return element_wise && x.shape == y.shape;
}

Result<MemoryPlan> plan_memory(const Graph& g) {
  MemoryPlan plan;
  const int nv = static_cast<int>(g.values.size());
  const int nn = static_cast<int>(g.nodes.size());
  plan.offset.assign(nv, -1);
  for (const auto& w : g.weights) plan.weight_bytes += w.data->bytes();
  for (const auto& c : g.constants) plan.weight_bytes += c.bytes();

  auto in_arena = [&](int v) { return v >= 0 && g.values[v].weight < 0 && g.values[v].constant < 0; };
  for (int v = 0; v < nv; ++v)
    if (in_arena(v) && !g.values[v].known_shape)
      return invalid_input(g.path + ": value " + g.values[v].name + " has no shape; specialize the graph before planning memory");

  // Liveness: [first step, last step] over node indices; graph inputs are born before node 0
  // and graph outputs live to the end.
  std::vector<int> first(nv, -1), last(nv, -1);
  std::vector<bool> pinned(nv, false);  // graph inputs and outputs: never reused in place
  for (int i = 0; i < nn; ++i) {
    for (int v : g.nodes[i].inputs)
      if (in_arena(v)) last[v] = i;
    for (int v : g.nodes[i].outputs)
      if (in_arena(v)) {
        first[v] = i;
        last[v] = std::max(last[v], i);
      }
  }
  for (int v : g.inputs) pinned[v] = true;
  for (int v : g.outputs) {
    pinned[v] = true;
    if (in_arena(v)) last[v] = nn;
  }

  auto bytes_of = [&](int v) {
    return align_up(static_cast<std::size_t>(shape_elements(g.values[v].shape)) * dtype_size(g.values[v].dtype));
  };
  // Blocks: one per value, except that an element-wise node's output takes over the block of its
  // input 0 when that input dies at the node and has the same size (in place).
  std::vector<Block> blocks;
  std::vector<int> block_of(nv, -1);
  auto new_block = [&](int v, int born) {
    block_of[v] = static_cast<int>(blocks.size());
    blocks.push_back({bytes_of(v), born, std::max(last[v], born), 0, {v}});
  };
  for (int v : g.inputs)
    if (in_arena(v) && block_of[v] < 0) {
      if (last[v] < 0) last[v] = nn;  // an unused input still occupies its block all along
      new_block(v, -1);
    }
  for (int i = 0; i < nn; ++i) {
    const Node& n = g.nodes[i];
    plan.flops += node_flops(g, n);
    for (std::size_t k = 0; k < n.outputs.size(); ++k) {
      const int y = n.outputs[k];
      if (!in_arena(y) || block_of[y] >= 0) continue;
      const int x = n.inputs.empty() ? -1 : n.inputs[0];
      if (k == 0 && writes_over_input(g, n) && in_arena(x) && !pinned[x] && !pinned[y] && last[x] == i &&
          bytes_of(x) > 0) {
        Block& b = blocks[static_cast<std::size_t>(block_of[x])];
        b.last = std::max(b.last, last[y]);
        b.values.push_back(y);
        block_of[y] = block_of[x];
        ++plan.in_place_nodes;
        continue;
      }
      new_block(y, i);
    }
  }
  // Neither placement is always the tighter (largest first wins on gfpgan, in order on yoloface).
  std::vector<Block> in_order = blocks;
  plan.arena_bytes = place_largest_first(blocks);
  if (const std::size_t size = place_in_order(in_order, nn); size < plan.arena_bytes) {
    plan.arena_bytes = size;
    blocks = std::move(in_order);
  }
  for (const Block& b : blocks)
    for (int v : b.values) plan.offset[v] = static_cast<std::int64_t>(b.offset);

  // The step with the most bytes live, and which values hold them then (in a chain of in-place
  // values, the one written last by that step).
  std::vector<std::int64_t> change(static_cast<std::size_t>(nn) + 3, 0);  // by step + 1
  for (const Block& b : blocks) {
    change[static_cast<std::size_t>(b.first + 1)] += static_cast<std::int64_t>(b.size);
    change[static_cast<std::size_t>(b.last + 2)] -= static_cast<std::int64_t>(b.size);
  }
  std::int64_t live = 0;
  for (int step = -1; step <= nn; ++step) {
    live += change[static_cast<std::size_t>(step + 1)];
    if (static_cast<std::size_t>(live) > plan.live_peak_bytes) {
      plan.live_peak_bytes = static_cast<std::size_t>(live);
      plan.peak_node = step;
    }
  }
  const int peak = plan.peak_node;
  for (const Block& b : blocks) {
    if (b.size == 0 || b.first > peak || b.last < peak) continue;
    int holder = b.values.front();
    for (int v : b.values)
      if (first[v] <= peak) holder = v;
    plan.live_at_peak.push_back(holder);
  }
  std::sort(plan.live_at_peak.begin(), plan.live_at_peak.end());
  return plan;
}

}  // namespace fswap
