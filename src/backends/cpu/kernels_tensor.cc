#include "backends/cpu/kernels.h"
#include "backends/cpu/tensor_kernels.h"

namespace fswap {

// The tensor family's kernel table (implementations in tensor_*.cc).
CpuKernel cpu_tensor_kernel(OpType op) {
  using namespace tensor_ops;
  switch (op) {
    case OpType::kAbs: case OpType::kNeg: case OpType::kReciprocal: case OpType::kSqrt: case OpType::kExp:
    case OpType::kLog: case OpType::kFloor: case OpType::kCeil: case OpType::kRound: case OpType::kSin:
    case OpType::kCos: case OpType::kErf: case OpType::kRelu: case OpType::kLeakyRelu: case OpType::kElu:
    case OpType::kSelu: case OpType::kSigmoid: case OpType::kHardSigmoid: case OpType::kHardSwish:
    case OpType::kTanh: case OpType::kSoftplus: case OpType::kSoftsign: case OpType::kGelu: case OpType::kMish:
      return unary_kernel;
    case OpType::kNot: return not_kernel;
    case OpType::kIdentity: case OpType::kReshape: case OpType::kFlatten: case OpType::kSqueeze:
    case OpType::kUnsqueeze:
      return identity_kernel;
    case OpType::kDropout: return dropout_kernel;
    case OpType::kCast: return cast_kernel;
    case OpType::kClip: return clip_kernel;
    case OpType::kPRelu: return prelu_kernel;

    case OpType::kAdd: case OpType::kSub: case OpType::kMul: case OpType::kDiv: case OpType::kPow:
    case OpType::kMod: case OpType::kEqual: case OpType::kLess: case OpType::kLessOrEqual: case OpType::kGreater:
    case OpType::kGreaterOrEqual: case OpType::kAnd: case OpType::kOr: case OpType::kXor:
      return binary_kernel;
    case OpType::kSum: case OpType::kMean: case OpType::kMin: case OpType::kMax: return variadic_kernel;
    case OpType::kWhere: return where_kernel;

    case OpType::kReduceMean: case OpType::kReduceSum: case OpType::kReduceMax: case OpType::kReduceMin:
    case OpType::kReduceProd: case OpType::kReduceL2: case OpType::kReduceSumSquare:
      return reduce_kernel;
    case OpType::kArgMax: case OpType::kArgMin: return arg_reduce_kernel;
    case OpType::kTopK: return top_k_kernel;

    case OpType::kTranspose: return transpose_kernel;
    case OpType::kConcat: return concat_kernel;
    case OpType::kSplit: return split_kernel;
    case OpType::kSlice: return slice_kernel;
    case OpType::kGather: return gather_kernel;
    case OpType::kGatherElements: return gather_elements_kernel;
    case OpType::kExpand: return expand_kernel;
    case OpType::kTile: return tile_kernel;
    case OpType::kScatterND: return scatter_nd_kernel;

    case OpType::kShape: return shape_kernel;
    case OpType::kSize: return size_kernel;
    case OpType::kConstantOfShape: return constant_of_shape_kernel;
    case OpType::kConstant: return constant_kernel;
    case OpType::kRange: return range_kernel;
    default:
      return nullptr;
  }
}

}  // namespace fswap
