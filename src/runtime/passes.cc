#include "runtime/passes.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/cpu/cpu_kernels.h"
#include "backends/op_rules.h"
#include "runtime/shape_inference.h"

namespace fswap {
namespace {

bool is_constant(const Graph& g, int v) { return v >= 0 && (g.values[v].weight >= 0 || g.values[v].constant >= 0); }

// How many times each value is read: node inputs plus one per appearance as a graph output.
std::vector<int> use_counts(const Graph& g) {
  std::vector<int> uses(g.values.size(), 0);
  for (const Node& n : g.nodes)
    for (int v : n.inputs)
      if (v >= 0) ++uses[v];
  for (int v : g.outputs) ++uses[v];
  return uses;
}

// The node index that reads each value (the last one when several do); -1 when none.
std::vector<int> consumers(const Graph& g) {
  std::vector<int> c(g.values.size(), -1);
  for (std::size_t i = 0; i < g.nodes.size(); ++i)
    for (int v : g.nodes[i].inputs)
      if (v >= 0) c[v] = static_cast<int>(i);
  return c;
}

std::vector<int> producers(const Graph& g) {
  std::vector<int> p(g.values.size(), -1);
  for (std::size_t i = 0; i < g.nodes.size(); ++i)
    for (int v : g.nodes[i].outputs)
      if (v >= 0) p[v] = static_cast<int>(i);
  return p;
}

void erase_nodes(Graph& g, const std::vector<bool>& removed) {
  std::vector<Node> kept;
  kept.reserve(g.nodes.size());
  for (std::size_t i = 0; i < g.nodes.size(); ++i)
    if (!removed[i]) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
}

// Computes node's outputs now, with its CPU kernel or, for shape arithmetic, without one.
// Inputs must be constant (or, for Shape and Size, shaped) and outputs already shaped.
// Returns false when the node cannot be computed here; it then stays a runtime node.
bool try_fold(Graph& g, const Node& n) {
  std::vector<Tensor> results;
  const bool shape_only = n.op == OpType::kShape || n.op == OpType::kSize || n.op == OpType::kConstant;
  if (!shape_only) {
    if (CpuKernel kernel = cpu_kernel(n.op)) {
      std::vector<TensorView> inputs;
      for (int v : n.inputs) inputs.push_back(v >= 0 ? g.constant_data(v)->view() : TensorView{});
      for (int v : n.outputs) results.push_back(v >= 0 ? Tensor::zeros(g.values[v].dtype, g.values[v].shape) : Tensor{});
      std::vector<TensorView> outputs;
      for (auto& t : results) outputs.push_back(t.view());
      if (!kernel(KernelArgs{n.op, n.attrs, std::move(inputs), std::move(outputs)}).is_ok()) results.clear();
    }
  }
  if (results.empty()) {
    std::optional<Tensor> t = evaluate_shape_op(g, n);
    if (!t) return false;
    results.push_back(std::move(*t));
  }
  for (std::size_t k = 0; k < n.outputs.size() && k < results.size(); ++k) {
    const int v = n.outputs[k];
    if (v < 0) continue;
    Value& value = g.values[v];
    value.dtype = results[k].dtype();
    value.shape = results[k].shape();
    value.known_shape = true;
    value.constant = static_cast<int>(g.constants.size());
    g.constants.push_back(std::move(results[k]));
  }
  return true;
}

bool all_inputs_constant(const Graph& g, const Node& n) {
  bool any = false;
  for (int v : n.inputs) {
    if (v < 0) continue;
    if (!is_constant(g, v)) return false;
    any = true;
  }
  return any || n.op == OpType::kConstant;
}

// A new weight of this data (its value id): a block of its own, which the graph's copies share
// (Graph::weights).
int add_weight(Graph& g, Tensor t, std::string name) {
  const int id = g.add_value(std::move(name), t.dtype(), t.shape());
  g.values[id].weight = static_cast<int>(g.weights.size());
  g.weights.push_back(WeightBlock{id, std::make_shared<const Tensor>(std::move(t))});
  return id;
}

// BatchNormalization in inference mode as y = a[c]·x + b[c] over channel axis 1: a = scale / √(var + ε),
// b = shift − mean·a (the CPU kernel's arithmetic); nullopt unless its statistics are float32
// constants of `channels` values.
struct ChannelAffine {
  std::vector<float> a, b;
};
std::optional<ChannelAffine> batchnorm_affine(const Graph& g, const Node& bn, std::int64_t channels) {
  const Tensor* stats[4];
  for (int k = 0; k < 4; ++k) {
    stats[k] = g.constant_data(bn.inputs[1 + k]);
    if (stats[k] == nullptr || stats[k]->dtype() != DType::kFloat32 || stats[k]->elements() != channels)
      return std::nullopt;
  }
  const float eps = bn.attrs.f("epsilon", 1e-5f);
  const float *scale = stats[0]->data<float>(), *shift = stats[1]->data<float>();
  const float *mean = stats[2]->data<float>(), *var = stats[3]->data<float>();
  ChannelAffine f{std::vector<float>(channels), std::vector<float>(channels)};
  for (std::int64_t c = 0; c < channels; ++c) {
    f.a[c] = scale[c] / std::sqrt(var[c] + eps);
    f.b[c] = shift[c] - mean[c] * f.a[c];
  }
  return f;
}

// A BatchNormalization the passes may fold: inference mode, its statistics given (five inputs),
// nothing fused into it yet, and its training outputs (running statistics) read by nobody.
bool foldable_batchnorm(const Node& bn, const std::vector<int>& uses) {
  if (bn.op != OpType::kBatchNormalization || bn.inputs.size() < 5 || bn.attrs.i("training_mode", 0) != 0 ||
      bn.attrs.activation.kind != Activation::kNone)
    return false;
  for (std::size_t k = 1; k < bn.outputs.size(); ++k)
    if (bn.outputs[k] >= 0 && uses[bn.outputs[k]] > 0) return false;
  return true;
}

// Whether t is a float32 constant of one value per output column of a Gemm (or channel of a Conv)
// with `outputs` of them: [N] or [1, N], nothing that broadcasts otherwise.
bool one_per_output(const Tensor* t, std::int64_t outputs) {
  return t != nullptr && t->dtype() == DType::kFloat32 && t->elements() == outputs && t->shape().back() == outputs;
}

// A node whose output a following BatchNormalization may fold into: a Conv, or a Gemm whose B is
// [N, K] (transB = 1, ArcFace's embedding layer); both keep one row of weights per output channel.
// Nothing fused yet (a residual would be added before the BatchNormalization applies).
bool takes_batchnorm(const Node& n) {
  if (n.attrs.activation.kind != Activation::kNone || n.inputs.size() < 2 || n.inputs.size() > 3) return false;
  return n.op == OpType::kConv || (n.op == OpType::kGemm && n.attrs.i("transB", 0) == 1);
}

// Folds Conv or Gemm → BatchNormalization (inference mode, constant statistics) into new weights.
int fuse_conv_batchnorm(Graph& g) {
  const auto uses = use_counts(g);
  const auto prod = producers(g);
  std::vector<bool> removed(g.nodes.size(), false);
  int fused = 0;
  for (std::size_t bi = 0; bi < g.nodes.size(); ++bi) {
    const Node& bn = g.nodes[bi];
    if (!foldable_batchnorm(bn, uses)) continue;
    const int x = bn.inputs[0];
    if (x < 0 || uses[x] != 1 || prod[x] < 0) continue;
    Node& conv = g.nodes[prod[x]];
    if (!takes_batchnorm(conv)) continue;
    const Tensor* w = g.constant_data(conv.inputs[1]);
    const Tensor* b = conv.inputs.size() > 2 && conv.inputs[2] >= 0 ? g.constant_data(conv.inputs[2]) : nullptr;
    if (conv.inputs.size() > 2 && conv.inputs[2] >= 0 && !b) continue;
    if (!w || w->dtype() != DType::kFloat32 || w->shape().size() < 2) continue;
    const bool gemm = conv.op == OpType::kGemm;
    if (gemm && w->shape().size() != 2) continue;
    const std::int64_t cout = w->shape()[0];
    const std::optional<ChannelAffine> f = batchnorm_affine(g, bn, cout);
    if (!f || (b && !one_per_output(b, cout))) continue;

    // BN(conv(x, W) + bias) = conv(x, W·a) + bias·a + b, per output channel; a Gemm's C is scaled
    // by its beta first (which becomes 1), its alpha applies to the scaled W as it did to W.
    const float beta = gemm ? conv.attrs.f("beta", 1.0f) : 1.0f;
    Tensor nw = Tensor::copy_of(w->view());
    Tensor nb = Tensor::zeros(DType::kFloat32, {cout});
    const std::int64_t per_channel = w->elements() / cout;
    for (std::int64_t c = 0; c < cout; ++c) {
      float* wc = nw.data<float>() + c * per_channel;
      for (std::int64_t j = 0; j < per_channel; ++j) wc[j] *= f->a[c];
      nb.data<float>()[c] = (b ? beta * b->data<float>()[c] : 0.0f) * f->a[c] + f->b[c];
    }
    const int wid = add_weight(g, std::move(nw), conv.name + "/weight_bn_folded");
    const int bid = add_weight(g, std::move(nb), conv.name + "/bias_bn_folded");
    Node& c2 = g.nodes[prod[x]];  // g.values grew; the node reference stays valid but re-fetch for clarity
    c2.inputs.resize(3);
    c2.inputs[1] = wid;
    c2.inputs[2] = bid;
    c2.outputs[0] = bn.outputs[0];
    if (gemm) c2.attrs.values["beta"] = 1.0f;
    removed[bi] = true;
    ++fused;
  }
  erase_nodes(g, removed);
  return fused;
}

// BatchNormalization → Flatten(axis 1) → Gemm(transA 0, transB 1) with B a float32 constant [N, K]
// (ArcFace's last BN before its embedding layer): Flatten puts channel c's S = K / C values at
// k = c·S + s, so with BN(x) = a[c]·x + b[c],
//   Gemm(Flatten(BN(x))) = alpha·Flatten(x)·(B·a[k / S])ᵀ + (beta·C + alpha·B·b[k / S]),
// and the BN goes (beta becomes 1). Each intermediate is read only by the next; C absent or one
// value per output column.
int fuse_batchnorm_flatten_gemm(Graph& g) {
  const auto uses = use_counts(g);
  const auto cons = consumers(g);
  std::vector<bool> removed(g.nodes.size(), false);
  int fused = 0;
  for (std::size_t bi = 0; bi < g.nodes.size(); ++bi) {
    const Node& bn = g.nodes[bi];
    if (!foldable_batchnorm(bn, uses) || uses[bn.outputs[0]] != 1) continue;
    const int fi = cons[bn.outputs[0]];
    if (fi < 0 || g.nodes[fi].op != OpType::kFlatten || g.nodes[fi].attrs.i("axis", 1) != 1) continue;
    const int flat = g.nodes[fi].outputs[0];
    const int gi = uses[flat] == 1 ? cons[flat] : -1;
    if (gi < 0) continue;
    const Node& gemm = g.nodes[gi];
    if (gemm.op != OpType::kGemm || gemm.inputs[0] != flat || gemm.inputs.size() > 3 ||
        gemm.attrs.activation.kind != Activation::kNone || gemm.attrs.i("transA", 0) != 0 ||
        gemm.attrs.i("transB", 0) != 1)
      continue;
    const Tensor* w = g.constant_data(gemm.inputs[1]);
    const Tensor* c = gemm.inputs.size() > 2 && gemm.inputs[2] >= 0 ? g.constant_data(gemm.inputs[2]) : nullptr;
    if (!w || w->dtype() != DType::kFloat32 || w->shape().size() != 2) continue;
    const std::int64_t outputs = w->shape()[0], width = w->shape()[1];
    if (gemm.inputs.size() > 2 && gemm.inputs[2] >= 0 && !one_per_output(c, outputs)) continue;
    const Tensor* scale = g.constant_data(bn.inputs[1]);
    if (!scale || scale->elements() <= 0 || width % scale->elements() != 0) continue;
    const std::int64_t channels = scale->elements(), per_channel = width / channels;
    const std::optional<ChannelAffine> f = batchnorm_affine(g, bn, channels);
    if (!f) continue;
    const float alpha = gemm.attrs.f("alpha", 1.0f), beta = gemm.attrs.f("beta", 1.0f);
    Tensor nw = Tensor::copy_of(w->view());
    Tensor nc = Tensor::zeros(DType::kFloat32, {outputs});
    for (std::int64_t n = 0; n < outputs; ++n) {
      float* row = nw.data<float>() + n * width;
      double shift = 0;
      for (std::int64_t k = 0; k < width; ++k) {
        shift += static_cast<double>(row[k]) * f->b[k / per_channel];
        row[k] *= f->a[k / per_channel];
      }
      nc.data<float>()[n] = (c ? beta * c->data<float>()[n] : 0.0f) + alpha * static_cast<float>(shift);
    }
    const int wid = add_weight(g, std::move(nw), gemm.name + "/weight_bn_folded");
    const int cid = add_weight(g, std::move(nc), gemm.name + "/bias_bn_folded");
    Node& target = g.nodes[gi];
    target.inputs.resize(3);
    target.inputs[1] = wid;
    target.inputs[2] = cid;
    target.attrs.values["beta"] = 1.0f;
    g.nodes[fi].inputs[0] = bn.inputs[0];
    removed[bi] = true;
    ++fused;
  }
  erase_nodes(g, removed);
  return fused;
}

// MatMul → Add(constant [N]) where N is the MatMul's last output dim: the Add becomes input 2.
int fuse_matmul_bias(Graph& g) {
  const auto uses = use_counts(g);
  const auto cons = consumers(g);
  std::vector<bool> removed(g.nodes.size(), false);
  int fused = 0;
  for (Node& mm : g.nodes) {
    if (mm.op != OpType::kMatMul || mm.inputs.size() != 2 || mm.attrs.activation.kind != Activation::kNone) continue;
    const int y = mm.outputs[0];
    if (uses[y] != 1 || cons[y] < 0) continue;
    const Node& add = g.nodes[cons[y]];
    if (add.op != OpType::kAdd || add.inputs.size() != 2) continue;
    const int bias = add.inputs[0] == y ? add.inputs[1] : add.inputs[0];
    const Tensor* bt = g.constant_data(bias);
    const Value& bv = g.values[mm.inputs[1]];
    if (!bt || bt->shape().size() != 1 || !bv.known_shape || bv.shape.size() < 2) continue;
    if (bt->shape()[0] != bv.shape.back() || bt->dtype() != g.values[mm.inputs[0]].dtype) continue;
    mm.inputs.push_back(bias);
    mm.outputs[0] = add.outputs[0];
    removed[cons[y]] = true;
    ++fused;
  }
  erase_nodes(g, removed);
  return fused;
}

// The ops whose kernels apply a fused activation (OpAttributes::activation).
bool takes_activation(OpType op) {
  return op == OpType::kConv || op == OpType::kConvTranspose || op == OpType::kGemm || op == OpType::kMatMul ||
         op == OpType::kBatchNormalization || op == OpType::kInstanceNormalization;
}

// A new float32 constant [C] of these values (its value id).
int add_channel_constant(Graph& g, std::string name, const std::vector<float>& values) {
  const auto channels = static_cast<std::int64_t>(values.size());
  Tensor t = Tensor::zeros(DType::kFloat32, {channels});
  std::copy(values.begin(), values.end(), t.data<float>());
  const int v = g.add_value(std::move(name), DType::kFloat32, {channels});
  g.values[v].constant = static_cast<int>(g.constants.size());
  g.constants.push_back(std::move(t));
  return v;
}

// The per-channel slope of PRelu(y, slope) after a Conv with weight W ([M, C/g, k...]): a float32
// constant of M values whose shape, right-aligned to Y's rank, puts them on the channel axis
// ([M, 1, 1] or [1, M, 1, 1] for a 2-D Conv), as a new [M] constant's value id; −1 otherwise. A
// single value is a LeakyRelu and is left to the caller.
int channel_slope(Graph& g, const Node& conv, const Node& prelu) {
  const Tensor* w = conv.inputs.size() > 1 ? g.constant_data(conv.inputs[1]) : nullptr;
  const Tensor* s = prelu.inputs.size() > 1 ? g.constant_data(prelu.inputs[1]) : nullptr;
  if (w == nullptr || s == nullptr || s->dtype() != DType::kFloat32 || w->shape().size() < 3) return -1;
  const std::int64_t m = w->shape()[0];
  const Shape& shape = s->shape();
  const std::size_t rank = w->shape().size();  // Y's rank
  if (m < 2 || s->elements() != m || shape.size() > rank || shape.size() < rank - 1) return -1;
  if (shape[shape.size() - (rank - 1)] != m) return -1;  // axis 1 of Y, right-aligned
  const float* slope = s->data<float>();
  return add_channel_constant(g, g.values[prelu.inputs[1]].name + "/per_channel", std::vector<float>(slope, slope + m));
}

// Conv/ConvTranspose/Gemm/MatMul/BatchNormalization/InstanceNormalization → a single-consumer activation:
// attrs.activation (a BatchNormalization left after fuse_conv_batchnorm is a standalone one, as in
// pre-activation ResNets: BN → ReLU → Conv). A Conv also takes a PRelu whose slope is one value
// (a LeakyRelu) or one per output channel (kPRelu, the slope as input 4: backends/op.h).
int fuse_activations(Graph& g) {
  const auto uses = use_counts(g);
  const auto cons = consumers(g);
  std::vector<bool> removed(g.nodes.size(), false);
  int fused = 0;
  for (Node& p : g.nodes) {
    if (!takes_activation(p.op))
      continue;
    if (p.attrs.activation.kind != Activation::kNone || p.outputs.empty()) continue;
    const int y = p.outputs[0];
    if (y < 0 || uses[y] != 1 || cons[y] < 0) continue;
    const Node& q = g.nodes[cons[y]];
    if (q.inputs.empty() || q.inputs[0] != y) continue;
    FusedActivation act;
    switch (q.op) {
      case OpType::kRelu: act.kind = Activation::kRelu; break;
      case OpType::kSigmoid: act.kind = Activation::kSigmoid; break;
      case OpType::kTanh: act.kind = Activation::kTanh; break;
      case OpType::kLeakyRelu:
        act = {Activation::kLeakyRelu, q.attrs.f("alpha", 0.01f), 0};
        break;
      case OpType::kHardSigmoid:
        act = {Activation::kHardSigmoid, q.attrs.f("alpha", 0.2f), q.attrs.f("beta", 0.5f)};
        break;
      case OpType::kClip: {
        float lo = q.attrs.f("min", std::numeric_limits<float>::lowest());
        float hi = q.attrs.f("max", std::numeric_limits<float>::max());
        bool ok = true;
        for (int k = 1; k <= 2 && ok; ++k) {
          if (static_cast<int>(q.inputs.size()) <= k || q.inputs[k] < 0) continue;
          const Tensor* t = g.constant_data(q.inputs[k]);
          ok = t && t->dtype() == DType::kFloat32 && t->elements() == 1;
          if (ok) (k == 1 ? lo : hi) = t->data<float>()[0];
        }
        if (!ok) continue;
        act = {Activation::kClip, lo, hi};
        break;
      }
      case OpType::kPRelu: {
        if (p.op != OpType::kConv || q.inputs.size() != 2) continue;
        const Tensor* s = g.constant_data(q.inputs[1]);
        if (s != nullptr && s->dtype() == DType::kFloat32 && s->elements() == 1) {
          act = {Activation::kLeakyRelu, s->data<float>()[0], 0};
          break;
        }
        const int slope = channel_slope(g, p, q);
        if (slope < 0) continue;
        p.inputs.resize(std::max<std::size_t>(p.inputs.size(), 4), -1);
        p.inputs.push_back(slope);
        act.kind = Activation::kPRelu;
        break;
      }
      default: continue;
    }
    p.attrs.activation = act;
    p.outputs[0] = q.outputs[0];
    removed[cons[y]] = true;
    ++fused;
  }
  erase_nodes(g, removed);
  return fused;
}

// Conv/ConvTranspose/Gemm/MatMul/BatchNormalization → y read only by s = Sigmoid(y) and Mul(y, s)
// (s read only there): SiLU, attrs.activation kSilu.
int fuse_silu(Graph& g) {
  const auto uses = use_counts(g);
  std::vector<int> prod = producers(g);
  std::vector<std::vector<int>> readers(g.values.size());
  for (std::size_t i = 0; i < g.nodes.size(); ++i)
    for (int v : g.nodes[i].inputs)
      if (v >= 0) readers[v].push_back(static_cast<int>(i));
  std::vector<bool> removed(g.nodes.size(), false);
  int fused = 0;
  for (std::size_t si = 0; si < g.nodes.size(); ++si) {
    const Node& sigmoid = g.nodes[si];
    if (sigmoid.op != OpType::kSigmoid || sigmoid.inputs.size() != 1 || sigmoid.outputs.size() != 1) continue;
    const int y = sigmoid.inputs[0], s = sigmoid.outputs[0];
    if (y < 0 || uses[y] != 2 || uses[s] != 1 || prod[y] < 0 || readers[s].size() != 1) continue;
    Node& p = g.nodes[prod[y]];
    if (!takes_activation(p.op))
      continue;
    if (p.attrs.activation.kind != Activation::kNone || p.outputs.empty() || p.outputs[0] != y) continue;
    const Node& mul = g.nodes[readers[s][0]];
    if (mul.op != OpType::kMul || mul.inputs.size() != 2 || mul.outputs.size() != 1) continue;
    if (!((mul.inputs[0] == y && mul.inputs[1] == s) || (mul.inputs[0] == s && mul.inputs[1] == y))) continue;
    p.attrs.activation = {Activation::kSilu, 0, 0};
    p.outputs[0] = mul.outputs[0];
    removed[si] = true;
    removed[readers[s][0]] = true;
    ++fused;
  }
  erase_nodes(g, removed);
  return fused;
}

// The graph's values shaped as specialize() would shape them, before specialisation: each input
// takes its declared shape, a dynamic dim 0 (the batch) becoming `batch` and any other dynamic dim
// `size`. Nothing is erased, so value ids match g's. nullopt when an input has no declared rank or
// a node cannot be shaped at these sizes.
std::optional<std::vector<Value>> probe_shapes(const Graph& g, std::int64_t batch, std::int64_t size) {
  Graph p = g;
  std::vector<bool> is_input(p.values.size(), false);
  for (int v : p.inputs) {
    Value& value = p.values[v];
    if (value.shape.empty() && !value.known_shape) return std::nullopt;
    for (std::size_t d = 0; d < value.shape.size(); ++d)
      if (value.shape[d] < 0) value.shape[d] = d == 0 ? batch : size;
    value.known_shape = true;
    is_input[v] = true;
  }
  for (std::size_t v = 0; v < p.values.size(); ++v)
    if (!is_input[v] && !is_constant(p, static_cast<int>(v))) p.values[v].known_shape = false;
  for (const Node& n : p.nodes) {
    if (!infer_node_shapes(p, n).is_ok()) return std::nullopt;
    if (all_inputs_constant(p, n) || n.op == OpType::kShape || n.op == OpType::kSize) try_fold(p, n);
  }
  return std::move(p.values);
}

// Add(y, r) with y = Conv(x) or ConvTranspose(x) (no fused activation, no residual yet, y read
// by nothing else) and r of y's exact shape → the conv takes r as its residual input 3 and the
// Add's output; the Add goes. Shapes are not known before specialisation, so the graph is probed
// at two sizes (probe_shapes: dynamic batch 2 and 3, other dynamic dims 256 and 320); r must have
// y's shape and dtype in both, which rules out broadcasting Adds (and a model that cannot be
// probed fuses nothing). Should a later input size still give them different shapes, the conv's
// shape rule rejects it naming the node. When both operands qualify, the conv that comes later
// takes the other. When r is computed after the conv, the conv moves to the Add's position (all
// of its inputs precede the Add, and nothing but the Add read y), keeping the order topological.
int fuse_residual_add(Graph& g) {
  const auto uses = use_counts(g);
  const auto prod = producers(g);
  const std::optional<std::vector<Value>> probes[] = {probe_shapes(g, 2, 256), probe_shapes(g, 3, 320)};
  for (const auto& probe : probes)
    if (!probe) return 0;
  auto same_shape = [&](int a, int b) {
    for (const auto& probe : probes) {
      const Value &va = (*probe)[a], &vb = (*probe)[b];
      if (!va.known_shape || !vb.known_shape || va.shape != vb.shape || va.dtype != vb.dtype) return false;
    }
    return true;
  };
  auto fusable_conv = [&](int y) {
    if (y < 0 || prod[y] < 0 || uses[y] != 1) return false;
    const Node& c = g.nodes[prod[y]];
    return (c.op == OpType::kConv || c.op == OpType::kConvTranspose) && c.attrs.activation.kind == Activation::kNone &&
           c.inputs.size() <= 3 && c.outputs[0] == y;
  };
  std::vector<bool> removed(g.nodes.size(), false);
  std::vector<int> moved_here(g.nodes.size(), -1);  // at an Add's index: the conv that takes its place
  int fused = 0;
  for (std::size_t ai = 0; ai < g.nodes.size(); ++ai) {
    const Node& add = g.nodes[ai];
    if (add.op != OpType::kAdd || add.inputs.size() != 2 || add.outputs.size() != 1 || add.outputs[0] < 0) continue;
    int side = -1;  // the operand index of the conv output that takes the other
    for (int k = 0; k < 2; ++k) {
      const int y = add.inputs[k], r = add.inputs[1 - k];
      if (!fusable_conv(y) || r < 0 || r == y || !same_shape(y, r)) continue;
      if (side < 0 || prod[y] > prod[add.inputs[side]]) side = k;
    }
    if (side < 0) continue;
    const int y = add.inputs[side], r = add.inputs[1 - side];
    Node& conv = g.nodes[prod[y]];
    conv.inputs.resize(3, -1);
    conv.inputs.push_back(r);
    conv.outputs[0] = add.outputs[0];
    if (prod[r] > prod[y]) {
      removed[prod[y]] = true;
      moved_here[ai] = prod[y];
    } else {
      removed[ai] = true;
    }
    ++fused;
  }
  std::vector<Node> nodes;
  nodes.reserve(g.nodes.size());
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    if (moved_here[i] >= 0)
      nodes.push_back(std::move(g.nodes[moved_here[i]]));
    else if (!removed[i])
      nodes.push_back(std::move(g.nodes[i]));
  }
  g.nodes = std::move(nodes);
  return fused;
}

// Whether the Conv reads no zero padding: every output sees the same input window contents when
// the input is constant per channel.
bool unpadded(const Node& conv) {
  const std::string auto_pad = conv.attrs.s("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID") return false;
  const std::vector<std::int64_t> pads = conv.attrs.ints("pads", {});
  return auto_pad == "VALID" || std::all_of(pads.begin(), pads.end(), [](std::int64_t p) { return p == 0; });
}

// BatchNormalization → Conv with zero padding, the BN's output read only by the Conv as its X (a
// pre-activation ResNet block's BN → Conv, ArcFace's IResNet). With BN(x) = a·x + b per channel,
//   conv(pad0(a·x + b), W) = conv(pad0(x), W·a) + conv(pad0(B), W),
// W·a scaling W's input-channel axis (group by group) and B the image of b[c] at X's size. The
// second term M is a constant: the Conv reads x with weight W·a and adds M as its residual input 3,
// [1, M, OH, OW] broadcast over the batch (backends/op.h); a Conv that reads no padding sees
// the same M everywhere in a channel, which then joins its bias instead. Runs after
// fuse_conv_batchnorm (a BN that follows a Conv folds there, without a residual) and before
// fuse_residual_add and fuse_activations (the Conv still takes its activation; an Add after it
// then stays an Add, as it has a residual). M is computed with the CPU Conv kernel at X's size, so
// the graph is probed (probe_shapes) and only a Conv whose X and Y agree beyond the batch at both
// probe sizes is rewritten. Also left: a BN in training mode, with an activation or its extra
// outputs read; a Conv with an activation, a residual or an input resize; operands that are not
// float32 constants.
int fuse_batchnorm_conv(Graph& g) {
  const auto uses = use_counts(g);
  const auto prod = producers(g);
  std::vector<int> candidates;  // Conv node indices
  for (std::size_t ci = 0; ci < g.nodes.size(); ++ci) {
    const Node& conv = g.nodes[ci];
    if (conv.op != OpType::kConv || conv.inputs.size() < 2 || conv.inputs.size() > 3 || conv.outputs.empty() ||
        conv.attrs.activation.kind != Activation::kNone || conv.attrs.input_resize ||
        conv.attrs.i("channels_last", 0) != 0)
      continue;
    const int x = conv.inputs[0];
    if (x < 0 || uses[x] != 1 || prod[x] < 0) continue;
    const Node& bn = g.nodes[prod[x]];
    if (foldable_batchnorm(bn, uses) && bn.outputs[0] == x) candidates.push_back(static_cast<int>(ci));
  }
  if (candidates.empty()) return 0;
  const std::optional<std::vector<Value>> probes[] = {probe_shapes(g, 2, 256), probe_shapes(g, 3, 320)};
  for (const auto& probe : probes)
    if (!probe) return 0;
  // v's shape beyond the batch, when the probes agree on it (and on its rank); nullopt otherwise.
  const auto fixed_item = [&](int v) -> std::optional<Shape> {
    const Value &p2 = (*probes[0])[v], &p3 = (*probes[1])[v];
    if (!p2.known_shape || !p3.known_shape || p2.shape.size() < 3 || p2.shape.size() != p3.shape.size() ||
        !std::equal(p2.shape.begin() + 1, p2.shape.end(), p3.shape.begin() + 1))
      return std::nullopt;
    Shape item = p2.shape;
    item[0] = 1;
    return item;
  };
  const CpuKernel run_conv = cpu_kernel(OpType::kConv);
  std::vector<bool> removed(g.nodes.size(), false);
  int fused = 0;
  for (const int ci : candidates) {
    const Node& conv = g.nodes[ci];
    const int bi = prod[conv.inputs[0]];
    const Node& bn = g.nodes[bi];
    const Tensor* w = g.constant_data(conv.inputs[1]);
    const int bias_id = conv.inputs.size() > 2 ? conv.inputs[2] : -1;
    const Tensor* bias = bias_id >= 0 ? g.constant_data(bias_id) : nullptr;
    const std::optional<Shape> x_item = fixed_item(conv.inputs[0]), y_item = fixed_item(conv.outputs[0]);
    if (w == nullptr || w->dtype() != DType::kFloat32 || !x_item || !y_item || w->shape().size() != x_item->size() ||
        (bias_id >= 0 && (bias == nullptr || bias->dtype() != DType::kFloat32)))
      continue;
    const std::int64_t group = conv.attrs.i("group", 1), out_channels = w->shape()[0];
    const std::int64_t channels = (*x_item)[1], group_channels = w->shape()[1];
    if (group < 1 || channels != group_channels * group || out_channels % group != 0 ||
        (bias != nullptr && bias->elements() != out_channels))
      continue;
    const std::optional<ChannelAffine> f = batchnorm_affine(g, bn, channels);
    if (!f) continue;

    // M = conv(pad0(B), W) for one batch item, by the CPU kernel on the Conv's own attributes.
    Tensor image = Tensor::zeros(DType::kFloat32, *x_item);
    const std::int64_t plane = image.elements() / channels;
    for (std::int64_t c = 0; c < channels; ++c)
      std::fill_n(image.data<float>() + c * plane, plane, f->b[c]);
    Tensor m = Tensor::zeros(DType::kFloat32, *y_item);
    if (!run_conv || !run_conv(KernelArgs{OpType::kConv, conv.attrs, {image.view(), w->view()}, {m.view()}}).is_ok())
      continue;

    // W·a: weight row o (output channel) belongs to group o / (M / group), whose input channels start at
    // group_channels times that.
    Tensor scaled = Tensor::copy_of(w->view());
    const std::int64_t per_channel = w->elements() / (out_channels * group_channels);
    for (std::int64_t o = 0; o < out_channels; ++o) {
      const std::int64_t first = o / (out_channels / group) * group_channels;
      for (std::int64_t j = 0; j < group_channels; ++j) {
        float* k = scaled.data<float>() + (o * group_channels + j) * per_channel;
        for (std::int64_t i = 0; i < per_channel; ++i) k[i] *= f->a[first + j];
      }
    }
    Node& target = g.nodes[ci];
    const std::string name = target.name;
    target.inputs[0] = bn.inputs[0];
    target.inputs[1] = add_weight(g, std::move(scaled), name + "/weight_bn_input_folded");
    if (unpadded(target)) {
      const std::int64_t out_plane = m.elements() / out_channels;
      Tensor b = Tensor::zeros(DType::kFloat32, {out_channels});
      for (std::int64_t o = 0; o < out_channels; ++o)
        b.data<float>()[o] = (bias != nullptr ? bias->data<float>()[o] : 0.0f) + m.data<float>()[o * out_plane];
      target.inputs.resize(3);
      target.inputs[2] = add_weight(g, std::move(b), name + "/bias_bn_input_folded");
    } else {
      target.inputs.resize(3, -1);
      target.inputs.push_back(add_weight(g, std::move(m), name + "/border_bn_input_folded"));
    }
    removed[bi] = true;
    ++fused;
  }
  erase_nodes(g, removed);
  return fused;
}

// ---- narrow sibling convolutions → one Conv and a Split ----

// Output channels below which a Conv leaves most of a tensor-core tile idle (a detector head's 2,
// 8 or 20 filters: 10–20 µs each on the H100, docs/BENCHMARKS.md); the merged Conv's filters are
// padded to a multiple of kFilterAlignment, the width cuDNN's float16 kernels are built for.
constexpr std::int64_t kNarrowFilters = 32;
constexpr std::int64_t kFilterAlignment = 8;

// A Conv fuse_sibling_convs may merge: one group, nothing fused yet, W a float32 constant
// [M, C, k...] with M < kNarrowFilters, the bias (if any) a float32 constant of M values.
bool narrow_plain_conv(const Graph& g, const Node& n) {
  if (n.op != OpType::kConv || n.inputs.size() < 2 || n.inputs.size() > 3 || n.outputs.size() != 1 ||
      n.attrs.activation.kind != Activation::kNone || n.attrs.input_resize || n.attrs.i("group", 1) != 1)
    return false;
  const Tensor* w = g.constant_data(n.inputs[1]);
  if (w == nullptr || w->dtype() != DType::kFloat32 || w->shape().size() < 3 || w->shape()[0] >= kNarrowFilters)
    return false;
  if (n.inputs.size() < 3 || n.inputs[2] < 0) return true;
  const Tensor* b = g.constant_data(n.inputs[2]);
  return b != nullptr && b->dtype() == DType::kFloat32 && b->elements() == w->shape()[0];
}

// Whether two such Convs slide the same window over X: W alike beyond M, and the same strides,
// pads, dilations and auto_pad as written.
bool same_window(const Graph& g, const Node& a, const Node& b) {
  const Shape& wa = g.constant_data(a.inputs[1])->shape();
  const Shape& wb = g.constant_data(b.inputs[1])->shape();
  if (!std::equal(wa.begin() + 1, wa.end(), wb.begin() + 1, wb.end())) return false;
  for (const char* list : {"strides", "pads", "dilations"})
    if (a.attrs.ints(list, {}) != b.attrs.ints(list, {})) return false;
  return a.attrs.s("auto_pad", "NOTSET") == b.attrs.s("auto_pad", "NOTSET");
}

// The Convs at `members` (node indices, in order) as one Conv with their filters and biases
// stacked (zero filters pad the count to kFilterAlignment), followed by a Split along the channel
// axis into their outputs (and the padding, which nothing reads).
std::pair<Node, Node> merged_siblings(Graph& g, const std::vector<std::size_t>& members) {
  const Node& first = g.nodes[members.front()];
  Shape filter = g.constant_data(first.inputs[1])->shape();
  std::vector<std::int64_t> counts;
  std::string name;
  for (std::size_t i : members) {
    counts.push_back(g.constant_data(g.nodes[i].inputs[1])->shape()[0]);
    name += (name.empty() ? "" : "+") + g.nodes[i].name;
  }
  const std::int64_t total = std::accumulate(counts.begin(), counts.end(), std::int64_t{0});
  const std::int64_t padded = (total + kFilterAlignment - 1) / kFilterAlignment * kFilterAlignment;
  filter[0] = padded;
  Tensor w = Tensor::zeros(DType::kFloat32, filter), b = Tensor::zeros(DType::kFloat32, {padded});
  float* wp = w.data<float>();
  float* bp = b.data<float>();
  for (std::size_t k = 0; k < members.size(); ++k) {
    const Node& n = g.nodes[members[k]];
    const Tensor& wk = *g.constant_data(n.inputs[1]);
    wp = std::copy_n(wk.data<float>(), wk.elements(), wp);
    if (n.inputs.size() == 3 && n.inputs[2] >= 0) std::copy_n(g.constant_data(n.inputs[2])->data<float>(), counts[k], bp);
    bp += counts[k];
  }
  Node conv{.op = OpType::kConv, .name = name, .inputs = {first.inputs[0]}, .outputs = {}, .attrs = first.attrs};
  conv.inputs.push_back(add_weight(g, std::move(w), name + "/weight"));
  conv.inputs.push_back(add_weight(g, std::move(b), name + "/bias"));
  conv.outputs.push_back(g.add_value(name + "/output", DType::kFloat32));
  Node split{.op = OpType::kSplit, .name = name + "/split", .inputs = {conv.outputs[0]}, .outputs = {}, .attrs = {}};
  for (std::size_t i : members) split.outputs.push_back(g.nodes[i].outputs[0]);
  if (padded > total) {
    split.outputs.push_back(g.add_value(name + "/padding", DType::kFloat32));
    counts.push_back(padded - total);
  }
  split.attrs.values["axis"] = std::int64_t{1};
  split.attrs.values["split"] = counts;
  return {std::move(conv), std::move(split)};
}

// Narrow Convs reading the same X with the same window (a detector's score, box and landmark
// heads) → one Conv with their filters stacked, then a Split into their outputs: one convolution
// that fills a tensor-core tile instead of several that idle. Runs before fuse_activations: a head's
// Sigmoid then stays a node after the Split (the merged Conv has no single activation). Returns how
// many Convs were merged away.
int fuse_sibling_convs(Graph& g) {
  std::map<int, std::vector<std::vector<std::size_t>>> by_input;  // X → classes of same_window
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    if (!narrow_plain_conv(g, g.nodes[i])) continue;
    auto& classes = by_input[g.nodes[i].inputs[0]];
    auto it = std::find_if(classes.begin(), classes.end(),
                           [&](const auto& c) { return same_window(g, g.nodes[c.front()], g.nodes[i]); });
    if (it == classes.end()) classes.push_back({i});
    else it->push_back(i);
  }
  std::map<std::size_t, std::pair<Node, Node>> replacements;  // by the first member's index
  std::vector<bool> removed(g.nodes.size(), false);
  int merged = 0;
  for (const auto& [x, classes] : by_input) {
    for (const auto& members : classes) {
      if (members.size() < 2) continue;
      replacements.emplace(members.front(), merged_siblings(g, members));
      for (std::size_t i : members) removed[i] = true;
      merged += static_cast<int>(members.size()) - 1;
    }
  }
  if (merged == 0) return 0;
  // Every member reads only X and constants, so the merged pair may stand at the first one's place.
  std::vector<Node> nodes;
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    if (const auto it = replacements.find(i); it != replacements.end()) {
      nodes.push_back(std::move(it->second.first));
      nodes.push_back(std::move(it->second.second));
    } else if (!removed[i]) {
      nodes.push_back(std::move(g.nodes[i]));
    }
  }
  g.nodes = std::move(nodes);
  return merged;
}

