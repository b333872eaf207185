#include "runtime/channels_last.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "core/log.h"
#include "core/parallel.h"
#include "runtime/passes.h"

namespace fswap {
namespace {

// NHWC dim i holds NCHW dim kToNhwc[i]; NCHW axis a sits at NHWC position kToNchw[a]. These are
// also the Transpose permutations into and out of an island.
constexpr std::array<std::int64_t, 4> kToNhwc = {0, 2, 3, 1};
constexpr std::array<std::int64_t, 4> kToNchw = {0, 3, 1, 2};
constexpr std::int64_t kTrivialElements = 4096;

// What the pass does with each input of an island node.
enum class Role {
  kData,     // a 4-D activation: the island's NHWC twin (a constant one is transposed)
  kOperand,  // an element-wise operand: 4-D → as kData, a constant of rank ≤ 4 → transposed, all-1s → kept
  kKeep,     // read as it is (biases, statistics, split sizes, Clip bounds, Pad's fill value)
  kPads,     // [begin..., end...] over the 4 axes: reordered
  kPerAxis,  // one entry per axis (scales, sizes): reordered
  kAxes,     // axis numbers: renumbered
};

using Roles = std::vector<Role>;

bool is_rank4(const Graph& g, int v) { return v >= 0 && g.values[v].shape.size() == 4; }
bool is_constant(const Graph& g, int v) { return v >= 0 && g.constant_data(v) != nullptr; }
bool all_ones(const Shape& s) {
  return std::all_of(s.begin(), s.end(), [](std::int64_t d) { return d == 1; });
}

Shape nhwc_shape(const Shape& nchw) { return {nchw[0], nchw[2], nchw[3], nchw[1]}; }

std::int64_t nhwc_axis(std::int64_t axis) { return kToNchw[static_cast<std::size_t>(axis < 0 ? axis + 4 : axis)]; }

bool valid_axis(std::int64_t axis) { return axis >= -4 && axis < 4; }

// Items [n0, n1) of an [N, C, H, W] array of T, written [N, H, W, C]: each output row of C
// values is written in order (the reads stride by H·W, within one item's few KiB for weights).
template <class T>
void transpose_items_to_nhwc(const T* in, T* out, std::int64_t n0, std::int64_t n1, std::int64_t c, std::int64_t hw) {
  for (std::int64_t n = n0; n < n1; ++n) {
    const T* item = in + n * c * hw;
    T* dst = out + n * c * hw;
    for (std::int64_t p = 0; p < hw; ++p, dst += c)
      for (std::int64_t k = 0; k < c; ++k) dst[k] = item[k * hw + p];
  }
}

// t with zeros appended along each dim up to `shape` (same rank, no dim smaller; any dtype).
Tensor zero_padded(const Tensor& t, const Shape& shape) {
  Tensor out = Tensor::zeros(t.dtype(), shape);
  const Shape& from = t.shape();
  if (t.elements() == 0) return out;
  const std::size_t row_bytes = static_cast<std::size_t>(from.back()) * dtype_size(t.dtype());
  const std::size_t out_row_bytes = static_cast<std::size_t>(shape.back()) * dtype_size(t.dtype());
  const std::int64_t rows = t.elements() / from.back();
  for (std::int64_t r = 0; r < rows; ++r) {
    std::int64_t rest = r, out_row = 0, stride = 1;
    for (std::size_t d = from.size() - 1; d-- > 0;) {
      out_row += rest % from[d] * stride;
      rest /= from[d];
      stride *= shape[d];
    }
    std::memcpy(static_cast<std::byte*>(out.raw()) + out_row * out_row_bytes,
                static_cast<const std::byte*>(t.raw()) + r * row_bytes, row_bytes);
  }
  return out;
}

// The tensor padded to rank 4 with leading 1s and transposed NCHW → NHWC (any dtype), items
// spread over the worker threads (a model's weights are transposed while it loads).
Tensor transposed_to_nhwc(const Tensor& t) {
  Shape s(4 - t.shape().size(), 1);
  s.insert(s.end(), t.shape().begin(), t.shape().end());
  Tensor out = Tensor::zeros(t.dtype(), nhwc_shape(s));
  const std::int64_t n = s[0], c = s[1], hw = s[2] * s[3];
  const auto copy = [&]<class T>(T) {
    parallel_for(static_cast<int>(n), [&](int n0, int n1) {
      transpose_items_to_nhwc(static_cast<const T*>(t.raw()), static_cast<T*>(out.raw()), n0, n1, c, hw);
    });
  };
  switch (dtype_size(t.dtype())) {
    case 1: copy(std::uint8_t{}); break;
    case 2: copy(std::uint16_t{}); break;
    case 4: copy(std::uint32_t{}); break;
    default: copy(std::uint64_t{}); break;
  }
  return out;
}

std::optional<std::vector<std::int64_t>> int_data(const Tensor* t) {
  if (t == nullptr || t->dtype() != DType::kInt64) return std::nullopt;
  const auto* p = t->data<std::int64_t>();
  return std::vector<std::int64_t>(p, p + t->elements());
}

bool is_reduce(OpType op) {
  switch (op) {
    case OpType::kReduceMean: case OpType::kReduceSum: case OpType::kReduceMax: case OpType::kReduceMin:
    case OpType::kReduceProd: case OpType::kReduceL2: case OpType::kReduceSumSquare:
      return true;
    default: return false;
  }
}

// The op takes attribute channels_last (backends/op.h).
bool is_layout_sensitive(OpType op) {
  return op == OpType::kConv || op == OpType::kConvTranspose || op == OpType::kBatchNormalization ||
         op == OpType::kInstanceNormalization || op == OpType::kFilterResponseNorm || op == OpType::kMaxPool ||
         op == OpType::kAveragePool;
}

// Roles of inputs 1.. after a 4-D data input 0, all `role`.
Roles data_then(const Node& n, Role role) {
  Roles r(n.inputs.size(), role);
  if (!r.empty()) r[0] = Role::kData;
  return r;
}

// The node's input roles when it has an NHWC form here, nullopt otherwise. `used` says whether a
// value is read by anyone (nodes or graph outputs).
std::optional<Roles> nhwc_roles(const Graph& g, const Node& n, const std::vector<bool>& used) {
  if (n.inputs.empty() || (!is_rank4(g, n.inputs[0]) && !is_broadcasting(n.op))) return std::nullopt;
  for (std::size_t k = 0; k < n.outputs.size(); ++k) {
    const int v = n.outputs[k];
    if (v < 0 || (k > 0 && !used[v] && n.op != OpType::kSplit)) continue;  // unused extra outputs
    if (!is_rank4(g, v)) return std::nullopt;
  }
  const auto single_output = [&] {
    for (std::size_t k = 1; k < n.outputs.size(); ++k)
      if (n.outputs[k] >= 0 && used[n.outputs[k]]) return false;
    return true;
  };
  const auto constant_input = [&](std::size_t k) {
    return k >= n.inputs.size() || n.inputs[k] < 0 || is_constant(g, n.inputs[k]);
  };
  const auto axis_ok = [&] { return valid_axis(n.attrs.i("axis", n.op == OpType::kConcat ? 0 : -1)); };
  const auto listed = [&](Roles r) {  // roles for the inputs present, the rest kept
    r.resize(n.inputs.size(), Role::kKeep);
    return r;
  };

  switch (n.op) {
    case OpType::kConv: case OpType::kConvTranspose: {
      if (n.inputs.size() < 2 || !is_rank4(g, n.inputs[1]) || !constant_input(2)) return std::nullopt;
      // A weight computed in the graph (StyleGAN2's modulated convolutions) is a 4-D value like
      // the data: its NHWC twin [M, kH, kW, C/g] is the layout the kernel reads, and the ops that
      // compute it join the island. A constant weight is transposed once (ChannelsLastWeights).
      Roles r = data_then(n, Role::kKeep);
      if (!is_constant(g, n.inputs[1])) r[1] = Role::kData;
      if (n.inputs.size() > 3 && n.inputs[3] >= 0) r[3] = Role::kData;  // the residual: Y's layout (op.h)
      return r;
    }
    case OpType::kBatchNormalization: case OpType::kInstanceNormalization: case OpType::kFilterResponseNorm:
      if (!single_output()) return std::nullopt;
      return data_then(n, Role::kKeep);
    case OpType::kMaxPool: case OpType::kAveragePool: case OpType::kGlobalAveragePool: case OpType::kGlobalMaxPool:
      if (!single_output()) return std::nullopt;
      return data_then(n, Role::kKeep);
    case OpType::kClip:
      return data_then(n, Role::kKeep);
    case OpType::kConcat:
      if (!axis_ok()) return std::nullopt;
      return Roles(n.inputs.size(), Role::kData);
    case OpType::kSplit:
      if (!axis_ok() || !constant_input(1)) return std::nullopt;
      return data_then(n, Role::kKeep);
    case OpType::kSoftmax: case OpType::kLogSoftmax:
      if (!axis_ok()) return std::nullopt;
      return data_then(n, Role::kKeep);
    case OpType::kPad:
      if (n.inputs.size() > 3 && n.inputs[3] >= 0) return std::nullopt;  // opset-18 axes
      if (n.inputs.size() > 1 && n.inputs[1] >= 0 && !int_data(g.constant_data(n.inputs[1]))) return std::nullopt;
      return listed({Role::kData, Role::kPads});
    case OpType::kResize: {
      if (n.attrs.has("axes")) return std::nullopt;
      for (std::size_t k = 1; k < n.inputs.size(); ++k)
        if (!constant_input(k)) return std::nullopt;
      // Opset 10: (X, scales); later: (X, roi, scales, sizes).
      return n.inputs.size() == 2 ? listed({Role::kData, Role::kPerAxis})
                                  : listed({Role::kData, Role::kPads, Role::kPerAxis, Role::kPerAxis});
    }
    case OpType::kUpsample:
      if (!constant_input(1)) return std::nullopt;
      return data_then(n, Role::kPerAxis);
    default: break;
  }
  if (is_elementwise_unary(n.op)) return single_output() ? data_then(n, Role::kKeep) : std::optional<Roles>{};
  if (is_reduce(n.op)) {
    if (n.attrs.i("keepdims", 1) == 0 || !constant_input(1)) return std::nullopt;
    if (n.inputs.size() > 1 && n.inputs[1] >= 0 && !int_data(g.constant_data(n.inputs[1]))) return std::nullopt;
    return data_then(n, Role::kAxes);
  }
  if (is_broadcasting(n.op)) {
    bool has_data = false;
    for (int v : n.inputs) {
      if (v < 0) continue;
      const Shape& s = g.values[v].shape;
      if (is_constant(g, v) ? s.size() > 4 : !is_rank4(g, v) && !all_ones(s)) return std::nullopt;
      has_data = has_data || (is_rank4(g, v) && !is_constant(g, v));
    }
    if (!has_data) return std::nullopt;
    return Roles(n.inputs.size(), Role::kOperand);
  }
  return std::nullopt;
}

// An input that carries the island's layout: a 4-D activation in a data or operand position.
bool carries_layout(const Graph& g, Role role, int v) {
  return v >= 0 && (role == Role::kData || role == Role::kOperand) && is_rank4(g, v) && !is_constant(g, v);
}

struct UnionFind {
  std::vector<int> parent;
  explicit UnionFind(std::size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
  int find(int x) { return parent[x] == x ? x : parent[x] = find(parent[x]); }
  void join(int a, int b) { parent[find(a)] = find(b); }
};

// The analysis: which nodes have an NHWC form, their islands, and which islands to convert.
struct Islands {
  std::vector<std::optional<Roles>> roles;  // per node
  std::vector<int> island;                  // per node: its island (a node index), -1 when none
  std::vector<bool> converted;              // per node: its island is converted
  std::vector<int> producer;                // per value
};

bool is_absorbable_transpose(const Graph& g, const Node& n, const Islands& s) {
  if (n.op != OpType::kTranspose || n.inputs.empty() || !is_rank4(g, n.inputs[0])) return false;
  const int p = s.producer[n.inputs[0]];
  return p >= 0 && s.converted[p] && n.attrs.ints("perm", {}).size() == 4;
}

// Values produced in a converted island that something outside it reads (or that leave the graph).
std::vector<bool> exits(const Graph& g, const Islands& s) {
  std::vector<bool> out(g.values.size(), false);
  const auto from_island = [&](int v) { return v >= 0 && s.producer[v] >= 0 && s.converted[s.producer[v]]; };
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (is_absorbable_transpose(g, n, s)) continue;
    for (std::size_t k = 0; k < n.inputs.size(); ++k) {
      const int v = n.inputs[k];
      if (!from_island(v)) continue;
      if (!s.converted[i] || !carries_layout(g, (*s.roles[i])[k], v)) out[v] = true;
    }
  }
  for (int v : g.outputs)
    if (from_island(v)) out[v] = true;
  return out;
}

Islands find_islands(const Graph& g, LayoutChoice choice) {
  Islands s;
  std::vector<bool> used(g.values.size(), false);
  s.producer.assign(g.values.size(), -1);
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    for (int v : g.nodes[i].inputs)
      if (v >= 0) used[v] = true;
    for (int v : g.nodes[i].outputs)
      if (v >= 0) s.producer[v] = static_cast<int>(i);
  }
  for (int v : g.outputs) used[v] = true;

