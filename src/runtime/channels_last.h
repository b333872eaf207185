// The channels-last layout pass: rewrites islands of a specialised graph so their 4-D tensors are
// stored [N, H, W, C] instead of ONNX's [N, C, H, W]. cuDNN's tensor-core convolutions are NHWC;
// fed NCHW they transpose every input and output themselves, which is most of the gap to PyTorch
// running channels_last (docs/BENCHMARKS.md). Used by the CUDA backend at fp16.
//
//   ChannelsLastWeights transposed;                          // one per model, shared by its shapes
//   FSWAP_RETURN_IF_ERROR(specialize(g, shapes));
//   FSWAP_ASSIGN_OR_RETURN(ChannelsLastReport r, to_channels_last(g, transposed, LayoutChoice::kWherePays));
//
// An island is a connected set of nodes that each have an NHWC form, joined by the 4-D values
// they pass each other:
//   - Conv, ConvTranspose, BatchNormalization, InstanceNormalization, MaxPool (Y only), AveragePool:
//     attribute channels_last = 1 (backends/op.h's contract), Conv/ConvTranspose weights transposed
//     to [M, kH, kW, C/g] / [C, kH, kW, M/g] (once, when constant; a weight computed in the graph
//     is a 4-D value of the island like the data);
//   - element-wise ops (unary, binary, variadic, PRelu, Clip): unchanged; a constant operand of
//     rank ≤ 4 is padded to rank 4 and transposed like the data, a scalar stays as it is;
//   - Concat, Split, Softmax, LogSoftmax (axis), Reduce* with keepdims (axes), Pad (pads), Resize
//     and Upsample (roi, scales, sizes): their axis arguments renumbered;
//   - GlobalAveragePool / GlobalMaxPool: ReduceMean / ReduceMax over H and W.
// A 4-D value entering an island from outside (a graph input, another node) goes through a
// Transpose to NHWC; an island value read outside (or a graph output) through a Transpose back.
// A Transpose node reading an island value takes the layout into its own permutation instead
// (scrfd's heads: Conv → Transpose(0, 2, 3, 1) becomes Conv → Identity). Graph inputs, outputs
// and every value outside the islands keep their layout, so the rewritten graph computes the same
// outputs.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>

#include "core/status.h"
#include "core/tensor.h"
#include "runtime/graph.h"

namespace fswap {

enum class LayoutChoice {
  // Islands with at least one convolution whose boundary transposes of non-trivial tensors
  // (over 4096 elements) number fewer than two per convolution: an isolated Conv stays NCHW
  // (its two transposes are what cuDNN would do inside).
  kWherePays,
  // Every island, whatever it costs (tests of the NHWC kernels and of the pass itself).
  kEverywhere,
};

// The channels-last copies of a model's weights, by the tensor they were made from, so every
// specialisation of the model (one executor per input shape) reads, and places on the device, the
// same copy. Thread-safe.
class ChannelsLastWeights {
 public:
  // The tensor padded to rank 4 with leading 1s and transposed NCHW → NHWC, made once.
  std::shared_ptr<const Tensor> of(const std::shared_ptr<const Tensor>& source);
  // `source` with zeros appended along each dim up to `shape` (align_conv_channels' filters), made once.
  std::shared_ptr<const Tensor> padded(const std::shared_ptr<const Tensor>& source, const Shape& shape);

 private:
  std::mutex mutex_;
  // The source is held so its address cannot be reused by another tensor while the copy is kept.
  std::map<const Tensor*, std::pair<std::shared_ptr<const Tensor>, std::shared_ptr<const Tensor>>> copies_;
  std::map<std::pair<const Tensor*, Shape>, std::pair<std::shared_ptr<const Tensor>, std::shared_ptr<const Tensor>>>
      padded_;
};

struct ChannelsLastReport {
  int islands = 0;      // islands converted
  int nodes = 0;        // nodes inside them
  int convs = 0;        // Conv and ConvTranspose among those nodes
  int transposes = 0;   // Transpose nodes added at their boundaries
  int absorbed = 0;     // Transpose nodes that took the layout into their permutation
};

// Rewrites g (specialised: every value shaped) in place; a no-op when no island qualifies under
// `choice`. The result is again a valid, topologically ordered, specialised graph.
Result<ChannelsLastReport> to_channels_last(Graph& g, ChannelsLastWeights& weights, LayoutChoice choice);

// On a channels-last graph: a channels_last Conv whose filter count is not a multiple of 8 and
// whose output only channels_last one-group Convs read (as their X, each with a weight of its own
// kind: initializers, not graph values) gets zero filters (and zero biases) up to the next multiple,
// and those readers zero input channels to match, so cuDNN's float16 tensor-core kernels take both
// (scrfd's stem, 3 → 12 → 12 → 24 channels at 320², ran its two 12-channel convolutions at 0.047 and
// 0.038 ms on the H100, slower than its 24-channel ones at 160²). The output then has the padded
// channel count (its extra channels hold the activation of 0, which no reader weighs). A Conv
// whose X has unaligned channels from elsewhere (an image's 3) and whose output is at least 4× X so
// padded reads X through a Pad node appending zero channels, its weight padded to match (arcface's
// 3 → 64 stem at 112²: 0.197 ms at batch 32, near a 64 → 64 layer of that size). A Conv with a
// residual or a PRelu slope keeps its filters (those would need padding too), one with an input
// resize is left. Weight copies through `weights`, shared by every shape of the model. Returns how many Convs were widened or given a padded X.
int align_conv_channels(Graph& g, ChannelsLastWeights& weights);
// The suffix of the weight values align_conv_channels made (`fswap model inspect` counts them).
inline constexpr std::string_view kAlignedWeightSuffix = "/aligned";

// What an executor does after specialising its graph: nothing (no choice) or the pass, with the
// weight copies its backend keeps for the model, then align_conv_channels when asked (float16 on
// the GPU, where it pays).
struct ChannelsLastPlan {
  std::optional<LayoutChoice> choice;
  ChannelsLastWeights* weights = nullptr;  // set when choice is
  bool align_channels = false;

  // Applies the plan to a specialised graph (debug log: what the pass did).
  Status apply(Graph& g) const;
};

}  // namespace fswap