// ---- filter response normalisation + TLU → FilterResponseNorm ----

// The ten nodes of one FRN + TLU as ONNX spells it (XSeg's), by role:
//   square = Mul(x, x); nu2 = ReduceMean(square, axes [2, 3], keepdims 1); shifted = Add(nu2, eps);
//   root = Sqrt(shifted); normed = Div(x, root); scaled = Mul(normed, gamma); biased = Add(scaled, beta);
//   below = Sub(biased, tau); clipped = Relu(below); y = Add(clipped, tau).
struct FrnPattern {
  int x = -1, eps = -1, gamma = -1, beta = -1, tau = -1;
  int nodes[10] = {};  // indices in g.nodes, in the order above; nodes[9] writes y
};

// The node that alone reads v (v read once, not a graph output) when it is an `op` with one
// output; -1 otherwise.
int sole_reader(const Graph& g, const std::vector<int>& uses, const std::vector<int>& cons, int v, OpType op) {
  if (v < 0 || uses[v] != 1 || cons[v] < 0) return -1;
  const Node& n = g.nodes[cons[v]];
  return n.op == op && n.outputs.size() == 1 && n.outputs[0] >= 0 ? cons[v] : -1;
}

// The other operand of a two-input node that reads v once (either side: Add and Mul commute); -1 otherwise.
int other_operand(const Node& n, int v) {
  if (n.inputs.size() != 2 || n.inputs[0] == n.inputs[1]) return -1;
  return n.inputs[0] == v ? n.inputs[1] : n.inputs[1] == v ? n.inputs[0] : -1;
}

