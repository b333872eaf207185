// The op vocabulary shared by the graph IR and every backend: the closed list of ops, their
// attributes, and activations fused into a preceding op.
//
//   if (node.op == OpType::kConv) { auto strides = node.attrs.ints("strides", {1, 1}); }
//
// Adding an op = a list entry + its shape rule (runtime/shape_inference.cc) + a CPU kernel
// (backends/cpu) + a case in the op harness.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"

namespace fswap {

// Every op the native engine knows: by its ONNX name (domain ai.onnx), then the internal ops
// that only graph passes make.
#define FSWAP_OP_LIST(X)                                                                            \
  /* element-wise unary */                                                                          \
  X(Abs) X(Neg) X(Reciprocal) X(Sqrt) X(Exp) X(Log) X(Floor) X(Ceil) X(Round) X(Sin) X(Cos)         \
  X(Erf) X(Not) X(Identity) X(Dropout) X(Cast)                                                      \
  /* activations */                                                                                 \
  X(Relu) X(LeakyRelu) X(PRelu) X(Elu) X(Selu) X(Sigmoid) X(HardSigmoid) X(HardSwish) X(Tanh)       \
  X(Softplus) X(Softsign) X(Gelu) X(Mish) X(Clip) X(Softmax) X(LogSoftmax)                          \
  /* element-wise binary / variadic (numpy broadcasting) */                                         \
  X(Add) X(Sub) X(Mul) X(Div) X(Pow) X(Mod) X(Min) X(Max) X(Sum) X(Mean) X(Equal) X(Less)           \
  X(LessOrEqual) X(Greater) X(GreaterOrEqual) X(And) X(Or) X(Xor) X(Where)                          \
  /* linear algebra and convolution */                                                              \
  X(MatMul) X(Gemm) X(Conv) X(ConvTranspose)                                                        \
  /* normalisation */                                                                               \
  X(BatchNormalization) X(InstanceNormalization) X(LayerNormalization) X(LpNormalization)           \
  /* pooling */                                                                                     \
  X(MaxPool) X(AveragePool) X(GlobalAveragePool) X(GlobalMaxPool)                                   \
  /* reductions */                                                                                  \
  X(ReduceMean) X(ReduceSum) X(ReduceMax) X(ReduceMin) X(ReduceProd) X(ReduceL2) X(ReduceSumSquare) \
  X(ArgMax) X(ArgMin)                                                                               \
  /* layout and indexing */                                                                         \
  X(Reshape) X(Flatten) X(Transpose) X(Squeeze) X(Unsqueeze) X(Concat) X(Split) X(Slice) X(Gather)  \
  X(GatherElements) X(Expand) X(Tile) X(Pad) X(Resize) X(Upsample) X(DepthToSpace) X(SpaceToDepth)  \
  X(ScatterND) X(TopK)                                                                              \
  /* shape and constants */                                                                         \
  X(Shape) X(Size) X(ConstantOfShape) X(Constant) X(Range)                                          \
  /* internal ops (kFirstInternalOp on): made by graph passes only, never read from a model */      \
  X(FilterResponseNorm)

enum class OpType {
#define FSWAP_OP_ENUM(name) k##name,
  FSWAP_OP_LIST(FSWAP_OP_ENUM)
#undef FSWAP_OP_ENUM
      kCount
};
inline constexpr int kOpCount = static_cast<int>(OpType::kCount);
static_assert(kOpCount == 97, "an op was added or removed: update the shape rules, CPU kernels and op harness");
// The first of the internal ops, which end the list.
inline constexpr OpType kFirstInternalOp = OpType::kFilterResponseNorm;

const char* op_name(OpType op);                             // "Conv"
// An ONNX op by its name; kUnsupported naming the op for a name that is not one (internal ops included).
Result<OpType> op_from_name(std::string_view onnx_name);

// One input, one output of its shape, element by element: the unary maps, Cast and the
// activations other than PRelu, Clip (bound inputs), Softmax and LogSoftmax (Dropout excluded:
// its optional mask output).
bool is_elementwise_unary(OpType op);
// Element by element over inputs broadcast to the output's shape (numpy rules): the arithmetic,
// comparison and logical ops, Where, and PRelu (its slope broadcast to X).
bool is_broadcasting(OpType op);
// The broadcasting ops whose output dtype is not their inputs' (bool results; Where's condition).
bool is_comparison(OpType op);

// Conv and ConvTranspose take an optional 4th input, the residual R, made only by the fusion passes
// (ONNX's Conv has 3 inputs): from Add(Conv(X), R), the output's shape exactly; from a
// BatchNormalization before a padded Conv, a constant of the output's shape with batch 1, added to
// every batch item (R[0] broadcast; no other broadcasting). Y's dtype, in Y's layout;
// Y = activation(conv(X, W) + B + R), added in that order.
//
// InstanceNormalization takes an optional 4th input, the style S, made only by the fusion pass
// (runtime/passes.h: AdaIN's Mul and Add of a style vector split from one Gemm): S is [N, K] or
// [1, K] (one row for every item), with attributes style_scale and style_shift, the offsets in a row
// of S of the C scales and the C shifts: Y[n, c] = activation(IN(X)[n, c] · S[n, style_scale + c]
// + S[n, style_shift + c]), S's row 0 for every n when it has one row. S has X's dtype.
//
// FilterResponseNorm (internal: made only by the fusion pass, from ONNX's ten-node spelling of
// filter response normalisation + TLU, runtime/passes.h): inputs X [N, C, H, W] ([N, H, W, C] with
// attribute channels_last = 1), gamma, beta and tau (C values each, any shape); attribute epsilon
// (default 1e-6). Y = max(gamma[c]·x·rsqrt(mean over H and W of x² + epsilon) + beta[c], tau[c]).
//
// Activation fused into a Conv, ConvTranspose, Gemm, MatMul, BatchNormalization or
// InstanceNormalization by the fusion pass.
// kSilu: x · sigmoid(x), fused from Mul(x, Sigmoid(x)) (YOLO's SiLU).
// kPRelu (Conv only): LeakyRelu with one slope per output channel, the Conv's input 4 (a constant
// of out-channels values; inputs 2 and 3 are then −1 when absent), fused from PRelu(y, slope) with
// a per-channel slope (ArcFace's [C, 1, 1]).
enum class Activation { kNone, kRelu, kLeakyRelu, kSigmoid, kTanh, kClip, kHardSigmoid, kSilu, kPRelu };
struct FusedActivation {
  Activation kind = Activation::kNone;
  float alpha = 0, beta = 0;  // LeakyRelu: alpha; Clip: [alpha, beta]; HardSigmoid: alpha, beta
};

using AttributeValue = std::variant<std::int64_t, float, std::string, std::vector<std::int64_t>,
                                    std::vector<float>, Tensor>;

// A Resize (or Upsample) fused into the channels_last Conv reading its output, by the device-graph
// pass fuse_input_resize (runtime/passes.h): the Conv's X is the Resize's input and the Conv
// convolves it resized to `resized` (NHWC, H and W scaled by resized / X, N and C kept), so the
// resized tensor need not exist whole (the CUDA kernel resizes it band by band into its workspace).
// Defined in backends/op_rules.h.
struct InputResize;

// A node's attributes with ONNX defaults applied at lookup, plus a fused activation.
struct OpAttributes {
  std::map<std::string, AttributeValue, std::less<>> values;
  FusedActivation activation;                       // set only by the fusion pass
  std::shared_ptr<const InputResize> input_resize;  // set only by fuse_input_resize (Conv)

  std::int64_t i(std::string_view name, std::int64_t fallback) const;
  float f(std::string_view name, float fallback) const;
  std::string s(std::string_view name, std::string fallback) const;
  std::vector<std::int64_t> ints(std::string_view name, std::vector<std::int64_t> fallback) const;
  std::vector<float> floats(std::string_view name, std::vector<float> fallback) const;
  const Tensor* tensor(std::string_view name) const;  // nullptr when absent
  bool has(std::string_view name) const;
};

}  // namespace fswap