  const std::size_t count = g.nodes.size();
  UnionFind uf(count);
  for (std::size_t i = 0; i < count; ++i) s.roles.push_back(nhwc_roles(g, g.nodes[i], used));
  for (std::size_t i = 0; i < count; ++i) {
    if (!s.roles[i]) continue;
    const Node& n = g.nodes[i];
    for (std::size_t k = 0; k < n.inputs.size(); ++k) {
      const int v = n.inputs[k];
      if (!carries_layout(g, (*s.roles[i])[k], v)) continue;
      const int p = s.producer[v];
      if (p >= 0 && s.roles[p]) uf.join(static_cast<int>(i), p);
    }
  }
  s.island.assign(count, -1);
  for (std::size_t i = 0; i < count; ++i)
    if (s.roles[i]) s.island[i] = uf.find(static_cast<int>(i));

  // Price every island as if all were converted: its convolutions against its boundary transposes.
  s.converted.assign(count, false);
  for (std::size_t i = 0; i < count; ++i) s.converted[i] = s.roles[i].has_value();
  const std::vector<bool> leaving = exits(g, s);
  std::map<int, int> convs, transposes;
  std::map<int, std::vector<int>> entering;  // per island, the outside values it reads
  for (std::size_t i = 0; i < count; ++i) {
    if (!s.roles[i]) continue;
    const Node& n = g.nodes[i];
    const int island = s.island[i];
    convs[island] += n.op == OpType::kConv || n.op == OpType::kConvTranspose;
    for (std::size_t k = 0; k < n.inputs.size(); ++k) {
      const int v = n.inputs[k];
      if (!carries_layout(g, (*s.roles[i])[k], v)) continue;
      const int p = s.producer[v];
      if (p >= 0 && s.island[p] == island) continue;
      std::vector<int>& seen = entering[island];
      if (std::find(seen.begin(), seen.end(), v) != seen.end()) continue;
      seen.push_back(v);
      transposes[island] += g.values[v].shape[0] * g.values[v].shape[1] * g.values[v].shape[2] *
                                g.values[v].shape[3] > kTrivialElements;
    }
    for (int v : n.outputs)
      if (v >= 0 && leaving[v]) {
        const Shape& sh = g.values[v].shape;
        transposes[island] += sh[0] * sh[1] * sh[2] * sh[3] > kTrivialElements;
      }
  }
  for (std::size_t i = 0; i < count; ++i) {
    if (!s.roles[i]) continue;
    const int island = s.island[i];
    s.converted[i] = choice == LayoutChoice::kEverywhere ||
                     (convs[island] > 0 && transposes[island] < 2 * convs[island]);
  }
  return s;
}

// Rewrites the nodes of the converted islands, in order, into a new node list.
class Rewriter {
 public:
  Rewriter(Graph& g, ChannelsLastWeights& weights, const Islands& s)
      : g_(g), weights_(weights), s_(s), twin_(g.values.size(), -1), leaving_(exits(g, s)) {}