// ReduceMean over axes 2 and 3 (in any order, or as -2 and -1) of a 4-D input, keeping them.
bool reduces_height_and_width(const Graph& g, const Node& reduce) {
  if (reduce.attrs.i("keepdims", 1) != 1) return false;
  std::vector<std::int64_t> axes = reduce.attrs.ints("axes", {});
  if (reduce.inputs.size() > 1 && reduce.inputs[1] >= 0) {  // opset 18: the axes are input 1
    const Tensor* t = g.constant_data(reduce.inputs[1]);
    if (t == nullptr || t->dtype() != DType::kInt64) return false;
    axes.assign(t->data<std::int64_t>(), t->data<std::int64_t>() + t->elements());
  }
  for (std::int64_t& a : axes) a = a < 0 ? a + 4 : a;
  std::sort(axes.begin(), axes.end());
  return axes == std::vector<std::int64_t>{2, 3};
}

// Whether v is a float32 constant that broadcasts over [N, C, H, W] one value per channel
// ([C, 1, 1] or [1, C, 1, 1]) or as one value (rank ≤ 4, every dim 1).
bool per_channel_constant(const Graph& g, int v, std::int64_t channels) {
  const Tensor* t = v >= 0 ? g.constant_data(v) : nullptr;
  if (t == nullptr || t->dtype() != DType::kFloat32 || t->shape().size() > 4) return false;
  const Shape& s = t->shape();
  return t->elements() == 1 || (t->elements() == channels && s.size() >= 3 && s[s.size() - 3] == channels);
}

