// Conv and ConvTranspose cases for the channels_last kernels, shared by the CPU tests
// (tests/unit/test_channels_last_conv.cc: channels_last against the NCHW kernels) and the CUDA
// tests (tests/gpu/test_cuda_channels_last.cc: CUDA channels_last against the CPU). Shapes are
// ONNX's (NCHW, W [M, C/g, kH, kW] or [C, M/g, kH, kW]); nhwc_of() gives a case's channels_last
// operands, and node_attributes() its attributes in either layout.
//
//   for (const ConvLayoutCase& c : conv_layout_cases()) {
//     const Tensor x = seeded_tensor(c.x, 1), w = seeded_tensor(c.w, 2);
//     FSWAP_ASSIGN_OR_RETURN(Shape y, inferred_output(c, /*nhwc=*/true));  // [N, OH, OW, M]
//     run(c.op, node_attributes(c, true), {nhwc_of(x), nhwc_of(w)}, y);
//   }
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "backends/op.h"
#include "backends/op_rules.h"
#include "core/status.h"
#include "core/tensor.h"
#include "runtime/graph.h"
#include "runtime/shape_inference.h"

namespace fswap::test {

struct ConvLayoutCase {
  std::string name;
  OpType op = OpType::kConv;
  Shape x, w;         // NCHW
  bool bias = false;  // a bias input of the output's channel count
  std::map<std::string, AttributeValue> attrs;
  FusedActivation activation;
};
inline void PrintTo(const ConvLayoutCase& c, std::ostream* os) { *os << c.name; }  // gtest's parameter name

inline std::vector<ConvLayoutCase> conv_layout_cases() {
  using I = std::vector<std::int64_t>;
  const FusedActivation relu{Activation::kRelu, 0, 0}, leaky{Activation::kLeakyRelu, 0.1f, 0};
  const FusedActivation clip{Activation::kClip, -0.5f, 0.5f};
  return {
      {"Conv3x3Bias", OpType::kConv, {2, 5, 9, 7}, {6, 5, 3, 3}, true, {{"pads", I{1, 1, 1, 1}}}, {}},
      {"ConvPointwise", OpType::kConv, {1, 16, 6, 5}, {8, 16, 1, 1}, true, {}, {}},
      // Channels-last 1×1 convolutions run as cuBLASLt GEMMs (conv.cc): odd sizes, one pixel,
      // activations cuBLASLt applies (Relu) and ones the epilogue does.
      {"PointwiseLeakyReluBatch2", OpType::kConv, {2, 24, 7, 9}, {40, 24, 1, 1}, true, {}, leaky},
      {"PointwiseOnePixelRelu", OpType::kConv, {1, 64, 1, 1}, {48, 64, 1, 1}, true, {}, relu},
      {"PointwiseC3Clip", OpType::kConv, {1, 3, 8, 8}, {5, 3, 1, 1}, false, {}, clip},
      {"ConvGroup2", OpType::kConv, {1, 6, 8, 8}, {4, 3, 3, 3}, true, {{"group", std::int64_t{2}}}, {}},
      {"ConvDepthwise", OpType::kConv, {1, 8, 9, 9}, {8, 1, 3, 3}, true,
       {{"group", std::int64_t{8}}, {"pads", I{1, 1, 1, 1}}}, {}},
      {"ConvDepthwiseMultiplier2Stride2", OpType::kConv, {1, 4, 10, 9}, {8, 1, 3, 3}, false,
       {{"group", std::int64_t{4}}, {"strides", I{2, 2}}, {"pads", I{1, 1, 1, 1}}}, {}},
      {"ConvStride2", OpType::kConv, {1, 4, 11, 10}, {5, 4, 3, 3}, true,
       {{"strides", I{2, 2}}, {"pads", I{1, 1, 1, 1}}}, {}},
      {"ConvDilation2", OpType::kConv, {1, 4, 12, 11}, {3, 4, 3, 3}, false,
       {{"dilations", I{2, 2}}, {"pads", I{2, 2, 2, 2}}}, {}},
      {"ConvAsymmetricPads", OpType::kConv, {1, 3, 8, 9}, {4, 3, 3, 3}, true, {{"pads", I{0, 1, 2, 1}}}, {}},
      {"ConvSameUpperStride2", OpType::kConv, {1, 3, 9, 8}, {4, 3, 4, 4}, true,
       {{"auto_pad", std::string("SAME_UPPER")}, {"strides", I{2, 2}}}, {}},
      {"ConvRelu", OpType::kConv, {1, 3, 7, 7}, {5, 3, 3, 3}, true, {{"pads", I{1, 1, 1, 1}}}, relu},
      {"ConvLeakyRelu", OpType::kConv, {2, 4, 6, 6}, {4, 2, 3, 3}, true,
       {{"group", std::int64_t{2}}, {"strides", I{2, 2}}, {"pads", I{1, 0, 1, 0}}}, leaky},
      // Channel counts that are multiples of 8, as cuDNN's NHWC tensor-core kernels want.
      {"ConvWide", OpType::kConv, {2, 64, 20, 24}, {64, 64, 3, 3}, true, {{"pads", I{1, 1, 1, 1}}}, relu},
      {"ConvWideDepthwise", OpType::kConv, {1, 64, 16, 16}, {64, 1, 3, 3}, true,
       {{"group", std::int64_t{64}}, {"pads", I{1, 1, 1, 1}}}, {}},
      {"ConvWideAsymmetricStride2", OpType::kConv, {1, 32, 17, 16}, {64, 32, 3, 3}, true,
       {{"strides", I{2, 2}}, {"pads", I{0, 0, 1, 1}}}, leaky},
      // Depthwise (group == C): with channels_last, CUDA's own kernel (odd C and multipliers
      // take its one-channel path, even C its channel-pair path; the largest takes several
      // pixels a thread, its rows and images ending inside a thread's run).
      {"DepthwiseDilation2", OpType::kConv, {1, 16, 13, 11}, {16, 1, 3, 3}, true,
       {{"group", std::int64_t{16}}, {"dilations", I{2, 2}}, {"pads", I{2, 2, 2, 2}}}, {}},
      {"DepthwiseAsymmetricPadsC17", OpType::kConv, {1, 17, 9, 10}, {17, 1, 3, 3}, true,
       {{"group", std::int64_t{17}}, {"pads", I{0, 1, 2, 1}}}, {}},
      {"DepthwiseSameUpperStride2", OpType::kConv, {1, 64, 15, 14}, {64, 1, 3, 3}, true,
       {{"group", std::int64_t{64}}, {"auto_pad", std::string("SAME_UPPER")}, {"strides", I{2, 2}}}, relu},
      {"Depthwise5x5Batch2C144", OpType::kConv, {2, 144, 11, 9}, {144, 1, 5, 5}, true,
       {{"group", std::int64_t{144}}, {"pads", I{2, 2, 2, 2}}}, {}},
      {"Depthwise7x7", OpType::kConv, {1, 8, 12, 13}, {8, 1, 7, 7}, true,
       {{"group", std::int64_t{8}}, {"pads", I{3, 3, 3, 3}}}, {}},
      {"Depthwise1x5Stride2x1", OpType::kConv, {1, 6, 7, 12}, {6, 1, 1, 5}, false,
       {{"group", std::int64_t{6}}, {"strides", I{2, 1}}, {"pads", I{0, 2, 0, 1}}}, {}},
      {"DepthwiseLeakyReluC3", OpType::kConv, {1, 3, 9, 7}, {3, 1, 3, 3}, true,
       {{"group", std::int64_t{3}}, {"pads", I{1, 1, 1, 1}}}, leaky},
      {"DepthwiseClipBatch2", OpType::kConv, {2, 32, 7, 9}, {32, 1, 3, 3}, true,
       {{"group", std::int64_t{32}}, {"pads", I{1, 1, 1, 1}}}, clip},
      {"DepthwiseMultiplier2C3", OpType::kConv, {1, 3, 8, 7}, {6, 1, 3, 3}, true,
       {{"group", std::int64_t{3}}, {"pads", I{1, 1, 1, 1}}}, relu},
      {"DepthwiseManyPixels", OpType::kConv, {2, 64, 130, 127}, {64, 1, 3, 3}, true,
       {{"group", std::int64_t{64}}, {"pads", I{1, 1, 1, 1}}}, clip},
      {"ConvTransposeWide", OpType::kConvTranspose, {1, 64, 16, 12}, {64, 32, 4, 4}, true,
       {{"strides", I{2, 2}}, {"pads", I{1, 1, 1, 1}}}, {}},
      {"ConvTransposeStride2", OpType::kConvTranspose, {1, 4, 5, 6}, {4, 3, 4, 4}, true,
       {{"strides", I{2, 2}}, {"pads", I{1, 1, 1, 1}}}, {}},
      {"ConvTransposeOutputPadding", OpType::kConvTranspose, {1, 3, 5, 5}, {3, 2, 3, 3}, true,
       {{"strides", I{2, 2}}, {"pads", I{1, 1, 1, 1}}, {"output_padding", I{1, 1}}}, {}},
      {"ConvTransposeGroup2", OpType::kConvTranspose, {1, 4, 5, 5}, {4, 2, 3, 3}, true,
       {{"group", std::int64_t{2}}, {"strides", I{2, 2}}}, leaky},
      {"ConvTransposeAsymmetricPads", OpType::kConvTranspose, {2, 2, 4, 5}, {2, 3, 3, 3}, false,
       {{"strides", I{2, 2}}, {"pads", I{0, 1, 1, 0}}}, relu},
      {"ConvTransposeSameUpper", OpType::kConvTranspose, {1, 3, 5, 4}, {3, 4, 3, 3}, true,
       {{"auto_pad", std::string("SAME_UPPER")}, {"strides", I{2, 2}}}, {}},
  };
}

// [N, C, H, W] data stored [N, H, W, C] (and Conv/ConvTranspose weights the same way).
inline Tensor nhwc_of(const Tensor& nchw) {
  const Shape& s = nchw.shape();
  Tensor out = Tensor::zeros(nchw.dtype(), nhwc_from_nchw(s));
  const float* src = nchw.data<float>();
  float* dst = out.data<float>();
  for (std::int64_t n = 0; n < s[0]; ++n)
    for (std::int64_t c = 0; c < s[1]; ++c)
      for (std::int64_t h = 0; h < s[2]; ++h)
        for (std::int64_t w = 0; w < s[3]; ++w)
          dst[((n * s[2] + h) * s[3] + w) * s[1] + c] = src[((n * s[1] + c) * s[2] + h) * s[3] + w];
  return out;
}

// The node's attributes: the case's, plus channels_last = 1 when nhwc.
inline OpAttributes node_attributes(const ConvLayoutCase& c, bool nhwc) {
  OpAttributes a;
  for (const auto& [name, value] : c.attrs) a.values.emplace(name, value);
  if (nhwc) a.values.emplace("channels_last", std::int64_t{1});
  a.activation = c.activation;
  return a;
}

// The case's output shape as shape inference gives it for the NCHW node, or for the channels_last
// node fed nhwc_of(x) and nhwc_of(w) (then [N, OH, OW, M]).
inline Result<Shape> inferred_output(const ConvLayoutCase& c, bool nhwc) {
  Graph g;
  g.path = c.name;
  const auto value = [&](const Shape& shape) {
    Value v;
    v.shape = shape;
    v.known_shape = true;
    g.values.push_back(v);
    return static_cast<int>(g.values.size()) - 1;
  };
  Node node;
  node.op = c.op;
  node.name = c.name;
  node.inputs = {value(nhwc ? nhwc_from_nchw(c.x) : c.x), value(nhwc ? nhwc_from_nchw(c.w) : c.w)};
  node.outputs = {value({})};
  node.attrs = node_attributes(c, nhwc);
  g.nodes.push_back(node);
  FSWAP_RETURN_IF_ERROR(infer_node_shapes(g, g.nodes[0]));
  return g.values[node.outputs[0]].shape;
}

// Output channels: the bias length.
inline std::int64_t out_channels(const ConvLayoutCase& c) {
  const std::int64_t group = c.attrs.count("group") ? std::get<std::int64_t>(c.attrs.at("group")) : 1;
  return c.op == OpType::kConv ? c.w[0] : c.w[1] * group;
}

// Uniform values in [-1, 1] from `seed`.
inline Tensor seeded_tensor(const Shape& shape, unsigned seed) {
  Tensor t = Tensor::zeros(DType::kFloat32, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  for (std::int64_t i = 0; i < t.elements(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

}  // namespace fswap::test
