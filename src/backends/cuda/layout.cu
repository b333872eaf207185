// Layout, indexing, shape and constant ops, Pad, Resize/Upsample and DepthToSpace/SpaceToDepth on
// CUDA, with the semantics of the CPU kernels (cpu/tensor_layout.cc, tensor_shape.cc, nn_resize.cc).
//
// - Data movement ignores the dtype: elements move as unsigned words of their size, or as wider
//   words (up to 16 bytes) where every row length and pointer allows.
// - Heavy index arithmetic runs in int32 when every offset fits, in int64 otherwise.
// - Invalid indices of Gather, GatherElements and ScatterND (the CPU reports them) cannot be
//   reported from the device: Gather and GatherElements write zero, ScatterND skips the update.
// - ScatterND with duplicate indices keeps one of the updates, not necessarily the last.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "backends/cuda/common.cuh"
#include "backends/cuda/families.h"
#include "backends/cuda/resize_window.h"
#include "backends/op_rules.h"

namespace fswap::cuda {
namespace {

// ---------------------------------------------------------------------------------------------
// Host helpers

Status op_error(const char* op, const std::string& what) {
  return invalid_input(std::string(op) + " on CUDA: " + what);
}
Status op_unsupported(const char* op, const std::string& what) {
  return unsupported(std::string(op) + " on CUDA: " + what);
}

Status check_cuda(cudaError_t error, const char* op, const char* call) {
  if (error == cudaSuccess) return Status::ok();
  (void)cudaGetLastError();  // a later check_launch must not report this failure again
  return internal_error(std::string(op) + " on CUDA: " + call + " failed: " + cudaGetErrorName(error) + ": " +
                        cudaGetErrorString(error));
}

Status copy_device(const CudaKernelArgs& args, const char* op, void* dst, const void* src, std::size_t bytes) {
  if (dst == src || bytes == 0) return Status::ok();
  return check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_of(args)), op, "cudaMemcpyAsync");
}

Status check_rank(const char* op, const Shape& shape, std::size_t max_rank = kMaxRank) {
  if (shape.size() <= max_rank) return Status::ok();
  return op_unsupported(op, "rank " + std::to_string(shape.size()) + " (at most " + std::to_string(max_rank) + ")");
}

Status check_dtype_kept(const char* op, const TensorView& x, const TensorView& y) {
  if (x.dtype == y.dtype) return Status::ok();
  return op_error(op, std::string("output dtype ") + dtype_name(y.dtype) + " differs from the input's " +
                          dtype_name(x.dtype));
}

// axis in [-rank, rank) → [0, rank).
Result<std::size_t> axis_index(const char* op, std::int64_t axis, std::size_t rank) {
  FSWAP_ASSIGN_OR_RETURN(const int normalized, checked_axis(on_cuda(op), axis, rank));
  return static_cast<std::size_t>(normalized);
}

std::int64_t product(const Shape& s, std::size_t begin, std::size_t end) {
  std::int64_t n = 1;
  for (std::size_t d = begin; d < end && d < s.size(); ++d) n *= s[d];
  return n;
}

std::uintptr_t address(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }
std::uintptr_t bits_of(std::int64_t v) { return static_cast<std::uintptr_t>(v); }

// The widest word (1 to 16 bytes) dividing every byte count and address OR-ed into `bits`.
std::size_t widest_word(std::uintptr_t bits) {
  bits |= 16;
  return static_cast<std::size_t>(bits & (~bits + 1));
}

// Input i is present (ONNX's empty name gives data == nullptr).
bool has_input(const CudaKernelArgs& args, std::size_t i) {
  return i < args.inputs.size() && args.inputs[i].data != nullptr;
}

// The host copy of constant input i; shape-deciding inputs always have one (cuda_kernels.h).
Result<const TensorView*> host_input(const CudaKernelArgs& args, std::size_t i, const char* what) {
  if (i < args.host_inputs.size() && args.host_inputs[i].data != nullptr) return &args.host_inputs[i];
  return op_unsupported(op_name(args.op), std::string(what) + " must be a constant (it has no host copy)");
}

// The values of int64 or int32 constant input i.
Result<std::vector<std::int64_t>> host_ints(const CudaKernelArgs& args, std::size_t i, const char* what) {
  if (args.inputs.at(i).elements() == 0) return std::vector<std::int64_t>{};
  FSWAP_ASSIGN_OR_RETURN(const TensorView* h, host_input(args, i, what));
  std::vector<std::int64_t> out(static_cast<std::size_t>(h->elements()));
  if (h->dtype == DType::kInt64) {
    for (std::size_t k = 0; k < out.size(); ++k) out[k] = h->as<const std::int64_t>()[k];
  } else if (h->dtype == DType::kInt32) {
    for (std::size_t k = 0; k < out.size(); ++k) out[k] = h->as<const std::int32_t>()[k];
  } else {
    return op_unsupported(op_name(args.op), std::string(what) + " of dtype " + dtype_name(h->dtype) +
                                                " (expected int64 or int32)");
  }
  return out;
}

// One value of dtype `from` as the bytes of dtype `to` (low bytes of the word): the same bytes, or
// float32 narrowed to float16 (host copies and attributes stay float32 under the fp16 pass).
Result<std::uint64_t> scalar_bits(const char* op, const void* value, DType from, DType to) {
  std::uint64_t bits = 0;
  if (from == to) {
    std::memcpy(&bits, value, dtype_size(to));
    return bits;
  }
  if (from == DType::kFloat32 && to == DType::kFloat16) {
    float f;
    std::memcpy(&f, value, sizeof f);
    const __half h = __float2half(f);
    std::memcpy(&bits, &h, sizeof h);
    return bits;
  }
  return op_error(op, std::string("value of dtype ") + dtype_name(from) + " for an output of dtype " + dtype_name(to));
}

// An attribute of exactly type V, nullptr when absent or of another type.
template <class V>
const V* attribute_of(const OpAttributes& attrs, std::string_view name) {
  const auto it = attrs.values.find(name);
  return it == attrs.values.end() ? nullptr : std::get_if<V>(&it->second);
}

// Calls f.template operator()<T>() with T an unsigned word of `bytes` (an element: 1, 2, 4 or 8).
template <class F>
Status dispatch_element(std::size_t bytes, const char* op, F&& f) {
  switch (bytes) {
    case 1: return f.template operator()<std::uint8_t>();
    case 2: return f.template operator()<std::uint16_t>();
    case 4: return f.template operator()<std::uint32_t>();
    case 8: return f.template operator()<std::uint64_t>();
    default: return op_unsupported(op, "element size " + std::to_string(bytes));
  }
}

// dispatch_element, plus 16-byte words for copies of several elements at once.
template <class F>
Status dispatch_word(std::size_t bytes, const char* op, F&& f) {
  if (bytes == 16) return f.template operator()<uint4>();
  return dispatch_element(bytes, op, f);
}

// Calls f.template operator()<I>() with I = int32 when every element offset below `extent` fits.
template <class F>
Status dispatch_index(std::int64_t extent, F&& f) {
  if (extent <= std::numeric_limits<std::int32_t>::max()) return f.template operator()<std::int32_t>();
  return f.template operator()<std::int64_t>();
}

// Calls f.template operator()<Index>() for int64 or int32 index tensors.
template <class F>
Status dispatch_indices(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::kInt64: return f.template operator()<std::int64_t>();
    case DType::kInt32: return f.template operator()<std::int32_t>();
    default: return op_unsupported(op, std::string("indices of dtype ") + dtype_name(dtype));
  }
}

template <class T>
__device__ __forceinline__ T from_bits(std::uint64_t bits) {
  T v{};  // a 16-byte word: these 8 bytes, then zeros
  memcpy(&v, &bits, sizeof(T) < sizeof(bits) ? sizeof(T) : sizeof(bits));
  return v;
}

// ---------------------------------------------------------------------------------------------
// Strided copy: Transpose, Slice, Expand, Tile

inline constexpr int kMaxCopyDims = 2 * kMaxRank;  // Tile splits every axis in two
inline constexpr int kTile = 32;
inline constexpr int kTileRows = 8;     // a tile's threads: kTile x kTileRows, each moving kTile / kTileRows
inline constexpr int kMinTiled = 16;    // thinner transposes gather directly
inline constexpr std::int64_t kMaxGridYZ = 65535;

// out (dense) = in[sum idx_d * stride_d], with size-1 dims dropped and dims that stay contiguous
// in the input merged. Dims are stored innermost first, so that kernels index them with
// unrolled constants.
struct CopyPlan {
  int rank = 0;
  std::int64_t size[kMaxCopyDims] = {};
  std::int64_t stride[kMaxCopyDims] = {};  // input elements, any sign, 0 for repeats
};

CopyPlan merge_dims(const Shape& out, const std::vector<std::int64_t>& strides) {
  CopyPlan p;
  for (std::size_t d = out.size(); d-- > 0;) {
    if (out[d] == 1) continue;
    if (p.rank > 0 && strides[d] == p.stride[p.rank - 1] * p.size[p.rank - 1]) {
      p.size[p.rank - 1] *= out[d];
      continue;
    }
    p.size[p.rank] = out[d];
    p.stride[p.rank] = strides[d];
    ++p.rank;
  }
  return p;
}

// One past the largest input offset (in magnitude) the plan reads.
std::int64_t read_extent(const CopyPlan& p) {
  std::int64_t extent = 1;
  for (int d = 0; d < p.rank; ++d) extent += (p.stride[d] < 0 ? -p.stride[d] : p.stride[d]) * (p.size[d] - 1);
  return extent;
}

// The input offset of element i of the plan's dense output.
template <class I>
__device__ __forceinline__ I plan_offset(const CopyPlan& p, I i) {
  I offset = 0;
#pragma unroll
  for (int d = 0; d < kMaxCopyDims; ++d) {
    if (d == p.rank) break;
    const auto size = static_cast<I>(p.size[d]);
    offset += (i % size) * static_cast<I>(p.stride[d]);
    i /= size;
  }
  return offset;
}

template <class T, class I>
__global__ void strided_copy_gpu(T* out, const T* in, CopyPlan p, std::int64_t n) {
  FSWAP_GRID_STRIDE(i, n) out[i] = in[plan_offset(p, static_cast<I>(i))];
}

