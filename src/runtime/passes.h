// Graph passes, run once per model at load (fold, prune, fuse) and once per input shape
// (specialise). Each leaves a valid, topologically ordered graph.
//
//   FSWAP_ASSIGN_OR_RETURN(Graph g, load_onnx(path));
//   FSWAP_RETURN_IF_ERROR(optimize(g));                        // lower + fold + prune + fuse
//   Graph batch8 = g;                                          // weights are shared, cheap
//   FSWAP_RETURN_IF_ERROR(specialize(batch8, {{8, 3, 128, 128}, {8, 512}}));
//   FSWAP_ASSIGN_OR_RETURN(MemoryPlan plan, plan_memory(batch8));   // runtime/memory_plan.h
#pragma once

#include <vector>

#include "core/status.h"
#include "runtime/graph.h"

namespace fswap {

// Before opset 13, Softmax and LogSoftmax (axis default 1) normalise over X coerced to 2-D at
// `axis`; the kernels follow the opset-13 rule (one axis, default -1). For a model whose opset
// is 1..12, rewrites each such node whose axis is not known to be the last into
// Flatten(axis) → op(axis 1) → Reshape(to Shape(X)); the Shape folds once shapes are known.
// Idempotent; a no-op for opset >= 13 (and for opset 0, unset).
Status lower_legacy_softmax(Graph& g);
// Nodes whose inputs are all constants (weights, Constant nodes, folded values) are computed
// with the CPU kernels and become Graph::constants.
Status fold_constants(Graph& g);
// Removes nodes none of whose outputs reach a graph output, and unused weights.
Status remove_dead_nodes(Graph& g);
// Conv+BatchNormalization → Conv with folded weights (a Gemm with transB = 1 too: ArcFace's
// embedding BN); BatchNormalization → Flatten(axis 1) → Gemm (transB = 1) → the Gemm with B scaled
// per flattened channel block and the shift in C (ArcFace's last BN); BatchNormalization → Conv (BN's output read only there, X's size fixed beyond
// the batch) → the Conv with W scaled per input channel and the
// BN's shift through the zero padding as a constant residual [1, M, OH, OW] broadcast over the
// batch (into the bias for a Conv without padding); Conv/ConvTranspose followed by Add(y, r) with r
// of y's exact shape (y read only there; shapes probed at two sizes, as fuse_residual_add in
// passes.cc says) → the conv with r as its residual input 3, so Conv → Add → Relu is one node;
// Conv/ConvTranspose/Gemm/MatMul, InstanceNormalization or a
// standalone BatchNormalization followed by Relu, LeakyRelu, Sigmoid, Tanh, Clip or HardSigmoid
// (its only consumer), or by SiLU (Mul(y, Sigmoid(y)), nothing else reading y) → fused activation;
// MatMul followed by Add of a constant vector over the last axis → MatMul with a bias input;
// filter response normalisation + TLU as ONNX spells it (XSeg's ten nodes: Mul(x, x) → ReduceMean
// over axes 2, 3 keeping them → Add eps → Sqrt → Div(x, ·) → Mul gamma → Add beta → Sub tau → Relu
// → Add tau; Add and Mul operands in either order; each intermediate read only by the next; X 4-D
// float32 at two probe sizes; eps one value; gamma, beta, tau one per channel or one value) → one
// FilterResponseNorm (backends/op.h); AdaIN as the swappers spell it (InstanceNormalization → Mul
// and Add of the two halves, Split along axis 1 of a Reshape to [·, 2C, 1, 1], of a [N or 1, 2C]
// style G; shapes probed at two sizes) → the InstanceNormalization with G as its style input and
// the halves' offsets (backends/op.h), whose following Relu then fuses as its activation; narrow
// Convs (fewer than 32 filters, one group, constant weights) reading the same X with the same
// window, as a detector's score, box and landmark heads do → one Conv with their filters stacked
// and padded with zero filters to a multiple of 8, then a Split along the channels into their
// outputs (and the padding, unread): cuDNN runs one convolution that fills a tensor-core tile
// instead of several that idle (an activation after a head stays a node after the Split).
Status fuse(Graph& g);
// lower_legacy_softmax, then fold_constants, remove_dead_nodes, fuse, in the order that gives
// the most.
Status optimize(Graph& g);

// Gives every value a concrete dtype and shape for these input shapes (one per Graph::inputs,
// in order; static model dimensions must match, dynamic ones take the given size), folding
// what becomes constant once shapes are known (Shape → Gather → Concat chains, etc.).
// Afterwards every value has known_shape. Errors name the node and explain the mismatch.
Status specialize(Graph& g, const std::vector<Shape>& input_shapes);

// fp16 storage for the CUDA backend, on a specialised graph (before plan_memory): every float32
// value inside the graph becomes float16; Cast nodes to float32 cast to float16 instead. Graph
// inputs and outputs stay float32 through Cast nodes inserted at the boundary. Weight and constant
// data are not converted: their Value's dtype says what the device copy holds (the uploader
// converts), and the host copies stay float32 for kernels that read them on the host. The graph
// is then for the CUDA executor only (CPU kernels would read float32 data as float16).
Status convert_to_fp16(Graph& g);

// On a channels-last graph (runtime/channels_last.h): a Resize or Upsample of H and W whose output
// only a channels_last Conv reads, as its X, becomes that Conv's input resize
// (OpAttributes::input_resize) when the resized tensor has at least min_bytes: the Conv reads the
// Resize's input and the resized tensor leaves the memory plan (the CUDA kernel resizes band by
// band into its workspace; gfpgan's 512² upsampling, 64 MiB in float16, set its whole plan's peak).
// Resizes whose scales are not resized / X exactly (a fractional size), or that the Resize rules
// refuse, stay. Returns how many were fused.
int fuse_input_resize(Graph& g, std::size_t min_bytes);

}  // namespace fswap
