#include "runtime/memory_plan.h"

#include <algorithm>
#include <iterator>
#include <map>

namespace fswap {
namespace {

std::size_t align_up(std::size_t n) {
  return (n + MemoryPlan::kAlignment - 1) / MemoryPlan::kAlignment * MemoryPlan::kAlignment;
}

// Ops whose kernels may write their output over input 0 (same shape and dtype size).
bool is_elementwise(OpType op) {
  if (op == OpType::kCast || is_comparison(op)) return false;  // the output's dtype differs
  return is_elementwise_unary(op) || is_broadcasting(op) || op == OpType::kDropout || op == OpType::kClip;
}

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
  std::vector<int> last(nv, -1);
  std::vector<bool> pinned(nv, false);  // graph inputs and outputs: never reused in place
  for (int i = 0; i < nn; ++i) {
    for (int v : g.nodes[i].inputs)
      if (in_arena(v)) last[v] = i;
    for (int v : g.nodes[i].outputs)
      if (in_arena(v)) last[v] = std::max(last[v], i);
  }
  for (int v : g.inputs) pinned[v] = true;
  for (int v : g.outputs) {
    pinned[v] = true;
    if (in_arena(v)) last[v] = nn;
  }

  auto bytes_of = [&](int v) {
    return align_up(static_cast<std::size_t>(shape_elements(g.values[v].shape)) * dtype_size(g.values[v].dtype));
  };
  BestFit arena;
  std::vector<std::vector<int>> dies_at(nn + 1);
  auto place = [&](int v) {
    const std::size_t size = bytes_of(v);
    plan.offset[v] = static_cast<std::int64_t>(size == 0 ? 0 : arena.allocate(size));
    dies_at[std::max(last[v], 0)].push_back(v);
  };
  for (int v : g.inputs)
    if (in_arena(v) && plan.offset[v] < 0) {
      place(v);
      if (last[v] < 0) dies_at[0].pop_back();  // an unused input still occupies its block all along
    }

  for (int i = 0; i < nn; ++i) {
    const Node& n = g.nodes[i];
    plan.flops += node_flops(g, n);
    for (std::size_t k = 0; k < n.outputs.size(); ++k) {
      const int y = n.outputs[k];
      if (!in_arena(y) || plan.offset[y] >= 0) continue;
      const int x = n.inputs.empty() ? -1 : n.inputs[0];
      if (k == 0 && is_elementwise(n.op) && in_arena(x) && !pinned[x] && !pinned[y] && last[x] == i &&
          g.values[x].shape == g.values[y].shape && dtype_size(g.values[x].dtype) == dtype_size(g.values[y].dtype) &&
          bytes_of(x) > 0) {
        // Take over x's block: x dies here, so its release moves to y's death.
        plan.offset[y] = plan.offset[x];
        auto& list = dies_at[i];
        list.erase(std::find(list.begin(), list.end(), x));
        dies_at[std::max(last[y], i)].push_back(y);
        ++plan.in_place_nodes;
        continue;
      }
      place(y);
    }
    for (int v : dies_at[i]) {
      const std::size_t size = bytes_of(v);
      if (size > 0) arena.release(static_cast<std::size_t>(plan.offset[v]), size);
    }
  }
  plan.arena_bytes = arena.peak();
  return plan;
}

}  // namespace fswap