  Result<ChannelsLastReport> run() {
    std::vector<Node> nodes = std::move(g_.nodes);
    g_.nodes.clear();
    std::map<int, bool> islands;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      Node& n = nodes[i];
      if (s_.converted[i]) {
        islands[s_.island[i]] = true;
        ++report_.nodes;
        report_.convs += n.op == OpType::kConv || n.op == OpType::kConvTranspose;
        FSWAP_RETURN_IF_ERROR(convert(n, *s_.roles[i]));
      } else if (is_absorbable_transpose(g_, n, s_)) {
        absorb(n);
      } else {
        g_.nodes.push_back(std::move(n));
      }
    }
    report_.islands = static_cast<int>(islands.size());
    return report_;
  }

 private:
  int add_constant(const std::string& name, Tensor t) {
    const int id = g_.add_value(name, t.dtype(), t.shape());
    g_.values[id].constant = static_cast<int>(g_.constants.size());
    g_.constants.push_back(std::move(t));
    return id;
  }

  int add_weight(const std::string& name, std::shared_ptr<const Tensor> t) {
    const int id = g_.add_value(name, t->dtype(), t->shape());
    g_.values[id].weight = static_cast<int>(g_.weights.size());
    g_.weights.push_back(WeightBlock{id, std::move(t)});
    return id;
  }