// A per_channel_constant as C values: v itself when it has them, else a new [C] constant of its one value.
int channel_values(Graph& g, int v, std::int64_t channels) {
  if (g.constant_data(v)->elements() == channels) return v;
  const float value = g.constant_data(v)->data<float>()[0];
  return add_channel_constant(g, g.values[v].name + "/per_channel",
                              std::vector<float>(static_cast<std::size_t>(channels), value));
}

// The ten nodes from the Mul(x, x) at node index `square`, each intermediate read only by the
// next; the constants' shapes are checked once X's channels are known (fuse_filter_response_norm).
std::optional<FrnPattern> match_frn(const Graph& g, const std::vector<int>& uses, const std::vector<int>& cons,
                                    int square) {
  const Node& mul = g.nodes[square];
  if (mul.op != OpType::kMul || mul.inputs.size() != 2 || mul.inputs[0] != mul.inputs[1] || mul.inputs[0] < 0 ||
      mul.outputs.size() != 1 || mul.outputs[0] < 0)
    return std::nullopt;
  FrnPattern p;
  p.x = mul.inputs[0];
  p.nodes[0] = square;
  const OpType chain[10] = {OpType::kMul, OpType::kReduceMean, OpType::kAdd, OpType::kSqrt, OpType::kDiv,
                            OpType::kMul, OpType::kAdd,        OpType::kSub, OpType::kRelu, OpType::kAdd};
  for (int k = 1; k < 10; ++k) {
    p.nodes[k] = sole_reader(g, uses, cons, g.nodes[p.nodes[k - 1]].outputs[0], chain[k]);
    if (p.nodes[k] < 0) return std::nullopt;
  }
  const auto node = [&](int k) -> const Node& { return g.nodes[p.nodes[k]]; };
  const auto link = [&](int k) { return g.nodes[p.nodes[k - 1]].outputs[0]; };  // what node k reads of the chain
  if (node(1).inputs[0] != link(1) || !reduces_height_and_width(g, node(1))) return std::nullopt;
  if (node(4).inputs.size() != 2 || node(4).inputs[0] != p.x || node(4).inputs[1] != link(4)) return std::nullopt;
  if (node(7).inputs.size() != 2 || node(7).inputs[0] != link(7)) return std::nullopt;
  p.eps = other_operand(node(2), link(2));
  p.gamma = other_operand(node(5), link(5));
  p.beta = other_operand(node(6), link(6));
  p.tau = node(7).inputs[1];
  for (int c : {p.eps, p.gamma, p.beta, p.tau})
    if (!is_constant(g, c)) return std::nullopt;
  // The same tau added back: the same value, or a constant of equal data.
  const int tau_back = other_operand(node(9), link(9));
  if (tau_back == p.tau) return p;
  const Tensor *a = g.constant_data(p.tau), *b = tau_back >= 0 ? g.constant_data(tau_back) : nullptr;
  if (b == nullptr || a->dtype() != b->dtype() || a->shape() != b->shape() ||
      std::memcmp(a->raw(), b->raw(), a->bytes()) != 0)
    return std::nullopt;
  return p;
}