// A transpose: the inner output dim (cols) reads the input with a stride, another output dim
// (rows) reads it contiguously; the remaining dims form a batch of such matrices.
struct TilePlan {
  std::int64_t rows = 0, cols = 0;
  std::int64_t in_col_stride = 0;   // input step of the inner output dim
  std::int64_t out_row_stride = 0;  // output step of the rows' dim
  CopyPlan batch;                   // the other dims with their input strides, innermost first
  std::int64_t batch_out_stride[kMaxCopyDims] = {};
  std::int64_t batches = 1;
};

std::optional<TilePlan> tile_plan(const CopyPlan& p) {
  if (p.rank < 2 || p.stride[0] == 0 || p.stride[0] == 1) return std::nullopt;
  int j = 1;
  while (j < p.rank && p.stride[j] != 1) ++j;
  if (j == p.rank || p.size[j] < kMinTiled || p.size[0] < kMinTiled || (p.size[j] + kTile - 1) / kTile > kMaxGridYZ)
    return std::nullopt;
  std::int64_t out_stride[kMaxCopyDims];
  std::int64_t step = 1;
  for (int d = 0; d < p.rank; ++d) {
    out_stride[d] = step;
    step *= p.size[d];
  }
  TilePlan t;
  t.rows = p.size[j];
  t.cols = p.size[0];
  t.in_col_stride = p.stride[0];
  t.out_row_stride = out_stride[j];
  for (int d = 1; d < p.rank; ++d) {
    if (d == j) continue;
    const int b = t.batch.rank++;
    t.batch.size[b] = p.size[d];
    t.batch.stride[b] = p.stride[d];
    t.batch_out_stride[b] = out_stride[d];
    t.batches *= p.size[d];
  }
  return t;
}

// Reads a kTile x kTile tile along the input's contiguous dim and writes it along the output's,
// so both sides coalesce.
template <class T, class I>
__global__ void tiled_transpose_gpu(T* out, const T* in, TilePlan p) {
  __shared__ T tile[kTile][kTile + 1];  // +1: the transposed read hits distinct banks
  const auto rows = static_cast<I>(p.rows), cols = static_cast<I>(p.cols);
  const I col0 = static_cast<I>(blockIdx.x) * kTile, row0 = static_cast<I>(blockIdx.y) * kTile;
  for (I b = blockIdx.z; b < static_cast<I>(p.batches); b += gridDim.z) {
    I rest = b, in_base = 0, out_base = 0;
    for (int d = 0; d < p.batch.rank; ++d) {
      const auto size = static_cast<I>(p.batch.size[d]);
      const I idx = rest % size;
      rest /= size;
      in_base += idx * static_cast<I>(p.batch.stride[d]);
      out_base += idx * static_cast<I>(p.batch_out_stride[d]);
    }
    for (int k = threadIdx.y; k < kTile; k += kTileRows) {
      const I col = col0 + k, row = row0 + static_cast<I>(threadIdx.x);
      if (col < cols && row < rows) tile[k][threadIdx.x] = in[in_base + row + col * static_cast<I>(p.in_col_stride)];
    }
    __syncthreads();
    for (int k = threadIdx.y; k < kTile; k += kTileRows) {
      const I row = row0 + k, col = col0 + static_cast<I>(threadIdx.x);
      if (row < rows && col < cols) out[out_base + row * static_cast<I>(p.out_row_stride) + col] = tile[threadIdx.x][k];
    }
    __syncthreads();
  }
}

