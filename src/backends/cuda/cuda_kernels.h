// The CUDA backend: one kernel per op, tested against the CPU backend (backends/cpu) by the op
// harness on the GPU machine. Same contract as cpu_kernels.h, plus:
//
//   CudaKernel k = cuda_kernel(OpType::kConv);
//   if (!k) { /* not implemented on CUDA */ }
//   FSWAP_RETURN_IF_ERROR(k({OpType::kConv, node.attrs, {x, w, b}, {y}, {{}, w_host, b_host}, ctx}));
//
// - inputs and outputs are views of device memory (never dereferenced on the host); outputs are
//   preallocated with the shapes and dtypes shape inference gave;
// - host_inputs[i] is a host copy of input i when that input is a constant (a weight or a folded
//   value), else a view with data == nullptr. Inputs that decide the output's shape (Reshape's
//   shape, Slice's starts/ends/axes/steps, Pad's pads, Resize's scales/sizes, TopK's k, Expand's
//   shape, Tile's repeats, Range's scalars, Split's split, Squeeze/Unsqueeze/Reduce* axes,
//   ConstantOfShape's input) are always constants once the graph is specialised, so kernels read
//   them from host_inputs. Other inputs (Clip's min/max, Pad's constant value, ...) may be either:
//   use the host copy when present, the device data otherwise;
// - a host copy keeps the constant's original dtype (float32) even when its device copy and the
//   graph value are float16 (the fp16 pass), and attributes are float32 too: kernels convert to
//   the device tensor's dtype;
// - float ops take float32 or float16 tensors (the node's float inputs and outputs share one
//   dtype, except Cast) and compute in float32 (accumulations in float32); int64/int32/bool/uint8
//   where the CPU kernel supports them;
// - all work is enqueued on ctx.stream, asynchronously: no host synchronisation, no device
//   allocation (scratch comes from ctx.workspace); every launch is checked (check_launch);
// - a node the CPU kernel accepts and the CUDA kernel does not (an attribute value, a dtype)
//   returns kUnsupported naming the op and the value.
// Layout: dense row-major, like the CPU backend: ONNX's NCHW, or NHWC for the nodes the
// channels-last pass marks (attribute channels_last = 1; runtime/channels_last.h).
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "backends/op.h"
#include "core/status.h"
#include "core/tensor.h"

struct CUstream_st;
struct cudnnContext;
struct cublasLtContext;

namespace fswap::cuda {

class ConvAlgoCache;   // backends/cuda/conv_algo_cache.h
class ConvGraphPlans;  // backends/cuda/conv_graph.h

// What a kernel may use besides its tensors. Owned by the caller (the CUDA executor's runtime);
// one per device, used from one thread.
struct CudaContext {
  CUstream_st* stream = nullptr;          // every kernel's work goes here
  cudnnContext* cudnn = nullptr;          // bound to `stream`
  cublasLtContext* cublaslt = nullptr;
  ConvAlgoCache* conv_algos = nullptr;    // cuDNN algorithm choices by problem, persisted
  ConvGraphPlans* conv_plans = nullptr;   // built graph-API plans for `cudnn`; null: legacy algorithms only
  // Device scratch of at least `bytes`, 256-byte aligned, usable by work the kernel enqueues on
  // `stream`. The next call may hand out the same bytes: stream order keeps that safe.
  // kOutOfMemory when the budget cannot supply it.
  std::function<Result<void*>(std::size_t bytes)> workspace;
};

struct CudaKernelArgs {
  OpType op;
  const OpAttributes& attrs;
  std::vector<TensorView> inputs;       // device memory
  std::vector<TensorView> outputs;      // device memory
  std::vector<TensorView> host_inputs;  // one per input; data == nullptr unless a constant
  CudaContext& ctx;
};

using CudaKernel = Status (*)(const CudaKernelArgs& args);

// The CUDA kernel of op, or nullptr when the CUDA backend does not implement it.
CudaKernel cuda_kernel(OpType op);

}  // namespace fswap::cuda