// Each FRN + TLU (match_frn) whose X is 4-D float32 with the same channels C at both probe sizes
// (probe_shapes; made only once a pattern is found), eps one value and gamma, beta and tau
// per_channel_constant becomes one FilterResponseNorm at the last node's place (every input
// precedes it), reading gamma, beta and tau as C values (channel_values).
int fuse_filter_response_norm(Graph& g) {
  const auto uses = use_counts(g);
  const auto cons = consumers(g);
  std::vector<FrnPattern> found;
  for (std::size_t i = 0; i < g.nodes.size(); ++i)
    if (std::optional<FrnPattern> p = match_frn(g, uses, cons, static_cast<int>(i))) found.push_back(*p);
  if (found.empty()) return 0;
  const std::optional<std::vector<Value>> probes[] = {probe_shapes(g, 2, 256), probe_shapes(g, 3, 320)};
  for (const auto& probe : probes)
    if (!probe) return 0;
  std::vector<bool> removed(g.nodes.size(), false);
  int fused = 0;
  for (const FrnPattern& p : found) {
    const Value &x2 = (*probes[0])[p.x], &x3 = (*probes[1])[p.x];
    if (!x2.known_shape || !x3.known_shape || x2.shape.size() != 4 || x3.shape.size() != 4 ||
        x2.shape[1] != x3.shape[1] || x2.dtype != DType::kFloat32)
      continue;
    const std::int64_t channels = x2.shape[1];
    if (!per_channel_constant(g, p.eps, 1) || !per_channel_constant(g, p.gamma, channels) ||
        !per_channel_constant(g, p.beta, channels) || !per_channel_constant(g, p.tau, channels))
      continue;
    Node frn;
    frn.op = OpType::kFilterResponseNorm;
    frn.name = g.nodes[p.nodes[1]].name + "/filter_response_norm";
    frn.inputs = {p.x};
    for (int v : {p.gamma, p.beta, p.tau}) frn.inputs.push_back(channel_values(g, v, channels));
    frn.attrs.values["epsilon"] = g.constant_data(p.eps)->data<float>()[0];
    frn.outputs = {g.nodes[p.nodes[9]].outputs[0]};
    for (int k = 0; k < 9; ++k) removed[p.nodes[k]] = true;
    g.nodes[p.nodes[9]] = std::move(frn);
    ++fused;
  }
  erase_nodes(g, removed);
  return fused;
}