  void add_transpose(int from, int to, const std::array<std::int64_t, 4>& perm, const std::string& name) {
    Node t;
    t.op = OpType::kTranspose;
    t.name = name;
    t.inputs = {from};
    t.outputs = {to};
    t.attrs.values["perm"] = std::vector<std::int64_t>(perm.begin(), perm.end());
    g_.nodes.push_back(std::move(t));
    ++report_.transposes;
  }

  // The NHWC twin of a 4-D activation: made by its island producer, or by a Transpose added now.
  int twin_of(int v) {
    if (twin_[v] >= 0) return twin_[v];
    const std::string name = g_.values[v].name;
    twin_[v] = g_.add_value(name + "/nhwc", g_.values[v].dtype, nhwc_shape(g_.values[v].shape));
    add_transpose(v, twin_[v], kToNhwc, name + "/to_nhwc");
    return twin_[v];
  }

  // A constant operand padded to rank 4 and transposed; weights through the shared copies.
  int transposed_constant(int v) {
    if (auto it = constants_.find(v); it != constants_.end()) return it->second;
    const Value& value = g_.values[v];
    const std::string name = value.name + "/nhwc";
    const int id = value.weight >= 0 ? add_weight(name, weights_.of(g_.weights[value.weight].data))
                                     : add_constant(name, transposed_to_nhwc(*g_.constant_data(v)));
    constants_.emplace(v, id);
    return id;
  }

