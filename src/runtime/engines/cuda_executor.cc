#include "runtime/engines/cuda_executor.h"

#include <cuda_runtime_api.h>
#include <nvtx3/nvToolsExt.h>

#include <algorithm>
#include <cstring>

#include "core/half.h"
#include "core/log.h"
#include "runtime/passes.h"

namespace fswap {
namespace {

using memory::BlockId;
using memory::DeviceEvent;

// How far ahead of the running node weights are prefetched: enough to cover the next layers'
// copies at 54 GB/s while the current one computes, without pushing out what is needed next.
constexpr std::uint64_t kPrefetchBytes = 64ull << 20;
constexpr std::size_t kPrefetchNodes = 8;
// A graph whose addresses keep changing (weights evicted and reloaded elsewhere) costs a capture
// per run: after this many captures the executor runs node by node.
constexpr int kMaxGraphCaptures = 4;

// An NVTX range for Nsight Systems (a no-op unless a profiler is attached): model runs, captures
// and, node by node, each kernel's enqueue.
class NvtxRange {
 public:
  explicit NvtxRange(const std::string& name) { nvtxRangePushA(name.c_str()); }
  ~NvtxRange() { nvtxRangePop(); }
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;
};

void* device_address(std::uint64_t address) { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(address)); }

Status node_error(const Graph& g, const Node& n, const Status& s) {
  return Status(s.code(), g.path + ": node " + n.name + " (" + op_name(n.op) + "): " + s.message());
}

}  // namespace

void GraphExecDeleter::operator()(CUgraphExec_st* exec) const {
  if (cudaGraphExecDestroy(exec) != cudaSuccess) (void)cudaGetLastError();
}

// ---- DeviceConstants --------------------------------------------------------------------------

DeviceConstants::~DeviceConstants() {
  std::lock_guard lock(runtime_.mutex());
  if (Status s = runtime_.device().synchronize(); !s.is_ok()) log_error(s.to_string());
  for (auto& [key, entry] : entries_)
    if (Status s = runtime_.residency().unregister_block(entry.id); !s.is_ok()) log_error(s.to_string());
}

Result<BlockId> DeviceConstants::block(const Tensor& data, DType dtype, const std::string& name) {
  const auto key = std::make_pair(&data, dtype);
  if (auto it = entries_.find(key); it != entries_.end()) return it->second.id;
  const bool to_half = dtype == DType::kFloat16 && data.dtype() == DType::kFloat32;
  if (!to_half && dtype != data.dtype())
    return internal_error(name + ": no conversion from " + dtype_name(data.dtype()) + " to " + dtype_name(dtype));
  const std::uint64_t bytes = std::max<std::uint64_t>(
      1, static_cast<std::uint64_t>(data.elements()) * dtype_size(dtype));
  void* host = nullptr;
  FSWAP_CUDA_CHECK(cudaHostAlloc(&host, bytes, cudaHostAllocDefault));
  memory::PinnedHostPtr pinned(host);
  if (to_half) {
    floats_to_halves({data.data<float>(), static_cast<std::size_t>(data.elements())},
                     {static_cast<std::uint16_t*>(host), static_cast<std::size_t>(data.elements())});
  } else if (data.elements() > 0) {
    std::memcpy(host, data.raw(), bytes);
  }
  FSWAP_ASSIGN_OR_RETURN(BlockId id, runtime_.residency().register_block({.name = model_ + "." + name,
                                                                          .model = model_,
                                                                          .bytes = bytes,
                                                                          .host = host,
                                                                          .host_kind = memory::HostMemoryKind::kPinned}));
  entries_.emplace(key, Entry{id, std::move(pinned)});
  return id;
}

// ---- CudaExecutor -----------------------------------------------------------------------------

Result<std::unique_ptr<CudaExecutor>> CudaExecutor::create(CudaRuntime& runtime, DeviceConstants& constants,
                                                           const Graph& optimized,
                                                           const std::vector<Shape>& input_shapes,
                                                           Precision precision) {
  std::unique_ptr<CudaExecutor> e(new CudaExecutor(runtime, constants));
  e->graph_ = optimized;
  FSWAP_RETURN_IF_ERROR(specialize(e->graph_, input_shapes));
  if (precision == Precision::kFloat16) FSWAP_RETURN_IF_ERROR(convert_to_fp16(e->graph_));
  FSWAP_ASSIGN_OR_RETURN(e->plan_, plan_memory(e->graph_));
  for (const Node& node : e->graph_.nodes) FSWAP_RETURN_IF_ERROR(e->bind(node));
  const std::uint64_t need = e->weight_bytes_ + e->plan_.arena_bytes;
  e->streamed_ = need > runtime.budget().bytes;
  return e;
}