// AdaIN as the swappers spell it: y = InstanceNormalization(x) (3 inputs, no activation), y read
// only by Mul(y, a), that only by Add(·, b), where a and b are the two outputs of one Split of
// R = Reshape(G) along axis 1, each read only there. At both probe sizes X is [N, C, H, W], G is
// [N or 1, 2C], R is G's rows as [·, 2C, 1, 1] and a and b are [·, C, 1, 1]: so a and b are the
// halves of G's rows. The InstanceNormalization takes G as its style input with the halves'
// offsets (backends/op.h) at the Add's place (G may be computed after the normalisation), and the
// Mul and Add go; the Reshape and Split die with them when nothing else reads them.
int fuse_style_modulation(Graph& g) {
  const auto uses = use_counts(g);
  const auto cons = consumers(g);
  const auto prod = producers(g);
  struct Found {
    int norm, mul, add, split;
    int scale_half, shift_half;  // which of the Split's outputs the Mul and the Add read
  };
  std::vector<Found> found;
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& norm = g.nodes[i];
    if (norm.op != OpType::kInstanceNormalization || norm.inputs.size() != 3 || norm.outputs.size() != 1 ||
        norm.outputs[0] < 0 || norm.attrs.activation.kind != Activation::kNone)
      continue;
    const int mul = sole_reader(g, uses, cons, norm.outputs[0], OpType::kMul);
    if (mul < 0) continue;
    const int add = sole_reader(g, uses, cons, g.nodes[mul].outputs[0], OpType::kAdd);
    if (add < 0) continue;
    const int a = other_operand(g.nodes[mul], norm.outputs[0]), b = other_operand(g.nodes[add], g.nodes[mul].outputs[0]);
    if (a < 0 || b < 0 || uses[a] != 1 || uses[b] != 1 || prod[a] < 0 || prod[a] != prod[b]) continue;
    const Node& split = g.nodes[prod[a]];
    if (split.op != OpType::kSplit || split.outputs.size() != 2 || split.attrs.i("axis", 0) != 1 ||
        split.inputs.empty() || split.inputs[0] < 0 || prod[split.inputs[0]] < 0)
      continue;
    const Node& reshape = g.nodes[prod[split.inputs[0]]];
    if (reshape.op != OpType::kReshape || reshape.inputs.empty() || reshape.inputs[0] < 0) continue;
    found.push_back({static_cast<int>(i), mul, add, prod[a], split.outputs[0] == a ? 0 : 1, split.outputs[0] == b ? 0 : 1});
  }
  if (found.empty()) return 0;
  const std::optional<std::vector<Value>> probes[] = {probe_shapes(g, 2, 256), probe_shapes(g, 3, 320)};
  for (const auto& probe : probes)
    if (!probe) return 0;
  // X's channels when the shapes at this probe make a and b the halves of G's rows; -1 otherwise.
  const auto halved_channels = [&](const std::vector<Value>& probe, const Found& f, int style) -> std::int64_t {
    const Node& split = g.nodes[f.split];
    const Value &x = probe[g.nodes[f.norm].inputs[0]], &s = probe[style], &r = probe[split.inputs[0]];
    const Value &h0 = probe[split.outputs[0]], &h1 = probe[split.outputs[1]];
    for (const Value* v : {&x, &s, &r, &h0, &h1})
      if (!v->known_shape || v->dtype != DType::kFloat32) return -1;
    if (x.shape.size() != 4 || s.shape.size() != 2) return -1;
    const std::int64_t c = x.shape[1], rows = s.shape[0];
    const Shape half{rows, c, 1, 1};
    const bool halves = (rows == 1 || rows == x.shape[0]) && s.shape[1] == 2 * c &&
                        r.shape == Shape{rows, 2 * c, 1, 1} && h0.shape == half && h1.shape == half;
    return halves ? c : -1;
  };
  std::vector<bool> removed(g.nodes.size(), false);
  int fused = 0;
  for (const Found& f : found) {
    const int style = g.nodes[prod[g.nodes[f.split].inputs[0]]].inputs[0];  // G, the Reshape's input
    const std::int64_t channels = halved_channels(*probes[0], f, style);
    if (channels < 0 || halved_channels(*probes[1], f, style) != channels) continue;
    Node styled = g.nodes[f.norm];
    styled.inputs.push_back(style);
    styled.attrs.values["style_scale"] = std::int64_t{f.scale_half * channels};
    styled.attrs.values["style_shift"] = std::int64_t{f.shift_half * channels};
    styled.outputs = {g.nodes[f.add].outputs[0]};
    removed[f.norm] = removed[f.mul] = true;
    g.nodes[f.add] = std::move(styled);
    ++fused;
  }
  erase_nodes(g, removed);
  return fused;
}