  int reordered_constant(int v, Role role) {
    const Tensor* t = g_.constant_data(v);
    const std::int64_t count = t->elements();
    if (role == Role::kAxes) {
      std::vector<std::int64_t> axes = *int_data(t);
      for (auto& a : axes) a = nhwc_axis(a);
      Tensor out = Tensor::zeros(DType::kInt64, {static_cast<std::int64_t>(axes.size())});
      std::copy(axes.begin(), axes.end(), out.data<std::int64_t>());
      return add_constant(g_.values[v].name + "/nhwc", std::move(out));
    }
    const std::int64_t axes = role == Role::kPads ? count / 2 : count;
    if (axes != 4) return v;  // empty (absent roi, scales or sizes)
    Tensor out = Tensor::zeros(t->dtype(), t->shape());
    const std::size_t size = dtype_size(t->dtype());
    const auto* in = static_cast<const std::byte*>(t->raw());
    auto* dst = static_cast<std::byte*>(out.raw());
    for (std::int64_t half = 0; half < count / axes; ++half)
      for (std::int64_t i = 0; i < 4; ++i)
        std::memcpy(dst + (half * 4 + i) * size, in + (half * 4 + kToNhwc[i]) * size, size);
    return add_constant(g_.values[v].name + "/nhwc", std::move(out));
  }

