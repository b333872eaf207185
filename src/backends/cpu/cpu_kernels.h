// The CPU backend: one kernel per op, the reference every other backend is tested against.
//
//   CpuKernel k = cpu_kernel(OpType::kConv);
//   if (!k) { /* not implemented on the CPU */ }
//   FSWAP_RETURN_IF_ERROR(k({OpType::kConv, node.attrs, {x, w, b}, {y}}));
//
// Contract for every kernel:
// - inputs are in ONNX order; an absent optional input has data == nullptr;
// - outputs are preallocated by the caller with the shapes and dtypes that shape inference
//   gave (the kernel never allocates or resizes them) and may alias input 0 for element-wise
//   ops whose input 0 has the output's shape (the planner's in-place rule);
// - attributes are read through OpAttributes with ONNX's defaults; a fused activation
//   (attrs.activation) is applied to the output of Conv, ConvTranspose, Gemm and MatMul;
// - unsupported attribute values or dtypes return kUnsupported naming the op and the value;
// - kernels are thread-safe (no shared mutable state) and parallelise internally with
//   fswap::parallel_for; float32 is the reference dtype, int64/int32/bool where ONNX models
//   use them for shapes and indices.
#pragma once

#include <vector>

#include "backends/op.h"
#include "core/status.h"
#include "core/tensor.h"

namespace fswap {

struct KernelArgs {
  OpType op;
  const OpAttributes& attrs;
  std::vector<TensorView> inputs;
  std::vector<TensorView> outputs;
};

using CpuKernel = Status (*)(const KernelArgs& args);

// The CPU kernel of op, or nullptr when the CPU backend does not implement it.
CpuKernel cpu_kernel(OpType op);

}  // namespace fswap