// The rank of v before shaping: from its declared or inferred shape, or 2 for a Flatten output;
// -1 when unknown.
std::int64_t known_rank(const Graph& g, int v, const std::vector<int>& prod) {
  const Value& value = g.values[v];
  if (value.known_shape || !value.shape.empty()) return static_cast<std::int64_t>(value.shape.size());
  if (prod[v] >= 0 && g.nodes[prod[v]].op == OpType::kFlatten) return 2;
  return -1;
}

}  // namespace

Status lower_legacy_softmax(Graph& g) {
  if (g.opset <= 0 || g.opset >= 13) return Status::ok();
  const auto prod = producers(g);
  std::vector<Node> nodes;
  nodes.reserve(g.nodes.size());
  for (Node& n : g.nodes) {
    if ((n.op != OpType::kSoftmax && n.op != OpType::kLogSoftmax) || n.inputs.empty() || n.inputs[0] < 0 ||
        n.outputs.empty() || n.outputs[0] < 0) {
      nodes.push_back(std::move(n));
      continue;
    }
    const int x = n.inputs[0];
    std::int64_t axis = n.attrs.i("axis", 1);
    const std::int64_t rank = known_rank(g, x, prod);
    if (rank >= 0 && axis < 0) axis += rank;
    if (axis == -1 || (rank >= 0 && axis == rank - 1)) {  // the old and new rules agree
      nodes.push_back(std::move(n));
      continue;
    }
    const DType dtype = g.values[x].dtype;
    const int y = n.outputs[0];
    const int shape = g.add_value(n.name + "/input_shape", DType::kInt64);
    const int flat = g.add_value(n.name + "/flattened", dtype);
    const int flat_y = g.add_value(n.name + "/flattened_out", dtype);
    Node shape_node{OpType::kShape, n.name + "/shape", {x}, {shape}, {}};
    Node flatten{OpType::kFlatten, n.name + "/flatten", {x}, {flat}, {}};
    flatten.attrs.values["axis"] = axis;
    Node reshape{OpType::kReshape, n.name + "/reshape", {flat_y, shape}, {y}, {}};
    reshape.attrs.values["allowzero"] = std::int64_t{1};  // the target is X's exact shape, zeros included
    n.attrs.values["axis"] = std::int64_t{1};
    n.inputs[0] = flat;
    n.outputs[0] = flat_y;
    nodes.push_back(std::move(shape_node));
    nodes.push_back(std::move(flatten));
    nodes.push_back(std::move(n));
    nodes.push_back(std::move(reshape));
  }
  g.nodes = std::move(nodes);
  return Status::ok();
}

Status fold_constants(Graph& g) {
  std::vector<bool> removed(g.nodes.size(), false);
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    if (!all_inputs_constant(g, n)) continue;
    FSWAP_RETURN_IF_ERROR(infer_node_shapes(g, n));
    removed[i] = try_fold(g, n);
  }
  erase_nodes(g, removed);
  return Status::ok();
}

Status remove_dead_nodes(Graph& g) {
  std::vector<bool> live(g.values.size(), false);
  for (int v : g.outputs) live[v] = true;
  std::vector<bool> removed(g.nodes.size(), true);
  for (std::size_t i = g.nodes.size(); i-- > 0;) {
    const Node& n = g.nodes[i];
    bool needed = false;
    for (int v : n.outputs) needed = needed || (v >= 0 && live[v]);
    if (!needed) continue;
    removed[i] = false;
    for (int v : n.inputs)
      if (v >= 0) live[v] = true;
  }
  erase_nodes(g, removed);

  // Compact values, weights and constants to what the remaining graph references.
  std::vector<bool> used(g.values.size(), false);
  for (int v : g.inputs) used[v] = true;
  for (int v : g.outputs) used[v] = true;
  for (const Node& n : g.nodes) {
    for (int v : n.inputs)
      if (v >= 0) used[v] = true;
    for (int v : n.outputs)
      if (v >= 0) used[v] = true;
  }
  std::vector<int> remap(g.values.size(), -1);
  std::vector<Value> values;
  std::vector<WeightBlock> weights;
  std::vector<Tensor> constants;
  for (std::size_t v = 0; v < g.values.size(); ++v) {
    if (!used[v]) continue;
    remap[v] = static_cast<int>(values.size());
    Value value = std::move(g.values[v]);
    if (value.weight >= 0) {
      WeightBlock block = g.weights[value.weight];
      block.value = remap[v];
      value.weight = static_cast<int>(weights.size());
      weights.push_back(std::move(block));
    }
    if (value.constant >= 0) {
      const int c = value.constant;
      value.constant = static_cast<int>(constants.size());
      constants.push_back(std::move(g.constants[c]));
    }
    values.push_back(std::move(value));
  }
  auto fix = [&](std::vector<int>& ids) {
    for (int& v : ids)
      if (v >= 0) v = remap[v];
  };
  for (Node& n : g.nodes) {
    fix(n.inputs);
    fix(n.outputs);
  }
  fix(g.inputs);
  fix(g.outputs);
  g.values = std::move(values);
  g.weights = std::move(weights);
  g.constants = std::move(constants);
  return Status::ok();
}

