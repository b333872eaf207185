// Splitting oversize weights: a Gemm or MatMul whose constant weight B is larger than a limit
// becomes several nodes of the same op on slices of B along the output's last axis (N), joined by
// a Concat over that axis, so no single weight needs a device piece above the limit (the weight
// chunks of memory/weight_chunks.h: a tensor larger than the chunk size gets a chunk, and a device
// segment, of its own; gfpgan_1.4's [8192, 4096] Gemm is 64 MiB at fp16).
//
//   WeightSlices slices;  // one per model: the slices every specialisation of it shares
//   FSWAP_ASSIGN_OR_RETURN(int split, split_large_weights(g, 16 << 20, slices));
//
// Exact: every output element is the same dot product of the same row of A and column of B. Only
// where the meaning is kept whole:
//   - Gemm: B [K, N] (transB 0) sliced by columns, [N, K] (transB 1) by rows; transA, alpha, beta
//     and the fused activation copied to every part; a bias C whose last dimension is N is sliced
//     the same way, a broadcast one (last dimension 1, or a scalar) is read whole by every part;
//   - MatMul: B 2-D [K, N] sliced by columns, A of any rank; the fused bias (input 2, [N]) sliced.
// B (and a sliced C) must be initializers (Graph::weights). The limit is in the bytes of B's Value
// dtype (float16 after convert_to_fp16; the host data stays as it was). A node is split into as
// few parts as keep each under the limit, of equal width but the last; a node whose single column
// is over the limit is left alone. On a specialised graph; the result is again topologically
// ordered and specialised. Returns the number of nodes split.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "core/status.h"
#include "core/tensor.h"
#include "runtime/graph.h"

namespace fswap {

// The slices of a model's weights, by the tensor, axis and range they were made from, so every
// specialisation of the model reads (and places on the device) the same copy. Thread-safe.
class WeightSlices {
 public:
  // Indices [begin, end) of `axis` of `source`, made once.
  std::shared_ptr<const Tensor> of(const std::shared_ptr<const Tensor>& source, int axis, std::int64_t begin,
                                   std::int64_t end);

 private:
  using Key = std::tuple<const Tensor*, int, std::int64_t, std::int64_t>;
  std::mutex mutex_;
  // The source is held so its address cannot be reused by another tensor while the slice is kept.
  std::map<Key, std::pair<std::shared_ptr<const Tensor>, std::shared_ptr<const Tensor>>> slices_;
};

Result<int> split_large_weights(Graph& g, std::uint64_t limit_bytes, WeightSlices& slices);

}  // namespace fswap
