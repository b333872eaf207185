#include "runtime/split_weights.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace fswap {
namespace {

Tensor slice_of(const Tensor& source, int axis, std::int64_t begin, std::int64_t end) {
  Shape shape = source.shape();
  std::int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= shape[static_cast<std::size_t>(d)];
  for (std::size_t d = static_cast<std::size_t>(axis) + 1; d < shape.size(); ++d) inner *= shape[d];
  const std::int64_t along = shape[static_cast<std::size_t>(axis)];
  shape[static_cast<std::size_t>(axis)] = end - begin;
  Tensor out = Tensor::zeros(source.dtype(), shape);
  const std::size_t element = dtype_size(source.dtype());
  const auto* from = static_cast<const std::byte*>(source.raw());
  auto* to = static_cast<std::byte*>(out.raw());
  const std::size_t run = static_cast<std::size_t>((end - begin) * inner) * element;
  for (std::int64_t o = 0; o < outer; ++o)
    std::memcpy(to + static_cast<std::size_t>(o) * run,
                from + static_cast<std::size_t>((o * along + begin) * inner) * element, run);
  return out;
}

// What splitting one node needs to know: which inputs are sliced along which axis.
struct SplitSite {
  int weight = -1, weight_axis = 0;  // B and the axis holding N
  int bias = -1, bias_axis = 0;      // the input sliced with it (-1: none)
  std::int64_t columns = 0;          // N
  std::uint64_t column_bytes = 0;    // one column (or row) of B, in B's Value dtype
};

bool is_weight(const Graph& g, int v) { return v >= 0 && g.values[v].weight >= 0; }

// The split of node n, or nothing when n is not a Gemm/MatMul this pass can split exactly.
std::optional<SplitSite> split_site(const Graph& g, const Node& n) {
  if ((n.op != OpType::kGemm && n.op != OpType::kMatMul) || n.inputs.size() < 2 || !is_weight(g, n.inputs[1]))
    return std::nullopt;
  const Value& b = g.values[n.inputs[1]];
  if (b.shape.size() != 2) return std::nullopt;
  SplitSite s;
  s.weight = n.inputs[1];
  s.weight_axis = n.op == OpType::kGemm && n.attrs.i("transB", 0) ? 0 : 1;
  s.columns = b.shape[static_cast<std::size_t>(s.weight_axis)];
  s.column_bytes = static_cast<std::uint64_t>(b.shape[static_cast<std::size_t>(1 - s.weight_axis)]) * dtype_size(b.dtype);
  if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
    const Value& c = g.values[n.inputs[2]];
    const bool broadcast = c.shape.empty() || c.shape.back() == 1;
    if (!broadcast || s.columns == 1) {
      if (!is_weight(g, n.inputs[2]) || c.shape.back() != s.columns) return std::nullopt;
      s.bias = n.inputs[2];
      s.bias_axis = static_cast<int>(c.shape.size()) - 1;
    }
  }
  return s;
}

// A new weight value for `source_value`'s [begin, end) along axis.
int sliced_weight(Graph& g, WeightSlices& slices, int source_value, int axis, std::int64_t begin, std::int64_t end) {
  const Value source = g.values[source_value];
  std::shared_ptr<const Tensor> data = slices.of(g.weights[static_cast<std::size_t>(source.weight)].data, axis, begin, end);
  Shape shape = source.shape;
  shape[static_cast<std::size_t>(axis)] = end - begin;
  const int v = g.add_value(source.name + "/" + std::to_string(begin) + ":" + std::to_string(end), source.dtype, shape);
  g.values[v].weight = static_cast<int>(g.weights.size());
  g.weights.push_back(WeightBlock{v, std::move(data)});
  return v;
}

}  // namespace

std::shared_ptr<const Tensor> WeightSlices::of(const std::shared_ptr<const Tensor>& source, int axis, std::int64_t begin,
                                               std::int64_t end) {
  std::lock_guard<std::mutex> lock(mutex_);
  const Key key{source.get(), axis, begin, end};
  auto it = slices_.find(key);
  if (it == slices_.end())
    it = slices_.emplace(key, std::make_pair(source, std::make_shared<const Tensor>(slice_of(*source, axis, begin, end))))
             .first;
  return it->second.second;
}

Result<int> split_large_weights(Graph& g, std::uint64_t limit_bytes, WeightSlices& slices) {
  if (limit_bytes == 0) return invalid_input(g.path + ": splitting weights needs a limit above 0 bytes");
  std::vector<Node> nodes;
  nodes.reserve(g.nodes.size());
  int split = 0;
  for (Node& n : g.nodes) {
    const std::optional<SplitSite> site = split_site(g, n);
    const std::uint64_t per_part = site ? limit_bytes / site->column_bytes : 0;  // columns per part
    if (!site || per_part == 0 || static_cast<std::uint64_t>(site->columns) <= per_part) {
      nodes.push_back(std::move(n));
      continue;
    }
    const std::int64_t parts = (site->columns + static_cast<std::int64_t>(per_part) - 1) / static_cast<std::int64_t>(per_part);
    const std::int64_t width = (site->columns + parts - 1) / parts;
    const int y = n.outputs[0];
    const Value out = g.values[y];
    const int axis = static_cast<int>(out.shape.size()) - 1;
    Node concat;
    concat.op = OpType::kConcat;
    concat.name = n.name + "/concat";
    concat.outputs = {y};
    concat.attrs.values["axis"] = static_cast<std::int64_t>(axis);
    for (std::int64_t begin = 0; begin < site->columns; begin += width) {
      const std::int64_t end = std::min(site->columns, begin + width);
      Node part = n;
      part.name = n.name + "/" + std::to_string(begin) + ":" + std::to_string(end);
      part.inputs[1] = sliced_weight(g, slices, site->weight, site->weight_axis, begin, end);
      if (site->bias >= 0) part.inputs[2] = sliced_weight(g, slices, site->bias, site->bias_axis, begin, end);
      Shape shape = out.shape;
      shape.back() = end - begin;
      part.outputs = {g.add_value(g.values[y].name + "/" + std::to_string(begin) + ":" + std::to_string(end), out.dtype, shape)};
      concat.inputs.push_back(part.outputs[0]);
      nodes.push_back(std::move(part));
    }
    nodes.push_back(std::move(concat));
    ++split;
  }
  g.nodes = std::move(nodes);
  return split;
}

}  // namespace fswap