Status fuse(Graph& g) {
  fuse_filter_response_norm(g);  // first: its Relu is not a convolution's activation
  fuse_conv_batchnorm(g);
  fuse_batchnorm_conv(g);  // after: a BN that follows a Conv folds without a residual
  fuse_batchnorm_flatten_gemm(g);
  fuse_sibling_convs(g);   // after the BN folds (their weights final), before the activations
  fuse_matmul_bias(g);
  fuse_residual_add(g);  // before the activations: Conv → Add → Relu becomes one Conv
  fuse_style_modulation(g);  // before the activations: AdaIN's Add → Relu becomes one node
  fuse_silu(g);
  fuse_activations(g);
  return Status::ok();
}

Status optimize(Graph& g) {
  FSWAP_RETURN_IF_ERROR(lower_legacy_softmax(g));  // first: folding runs the opset-13 kernels
  FSWAP_RETURN_IF_ERROR(fold_constants(g));
  FSWAP_RETURN_IF_ERROR(remove_dead_nodes(g));
  FSWAP_RETURN_IF_ERROR(fuse(g));
  return remove_dead_nodes(g);  // drops the weights that BatchNormalization folding replaced
}

Status specialize(Graph& g, const std::vector<Shape>& input_shapes) {
  if (input_shapes.size() != g.inputs.size())
    return invalid_input(g.path + ": the model has " + std::to_string(g.inputs.size()) + " inputs, " +
                         std::to_string(input_shapes.size()) + " shapes were given");
  for (std::size_t i = 0; i < input_shapes.size(); ++i) {
    Value& v = g.values[g.inputs[i]];
    const Shape& s = input_shapes[i];
    if (!v.shape.empty() || v.known_shape) {
      bool ok = v.shape.size() == s.size();
      for (std::size_t d = 0; ok && d < s.size(); ++d) ok = v.shape[d] < 0 || v.shape[d] == s[d];
      if (!ok)
        return invalid_input(g.path + ": input " + v.name + " has shape " + shape_to_string(v.shape) +
                             " (-1: any size), not " + shape_to_string(s));
    }
    for (auto d : s)
      if (d < 0) return invalid_input(g.path + ": input " + v.name + ": shape " + shape_to_string(s) + " has a negative size");
    v.shape = s;
    v.known_shape = true;
  }
  std::vector<bool> is_input(g.values.size(), false);
  for (int v : g.inputs) is_input[v] = true;
  for (std::size_t v = 0; v < g.values.size(); ++v)
    if (!is_input[v] && !is_constant(g, static_cast<int>(v))) g.values[v].known_shape = false;

  std::vector<bool> removed(g.nodes.size(), false);
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    FSWAP_RETURN_IF_ERROR(infer_node_shapes(g, n));
    if (all_inputs_constant(g, n) || n.op == OpType::kShape || n.op == OpType::kSize) removed[i] = try_fold(g, n);
  }
  erase_nodes(g, removed);
  FSWAP_RETURN_IF_ERROR(remove_dead_nodes(g));
  for (const Value& v : g.values)
    if (!v.known_shape) return internal_error(g.path + ": value " + v.name + " was left without a shape");
  return Status::ok();
}

namespace {

// The Resize/Upsample node's mode when the fusion can take it: X and Y 4-D with N and C kept, the
// scales a constant equal to Y / X per axis (or absent), no `axes` and the stretch policy.
std::optional<ResizeMode> fusable_resize(const Graph& g, const Node& r) {
  if ((r.op != OpType::kResize && r.op != OpType::kUpsample) || r.inputs.empty() || r.outputs.size() != 1) return {};
  const Shape& x = g.values[r.inputs[0]].shape;
  const Shape& y = g.values[r.outputs[0]].shape;
  if (x.size() != 4 || y.size() != 4 || x[0] != y[0] || x[3] != y[3]) return {};
  if (r.attrs.has("axes") || r.attrs.s("keep_aspect_ratio_policy", "stretch") != "stretch") return {};
  const bool opset10 = r.op == OpType::kResize && r.inputs.size() == 2;
  Result<ResizeMode> mode = r.op == OpType::kUpsample ? upsample_mode(r.name, r.attrs) : resize_mode(r.name, r.attrs, opset10);
  if (!mode) return {};
  const std::size_t scales_input = r.op == OpType::kUpsample || opset10 ? 1 : 2;
  std::vector<float> scales;
  if (scales_input < r.inputs.size() && r.inputs[scales_input] >= 0) {
    const Tensor* t = g.constant_data(r.inputs[scales_input]);
    if (t == nullptr || t->dtype() != DType::kFloat32) return {};
    scales.assign(t->data<float>(), t->data<float>() + t->elements());
  } else if (r.op == OpType::kUpsample && r.attrs.has("scales")) {
    scales = r.attrs.floats("scales", {});
  }
  if (!scales.empty() && scales != resize_scales(x, y)) return {};
  return *mode;
}

}  // namespace

int fuse_input_resize(Graph& g, std::size_t min_bytes) {
  const auto uses = use_counts(g);
  const auto cons = consumers(g);
  std::vector<bool> removed(g.nodes.size(), false);
  int fused = 0;
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& r = g.nodes[i];
    if (r.outputs.size() != 1) continue;
    const int y = r.outputs[0];
    if (uses[y] != 1 || cons[y] < 0) continue;
    Node& conv = g.nodes[cons[y]];
    if (conv.op != OpType::kConv || conv.inputs[0] != y || conv.attrs.i("channels_last", 0) != 1 ||
        conv.attrs.input_resize)
      continue;
    const Value& resized = g.values[y];
    if (static_cast<std::size_t>(shape_elements(resized.shape)) * dtype_size(resized.dtype) < min_bytes) continue;
    const std::optional<ResizeMode> mode = fusable_resize(g, r);
    if (!mode) continue;
    conv.attrs.input_resize = std::make_shared<const InputResize>(InputResize{*mode, resized.shape});
    conv.inputs[0] = r.inputs[0];
    removed[i] = true;
    ++fused;
  }
  erase_nodes(g, removed);
  return fused;
}

Status convert_to_fp16(Graph& g) {
  constexpr std::int64_t kOnnxFloat = 1, kOnnxFloat16 = 10;
  const auto is_float32 = [&](int v) { return v >= 0 && g.values[v].dtype == DType::kFloat32; };
  const auto cast = [](int from, int to, std::int64_t onnx_type, std::string name) {
    Node n;
    n.op = OpType::kCast;
    n.name = std::move(name);
    n.inputs = {from};
    n.outputs = {to};
    n.attrs.values["to"] = onnx_type;
    return n;
  };
  const auto half_twin = [&](int v) {
    const int h = g.add_value(g.values[v].name + "/fp16", DType::kFloat16);
    g.values[h].shape = g.values[v].shape;
    g.values[h].known_shape = g.values[v].known_shape;
    return h;
  };
  const auto prod = producers(g);
  std::vector<bool> boundary(g.values.size(), false);
  std::vector<int> remap(g.values.size(), -1);  // a boundary value → its float16 twin inside the graph
  std::vector<Node> prologue, epilogue;
  for (int in : g.inputs) {
    if (!is_float32(in) || remap[in] >= 0) continue;
    boundary[in] = true;
    remap[in] = half_twin(in);
    prologue.push_back(cast(in, remap[in], kOnnxFloat16, g.values[in].name + "/to_fp16"));
  }
  for (int out : g.outputs) {
    if (!is_float32(out) || boundary[out] || prod[out] < 0) continue;  // inputs and constants pass through
    boundary[out] = true;
    remap[out] = half_twin(out);
    epilogue.push_back(cast(remap[out], out, kOnnxFloat, g.values[out].name + "/to_fp32"));
  }
  for (Node& n : g.nodes) {
    for (int& v : n.inputs)
      if (v >= 0 && remap[v] >= 0) v = remap[v];
    for (int& v : n.outputs)
      if (v >= 0 && remap[v] >= 0) v = remap[v];
    if (n.op == OpType::kCast && n.attrs.i("to", 0) == kOnnxFloat) n.attrs.values["to"] = kOnnxFloat16;
  }
  for (std::size_t v = 0; v < boundary.size(); ++v)
    if (!boundary[v] && g.values[v].dtype == DType::kFloat32) g.values[v].dtype = DType::kFloat16;
  prologue.insert(prologue.end(), std::make_move_iterator(g.nodes.begin()), std::make_move_iterator(g.nodes.end()));
  prologue.insert(prologue.end(), std::make_move_iterator(epilogue.begin()), std::make_move_iterator(epilogue.end()));
  g.nodes = std::move(prologue);
  return Status::ok();
}

}  // namespace fswap