// out (dense, out_shape) = in[sum idx_d * strides_d] for elements of esize bytes.
Status strided_copy(const CudaKernelArgs& args, const char* op, std::size_t esize, void* out, const Shape& out_shape,
                    const void* in, const std::vector<std::int64_t>& strides) {
  const std::int64_t n = shape_elements(out_shape);
  if (n == 0) return Status::ok();
  FSWAP_RETURN_IF_ERROR(check_rank(op, out_shape, kMaxCopyDims));
  const CopyPlan plan = merge_dims(out_shape, strides);
  if (plan.rank == 0 || (plan.rank == 1 && plan.stride[0] == 1))
    return copy_device(args, op, out, in, static_cast<std::size_t>(n) * esize);
  const std::int64_t extent = std::max(n, read_extent(plan));
  const std::optional<TilePlan> tiles = tile_plan(plan);
  return dispatch_element(esize, op, [&]<class T>() {
    return dispatch_index(extent, [&]<class I>() {
      if (tiles) {
        const dim3 grid(static_cast<unsigned>((tiles->cols + kTile - 1) / kTile),
                        static_cast<unsigned>((tiles->rows + kTile - 1) / kTile),
                        static_cast<unsigned>(std::min(tiles->batches, kMaxGridYZ)));
        tiled_transpose_gpu<T, I><<<grid, dim3(kTile, kTileRows), 0, stream_of(args)>>>(
            static_cast<T*>(out), static_cast<const T*>(in), *tiles);
      } else {
        strided_copy_gpu<T, I><<<grid_for(n), kBlock, 0, stream_of(args)>>>(static_cast<T*>(out),
                                                                             static_cast<const T*>(in), plan, n);
      }
      return check_launch(op);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Reshape, Flatten, Squeeze, Unsqueeze: the bytes stay as they are.

Status reshape_kernel(const CudaKernelArgs& args) {
  const char* op = op_name(args.op);
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  if (x.bytes() != y.bytes())
    return op_error(op, "output " + shape_to_string(y.shape) + " does not hold the input " + shape_to_string(x.shape));
  return copy_device(args, op, y.data, x.data, y.bytes());
}

// ---------------------------------------------------------------------------------------------
// Transpose

Status transpose_kernel(const CudaKernelArgs& args) {
  constexpr const char* kOp = "Transpose";
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_dtype_kept(kOp, x, y));
  FSWAP_RETURN_IF_ERROR(check_rank(kOp, x.shape));
  FSWAP_ASSIGN_OR_RETURN(const StridedRead r, transpose_read(on_cuda(kOp), args.attrs, x.shape, y.shape));
  return strided_copy(args, kOp, dtype_size(x.dtype), y.data, r.shape, x.data, r.strides);
}

// ---------------------------------------------------------------------------------------------
// Concat and Split: rows of a whole tensor cut into pieces side by side, one launch per
// kMaxPieces pieces.

inline constexpr int kMaxPieces = 32;

// A piece's bytes per outer row and where they start in the whole's row.
struct PieceBytes {
  void* data = nullptr;
  std::int64_t row = 0;
  std::int64_t col = 0;
};

// The pieces of one launch, in words: piece k covers columns [begin[k], begin[k+1]) of the
// launch and starts at whole_col[k] in the whole's row.
struct Pieces {
  int count = 0;
  std::int64_t begin[kMaxPieces + 1] = {};
  std::int64_t whole_col[kMaxPieces] = {};
  void* data[kMaxPieces] = {};
};

struct PieceSpot {
  int k;
  std::int64_t piece, whole;  // word offsets
};

__device__ __forceinline__ PieceSpot locate(const Pieces& p, std::int64_t i, std::int64_t whole_row) {
  const std::int64_t cols = p.begin[p.count];
  const std::int64_t o = i / cols, c = i % cols;
  int k = 0;
  while (c >= p.begin[k + 1]) ++k;
  const std::int64_t col = c - p.begin[k];
  return {k, o * (p.begin[k + 1] - p.begin[k]) + col, o * whole_row + p.whole_col[k] + col};
}

template <class W>
__global__ void concat_gpu(W* whole, Pieces p, std::int64_t whole_row, std::int64_t n) {
  FSWAP_GRID_STRIDE(i, n) {
    const PieceSpot s = locate(p, i, whole_row);
    whole[s.whole] = static_cast<const W*>(p.data[s.k])[s.piece];
  }
}

template <class W>
__global__ void split_gpu(const W* whole, Pieces p, std::int64_t whole_row, std::int64_t n) {
  FSWAP_GRID_STRIDE(i, n) {
    const PieceSpot s = locate(p, i, whole_row);
    static_cast<W*>(p.data[s.k])[s.piece] = whole[s.whole];
  }
}

// Concat (into_whole) or Split: `outer` rows of whole_row bytes.
Status move_pieces(const CudaKernelArgs& args, const char* op, void* whole, std::int64_t whole_row, std::int64_t outer,
                   const std::vector<PieceBytes>& pieces, bool into_whole) {
  std::uintptr_t bits = address(whole) | bits_of(whole_row);
  for (const PieceBytes& piece : pieces) bits |= address(piece.data) | bits_of(piece.row) | bits_of(piece.col);
  const std::size_t word = widest_word(bits);
  const auto words = [word](std::int64_t bytes) { return bytes / static_cast<std::int64_t>(word); };
  return dispatch_word(word, op, [&]<class W>() {
    for (std::size_t first = 0; first < pieces.size(); first += kMaxPieces) {
      Pieces p;
      for (std::size_t k = first; k < pieces.size() && p.count < kMaxPieces; ++k, ++p.count) {
        p.data[p.count] = pieces[k].data;
        p.whole_col[p.count] = words(pieces[k].col);
        p.begin[p.count + 1] = p.begin[p.count] + words(pieces[k].row);
      }
      const std::int64_t n = outer * p.begin[p.count];
      if (into_whole) {
        concat_gpu<W><<<grid_for(n), kBlock, 0, stream_of(args)>>>(static_cast<W*>(whole), p, words(whole_row), n);
      } else {
        split_gpu<W><<<grid_for(n), kBlock, 0, stream_of(args)>>>(static_cast<const W*>(whole), p, words(whole_row), n);
      }
      FSWAP_RETURN_IF_ERROR(check_launch(op));
    }
    return Status::ok();
  });
}

Status concat_kernel(const CudaKernelArgs& args) {
  constexpr const char* kOp = "Concat";
  const TensorView& y = args.outputs.at(0);
  const std::size_t rank = y.shape.size();
  FSWAP_ASSIGN_OR_RETURN(const std::size_t axis, axis_index(kOp, args.attrs.i("axis", 0), rank));
  const auto esize = static_cast<std::int64_t>(dtype_size(y.dtype));
  const std::int64_t outer = product(y.shape, 0, axis);
  const std::int64_t inner = product(y.shape, axis + 1, rank);
  std::vector<PieceBytes> pieces;
  std::int64_t total = 0;
  for (const TensorView& x : args.inputs) {
    FSWAP_RETURN_IF_ERROR(check_dtype_kept(kOp, x, y));
    if (x.shape.size() != rank) return op_error(kOp, "inputs differ in rank");
    for (std::size_t d = 0; d < rank; ++d)
      if (d != axis && x.shape[d] != y.shape[d])
        return op_error(kOp, "input " + shape_to_string(x.shape) + " does not fit the output " +
                                 shape_to_string(y.shape));
    const std::int64_t row = x.shape[axis] * inner * esize;
    if (x.elements() > 0) pieces.push_back({x.data, row, total * inner * esize});
    total += x.shape[axis];
  }
  if (total != y.shape[axis]) return op_error(kOp, "input sizes along axis do not add up");
  if (y.elements() == 0) return Status::ok();
  return move_pieces(args, kOp, y.data, total * inner * esize, outer, pieces, true);
}

Status split_kernel(const CudaKernelArgs& args) {
  constexpr const char* kOp = "Split";
  const TensorView& x = args.inputs.at(0);
  const std::size_t rank = x.shape.size();
  FSWAP_ASSIGN_OR_RETURN(const std::size_t axis, axis_index(kOp, args.attrs.i("axis", 0), rank));
  const auto esize = static_cast<std::int64_t>(dtype_size(x.dtype));
  const std::int64_t outer = product(x.shape, 0, axis);
  const std::int64_t inner = product(x.shape, axis + 1, rank);
  // The outputs' shapes (from shape inference) carry the split sizes, whichever form gave them.
  std::vector<PieceBytes> pieces;
  std::int64_t total = 0;
  for (const TensorView& y : args.outputs) {
    FSWAP_RETURN_IF_ERROR(check_dtype_kept(kOp, x, y));
    if (y.shape.size() != rank) return op_error(kOp, "outputs differ in rank from the input");
    const std::int64_t row = y.shape[axis] * inner * esize;
    if (y.data != nullptr && y.elements() > 0) pieces.push_back({y.data, row, total * inner * esize});
    total += y.shape[axis];
  }
  if (total != x.shape[axis]) return op_error(kOp, "output sizes along axis do not add up");
  if (x.elements() == 0) return Status::ok();
  return move_pieces(args, kOp, x.data, total * inner * esize, outer, pieces, false);
}

// ---------------------------------------------------------------------------------------------
// Slice

Status slice_kernel(const CudaKernelArgs& args) {
  constexpr const char* kOp = "Slice";
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_dtype_kept(kOp, x, y));
  FSWAP_RETURN_IF_ERROR(check_rank(kOp, x.shape));
  std::vector<std::int64_t> starts, ends, axes, steps;
  if (args.inputs.size() >= 3) {  // opset >= 10
    FSWAP_ASSIGN_OR_RETURN(starts, host_ints(args, 1, "starts"));
    FSWAP_ASSIGN_OR_RETURN(ends, host_ints(args, 2, "ends"));
    if (has_input(args, 3)) {
      FSWAP_ASSIGN_OR_RETURN(axes, host_ints(args, 3, "axes"));
    }
    if (has_input(args, 4)) {
      FSWAP_ASSIGN_OR_RETURN(steps, host_ints(args, 4, "steps"));
    }
  } else {  // opset 1: attributes
    starts = args.attrs.ints("starts", {});
    ends = args.attrs.ints("ends", {});
    axes = args.attrs.ints("axes", {});
  }
  FSWAP_ASSIGN_OR_RETURN(const StridedRead r, slice_read(on_cuda(kOp), x.shape, y.shape, starts, ends, std::move(axes),
                                                         std::move(steps)));
  const std::size_t esize = dtype_size(x.dtype);
  const std::byte* first = static_cast<const std::byte*>(x.data) + r.offset * static_cast<std::int64_t>(esize);
  return strided_copy(args, kOp, esize, y.data, r.shape, first, r.strides);
}

// ---------------------------------------------------------------------------------------------
// Gather, GatherElements

// Index idx along a dim of n, negative counting from the end; -1 when out of range.
template <class Index>
__device__ __forceinline__ std::int64_t wrap_index(Index idx, std::int64_t n) {
  const std::int64_t i = idx < 0 ? static_cast<std::int64_t>(idx) + n : static_cast<std::int64_t>(idx);
  return i >= 0 && i < n ? i : -1;
}

// out[o, j, k] = in[o, indices[j], k] over [outer, count, inner] in words.
template <class W, class Index>
__global__ void gather_gpu(W* out, const W* in, const Index* indices, std::int64_t count, std::int64_t axis_dim,
                           std::int64_t inner, std::int64_t n) {
  FSWAP_GRID_STRIDE(i, n) {
    const std::int64_t k = i % inner, rest = i / inner;
    const std::int64_t j = rest % count, o = rest / count;
    const std::int64_t idx = wrap_index(indices[j], axis_dim);
    out[i] = idx < 0 ? W{} : in[(o * axis_dim + idx) * inner + k];
  }
}

Status gather_kernel(const CudaKernelArgs& args) {
  constexpr const char* kOp = "Gather";
  const TensorView& x = args.inputs.at(0);
  const TensorView& indices = args.inputs.at(1);
  const TensorView& y = args.outputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_dtype_kept(kOp, x, y));
  const std::size_t rank = x.shape.size();
  FSWAP_ASSIGN_OR_RETURN(const std::size_t axis, axis_index(kOp, args.attrs.i("axis", 0), rank));
  const std::int64_t axis_dim = x.shape[axis];
  const std::int64_t outer = product(x.shape, 0, axis);
  const std::int64_t inner = product(x.shape, axis + 1, rank);
  const std::int64_t count = indices.elements();
  if (y.elements() != outer * count * inner)
    return op_error(kOp, "output shape " + shape_to_string(y.shape) + " is wrong");
  if (y.elements() == 0) return Status::ok();
  const auto row = static_cast<std::int64_t>(dtype_size(x.dtype)) * inner;
  const std::size_t word = widest_word(bits_of(row) | address(x.data) | address(y.data));
  const std::int64_t inner_words = row / static_cast<std::int64_t>(word);
  const std::int64_t n = outer * count * inner_words;
  return dispatch_word(word, kOp, [&]<class W>() {
    return dispatch_indices(indices.dtype, kOp, [&]<class Index>() {
      gather_gpu<W, Index><<<grid_for(n), kBlock, 0, stream_of(args)>>>(
          y.as<W>(), x.as<const W>(), indices.as<const Index>(), count, axis_dim, inner_words, n);
      return check_launch(kOp);
    });
  });
}

struct GatherElementsPlan {
  Dims out;                                   // the indices' (= output's) shape
  std::int64_t data_stride[kMaxRank] = {};
  int axis = 0;
  std::int64_t axis_dim = 0;
};

template <class T, class Index>
__global__ void gather_elements_gpu(T* out, const T* data, const Index* indices, GatherElementsPlan p, std::int64_t n) {
  FSWAP_GRID_STRIDE(i, n) {
    std::int64_t rest = i, offset = 0;
    for (int d = p.out.rank - 1; d >= 0; --d) {
      const std::int64_t c = rest % p.out.size[d];
      rest /= p.out.size[d];
      if (d != p.axis) offset += c * p.data_stride[d];
    }
    const std::int64_t idx = wrap_index(indices[i], p.axis_dim);
    out[i] = idx < 0 ? T{} : data[offset + idx * p.data_stride[p.axis]];
  }
}

Status gather_elements_kernel(const CudaKernelArgs& args) {
  constexpr const char* kOp = "GatherElements";
  const TensorView& x = args.inputs.at(0);
  const TensorView& indices = args.inputs.at(1);
  const TensorView& y = args.outputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_dtype_kept(kOp, x, y));
  FSWAP_RETURN_IF_ERROR(check_rank(kOp, x.shape));
  const std::size_t rank = x.shape.size();
  FSWAP_ASSIGN_OR_RETURN(const std::size_t axis, axis_index(kOp, args.attrs.i("axis", 0), rank));
  FSWAP_RETURN_IF_ERROR(check_gather_elements(on_cuda(kOp), x.shape, indices.shape, y.shape, axis));
  const std::int64_t n = y.elements();
  if (n == 0) return Status::ok();
  GatherElementsPlan p;
  p.out = dense_dims(y.shape);
  const std::vector<std::int64_t> strides = contiguous_strides(x.shape);
  for (std::size_t d = 0; d < rank; ++d) p.data_stride[d] = strides[d];
  p.axis = static_cast<int>(axis);
  p.axis_dim = x.shape[axis];
  return dispatch_element(dtype_size(x.dtype), kOp, [&]<class T>() {
    return dispatch_indices(indices.dtype, kOp, [&]<class Index>() {
      gather_elements_gpu<T, Index><<<grid_for(n), kBlock, 0, stream_of(args)>>>(y.as<T>(), x.as<const T>(),
                                                                                indices.as<const Index>(), p, n);
      return check_launch(kOp);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Expand, Tile

Status expand_kernel(const CudaKernelArgs& args) {
  constexpr const char* kOp = "Expand";
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_dtype_kept(kOp, x, y));
  FSWAP_RETURN_IF_ERROR(check_rank(kOp, y.shape));
  bool fits = x.shape.size() <= y.shape.size();
  for (std::size_t d = 0; fits && d < x.shape.size(); ++d) {
    const std::int64_t out = y.shape[y.shape.size() - x.shape.size() + d];
    fits = x.shape[d] == out || x.shape[d] == 1;
  }
  if (!fits)
    return op_error(kOp, "input " + shape_to_string(x.shape) + " does not broadcast to " + shape_to_string(y.shape));
  if (y.data == x.data) return Status::ok();  // same shape, in place
  const Dims b = broadcast_dims(x.shape, y.shape);
  return strided_copy(args, kOp, dtype_size(x.dtype), y.data, y.shape, x.data,
                      std::vector<std::int64_t>(b.stride, b.stride + b.rank));
}

Status tile_kernel(const CudaKernelArgs& args) {
  constexpr const char* kOp = "Tile";
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_dtype_kept(kOp, x, y));
  FSWAP_RETURN_IF_ERROR(check_rank(kOp, x.shape));
  FSWAP_ASSIGN_OR_RETURN(const std::vector<std::int64_t> repeats, host_ints(args, 1, "repeats"));
  FSWAP_ASSIGN_OR_RETURN(const StridedRead r, tile_read(on_cuda(kOp), x.shape, y.shape, repeats));
  return strided_copy(args, kOp, dtype_size(x.dtype), y.data, r.shape, x.data, r.strides);
}

// ---------------------------------------------------------------------------------------------
// ScatterND

struct ScatterPlan {
  int k = 0;                                  // index tuple length
  std::int64_t dim[kMaxRank] = {};            // the data's leading k dims
  std::int64_t slice_stride[kMaxRank] = {};   // in slices
  std::int64_t slice_words = 0;
};

template <class W, class Index>
__global__ void scatter_nd_gpu(W* out, const W* updates, const Index* indices, ScatterPlan p, std::int64_t n) {
  FSWAP_GRID_STRIDE(i, n) {
    const std::int64_t t = i / p.slice_words, s = i % p.slice_words;
    std::int64_t slice = 0;
    bool valid = true;
    for (int j = 0; j < p.k; ++j) {
      const std::int64_t idx = wrap_index(indices[t * p.k + j], p.dim[j]);
      valid = valid && idx >= 0;
      slice += idx * p.slice_stride[j];
    }
    if (valid) out[slice * p.slice_words + s] = updates[i];
  }
}

Status scatter_nd_kernel(const CudaKernelArgs& args) {
  constexpr const char* kOp = "ScatterND";
  const TensorView& x = args.inputs.at(0);
  const TensorView& indices = args.inputs.at(1);
  const TensorView& updates = args.inputs.at(2);
  const TensorView& y = args.outputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_dtype_kept(kOp, x, y));
  FSWAP_RETURN_IF_ERROR(check_dtype_kept(kOp, updates, y));
  const std::string reduction = args.attrs.s("reduction", "none");
  if (reduction != "none") return op_unsupported(kOp, "reduction=\"" + reduction + "\"");
  if (x.shape != y.shape) return op_error(kOp, "output shape differs from the data's");
  if (indices.shape.empty()) return op_error(kOp, "indices must have rank >= 1");
  FSWAP_RETURN_IF_ERROR(check_rank(kOp, x.shape));
  const std::size_t rank = x.shape.size();
  if (indices.shape.back() < 0 || static_cast<std::size_t>(indices.shape.back()) > rank)
    return op_error(kOp, "indices' last dimension exceeds the data's rank");
  const auto k = static_cast<std::size_t>(indices.shape.back());
  Shape expect(indices.shape.begin(), indices.shape.end() - 1);
  expect.insert(expect.end(), x.shape.begin() + static_cast<std::ptrdiff_t>(k), x.shape.end());
  if (updates.shape != expect)
    return op_error(kOp, "updates " + shape_to_string(updates.shape) + " should be " + shape_to_string(expect));
  FSWAP_RETURN_IF_ERROR(copy_device(args, kOp, y.data, x.data, y.bytes()));
  const std::int64_t n_updates = updates.elements();
  if (n_updates == 0) return Status::ok();
  const auto slice_bytes = product(x.shape, k, rank) * static_cast<std::int64_t>(dtype_size(x.dtype));
  const std::size_t word = widest_word(bits_of(slice_bytes) | address(y.data) | address(updates.data));
  ScatterPlan p;
  p.k = static_cast<int>(k);
  for (std::size_t j = 0; j < k; ++j) {
    p.dim[j] = x.shape[j];
    p.slice_stride[j] = product(x.shape, j + 1, k);
  }
  p.slice_words = slice_bytes / static_cast<std::int64_t>(word);
  const std::int64_t n = n_updates * static_cast<std::int64_t>(dtype_size(x.dtype)) / static_cast<std::int64_t>(word);
  return dispatch_word(word, kOp, [&]<class W>() {
    return dispatch_indices(indices.dtype, kOp, [&]<class Index>() {
      scatter_nd_gpu<W, Index><<<grid_for(n), kBlock, 0, stream_of(args)>>>(y.as<W>(), updates.as<const W>(),
                                                                           indices.as<const Index>(), p, n);
      return check_launch(kOp);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Pad

enum class PadMode { kConstant, kReflect, kEdge, kWrap };

struct PadPlan {  // axes innermost first
  int rank = 0;
  PadMode mode = PadMode::kConstant;
  std::int64_t out[kMaxRank] = {};
  std::int64_t in[kMaxRank] = {};
  std::int64_t in_stride[kMaxRank] = {};
  std::int64_t begin[kMaxRank] = {};  // pad before the data; negative crops
};

// The input index read at position i (output index minus the leading pad) of an axis of n; -1 for
// the constant.
template <class I>
__device__ __forceinline__ I pad_source(I i, I n, PadMode mode) {
  if (i >= 0 && i < n) return i;
  if (mode == PadMode::kConstant || n == 0) return -1;
  if (mode == PadMode::kEdge) return i < 0 ? 0 : n - 1;
  if (mode == PadMode::kWrap) return ((i % n) + n) % n;
  if (n == 1) return 0;  // reflect
  const I period = 2 * (n - 1);
  i = ((i % period) + period) % period;
  return i >= n ? period - i : i;
}

// value_on_device: the constant when it is not a host constant, else nullptr and value_bits hold it.
template <class T, class I>
__global__ void pad_gpu(T* out, const T* in, PadPlan p, std::uint64_t value_bits, const T* value_on_device,
                        std::int64_t n) {
  const T value = value_on_device != nullptr ? *value_on_device : from_bits<T>(value_bits);
  FSWAP_GRID_STRIDE(i, n) {
    I rest = static_cast<I>(i), offset = 0;
    bool constant = false;
#pragma unroll
    for (int d = 0; d < kMaxRank; ++d) {
      if (d == p.rank) break;
      const auto size = static_cast<I>(p.out[d]);
      const I o = rest % size;
      rest /= size;
      const I s = pad_source<I>(o - static_cast<I>(p.begin[d]), static_cast<I>(p.in[d]), p.mode);
      constant = constant || s < 0;
      offset += s * static_cast<I>(p.in_stride[d]);
    }
    out[i] = constant ? value : in[offset];
  }
}

// p with its `untouched` innermost axes (no pad on them, `run` elements in all) merged into one
// axis of `words` words.
PadPlan runs_as_words(const PadPlan& p, int untouched, std::int64_t run, std::int64_t words) {
  PadPlan q;
  q.mode = p.mode;
  q.rank = p.rank - untouched + 1;
  q.out[0] = q.in[0] = words;
  q.in_stride[0] = 1;
  for (int k = untouched; k < p.rank; ++k) {
    const int d = k - untouched + 1;
    q.out[d] = p.out[k];
    q.in[d] = p.in[k];
    q.begin[d] = p.begin[k];
    q.in_stride[d] = p.in_stride[k] / run * words;
  }
  return q;
}

Result<PadMode> pad_mode(const std::string& mode) {
  if (mode == "constant") return PadMode::kConstant;
  if (mode == "reflect") return PadMode::kReflect;
  if (mode == "edge") return PadMode::kEdge;
  if (mode == "wrap") return PadMode::kWrap;
  return op_unsupported("Pad", "mode " + mode);
}

Status pad_kernel(const CudaKernelArgs& args) {
  constexpr const char* kOp = "Pad";
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  const std::size_t rank = x.shape.size();
  if (y.shape.size() != rank || y.dtype != x.dtype) return op_error(kOp, "output does not match X");
  FSWAP_RETURN_IF_ERROR(check_rank(kOp, x.shape));
  FSWAP_ASSIGN_OR_RETURN(const PadMode mode, pad_mode(args.attrs.s("mode", "constant")));
  // pads: input 1 (opset >= 11) or attribute (older); optional axes input 3 (opset 18).
  const bool pads_input = has_input(args, 1);
  std::vector<std::int64_t> pads;
  if (pads_input) {
    FSWAP_ASSIGN_OR_RETURN(pads, host_ints(args, 1, "pads"));
  } else {
    pads = args.attrs.ints("pads", {});
  }
  std::vector<std::size_t> axes;
  if (has_input(args, 3)) {
    FSWAP_ASSIGN_OR_RETURN(const std::vector<std::int64_t> named, host_ints(args, 3, "axes"));
    for (const std::int64_t a : named) {
      FSWAP_ASSIGN_OR_RETURN(const std::size_t axis, axis_index(kOp, a, rank));
      axes.push_back(axis);
    }
  } else {
    for (std::size_t i = 0; i < rank; ++i) axes.push_back(i);
  }
  if (pads.size() != 2 * axes.size())
    return op_error(kOp, std::to_string(pads.size()) + " pads for " + std::to_string(axes.size()) + " axes");
  for (std::size_t i = 0; i < rank; ++i)
    if (y.shape[i] < 0) return op_error(kOp, "negative output dim");

  std::uint64_t value_bits = 0;  // zero bytes: every dtype's 0, the default
  const void* value_on_device = nullptr;
  if (has_input(args, 2) && args.inputs[2].elements() > 0) {
    if (args.host_inputs.size() > 2 && args.host_inputs[2].data != nullptr) {
      const TensorView& value = args.host_inputs[2];
      FSWAP_ASSIGN_OR_RETURN(value_bits, scalar_bits(kOp, value.data, value.dtype, x.dtype));
    } else {
      if (args.inputs[2].dtype != x.dtype) return op_error(kOp, "constant_value dtype differs from X");
      value_on_device = args.inputs[2].data;
    }
  } else if (!pads_input && args.attrs.has("value")) {
    if (x.dtype != DType::kFloat32 && x.dtype != DType::kFloat16)
      return op_unsupported(kOp, std::string("value attribute on X of dtype ") + dtype_name(x.dtype));
    const float value = args.attrs.f("value", 0.0f);
    FSWAP_ASSIGN_OR_RETURN(value_bits, scalar_bits(kOp, &value, DType::kFloat32, x.dtype));
  }
  if (y.elements() == 0) return Status::ok();

  PadPlan p;
  p.rank = static_cast<int>(rank);
  p.mode = mode;
  const std::vector<std::int64_t> in_strides = contiguous_strides(x.shape);
  std::vector<std::int64_t> begin(rank, 0);
  std::int64_t extent = std::max(y.elements(), x.elements());
  for (std::size_t i = 0; i < axes.size(); ++i) {
    begin[axes[i]] = pads[i];
    extent += std::abs(pads[i]) + std::abs(pads[i + axes.size()]);
  }
  for (std::size_t k = 0; k < rank; ++k) {
    const std::size_t d = rank - 1 - k;
    p.out[k] = y.shape[d];
    p.in[k] = x.shape[d];
    p.in_stride[k] = in_strides[d];
    p.begin[k] = begin[d];
  }
  // The innermost axes that no pad touches (NHWC's channels) are one contiguous run of X per
  // output position: moved in words of up to 16 bytes, where the padding value is all zero bytes
  // or none is written (reflect, edge, wrap).
  const std::size_t element = dtype_size(x.dtype);
  int untouched = 0;
  std::int64_t run = 1;
  while (untouched < p.rank && p.begin[untouched] == 0 && p.out[untouched] == p.in[untouched]) run *= p.in[untouched++];
  const std::int64_t run_bytes = run * static_cast<std::int64_t>(element);
  const bool words_fit = untouched > 0 && value_on_device == nullptr && (mode != PadMode::kConstant || value_bits == 0);
  const std::size_t word = words_fit ? widest_word(bits_of(run_bytes) | address(x.data) | address(y.data)) : element;
  if (word > element) p = runs_as_words(p, untouched, run, run_bytes / static_cast<std::int64_t>(word));
  const std::int64_t n = y.elements() * static_cast<std::int64_t>(element) / static_cast<std::int64_t>(word);
  return dispatch_word(word, kOp, [&]<class T>() {
    return dispatch_index(extent, [&]<class I>() {
      pad_gpu<T, I><<<grid_for(n), kBlock, 0, stream_of(args)>>>(y.as<T>(), x.as<const T>(), p, value_bits,
                                                                  static_cast<const T*>(value_on_device), n);
      return check_launch(kOp);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Resize, Upsample: each output element is a weighted sum over 1 (nearest), 2 (linear) or 4 (cubic)
// input indices ("taps") per resized axis, in float32.

// InterpMode, CoordMode, NearestMode and ResizeMode: backends/op_rules.h.

struct ResizeAxis {
  std::int64_t in = 1, out = 1;
  std::int64_t in_stride = 1;
  float scale = 1.0f;
  bool moving = false;  // false: output index o reads input o with weight 1
};

struct ResizeParams {
  ResizeMode mode;
  int rank = 0;
  ResizeAxis axis[kMaxRank];
};

__host__ __device__ inline int taps_of(InterpMode interp) {
  return interp == InterpMode::kCubic ? 4 : interp == InterpMode::kLinear ? 2 : 1;
}

// One output index along one axis reads idx[k] with weight w[k].
struct Taps {
  std::int64_t idx[4] = {};
  float w[4] = {};
};

// Single-precision steps nvcc may not fuse into multiply-adds, so that the device picks the same
// nearest inputs as the CPU kernel and the identity axes found on the host stay identities.
__host__ __device__ inline float add_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
__host__ __device__ inline float sub_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
__host__ __device__ inline float mul_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
__host__ __device__ inline float div_rn(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}

// The input coordinate of output index x.
__host__ __device__ inline float source_coordinate(CoordMode coord, const ResizeAxis& a, std::int64_t x) {
  const float xf = static_cast<float>(x);
  switch (coord) {
    case CoordMode::kHalfPixel:
      return sub_rn(div_rn(add_rn(xf, 0.5f), a.scale), 0.5f);
    case CoordMode::kHalfPixelSymmetric: {
      const float adjustment = div_rn(static_cast<float>(a.out), mul_rn(a.scale, static_cast<float>(a.in)));
      const float center = div_rn(static_cast<float>(a.in), 2.0f);
      return sub_rn(add_rn(mul_rn(center, sub_rn(1.0f, adjustment)), div_rn(add_rn(xf, 0.5f), a.scale)), 0.5f);
    }
    case CoordMode::kPytorchHalfPixel:
      return a.out > 1 ? sub_rn(div_rn(add_rn(xf, 0.5f), a.scale), 0.5f) : 0.0f;
    case CoordMode::kAlignCorners:
      return a.out == 1 ? 0.0f : div_rn(mul_rn(xf, static_cast<float>(a.in - 1)), static_cast<float>(a.out - 1));
    case CoordMode::kAsymmetric:
      return div_rn(xf, a.scale);
    case CoordMode::kTfHalfPixelForNearest:
      return div_rn(add_rn(xf, 0.5f), a.scale);
  }
  return 0.0f;
}

__host__ __device__ inline float nearest_of(NearestMode nearest, float c) {
  switch (nearest) {
    case NearestMode::kRoundPreferFloor: return c == floorf(c) + 0.5f ? floorf(c) : roundf(c);
    case NearestMode::kRoundPreferCeil: return c == floorf(c) + 0.5f ? ceilf(c) : roundf(c);
    case NearestMode::kFloor: return floorf(c);
    case NearestMode::kCeil: return ceilf(c);
  }
  return 0.0f;
}

// Keys' cubic convolution weights for distances |d| <= 1 (near) and 1 < |d| < 2 (far).
__host__ __device__ inline float cubic_near(float d, float a) { return ((a + 2) * d - (a + 3)) * d * d + 1; }
__host__ __device__ inline float cubic_far(float d, float a) { return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a; }

__host__ __device__ inline std::int64_t clamp_index(std::int64_t i, std::int64_t last) {
  const std::int64_t low = i < 0 ? 0 : i;
  return last < low ? last : low;
}

__host__ __device__ inline Taps axis_taps(const ResizeMode& m, const ResizeAxis& a, std::int64_t x) {
  Taps t;
  const float c = source_coordinate(m.coord, a, x);
  const std::int64_t last = a.in - 1;
  switch (m.interp) {
    case InterpMode::kLinear: {
      const float low = c < 0.0f ? 0.0f : c;
      const float cc = static_cast<float>(last) < low ? static_cast<float>(last) : low;
      const auto f = static_cast<std::int64_t>(floorf(cc));
      t.idx[0] = f;
      t.idx[1] = last < f + 1 ? last : f + 1;
      t.w[1] = t.idx[1] == f ? 0.0f : cc - static_cast<float>(f);
      t.w[0] = 1.0f - t.w[1];
      break;
    }
    case InterpMode::kCubic: {
      // Out-of-range taps read the edge value (the ONNX reference pads with "edge"), unless
      // exclude_outside drops them.
      const float f = floorf(c);
      const float frac = c - f;
      t.w[0] = cubic_far(frac + 1, m.cubic_a);
      t.w[1] = cubic_near(frac, m.cubic_a);
      t.w[2] = cubic_near(1 - frac, m.cubic_a);
      t.w[3] = cubic_far(2 - frac, m.cubic_a);
      float sum = 0.0f;
      for (int k = 0; k < 4; ++k) {
        const std::int64_t i = static_cast<std::int64_t>(f) - 1 + k;
        if (m.exclude_outside && (i < 0 || i > last)) t.w[k] = 0.0f;
        t.idx[k] = clamp_index(i, last);
        sum += t.w[k];
      }
      if (m.exclude_outside && sum != 0.0f)
        for (int k = 0; k < 4; ++k) t.w[k] /= sum;
      break;
    }
    case InterpMode::kNearest:
      t.idx[0] = clamp_index(static_cast<std::int64_t>(nearest_of(m.nearest, c)), last);
      t.w[0] = 1.0f;
      break;
  }
  return t;
}

__device__ __forceinline__ Taps identity_taps(std::int64_t o) {
  Taps t;
  t.idx[0] = o;
  t.w[0] = 1.0f;
  return t;
}

// Whether every output index of the axis reads only its own index with weight 1.
bool is_identity_axis(const ResizeMode& m, const ResizeAxis& a) {
  if (a.in != a.out) return false;
  const int taps = taps_of(m.interp);
  for (std::int64_t o = 0; o < a.out; ++o) {
    const Taps t = axis_taps(m, a, o);
    for (int k = 0; k < taps; ++k)
      if (t.w[k] != 0.0f && (t.idx[k] != o || t.w[k] != 1.0f)) return false;
  }
  return true;
}

// One output element of a plane `src` (rows of in_w): its y taps' rows, each mixed over its x taps.
template <class T, class I, int kTaps>
__device__ __forceinline__ float interpolate(const T* src, I in_w, const Taps& ty, const Taps& tx) {
  float sum = 0.0f;
#pragma unroll
  for (int a = 0; a < kTaps; ++a) {
    if (ty.w[a] == 0.0f) continue;
    const T* row = src + static_cast<I>(ty.idx[a]) * in_w;
    float v = 0.0f;
#pragma unroll
    for (int b = 0; b < kTaps; ++b)
      if (tx.w[b] != 0.0f) v += tx.w[b] * to_float(row[tx.idx[b]]);
    sum += ty.w[a] * v;
  }
  return sum;
}

// The common case: only the last two axes (y, x) move, so each output element mixes up to
// kTaps x kTaps inputs of its plane.
template <class T, class I, int kTaps>
__global__ void resize_plane_gpu(T* out, const T* in, ResizeMode m, ResizeAxis ay, ResizeAxis ax, std::int64_t n) {
  const auto out_w = static_cast<I>(ax.out), out_h = static_cast<I>(ay.out);
  const auto in_w = static_cast<I>(ax.in), plane_size = static_cast<I>(ay.in * ax.in);
  FSWAP_GRID_STRIDE(i, n) {
    I rest = static_cast<I>(i);
    const I ox = rest % out_w;
    rest /= out_w;
    const I oy = rest % out_h;
    const I plane = rest / out_h;
    const Taps ty = ay.moving ? axis_taps(m, ay, oy) : identity_taps(oy);
    const Taps tx = ax.moving ? axis_taps(m, ax, ox) : identity_taps(ox);
    out[i] = from_float<T>(interpolate<T, I, kTaps>(in + plane * plane_size, in_w, ty, tx));
  }
}

// resize_plane_gpu's result, faster: a block covers kRowsPerBlock output rows × kRowBlock columns of
// one plane (blockIdx.z), so each row's taps are computed once per block (in shared memory) and
// each column's once per thread, instead of both for every output element with its divisions.
// The taps and the sums are the same, in the same order: the outputs are bit-identical.
inline constexpr int kRowsPerBlock = 8;
inline constexpr int kRowBlock = 128;
template <class T, class I, int kTaps>
__global__ void resize_rows_gpu(T* out, const T* in, ResizeMode m, ResizeAxis ay, ResizeAxis ax) {
  __shared__ Taps row_taps[kRowsPerBlock];
  const auto out_w = static_cast<I>(ax.out), out_h = static_cast<I>(ay.out), in_w = static_cast<I>(ax.in);
  const I oy0 = static_cast<I>(blockIdx.y) * kRowsPerBlock;
  const I rows = out_h - oy0 < kRowsPerBlock ? out_h - oy0 : kRowsPerBlock;
  if (static_cast<I>(threadIdx.x) < rows) {
    const I oy = oy0 + static_cast<I>(threadIdx.x);
    row_taps[threadIdx.x] = ay.moving ? axis_taps(m, ay, oy) : identity_taps(oy);
  }
  __syncthreads();
  const I ox = static_cast<I>(blockIdx.x) * kRowBlock + static_cast<I>(threadIdx.x);
  if (ox >= out_w) return;
  const Taps tx = ax.moving ? axis_taps(m, ax, ox) : identity_taps(ox);
  const I plane = static_cast<I>(blockIdx.z);
  const T* src = in + plane * static_cast<I>(ay.in) * in_w;
  T* dst = out + plane * out_h * out_w;
  for (I r = 0; r < rows; ++r)
    dst[(oy0 + r) * out_w + ox] = from_float<T>(interpolate<T, I, kTaps>(src, in_w, row_taps[r], tx));
}

// A 4-D [N, H, W, C] resize of H and W only (NHWC upsampling), over a window of the resized images
// (resize_window.h): a block covers kNhwcPixels window pixels, whose taps it computes once (in
// shared memory); its threads then walk the pixels' channels, consecutive threads on consecutive
// groups of kVec channels (kVec > 1: 16-byte loads and stores, when the channels divide into such
// groups and the tensors are 16-byte aligned; the arithmetic per channel is the same). A pixel outside the resized image has no taps and is 0. Corners, weights and sums are
// resize_nd_gpu's, in its order (W's tap varies fastest): the outputs are bit-identical.
inline constexpr int kNhwcPixels = 32;
struct PixelTaps {
  Taps y, x;
  std::int64_t image;
};
template <class T, int kVec>
struct alignas(sizeof(T) * kVec) ChannelGroup {
  T v[kVec];
};
template <class T, class I, int kTaps, int kVec>
__global__ void resize_nhwc_gpu(T* out, const T* in, ResizeMode m, ResizeAxis ay, ResizeAxis ax, NhwcWindow window,
                                I channels, I pixels) {
  __shared__ PixelTaps taps[kNhwcPixels];
  const I first = static_cast<I>(blockIdx.x) * kNhwcPixels;
  const I count = pixels - first < kNhwcPixels ? pixels - first : kNhwcPixels;
  if (static_cast<I>(threadIdx.x) < count) {
    const I pixel = first + static_cast<I>(threadIdx.x);
    const auto cols = static_cast<I>(window.cols), rows = static_cast<I>(window.rows);
    const I j = pixel % cols, rest = pixel / cols;
    const std::int64_t oy = static_cast<std::int64_t>(rest % rows) + window.row0;
    const std::int64_t ox = static_cast<std::int64_t>(j) + window.col0;
    const bool inside = oy >= 0 && oy < ay.out && ox >= 0 && ox < ax.out;
    taps[threadIdx.x] = {!inside ? Taps{} : ay.moving ? axis_taps(m, ay, oy) : identity_taps(oy),
                         !inside ? Taps{} : ax.moving ? axis_taps(m, ax, ox) : identity_taps(ox), rest / rows};
  }
  __syncthreads();
  using Group = ChannelGroup<T, kVec>;
  const auto in_h = static_cast<I>(ay.in), in_w = static_cast<I>(ax.in);
  const I groups = channels / kVec;
  for (I e = static_cast<I>(threadIdx.x); e < count * groups; e += static_cast<I>(blockDim.x)) {
    const PixelTaps& t = taps[e / groups];
    const I c = e % groups * kVec;
    const T* image = in + static_cast<I>(t.image) * in_h * in_w * channels + c;
    float sum[kVec] = {};
#pragma unroll
    for (int a = 0; a < kTaps; ++a) {
#pragma unroll
      for (int b = 0; b < kTaps; ++b) {
        const float weight = t.y.w[a] * t.x.w[b];
        if (weight != 0.0f) {
          const Group g = *reinterpret_cast<const Group*>(
              image + (static_cast<I>(t.y.idx[a]) * in_w + static_cast<I>(t.x.idx[b])) * channels);
#pragma unroll
          for (int k = 0; k < kVec; ++k) sum[k] += weight * to_float(g.v[k]);
        }
      }
    }
    Group r;
#pragma unroll
    for (int k = 0; k < kVec; ++k) r.v[k] = from_float<T>(sum[k]);
    *reinterpret_cast<Group*>(out + (first + e / groups) * channels + c) = r;
  }
}

// Enqueues resize_nhwc_gpu over `images` images of x = [images, ay.in, ax.in, channels].
Status launch_resize_nhwc(DType dtype, const char* op, void* out, const void* x, const ResizeMode& m,
                          const ResizeAxis& ay, const ResizeAxis& ax, const NhwcWindow& window, std::int64_t images,
                          std::int64_t channels, cudaStream_t stream) {
  const std::int64_t pixels = images * window.rows * window.cols;
  if (pixels == 0 || channels == 0) return Status::ok();
  return dispatch_float(dtype, op, [&]<class T>() {
    return dispatch_index(std::max(pixels, images * ay.in * ax.in) * channels, [&]<class I>() {
      const dim3 blocks(static_cast<unsigned>((pixels + kNhwcPixels - 1) / kNhwcPixels));
      const auto c = static_cast<I>(channels), p = static_cast<I>(pixels);
      T* y = static_cast<T*>(out);
      const T* in = static_cast<const T*>(x);
      const auto launch = [&]<int kVec>() {
        if (m.interp == InterpMode::kNearest)
          resize_nhwc_gpu<T, I, 1, kVec><<<blocks, kBlock, 0, stream>>>(y, in, m, ay, ax, window, c, p);
        else if (m.interp == InterpMode::kLinear)
          resize_nhwc_gpu<T, I, 2, kVec><<<blocks, kBlock, 0, stream>>>(y, in, m, ay, ax, window, c, p);
        else
          resize_nhwc_gpu<T, I, 4, kVec><<<blocks, kBlock, 0, stream>>>(y, in, m, ay, ax, window, c, p);
      };
      constexpr int kVec = 16 / static_cast<int>(sizeof(T));
      const auto aligned = [](const void* ptr) { return reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0; };
      if (channels % kVec == 0 && aligned(y) && aligned(in)) launch.template operator()<kVec>();
      else launch.template operator()<1>();
      return check_launch(op);
    });
  });
}

// Any axes move: the taps^moving corners are walked as a counter over the moving axes, their taps
// recomputed per corner (only rare resizes of three or more axes take this path).
template <class T, class I>
__global__ void resize_nd_gpu(T* out, const T* in, ResizeParams p, std::int64_t n) {
  const int taps = taps_of(p.mode.interp);
  FSWAP_GRID_STRIDE(i, n) {
    I coord[kMaxRank];
    I rest = static_cast<I>(i);
    for (int d = p.rank - 1; d >= 0; --d) {
      const auto size = static_cast<I>(p.axis[d].out);
      coord[d] = rest % size;
      rest /= size;
    }
    int digit[kMaxRank] = {};
    float sum = 0.0f;
    for (;;) {
      float weight = 1.0f;
      I offset = 0;
      for (int d = 0; d < p.rank; ++d) {
        const ResizeAxis& a = p.axis[d];
        if (!a.moving) {
          offset += coord[d] * static_cast<I>(a.in_stride);
          continue;
        }
        const Taps t = axis_taps(p.mode, a, coord[d]);
        weight *= t.w[digit[d]];
        offset += static_cast<I>(t.idx[digit[d]]) * static_cast<I>(a.in_stride);
      }
      if (weight != 0.0f) sum += weight * to_float(in[offset]);
      int d = p.rank - 1;
      for (; d >= 0; --d) {
        if (!p.axis[d].moving) continue;
        if (++digit[d] < taps) break;
        digit[d] = 0;
      }
      if (d < 0) break;
    }
    out[i] = from_float<T>(sum);
  }
}

Status resize_run(const CudaKernelArgs& args, const char* op, const ResizeMode& m, const std::vector<float>& scales) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_dtype_kept(op, x, y));
  const std::size_t rank = x.shape.size();
  if (rank == 0 || y.shape.size() != rank || scales.size() != rank)
    return op_error(op, "X " + shape_to_string(x.shape) + ", Y " + shape_to_string(y.shape) + " and " +
                            std::to_string(scales.size()) + " scales do not agree");
  ResizeParams p;
  p.mode = m;
  // A 1-D resize runs as 2-D behind an identity axis of 1.
  const std::size_t lead = rank == 1 ? 1 : 0;
  p.rank = static_cast<int>(rank + lead);
  const std::vector<std::int64_t> in_strides = contiguous_strides(x.shape);
  for (std::size_t a = 0; a < rank; ++a) {
    if (x.shape[a] <= 0 && y.shape[a] > 0) return op_error(op, "cannot resize an empty axis");
    if (scales[a] <= 0) return op_error(op, "scales must be > 0");
    ResizeAxis& axis = p.axis[a + lead];
    axis = {x.shape[a], y.shape[a], in_strides[a], scales[a], false};
    axis.moving = !is_identity_axis(m, axis);
  }
  const std::int64_t n = y.elements();
  if (n == 0) return Status::ok();
  bool plane = true;
  for (int d = 0; d + 2 < p.rank; ++d) plane = plane && !p.axis[d].moving;
  const ResizeAxis& ay = p.axis[p.rank - 2];
  const ResizeAxis& ax = p.axis[p.rank - 1];
  // The row-tiled kernel needs the planes and row blocks within a grid's y and z limits.
  std::int64_t planes = 1;
  for (int d = 0; d + 2 < p.rank; ++d) planes *= p.axis[d].out;
  const std::int64_t row_blocks = (ay.out + kRowsPerBlock - 1) / kRowsPerBlock;
  const bool rows = plane && planes <= 65535 && row_blocks <= 65535;
  // NHWC upsampling: axes 1 and 2 of 4 move (1 at least, else the plane kernels take it).
  const bool nhwc = !plane && p.rank == 4 && !p.axis[0].moving && !p.axis[3].moving;
  const ResizeAxis& nhwc_y = p.axis[1];
  const ResizeAxis& nhwc_x = p.axis[2];
  return dispatch_float(x.dtype, op, [&]<class T>() {
    return dispatch_index(std::max(n, x.elements()), [&]<class I>() {
      const dim3 grid(grid_for(n));
      cudaStream_t stream = stream_of(args);
      if (rows) {
        const dim3 tiles(static_cast<unsigned>((ax.out + kRowBlock - 1) / kRowBlock), static_cast<unsigned>(row_blocks),
                         static_cast<unsigned>(planes));
        if (m.interp == InterpMode::kNearest)
          resize_rows_gpu<T, I, 1><<<tiles, kRowBlock, 0, stream>>>(y.as<T>(), x.as<const T>(), m, ay, ax);
        else if (m.interp == InterpMode::kLinear)
          resize_rows_gpu<T, I, 2><<<tiles, kRowBlock, 0, stream>>>(y.as<T>(), x.as<const T>(), m, ay, ax);
        else
          resize_rows_gpu<T, I, 4><<<tiles, kRowBlock, 0, stream>>>(y.as<T>(), x.as<const T>(), m, ay, ax);
      } else if (nhwc) {
        return launch_resize_nhwc(x.dtype, op, y.data, x.data, m, nhwc_y, nhwc_x, {nhwc_y.out, nhwc_x.out},
                                  p.axis[0].out, p.axis[3].out, stream);
      } else if (!plane) {
        resize_nd_gpu<T, I><<<grid, kBlock, 0, stream>>>(y.as<T>(), x.as<const T>(), p, n);
      } else if (m.interp == InterpMode::kNearest) {
        resize_plane_gpu<T, I, 1><<<grid, kBlock, 0, stream>>>(y.as<T>(), x.as<const T>(), m, ay, ax, n);
      } else if (m.interp == InterpMode::kLinear) {
        resize_plane_gpu<T, I, 2><<<grid, kBlock, 0, stream>>>(y.as<T>(), x.as<const T>(), m, ay, ax, n);
      } else {
        resize_plane_gpu<T, I, 4><<<grid, kBlock, 0, stream>>>(y.as<T>(), x.as<const T>(), m, ay, ax, n);
      }
      return check_launch(op);
    });
  });
}

Status resize_kernel(const CudaKernelArgs& args) {
  constexpr const char* kOp = "Resize";
  const TensorView& x = args.inputs.at(0);
  const OpAttributes& a = args.attrs;
  FSWAP_RETURN_IF_ERROR(check_rank(kOp, x.shape));
  // Opset 10 has inputs (X, scales) and asymmetric coordinates with floor rounding.
  const bool opset10 = args.inputs.size() == 2;
  FSWAP_ASSIGN_OR_RETURN(const ResizeMode m, resize_mode(on_cuda(kOp), a, opset10));

  const std::size_t rank = x.shape.size();
  // Opset 18 `axes`: scales/sizes name only these axes, the others keep scale 1.
  std::vector<std::size_t> axes;
  if (a.has("axes")) {
    for (const std::int64_t named : a.ints("axes", {})) {
      FSWAP_ASSIGN_OR_RETURN(const std::size_t axis, axis_index(kOp, named, rank));
      axes.push_back(axis);
    }
  } else {
    for (std::size_t i = 0; i < rank; ++i) axes.push_back(i);
  }
  std::vector<float> scales = resize_scales(x.shape, args.outputs.at(0).shape);
  const std::size_t scales_in = opset10 ? 1 : 2;
  if (has_input(args, scales_in) && args.inputs[scales_in].elements() > 0) {
    FSWAP_ASSIGN_OR_RETURN(const TensorView* given, host_input(args, scales_in, "scales"));
    if (given->dtype != DType::kFloat32)
      return op_unsupported(kOp, std::string("scales dtype ") + dtype_name(given->dtype));
    if (given->elements() != static_cast<std::int64_t>(axes.size()))
      return op_error(kOp, "scales has " + std::to_string(given->elements()) + " values for " +
                               std::to_string(axes.size()) + " axes");
    for (std::size_t i = 0; i < axes.size(); ++i) scales[axes[i]] = given->as<const float>()[i];
  } else if (!opset10 && has_input(args, 3)) {
    const std::string policy = a.s("keep_aspect_ratio_policy", "stretch");
    if (policy != "stretch") {
      // not_larger / not_smaller: one scale for every named axis.
      FSWAP_ASSIGN_OR_RETURN(const TensorView* sizes, host_input(args, 3, "sizes"));
      if (sizes->dtype != DType::kInt64)
        return op_unsupported(kOp, std::string("sizes dtype ") + dtype_name(sizes->dtype));
      if (sizes->elements() != static_cast<std::int64_t>(axes.size()))
        return op_error(kOp, "sizes do not match the axes");
      const bool not_larger = policy == "not_larger";
      float s = not_larger ? std::numeric_limits<float>::infinity() : 0.0f;
      for (std::size_t i = 0; i < axes.size(); ++i) {
        const float r = static_cast<float>(sizes->as<const std::int64_t>()[i]) / static_cast<float>(x.shape[axes[i]]);
        s = not_larger ? std::min(s, r) : std::max(s, r);
      }
      for (const std::size_t axis : axes) scales[axis] = s;
    }
  }
  return resize_run(args, kOp, m, scales);
}

Status upsample_kernel(const CudaKernelArgs& args) {
  constexpr const char* kOp = "Upsample";
  const TensorView& x = args.inputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_rank(kOp, x.shape));
  FSWAP_ASSIGN_OR_RETURN(const ResizeMode m, upsample_mode(on_cuda(kOp), args.attrs));
  // Scales: input 1 when it holds one per axis, else output / input; opset 7 has an attribute.
  std::vector<float> scales = resize_scales(x.shape, args.outputs.at(0).shape);
  if (has_input(args, 1)) {
    FSWAP_ASSIGN_OR_RETURN(const TensorView* given, host_input(args, 1, "scales"));
    if (given->dtype != DType::kFloat32)
      return op_unsupported(kOp, std::string("scales dtype ") + dtype_name(given->dtype));
    if (given->elements() == static_cast<std::int64_t>(scales.size()))
      scales.assign(given->as<const float>(), given->as<const float>() + scales.size());
  }
  if (args.inputs.size() < 2 && args.attrs.has("scales")) scales = args.attrs.floats("scales", {});
  return resize_run(args, kOp, m, scales);
}

// ---------------------------------------------------------------------------------------------
// DepthToSpace, SpaceToDepth

// Shapes named from the space side: small = [N, C*b*b, H, W], large = [N, C, H*b, W*b].
struct SpaceDepthPlan {
  std::int64_t c = 0, h = 0, w = 0, b = 1;
  bool to_space = true;  // DepthToSpace: small → large
  bool crd = false;      // DepthToSpace mode CRD (else DCR)
};

template <class T, class I>
__global__ void space_depth_gpu(T* out, const T* in, SpaceDepthPlan p, std::int64_t n) {
  const auto c = static_cast<I>(p.c), h = static_cast<I>(p.h), w = static_cast<I>(p.w), b = static_cast<I>(p.b);
  FSWAP_GRID_STRIDE(i, n) {
    I rest = static_cast<I>(i);
    if (p.to_space) {  // out is large
      const I x = rest % (w * b);
      rest /= w * b;
      const I y = rest % (h * b);
      rest /= h * b;
      const I ci = rest % c, ni = rest / c;
      const I bi = y % b, bj = x % b;
      const I sc = p.crd ? (ci * b + bi) * b + bj : (bi * b + bj) * c + ci;
      out[i] = in[((ni * c * b * b + sc) * h + y / b) * w + x / b];
    } else {  // out is small, channels ordered DCR
      const I wi = rest % w;
      rest /= w;
      const I hi = rest % h;
      rest /= h;
      const I sc = rest % (c * b * b), ni = rest / (c * b * b);
      const I ci = sc % c, block = sc / c;
      out[i] = in[((ni * c + ci) * h * b + hi * b + block / b) * w * b + wi * b + block % b];
    }
  }
}

Status space_depth(const CudaKernelArgs& args, const char* op, bool to_space) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  FSWAP_RETURN_IF_ERROR(check_dtype_kept(op, x, y));
  if (x.shape.size() != 4 || y.shape.size() != 4) return op_error(op, "X must be 4-D NCHW");
  SpaceDepthPlan p;
  p.b = args.attrs.i("blocksize", 0);
  if (p.b < 1) return op_error(op, "blocksize must be >= 1");
  const std::string mode = args.attrs.s("mode", "DCR");
  if (to_space && mode != "DCR" && mode != "CRD") return op_unsupported(op, "mode " + mode);
  p.to_space = to_space;
  p.crd = to_space && mode == "CRD";
  const Shape& small = to_space ? x.shape : y.shape;
  const Shape& large = to_space ? y.shape : x.shape;
  p.c = large[1];
  p.h = small[2];
  p.w = small[3];
  if (large[0] != small[0] || small[1] != p.c * p.b * p.b || large[2] != p.h * p.b || large[3] != p.w * p.b)
    return op_error(op, "shapes " + shape_to_string(x.shape) + " -> " + shape_to_string(y.shape) +
                            " do not fit blocksize " + std::to_string(p.b));
  const std::int64_t n = y.elements();
  if (n == 0) return Status::ok();
  return dispatch_element(dtype_size(x.dtype), op, [&]<class T>() {
    return dispatch_index(n, [&]<class I>() {
      space_depth_gpu<T, I><<<grid_for(n), kBlock, 0, stream_of(args)>>>(y.as<T>(), x.as<const T>(), p, n);
      return check_launch(op);
    });
  });
}

Status depth_to_space_kernel(const CudaKernelArgs& args) { return space_depth(args, "DepthToSpace", true); }
Status space_to_depth_kernel(const CudaKernelArgs& args) { return space_depth(args, "SpaceToDepth", false); }

// ---------------------------------------------------------------------------------------------
// Shape, Size, ConstantOfShape, Constant, Range: values known on the host travel in kernel
// parameters (no host buffer has to outlive an asynchronous copy).

inline constexpr int kMaxSmallValues = 32;

struct SmallValues {
  int count = 0;
  std::int64_t v[kMaxSmallValues] = {};
};

__global__ void write_values_gpu(std::int64_t* out, SmallValues values) {
  if (static_cast<int>(threadIdx.x) < values.count) out[threadIdx.x] = values.v[threadIdx.x];
}

Status write_values(const CudaKernelArgs& args, const char* op, const TensorView& y, const SmallValues& values) {
  write_values_gpu<<<1, kMaxSmallValues, 0, stream_of(args)>>>(y.as<std::int64_t>(), values);
  return check_launch(op);
}

Status shape_kernel(const CudaKernelArgs& args) {
  constexpr const char* kOp = "Shape";
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  const auto rank = static_cast<std::int64_t>(x.shape.size());
  const auto clamp_axis = [rank](std::int64_t i) { return std::clamp<std::int64_t>(i < 0 ? i + rank : i, 0, rank); };
  const std::int64_t start = clamp_axis(args.attrs.i("start", 0));
  const std::int64_t end = clamp_axis(args.attrs.i("end", rank));
  const std::int64_t n = std::max<std::int64_t>(0, end - start);
  if (y.dtype != DType::kInt64 || y.elements() != n)
    return op_error(kOp, "output must be int64 with " + std::to_string(n) + " values");
  if (n > kMaxSmallValues)
    return op_unsupported(kOp, std::to_string(n) + " values (at most " + std::to_string(kMaxSmallValues) + ")");
  if (n == 0) return Status::ok();
  SmallValues values;
  values.count = static_cast<int>(n);
  for (std::int64_t i = 0; i < n; ++i) values.v[i] = x.shape[static_cast<std::size_t>(start + i)];
  return write_values(args, kOp, y, values);
}

Status size_kernel(const CudaKernelArgs& args) {
  constexpr const char* kOp = "Size";
  const TensorView& y = args.outputs.at(0);
  if (y.dtype != DType::kInt64 || y.elements() != 1) return op_error(kOp, "output must be one int64");
  SmallValues values;
  values.count = 1;
  values.v[0] = args.inputs.at(0).elements();
  return write_values(args, kOp, y, values);
}

template <class T>
__global__ void fill_gpu(T* out, std::uint64_t bits, std::int64_t n) {
  const T v = from_bits<T>(bits);
  FSWAP_GRID_STRIDE(i, n) out[i] = v;
}

// Every element of y = the value whose bytes are the low bytes of `bits`.
Status fill(const CudaKernelArgs& args, const char* op, const TensorView& y, std::uint64_t bits) {
  const std::int64_t n = y.elements();
  if (n == 0) return Status::ok();
  if (bits == 0) return check_cuda(cudaMemsetAsync(y.data, 0, y.bytes(), stream_of(args)), op, "cudaMemsetAsync");
  return dispatch_element(dtype_size(y.dtype), op, [&]<class T>() {
    fill_gpu<T><<<grid_for(n), kBlock, 0, stream_of(args)>>>(y.as<T>(), bits, n);
    return check_launch(op);
  });
}

Status constant_of_shape_kernel(const CudaKernelArgs& args) {
  constexpr const char* kOp = "ConstantOfShape";
  const TensorView& y = args.outputs.at(0);
  std::uint64_t bits = 0;  // the default: zero, all-zero bytes in every dtype
  if (const Tensor* v = args.attrs.tensor("value")) {
    if (v->elements() != 1) return op_error(kOp, "value must hold one element");
    FSWAP_ASSIGN_OR_RETURN(bits, scalar_bits(kOp, v->raw(), v->dtype(), y.dtype));
  } else if (y.dtype != DType::kFloat32 && y.dtype != DType::kFloat16) {
    return op_error(kOp, "without a value attribute the output must be float32");
  }
  return fill(args, kOp, y, bits);
}

Status constant_kernel(const CudaKernelArgs& args) {
  constexpr const char* kOp = "Constant";
  const TensorView& y = args.outputs.at(0);
  const OpAttributes& a = args.attrs;
  const auto mismatch = [&](DType dtype, std::size_t count) {
    return op_error(kOp, "output " + std::string(dtype_name(y.dtype)) + shape_to_string(y.shape) + " does not hold " +
                             std::to_string(count) + " " + dtype_name(dtype) + " values");
  };
  // Tensor and list values live in the node's attributes, which the graph keeps for longer than the
  // run, so the asynchronous copy may read them after this returns.
  const auto copy_values = [&](DType dtype, const void* data, std::size_t count) -> Status {
    if (y.dtype != dtype || static_cast<std::size_t>(y.elements()) != count) return mismatch(dtype, count);
    if (count == 0) return Status::ok();
    return check_cuda(cudaMemcpyAsync(y.data, data, y.bytes(), cudaMemcpyHostToDevice, stream_of(args)), kOp,
                      "cudaMemcpyAsync");
  };
  // One value travels by value, converted to float16 for an fp16 graph.
  const auto fill_value = [&](DType dtype, const void* value) -> Status {
    if (y.elements() != 1) return mismatch(dtype, 1);
    FSWAP_ASSIGN_OR_RETURN(const std::uint64_t bits, scalar_bits(kOp, value, dtype, y.dtype));
    return fill(args, kOp, y, bits);
  };
  if (const Tensor* v = a.tensor("value")) {
    if (v->elements() == 1) return fill_value(v->dtype(), v->raw());
    return copy_values(v->dtype(), v->raw(), static_cast<std::size_t>(v->elements()));
  }
  if (a.has("value_float")) {
    const float f = a.f("value_float", 0);
    return fill_value(DType::kFloat32, &f);
  }
  if (a.has("value_floats")) {
    const auto* f = attribute_of<std::vector<float>>(a, "value_floats");
    return copy_values(DType::kFloat32, f ? f->data() : nullptr, f ? f->size() : 0);
  }
  if (a.has("value_int")) {
    const std::int64_t i = a.i("value_int", 0);
    return fill_value(DType::kInt64, &i);
  }
  if (a.has("value_ints")) {
    const auto* i = attribute_of<std::vector<std::int64_t>>(a, "value_ints");
    return copy_values(DType::kInt64, i ? i->data() : nullptr, i ? i->size() : 0);
  }
  return op_unsupported(kOp, "only value, value_float(s) and value_int(s) are supported (not sparse or string values)");
}

// start + i * delta in T, rounded like the CPU kernel (no fused multiply-add).
__device__ __forceinline__ float range_at(float start, float delta, std::int64_t i) {
  return __fadd_rn(start, __fmul_rn(static_cast<float>(i), delta));
}
__device__ __forceinline__ double range_at(double start, double delta, std::int64_t i) {
  return __dadd_rn(start, __dmul_rn(static_cast<double>(i), delta));
}
__device__ __forceinline__ __half range_at(__half start, __half delta, std::int64_t i) {
  return __float2half(range_at(__half2float(start), __half2float(delta), i));
}
template <class T>
__device__ __forceinline__ T range_at(T start, T delta, std::int64_t i) {
  return static_cast<T>(start + static_cast<T>(i) * delta);
}

// start and delta are read on the device: they are there whether or not they are constants.
template <class T>
__global__ void range_gpu(T* out, const T* start, const T* delta, std::int64_t n) {
  const T s = *start, d = *delta;
  FSWAP_GRID_STRIDE(i, n) out[i] = range_at(s, d, i);
}

template <class T>
Status launch_range(const CudaKernelArgs& args, const TensorView& y) {
  const std::int64_t n = y.elements();
  range_gpu<T><<<grid_for(n), kBlock, 0, stream_of(args)>>>(y.as<T>(), args.inputs[0].as<const T>(),
                                                            args.inputs[2].as<const T>(), n);
  return check_launch("Range");
}

Status range_kernel(const CudaKernelArgs& args) {
  constexpr const char* kOp = "Range";
  const TensorView& y = args.outputs.at(0);
  for (std::size_t i = 0; i < 3; ++i) {
    const TensorView& v = args.inputs.at(i);
    if (v.dtype != y.dtype || v.elements() != 1 || v.data == nullptr)
      return op_error(kOp, "start, limit and delta must be single values of the output's dtype");
  }
  if (y.elements() == 0) return Status::ok();
  switch (y.dtype) {
    case DType::kFloat32: return launch_range<float>(args, y);
    case DType::kFloat16: return launch_range<__half>(args, y);
    case DType::kFloat64: return launch_range<double>(args, y);
    case DType::kInt64: return launch_range<std::int64_t>(args, y);
    case DType::kInt32: return launch_range<std::int32_t>(args, y);
    default: return op_unsupported(kOp, std::string("dtype ") + dtype_name(y.dtype));
  }
}

}  // namespace

CudaKernel layout_kernel(OpType op) {
  switch (op) {
    case OpType::kReshape: case OpType::kFlatten: case OpType::kSqueeze: case OpType::kUnsqueeze:
      return reshape_kernel;
    case OpType::kTranspose: return transpose_kernel;
    case OpType::kConcat: return concat_kernel;
    case OpType::kSplit: return split_kernel;
    case OpType::kSlice: return slice_kernel;
    case OpType::kGather: return gather_kernel;
    case OpType::kGatherElements: return gather_elements_kernel;
    case OpType::kExpand: return expand_kernel;
    case OpType::kTile: return tile_kernel;
    case OpType::kPad: return pad_kernel;
    case OpType::kResize: return resize_kernel;
    case OpType::kUpsample: return upsample_kernel;
    case OpType::kDepthToSpace: return depth_to_space_kernel;
    case OpType::kSpaceToDepth: return space_to_depth_kernel;
    case OpType::kScatterND: return scatter_nd_kernel;
    case OpType::kShape: return shape_kernel;
    case OpType::kSize: return size_kernel;
    case OpType::kConstantOfShape: return constant_of_shape_kernel;
    case OpType::kConstant: return constant_kernel;
    case OpType::kRange: return range_kernel;
    default: return nullptr;
  }
}

Status resize_window(DType dtype, const void* x, const Shape& x_nhwc, const InputResize& resize,
                     const NhwcWindow& window, std::int64_t image, void* dst, CUstream_st* stream, const char* op) {
  const Shape& y = resize.resized;
  if (x_nhwc.size() != 4 || y.size() != 4 || x_nhwc[0] != y[0] || x_nhwc[3] != y[3] || image < 0 || image >= y[0])
    return op_error(op, "image " + std::to_string(image) + " of X " + shape_to_string(x_nhwc) +
                            " cannot be resized to " + shape_to_string(y) + " (NHWC, H and W only)");
  const std::vector<float> scales = resize_scales(x_nhwc, y);
  ResizeAxis ay{x_nhwc[1], y[1], 1, scales[1], false}, ax{x_nhwc[2], y[2], 1, scales[2], false};
  ay.moving = !is_identity_axis(resize.mode, ay);
  ax.moving = !is_identity_axis(resize.mode, ax);
  const std::size_t image_bytes = static_cast<std::size_t>(x_nhwc[1] * x_nhwc[2] * x_nhwc[3]) * dtype_size(dtype);
  return launch_resize_nhwc(dtype, op, dst, static_cast<const std::byte*>(x) + image * image_bytes, resize.mode, ay,
                            ax, window, 1, x_nhwc[3], stream);
}

}  // namespace fswap::cuda