Status CudaExecutor::bind(const Node& node) {
  BoundNode b;
  b.node = &node;
  b.kernel = cuda::cuda_kernel(node.op);
  if (!b.kernel)
    return unsupported(graph_.path + ": node " + node.name + ": operator " + op_name(node.op) +
                       " has no CUDA kernel yet (use --device cpu)");
  for (int in : node.inputs) {
    const Value* v = in >= 0 ? &graph_.values[in] : nullptr;
    const Tensor* data = in >= 0 ? graph_.constant_data(in) : nullptr;
    b.inputs.push_back(v != nullptr ? TensorView{v->dtype, v->shape, nullptr} : TensorView{});
    b.host_inputs.push_back(data != nullptr ? data->view() : TensorView{});
    b.blocks.push_back(-1);
    b.input_offsets.push_back(v != nullptr && data == nullptr ? plan_.offset[in] : -1);
    if (data == nullptr) continue;
    auto it = block_of_value_.find(in);
    if (it == block_of_value_.end()) {
      FSWAP_ASSIGN_OR_RETURN(BlockId id, constants_.block(*data, v->dtype, v->name));
      it = block_of_value_.emplace(in, static_cast<int>(blocks_.size())).first;
      blocks_.push_back(id);
      weight_bytes_ += runtime_.residency().block(id).bytes;
    }
    b.blocks.back() = it->second;
    schedule_.push_back(blocks_[static_cast<std::size_t>(it->second)]);
  }
  for (int out : node.outputs) {
    const Value& v = graph_.values[out];
    b.outputs.push_back({v.dtype, v.shape, nullptr});
    b.output_offsets.push_back(plan_.offset[out]);
  }
  nodes_.push_back(std::move(b));
  return Status::ok();
}

void CudaExecutor::prefetch_after(std::size_t node) {
  auto& rm = runtime_.residency();
  std::uint64_t bytes = 0;
  std::size_t weighted = 0;
  for (std::size_t i = node + 1; i < nodes_.size() && weighted < kPrefetchNodes && bytes < kPrefetchBytes; ++i) {
    bool has_blocks = false;
    for (int idx : nodes_[i].blocks) {
      if (idx < 0) continue;
      has_blocks = true;
      const BlockId id = blocks_[static_cast<std::size_t>(idx)];
      if (rm.is_resident(id)) continue;
      bytes += rm.block(id).bytes;
      if (Status s = rm.prefetch(id); !s.is_ok()) log_warn(s.to_string());
    }
    weighted += has_blocks ? 1 : 0;
  }
}

Status CudaExecutor::launch_node(const BoundNode& b, std::uint64_t base, std::span<const memory::DevicePtr> block_ptrs) {
  std::vector<TensorView> in_views = b.inputs, out_views = b.outputs;
  for (std::size_t j = 0; j < b.inputs.size(); ++j) {
    if (b.input_offsets[j] >= 0) in_views[j].data = device_address(base + static_cast<std::uint64_t>(b.input_offsets[j]));
    if (b.blocks[j] >= 0) in_views[j].data = device_address(block_ptrs[static_cast<std::size_t>(b.blocks[j])].address);
  }
  for (std::size_t j = 0; j < out_views.size(); ++j)
    out_views[j].data = device_address(base + static_cast<std::uint64_t>(b.output_offsets[j]));
  Status s = b.kernel({b.node->op, b.node->attrs, in_views, out_views, b.host_inputs, runtime_.context()});
  return s.is_ok() ? s : node_error(graph_, *b.node, s);
}

Status CudaExecutor::run_nodes(std::uint64_t base) {
  NvtxRange range(graph_.path + " node by node");
  auto& rm = runtime_.residency();
  std::vector<memory::DevicePtr> ptrs(blocks_.size());
  std::vector<BlockId> held;
  for (std::size_t n = 0; n < nodes_.size(); ++n) {
    const BoundNode& b = nodes_[n];
    held.clear();
    for (int idx : b.blocks) {
      if (idx < 0) continue;
      const BlockId id = blocks_[static_cast<std::size_t>(idx)];
      Result<memory::DevicePtr> p = rm.acquire(id);
      if (!p.is_ok()) {
        for (BlockId h : held) (void)rm.release(h);
        return node_error(graph_, *b.node, p.status());
      }
      held.push_back(id);
      ptrs[static_cast<std::size_t>(idx)] = *p;
    }
    prefetch_after(n);
    NvtxRange node_range(b.node->name);
    Status s = launch_node(b, base, ptrs);
    for (BlockId h : held) {
      Status r = rm.release(h);
      if (s.is_ok()) s = r;
    }
    FSWAP_RETURN_IF_ERROR(s);
  }
  return Status::ok();
}

bool CudaExecutor::use_graph() const {
  // The first run searches cuDNN's algorithms and grows the workspace (neither may happen while
  // capturing); a model that streams its weights moves them every run.
  return !graph_disabled_ && !streamed_ && plain_runs_ >= 1;
}