  Status convert(Node& n, const Roles& roles) {
    for (std::size_t k = 0; k < n.inputs.size(); ++k) {
      int& v = n.inputs[k];
      if (v < 0) continue;
      switch (roles[k]) {
        case Role::kData: case Role::kOperand:
          if (is_constant(g_, v)) {
            if (roles[k] == Role::kData || !all_ones(g_.values[v].shape)) v = transposed_constant(v);
          } else if (is_rank4(g_, v)) {
            v = twin_of(v);
          }
          break;
        case Role::kPads: case Role::kPerAxis: case Role::kAxes:
          v = reordered_constant(v, roles[k]);
          break;
        case Role::kKeep: break;
      }
    }
    const bool conv = n.op == OpType::kConv || n.op == OpType::kConvTranspose;
    if (conv && is_constant(g_, n.inputs[1])) n.inputs[1] = transposed_constant(n.inputs[1]);
    FSWAP_RETURN_IF_ERROR(convert_attributes(n));
    std::vector<int> produced;  // the node's outputs in ONNX's layout, now written as their twins
    for (int& v : n.outputs) {
      if (v < 0) continue;
      produced.push_back(v);
      v = twin_[v] = g_.add_value(g_.values[v].name + "/nhwc", g_.values[v].dtype, nhwc_shape(g_.values[v].shape));
    }
    g_.nodes.push_back(std::move(n));
    for (int original : produced)
      if (leaving_[original]) add_transpose(twin_[original], original, kToNchw, g_.values[original].name + "/to_nchw");
    return Status::ok();
  }

  Status convert_attributes(Node& n) {
    auto& attrs = n.attrs.values;
    if (is_layout_sensitive(n.op)) attrs["channels_last"] = std::int64_t{1};
    switch (n.op) {
      case OpType::kConcat: attrs["axis"] = nhwc_axis(n.attrs.i("axis", 0)); break;
      case OpType::kSplit: attrs["axis"] = nhwc_axis(n.attrs.i("axis", 0)); break;
      case OpType::kSoftmax: case OpType::kLogSoftmax: attrs["axis"] = nhwc_axis(n.attrs.i("axis", -1)); break;
      case OpType::kGlobalAveragePool: case OpType::kGlobalMaxPool:
        n.op = n.op == OpType::kGlobalAveragePool ? OpType::kReduceMean : OpType::kReduceMax;
        attrs["axes"] = std::vector<std::int64_t>{1, 2};
        attrs["keepdims"] = std::int64_t{1};
        break;
      case OpType::kPad: case OpType::kUpsample: {
        const char* name = n.op == OpType::kPad ? "pads" : "scales";
        if (!n.attrs.has(name)) break;
        if (n.op == OpType::kPad) {
          const auto pads = n.attrs.ints(name, {});
          if (pads.size() != 8) return invalid_input(n.name + ": Pad has " + std::to_string(pads.size()) + " pads for a 4-D input");
          std::vector<std::int64_t> out(8);
          for (int i = 0; i < 4; ++i) out[i] = pads[kToNhwc[i]], out[4 + i] = pads[4 + kToNhwc[i]];
          attrs[name] = out;
        } else {
          const auto scales = n.attrs.floats(name, {});
          if (scales.size() != 4) return invalid_input(n.name + ": Upsample has " + std::to_string(scales.size()) + " scales for a 4-D input");
          std::vector<float> out(4);
          for (int i = 0; i < 4; ++i) out[i] = scales[kToNhwc[i]];
          attrs[name] = out;
        }
        break;
      }
      default:
        if (is_reduce(n.op) && n.attrs.has("axes")) {
          std::vector<std::int64_t> axes = n.attrs.ints("axes", {});
          for (auto& a : axes) a = nhwc_axis(a);
          attrs["axes"] = axes;
        }
        break;
    }
    return Status::ok();
  }