Status CudaExecutor::run_graph(std::uint64_t base) {
  auto& rm = runtime_.residency();
  std::vector<memory::DevicePtr> ptrs(blocks_.size());
  std::size_t held = 0;
  const auto release_held = [&] {
    for (std::size_t i = 0; i < held; ++i) (void)rm.release(blocks_[i]);
  };
  for (; held < blocks_.size(); ++held) {
    Result<memory::DevicePtr> p = rm.acquire(blocks_[held]);
    if (!p.is_ok()) {
      release_held();
      return p.status();
    }
    ptrs[held] = *p;
  }
  // The graph bakes in every address: the activations, the workspace and each weight block.
  std::vector<std::uint64_t> signature = {base, runtime_.workspace_address()};
  for (const memory::DevicePtr& p : ptrs) signature.push_back(p.address);
  Status s;
  if (!graph_exec_ || signature != graph_signature_) {
    if (++graph_captures_ > kMaxGraphCaptures) {
      release_held();
      return unsupported("addresses changed on " + std::to_string(kMaxGraphCaptures) + " captures");
    }
    s = capture(base, ptrs);
    if (s.is_ok()) graph_signature_ = std::move(signature);
  }
  if (s.is_ok()) s = memory::cuda_status(cudaGraphLaunch(graph_exec_.get(), runtime_.device().compute_stream()),
                                         "cudaGraphLaunch", __FILE__, __LINE__);
  release_held();
  return s;
}

Status CudaExecutor::capture(std::uint64_t base, std::span<const memory::DevicePtr> block_ptrs) {
  NvtxRange range(graph_.path + " capture");
  graph_exec_.reset();
  cudaStream_t stream = runtime_.device().compute_stream();
  FSWAP_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  Status launched;
  for (const BoundNode& b : nodes_) {
    launched = launch_node(b, base, block_ptrs);
    if (!launched.is_ok()) break;
  }
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
  FSWAP_RETURN_IF_ERROR(launched);
  FSWAP_CUDA_CHECK(ended);
  cudaGraphExec_t exec = nullptr;
  const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
  (void)cudaGraphDestroy(graph);
  FSWAP_CUDA_CHECK(made);
  graph_exec_.reset(exec);
  return Status::ok();
}

Result<std::vector<Tensor>> CudaExecutor::run(const std::vector<TensorView>& inputs) {
  if (inputs.size() != graph_.inputs.size())
    return invalid_input(graph_.path + ": expected " + std::to_string(graph_.inputs.size()) + " inputs, got " +
                         std::to_string(inputs.size()));
  NvtxRange range(graph_.path + " run");
  auto& rm = runtime_.residency();
  auto& dev = runtime_.device();
  // Eviction prefers blocks this run needs latest, other models' blocks first.
  rm.set_schedule(schedule_);

  FSWAP_ASSIGN_OR_RETURN(memory::DevicePtr activations,
                         runtime_.activations(std::max<std::uint64_t>(plan_.arena_bytes, 256)));
  const std::uint64_t base = activations.address;
  // The input copies overwrite activations the previous run's kernels may still be reading.
  const DeviceEvent previous = dev.record_compute();

  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const int v = graph_.inputs[i];
    const Value& value = graph_.values[v];
    if (inputs[i].shape != value.shape || inputs[i].dtype != value.dtype)
      return invalid_input(graph_.path + ": input " + value.name + " is " + dtype_name(inputs[i].dtype) +
                           shape_to_string(inputs[i].shape) + ", this plan expects " + dtype_name(value.dtype) +
                           shape_to_string(value.shape));
    if (inputs[i].bytes() == 0) continue;
    FSWAP_ASSIGN_OR_RETURN(DeviceEvent copied,
                           dev.copy_to_device({base + static_cast<std::uint64_t>(plan_.offset[v])}, inputs[i].data,
                                              inputs[i].bytes(), memory::HostMemoryKind::kPageable, {&previous, 1}));
    dev.compute_wait(copied);
  }

  if (use_graph()) {
    if (Status g = run_graph(base); !g.is_ok()) {
      log_debug(graph_.path + ": CUDA graph not used: " + g.to_string());
      graph_disabled_ = true;
      FSWAP_RETURN_IF_ERROR(run_nodes(base));
    }
  } else {
    FSWAP_RETURN_IF_ERROR(run_nodes(base));
    ++plain_runs_;
  }

  const DeviceEvent computed = dev.record_compute();
  std::vector<Tensor> outputs;
  std::vector<DeviceEvent> copies;
  Status copy_status;
  for (int out : graph_.outputs) {
    const Value& value = graph_.values[out];
    if (const Tensor* data = graph_.constant_data(out)) {
      outputs.push_back(Tensor::copy_of(data->view()));
      continue;
    }
    outputs.push_back(Tensor::zeros(value.dtype, value.shape));
    if (outputs.back().view().bytes() == 0) continue;
    Result<DeviceEvent> e = dev.copy_to_host(outputs.back().raw(), {base + static_cast<std::uint64_t>(plan_.offset[out])},
                                             outputs.back().view().bytes(), memory::HostMemoryKind::kPageable,
                                             {&computed, 1});
    if (!e.is_ok()) {
      copy_status = e.status();
      break;
    }
    copies.push_back(*e);
  }
  copies.push_back(computed);
  for (DeviceEvent e : copies) {
    Status s = dev.wait(e);
    if (copy_status.is_ok()) copy_status = s;
  }
  FSWAP_RETURN_IF_ERROR(copy_status);
  return outputs;
}

}  // namespace fswap