  // A Transpose of an island value reads the twin with the layout folded into its permutation.
  void absorb(Node& n) {
    const std::vector<std::int64_t> perm = n.attrs.ints("perm", {});
    std::vector<std::int64_t> folded(4);
    bool identity = true;
    for (std::size_t i = 0; i < 4; ++i) {
      folded[i] = kToNchw[static_cast<std::size_t>(perm[i])];
      identity = identity && folded[i] == static_cast<std::int64_t>(i);
    }
    n.inputs[0] = twin_[n.inputs[0]];
    if (identity) {
      n.op = OpType::kIdentity;
      n.attrs.values.erase("perm");
    } else {
      n.attrs.values["perm"] = folded;
    }
    ++report_.absorbed;
    g_.nodes.push_back(std::move(n));
  }

  Graph& g_;
  ChannelsLastWeights& weights_;
  const Islands& s_;
  std::vector<int> twin_;        // value → its NHWC twin
  std::vector<bool> leaving_;    // island values read outside
  std::map<int, int> constants_; // constant value → its transposed copy
  ChannelsLastReport report_;
};

}  // namespace

std::shared_ptr<const Tensor> ChannelsLastWeights::of(const std::shared_ptr<const Tensor>& source) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = copies_.find(source.get());
  if (it == copies_.end())
    it = copies_.emplace(source.get(), std::make_pair(source, std::make_shared<const Tensor>(transposed_to_nhwc(*source))))
             .first;
  return it->second.second;
}

std::shared_ptr<const Tensor> ChannelsLastWeights::padded(const std::shared_ptr<const Tensor>& source,
                                                           const Shape& shape) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = padded_.find({source.get(), shape});
  if (it == padded_.end())
    it = padded_.emplace(std::make_pair(source.get(), shape),
                         std::make_pair(source, std::make_shared<const Tensor>(zero_padded(*source, shape))))
             .first;
  return it->second.second;
}

namespace {

// The filter and channel counts cuDNN's float16 tensor-core kernels are built for.
constexpr std::int64_t kChannelAlignment = 8;

std::int64_t aligned(std::int64_t n) { return (n + kChannelAlignment - 1) / kChannelAlignment * kChannelAlignment; }

// A channels_last one-group Conv, no input resize, whose weight is an initializer [M, kH, kW, C]:
// its input channels can be padded (a widened Conv's reader).
bool nhwc_conv(const Graph& g, const Node& n) {
  if (n.op != OpType::kConv || n.attrs.i("channels_last", 0) != 1 || n.attrs.i("group", 1) != 1 ||
      n.attrs.input_resize || n.inputs.size() < 2)
    return false;
  const Value& w = g.values[n.inputs[1]];
  return w.weight >= 0 && w.shape.size() == 4;
}

// ... and its filters too: no residual or PRelu slope (they would need padding), the bias (if any)
// an initializer.
bool widenable_conv(const Graph& g, const Node& n) {
  if (!nhwc_conv(g, n) || n.inputs.size() > 3) return false;
  return n.inputs.size() < 3 || n.inputs[2] < 0 || g.values[n.inputs[2]].weight >= 0;
}

// Input `k` of node n replaced by its weight zero-padded to `shape`.
void pad_weight(Graph& g, ChannelsLastWeights& weights, Node& n, std::size_t k, const Shape& shape) {
  const Value& v = g.values[n.inputs[k]];
  std::shared_ptr<const Tensor> data = weights.padded(g.weights[v.weight].data, shape);
  std::string name = v.name + std::string(kAlignedWeightSuffix);  // before add_value moves the values
  const int id = g.add_value(std::move(name), data->dtype(), data->shape());
  g.values[id].weight = static_cast<int>(g.weights.size());
  g.weights.push_back(WeightBlock{id, std::move(data)});
  n.inputs[k] = id;
}

}  // namespace

int align_conv_channels(Graph& g, ChannelsLastWeights& weights) {
  std::vector<std::vector<std::size_t>> readers(g.values.size());
  for (std::size_t i = 0; i < g.nodes.size(); ++i)
    for (int v : g.nodes[i].inputs)
      if (v >= 0) readers[v].push_back(i);
  for (int v : g.outputs) readers[v].push_back(g.nodes.size());  // read outside: never widened
  int widened = 0;
  for (Node& p : g.nodes) {
    if (!widenable_conv(g, p)) continue;
    const int y = p.outputs[0];
    const Shape w = g.values[p.inputs[1]].shape;
    const std::int64_t filters = aligned(w[0]);
    if (filters == w[0] || readers[y].empty()) continue;
    const bool only_convs = std::all_of(readers[y].begin(), readers[y].end(), [&](std::size_t r) {
      if (r >= g.nodes.size()) return false;
      const Node& n = g.nodes[r];
      return nhwc_conv(g, n) && std::count(n.inputs.begin(), n.inputs.end(), y) == 1 && n.inputs[0] == y;
    });
    if (!only_convs) continue;
    pad_weight(g, weights, p, 1, {filters, w[1], w[2], w[3]});
    if (p.inputs.size() == 3 && p.inputs[2] >= 0) pad_weight(g, weights, p, 2, {filters});
    g.values[y].shape[3] = filters;
    for (std::size_t r : readers[y]) {
      Node& reader = g.nodes[r];
      Shape rw = g.values[reader.inputs[1]].shape;
      rw[3] = filters;
      pad_weight(g, weights, reader, 1, rw);
    }
    ++widened;
  }
  return widened;
}

Result<ChannelsLastReport> to_channels_last(Graph& g, ChannelsLastWeights& weights, LayoutChoice choice) {
  for (const Value& v : g.values)
    if (!v.known_shape)
      return internal_error(g.path + ": the channels-last pass needs a specialised graph (" + v.name + " has no shape)");
  const Islands islands = find_islands(g, choice);
  if (std::none_of(islands.converted.begin(), islands.converted.end(), [](bool c) { return c; }))
    return ChannelsLastReport{};
  FSWAP_ASSIGN_OR_RETURN(ChannelsLastReport report, Rewriter(g, weights, islands).run());
  FSWAP_RETURN_IF_ERROR(remove_dead_nodes(g));  // the NCHW copies nothing reads any more
  return report;
}

Status ChannelsLastPlan::apply(Graph& g) const {
  if (!choice) return Status::ok();
  if (weights == nullptr) return internal_error(g.path + ": a channels-last plan without its weight copies");
  FSWAP_ASSIGN_OR_RETURN(const ChannelsLastReport r, to_channels_last(g, *weights, *choice));
  if (r.islands > 0)
    log_debug(g.path + ": channels-last: " + std::to_string(r.islands) + " islands, " + std::to_string(r.nodes) +
              " nodes (" + std::to_string(r.convs) + " convolutions), " + std::to_string(r.transposes) +
              " transposes added, " + std::to_string(r.absorbed) + " absorbed");
  if (align_channels && r.islands > 0) {
    const int widened = align_conv_channels(g, *weights);
    if (widened > 0) log_debug(g.path + ": " + std::to_string(widened) + " convolutions widened to aligned filter counts");
  }
  return Status::ok();
}

}  // namespace fswap
