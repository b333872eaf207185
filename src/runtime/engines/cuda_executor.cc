#include "runtime/engines/cuda_executor.h"

#include <cuda_runtime_api.h>
#include <nvtx3/nvToolsExt.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <initializer_list>
#include <limits>

#include "backends/cuda/stream_gate.h"
#include "core/half.h"
#include "core/log.h"
#include "core/time_ledger.h"
#include "runtime/device_graph.h"

namespace fswap {
namespace {

using memory::BlockId;
using memory::DeviceEvent;

// A weight-ring graph whose resident chunks keep moving (other models evict them between passes)
// costs a capture per pass: after this many captures in a row that served fewer than
// kMinGraphLaunches launches each, every chunk streams, so the ring graph's addresses stay put.
constexpr int kMaxWastedCaptures = 4;
constexpr int kMinGraphLaunches = 2;

// What a model that does not fit costs each way: node by node the host issues every node (about
// 20 µs each on the H100, GPU.md), through the weight ring every weight byte crosses the link
// (54 GB/s pinned, reference/memory.md).
constexpr double kNodeIssueSeconds = 20e-6;
constexpr double kLinkBytesPerSecond = 54e9;
// The weight ring a streamed model asks of its lane, from the end of its own plan: this share of
// the room the budget leaves beside that plan. (An eighth while every ring was added above the
// largest plan, which made a small plan's ring larger than asked; with the lane grown only by what
// a ring lacks, a quarter: bench_native's budget sweeps, session 21.)
constexpr std::uint64_t kRingShare = 4;

// An NVTX range for Nsight Systems (a no-op unless a profiler is attached): model runs, captures
// and, node by node, each kernel's enqueue.
class NvtxRange {
 public:
  explicit NvtxRange(const std::string& name) { nvtxRangePushA(name.c_str()); }
  ~NvtxRange() { nvtxRangePop(); }
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;
};

// Ends the capture on `stream` (counted in the runtime's issue times) and instantiates its graph:
// the first failure of `issued` (the capture's own steps), of ending or of instantiating, else the
// executable graph, owned by the caller.
Result<cudaGraphExec_t> finish_capture(CudaRuntime& runtime, cudaStream_t stream, std::initializer_list<Status> issued) {
  cudaGraph_t graph = nullptr;
  const Status ended = memory::cuda_status(cudaStreamEndCapture(stream, &graph), "cudaStreamEndCapture", __FILE__, __LINE__);
  ++runtime.issue_times().captures;
  for (const Status& s : issued) {
    if (s.is_ok()) continue;
    if (graph != nullptr) (void)cudaGraphDestroy(graph);
    return s;
  }
  FSWAP_RETURN_IF_ERROR(ended);
  cudaGraphExec_t exec = nullptr;
  const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
  (void)cudaGraphDestroy(graph);
  FSWAP_CUDA_CHECK(made);
  return exec;
}

void* device_address(std::uint64_t address) { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(address)); }

Status node_error(const Graph& g, const Node& n, const Status& s) {
  return Status(s.code(), g.path + ": node " + n.name + " (" + op_name(n.op) + "): " + s.message());
}

// Timed compute events, released together (memory::DeviceBackend::release_timed).
class TimedMarks {
 public:
  explicit TimedMarks(memory::DeviceBackend& device) : device_(device) {}
  ~TimedMarks() {
    for (DeviceEvent e : marks_) device_.release_timed(e);
  }
  TimedMarks(const TimedMarks&) = delete;
  TimedMarks& operator=(const TimedMarks&) = delete;

  void record() { marks_.push_back(device_.record_compute_timed()); }
  const std::vector<DeviceEvent>& marks() const { return marks_; }

 private:
  memory::DeviceBackend& device_;
  std::vector<DeviceEvent> marks_;
};

std::string shapes_text(const std::vector<TensorView>& outputs) {
  std::string text;
  for (const TensorView& v : outputs) {
    if (!text.empty()) text += ' ';
    text += shape_to_string(v.shape);
  }
  return text;
}

}  // namespace

void GraphExecDeleter::operator()(CUgraphExec_st* exec) const {
  if (cudaGraphExecDestroy(exec) != cudaSuccess) (void)cudaGetLastError();
}

// ---- DeviceConstants --------------------------------------------------------------------------

DeviceConstants::~DeviceConstants() {
  auto lock = runtime_.enter();
  if (Status s = runtime_.device().synchronize(); !s.is_ok()) log_error(s.to_string());
  drop_chunks_from(0);
}

void DeviceConstants::drop_chunks_from(std::size_t first) {
  for (std::size_t i = first; i < chunks_.size(); ++i) {
    Chunk& c = chunks_[i];
    if (!unified_) {
      if (Status s = runtime_.residency().unregister_block(c.block); !s.is_ok()) log_error(s.to_string());
      continue;
    }
    if (Status s = runtime_.device().free_managed(c.managed); !s.is_ok()) log_error(s.to_string());
    runtime_.residency().remove_managed(model_, c.bytes);
  }
  chunks_.resize(first);
}

memory::DevicePtr DeviceConstants::managed(int chunk) const {
  return {static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(chunks_[static_cast<std::size_t>(chunk)].managed))};
}

Result<DeviceEvent> DeviceConstants::prefetch(int chunk) {
  Chunk& c = chunks_[static_cast<std::size_t>(chunk)];
  if (!c.prefetched) {
    FSWAP_ASSIGN_OR_RETURN(c.ready, runtime_.device().prefetch_managed(c.managed, c.bytes));
    c.prefetched = true;
    runtime_.residency().count_managed_prefetch(model_, c.bytes);
  }
  if (!c.ready.is_null() && runtime_.device().is_done(c.ready)) c.ready = {};
  return c.ready;
}

Status DeviceConstants::fill(void* chunk, std::span<const Request> requests, std::span<const Slot> slots,
                             int chunk_id) const {
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (slots[i].chunk != chunk_id) continue;
    const Tensor& data = *requests[i].data;
    void* at = static_cast<unsigned char*>(chunk) + slots[i].offset;
    const auto n = static_cast<std::size_t>(data.elements());
    if (requests[i].dtype == DType::kFloat16 && data.dtype() == DType::kFloat32) {
      floats_to_halves({data.data<float>(), n}, {static_cast<std::uint16_t*>(at), n});
    } else if (requests[i].dtype != data.dtype()) {
      return internal_error(requests[i].name + ": no conversion from " + dtype_name(data.dtype()) + " to " +
                            dtype_name(requests[i].dtype));
    } else if (n > 0) {
      std::memcpy(at, data.raw(), data.view().bytes());
    }
  }
  return Status::ok();
}

Result<std::vector<DeviceConstants::Slot>> DeviceConstants::place(std::span<const Request> requests,
                                                                   std::uint64_t chunk_bytes) {
  // The constants not placed yet, in the order given, without repeats.
  std::vector<Request> fresh;
  std::vector<std::uint64_t> sizes;
  std::map<std::pair<const Tensor*, DType>, std::size_t> fresh_index;
  for (const Request& r : requests) {
    const auto key = std::make_pair(r.data, r.dtype);
    if (slots_.count(key) > 0 || fresh_index.count(key) > 0) continue;
    fresh_index.emplace(key, fresh.size());
    fresh.push_back(r);
    sizes.push_back(static_cast<std::uint64_t>(r.data->elements()) * dtype_size(r.dtype));
  }
  FSWAP_ASSIGN_OR_RETURN(memory::ChunkPacking packing, memory::pack_chunks(sizes, chunk_bytes));
  const std::size_t first = chunks_.size();
  std::vector<Slot> fresh_slots;
  for (const memory::ChunkSlot& s : packing.slots)
    fresh_slots.push_back({static_cast<int>(first + s.chunk), s.offset});
  for (std::size_t c = 0; c < packing.chunk_bytes.size(); ++c) {
    if (Status s = add_chunk(packing.chunk_bytes[c], fresh, fresh_slots); !s.is_ok()) {
      drop_chunks_from(first);  // nothing of this call stays placed, charged or registered
      // Unified mode never oversubscribes managed memory: a model whose weights the budget (or
      // the card) cannot hold streams them as explicit mode does. Only a model with nothing
      // placed yet changes mode (its executors read the mode on every run).
      if (!unified_ || first != 0 || s.code() != StatusCode::kOutOfMemory) return s;
      log_info(model_ + ": its weights do not fit as managed memory (" + s.message() +
               "); it streams them from pinned host memory as in --memory-mode explicit");
      unified_ = false;
      return place(requests, chunk_bytes);
    }
  }
  for (const auto& [key, index] : fresh_index) slots_.emplace(key, fresh_slots[index]);
  std::vector<Slot> out;
  for (const Request& r : requests) out.push_back(slots_.at({r.data, r.dtype}));
  return out;
}

Status DeviceConstants::add_chunk(std::uint64_t bytes, std::span<const Request> requests, std::span<const Slot> slots) {
  const int id = static_cast<int>(chunks_.size());
  const std::string name = model_ + ".chunk" + std::to_string(id);
  Chunk chunk;
  chunk.bytes = bytes;
  if (unified_) {
    FSWAP_RETURN_IF_ERROR(runtime_.residency().add_managed(model_, bytes));
    Result<void*> m = runtime_.device().allocate_managed(bytes);
    if (!m.is_ok()) {
      runtime_.residency().remove_managed(model_, bytes);
      return Status(m.status().code(), name + ": " + m.status().message());
    }
    chunk.managed = *m;
    chunks_.push_back(std::move(chunk));  // owned from here: drop_chunks_from() frees it on failure
    FSWAP_RETURN_IF_ERROR(fill(chunks_.back().managed, requests, slots, id));
    return runtime_.device().advise_read_mostly(chunks_.back().managed, bytes);
  }
  void* host = nullptr;
  FSWAP_CUDA_CHECK(cudaHostAlloc(&host, bytes, cudaHostAllocPortable));
  chunk.host.reset(host);
  FSWAP_RETURN_IF_ERROR(fill(host, requests, slots, id));
  FSWAP_ASSIGN_OR_RETURN(chunk.block, runtime_.residency().register_block({.name = name,
                                                                           .model = model_,
                                                                           .bytes = bytes,
                                                                           .host = host,
                                                                           .host_kind = memory::HostMemoryKind::kPinned}));
  chunks_.push_back(std::move(chunk));
  return Status::ok();
}

// ---- CudaExecutor -----------------------------------------------------------------------------

Result<std::unique_ptr<CudaExecutor>> CudaExecutor::create(CudaRuntime& runtime, DeviceConstants& constants,
                                                           const Graph& optimized,
                                                           const std::vector<Shape>& input_shapes,
                                                           Precision precision, const ChannelsLastPlan& layout) {
  std::unique_ptr<CudaExecutor> e(new CudaExecutor(runtime, constants));
  runtime.enroll(e.get(), [exec = e.get()](std::uint64_t used_bytes) { return exec->prefetch_head(used_bytes); });
  ScheduleReport order;
  FSWAP_ASSIGN_OR_RETURN(e->graph_, device_graph(optimized, input_shapes, precision, layout, &order));
  FSWAP_ASSIGN_OR_RETURN(e->plan_, plan_memory(e->graph_));
  const std::uint64_t budget = runtime.budget().bytes;
  // Activations over an eighth of the budget leave too little beside them for the weights, the
  // frames and other models: large resizes are then banded into their convolutions.
  if (e->plan_.arena_bytes > budget / 8) {
    FSWAP_ASSIGN_OR_RETURN(const int banded, band_large_resizes(e->graph_, &order));
    if (banded > 0) {
      FSWAP_ASSIGN_OR_RETURN(e->plan_, plan_memory(e->graph_));
    }
  }
  e->geometry_ = memory::chunk_geometry(budget > e->plan_.arena_bytes ? budget - e->plan_.arena_bytes : 0);
  // A weight over the chunk size would take a chunk and a device segment of its own.
  FSWAP_ASSIGN_OR_RETURN(const int split, split_large_weights(e->graph_, e->geometry_.chunk_bytes, constants.slices()));
  if (split > 0) {
    FSWAP_ASSIGN_OR_RETURN(e->plan_, plan_memory(e->graph_));
  }
  log_debug(e->graph_.path + ": activations " + std::to_string(e->plan_.arena_bytes) + " bytes (" + order.order +
            " node order; " + std::to_string(order.given_bytes) + " in the model's), " + std::to_string(split) +
            " weights split into chunk-size parts");
  FSWAP_RETURN_IF_ERROR(e->bind_all());
  if (!constants.unified() && e->weight_bytes_ > 0) e->plan_ring(budget);
  // Its weights moved, a model runs node by node (the host issues every node, ~20 µs each on the
  // H100) instead of relaunching its graph: eviction keeps the models with the most nodes per byte.
  if (!constants.unified() && e->weight_bytes_ > 0)
    runtime.residency().set_keep_cost(constants.model(), static_cast<double>(e->nodes_.size()) /
                                                             static_cast<double>(e->weight_bytes_));
  return e;
}

Status CudaExecutor::bind_all() {
  std::vector<DeviceConstants::Request> requests;
  std::vector<int> values;
  for (const Node& node : graph_.nodes) {
    for (int in : node.inputs) {
      const Tensor* data = in >= 0 ? graph_.constant_data(in) : nullptr;
      if (data == nullptr) continue;
      requests.push_back({data, graph_.values[in].dtype, graph_.values[in].name});
      values.push_back(in);
    }
  }
  FSWAP_ASSIGN_OR_RETURN(std::vector<DeviceConstants::Slot> placed, constants_.place(requests, geometry_.chunk_bytes));
  std::map<int, DeviceConstants::Slot> slots;
  for (std::size_t i = 0; i < values.size(); ++i) slots.emplace(values[i], placed[i]);
  for (const Node& node : graph_.nodes) FSWAP_RETURN_IF_ERROR(bind(node, slots));
  input_addresses_.assign(graph_.inputs.size(), 0);
  for (int in : graph_.inputs)
    if (std::find(graph_.outputs.begin(), graph_.outputs.end(), in) != graph_.outputs.end()) in_place_disabled_ = true;

  int max_chunk = -1;
  for (const auto& [value, slot] : slots) max_chunk = std::max(max_chunk, slot.chunk);
  chunk_ptrs_.assign(static_cast<std::size_t>(max_chunk + 1), memory::DevicePtr{});
  std::vector<std::vector<memory::BlockId>> walk_ids;
  for (const std::vector<int>& chunks : node_chunks_) {
    walk_ids.emplace_back();
    for (int c : chunks) {
      walk_ids.back().push_back(constants_.unified() ? static_cast<memory::BlockId>(c) : constants_.block(c));
      if (std::find(chunks_.begin(), chunks_.end(), c) == chunks_.end()) {
        chunks_.push_back(c);
        weight_bytes_ += constants_.chunk_bytes(c);
      }
    }
  }
  walk_ = memory::ChunkWalk(std::move(walk_ids));
  chunk_order_.assign(chunk_ptrs_.size(), 0);
  prefix_bytes_ = {0};
  for (std::size_t i = 0; i < chunks_.size(); ++i) {
    chunk_order_[static_cast<std::size_t>(chunks_[i])] = i;
    prefix_bytes_.push_back(prefix_bytes_.back() + constants_.chunk_bytes(chunks_[i]));
  }
  return Status::ok();
}

void CudaExecutor::plan_ring(std::uint64_t budget) {
  // A model of few nodes for its bytes (inswapper's large convolutions) streams node by node while
  // most of its weights fit, where eviction keeps what fits resident and copies only the rest.
  const double issue_s = static_cast<double>(nodes_.size()) * kNodeIssueSeconds;
  const double copy_s = static_cast<double>(weight_bytes_) / kLinkBytesPerSecond;
  issue_cheap_ = issue_s <= copy_s;
  std::uint64_t largest = 0;
  for (int c : chunks_) largest = std::max(largest, constants_.chunk_bytes(c));
  // A share of the room beside the activations (the rest for the resident chunks, frames and
  // other models), and at least two of the largest chunks so one is copied while another is read.
  const std::uint64_t room = budget > plan_.arena_bytes ? budget - plan_.arena_bytes : 0;
  ring_bytes_ = memory::ring_aligned(std::min(std::max(room / kRingShare, 2 * largest), weight_bytes_));
  if (Status s = plan_ring_split(0, ring_bytes_); !s.is_ok()) {
    log_debug(graph_.path + ": no weight ring: " + s.message());
    ring_bytes_ = 0;
    return;
  }
  log_debug(graph_.path + ": " + ring_.describe());
}

Status CudaExecutor::plan_ring_split(std::size_t resident, std::uint64_t ring_bytes) {
  std::vector<std::uint64_t> bytes(chunk_ptrs_.size(), 0);
  for (int c : chunks_) bytes[static_cast<std::size_t>(c)] = constants_.chunk_bytes(c);
  std::vector<std::vector<BlockId>> streamed;  // per node, by local chunk id
  for (const std::vector<int>& chunks : node_chunks_) {
    streamed.emplace_back();
    for (int c : chunks)
      if (chunk_order_[static_cast<std::size_t>(c)] >= resident) streamed.back().push_back(static_cast<BlockId>(c));
  }
  FSWAP_ASSIGN_OR_RETURN(ring_, memory::plan_weight_ring(streamed, bytes, ring_bytes));
  ring_resident_ = resident;
  ring_planned_bytes_ = ring_bytes;
  ++ring_plan_id_;
  ring_head_bytes_ = 0;
  for (const memory::RingLoad& l : ring_.loads)
    if (l.after_node < 0) ring_head_bytes_ += l.bytes;
  ring_graph_.exec.reset();
  return Status::ok();
}

namespace {
// Makes `e` (an event without timing) unless it was made before.
Status make_event(memory::CudaEvent& e) {
  if (e) return Status::ok();
  cudaEvent_t made = nullptr;
  FSWAP_CUDA_CHECK(cudaEventCreateWithFlags(&made, cudaEventDisableTiming));
  e.reset(made);
  return Status::ok();
}
}  // namespace

Result<cudaEvent_t> CudaExecutor::record_head_start() {
  FSWAP_RETURN_IF_ERROR(make_event(head_start_));
  FSWAP_CUDA_CHECK(cudaEventRecord(head_start_.get(), runtime_.device().compute_stream()));
  return head_start_.get();
}

std::uint64_t CudaExecutor::ring_place(const memory::RingLoad& l) const {
  return ring_planned_bytes_ - l.offset - memory::ring_aligned(l.bytes);
}

Status CudaExecutor::load_ring_head(std::uint64_t ring, cudaEvent_t early, std::uint64_t early_from, cudaEvent_t late) {
  if (!ring_stream_) {
    cudaStream_t stream = nullptr;
    FSWAP_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    ring_stream_.reset(stream);
  }
  cudaStream_t copy = ring_stream_.get();
  head_copied_.resize(ring_.loads.size());
  for (const bool first : {true, false}) {
    FSWAP_CUDA_CHECK(cudaStreamWaitEvent(copy, first ? early : late, 0));
    for (std::size_t j = 0; j < ring_.loads.size(); ++j) {
      const memory::RingLoad& l = ring_.loads[j];
      if (l.after_node >= 0 || (ring_place(l) >= early_from) != first) continue;
      const void* host = runtime_.residency().block(constants_.block(static_cast<int>(l.block))).host;
      FSWAP_CUDA_CHECK(
          cudaMemcpyAsync(device_address(ring + ring_place(l)), host, l.bytes, cudaMemcpyHostToDevice, copy));
      FSWAP_RETURN_IF_ERROR(make_event(head_copied_[j]));
      FSWAP_CUDA_CHECK(cudaEventRecord(head_copied_[j].get(), copy));
    }
  }
  FSWAP_RETURN_IF_ERROR(make_event(head_done_));
  FSWAP_CUDA_CHECK(cudaEventRecord(head_done_.get(), copy));
  head_plan_id_ = ring_plan_id_;
  head_ring_ = ring;
  return Status::ok();
}

std::size_t CudaExecutor::ring_split(std::uint64_t resident_room) const {
  // The longest prefix of the chunks (in first-use order) that fits, at most as many as could be
  // acquired when a longer one was tried (ring_resident_cap_); none where it would hold less than a
  // quarter of the weights (resident chunks are acquired every pass, and new addresses after an
  // eviction cost a capture); and the current split while it fits and a longer one would spare
  // less than an eighth of the copies (each new split is a new plan and a new capture).
  const auto fits = std::upper_bound(prefix_bytes_.begin(), prefix_bytes_.end(), resident_room);
  auto longest = std::min(static_cast<std::size_t>(fits - prefix_bytes_.begin()) - 1, ring_resident_cap_);
  if (prefix_bytes_[longest] < weight_bytes_ / 4) longest = 0;
  if (ring_resident_ <= longest && prefix_bytes_[longest] - prefix_bytes_[ring_resident_] < weight_bytes_ / 8)
    return ring_resident_;
  return longest;
}

Status CudaExecutor::bind(const Node& node, const std::map<int, DeviceConstants::Slot>& slots) {
  BoundNode b;
  b.node = &node;
  b.kernel = cuda::cuda_kernel(node.op);
  if (!b.kernel)
    return unsupported(graph_.path + ": node " + node.name + ": operator " + op_name(node.op) +
                       " has no CUDA kernel yet (use --device cpu)");
  std::vector<int> chunks;
  for (int in : node.inputs) {
    const Value* v = in >= 0 ? &graph_.values[in] : nullptr;
    const Tensor* data = in >= 0 ? graph_.constant_data(in) : nullptr;
    b.inputs.push_back(v != nullptr ? TensorView{v->dtype, v->shape, nullptr} : TensorView{});
    b.host_inputs.push_back(data != nullptr ? data->view() : TensorView{});
    b.input_offsets.push_back(v != nullptr && data == nullptr ? plan_.offset[in] : -1);
    const auto input = std::find(graph_.inputs.begin(), graph_.inputs.end(), in);
    b.graph_inputs.push_back(in >= 0 && input != graph_.inputs.end() ? static_cast<int>(input - graph_.inputs.begin()) : -1);
    b.slots.push_back(data != nullptr ? slots.at(in) : DeviceConstants::Slot{});
    const int c = b.slots.back().chunk;
    if (c >= 0 && std::find(chunks.begin(), chunks.end(), c) == chunks.end()) chunks.push_back(c);
  }
  for (int out : node.outputs) {
    const Value& v = graph_.values[out];
    b.outputs.push_back({v.dtype, v.shape, nullptr});
    b.output_offsets.push_back(plan_.offset[out]);
  }
  nodes_.push_back(std::move(b));
  node_chunks_.push_back(std::move(chunks));
  return Status::ok();
}

Status CudaExecutor::launch_node(const BoundNode& b, std::uint64_t base) {
  std::vector<TensorView> in_views = b.inputs, out_views = b.outputs;
  for (std::size_t j = 0; j < b.inputs.size(); ++j) {
    if (b.input_offsets[j] >= 0) in_views[j].data = device_address(base + static_cast<std::uint64_t>(b.input_offsets[j]));
    if (b.graph_inputs[j] >= 0 && input_addresses_[static_cast<std::size_t>(b.graph_inputs[j])] != 0)
      in_views[j].data = device_address(input_addresses_[static_cast<std::size_t>(b.graph_inputs[j])]);
    if (b.slots[j].chunk >= 0)
      in_views[j].data = device_address(chunk_ptrs_[static_cast<std::size_t>(b.slots[j].chunk)].address + b.slots[j].offset);
  }
  for (std::size_t j = 0; j < out_views.size(); ++j)
    out_views[j].data = device_address(base + static_cast<std::uint64_t>(b.output_offsets[j]));
  Status s = b.kernel({b.node->op, b.node->attrs, in_views, out_views, b.host_inputs, runtime_.context()});
  return s.is_ok() ? s : node_error(graph_, *b.node, s);
}

Status CudaExecutor::place_device_inputs(std::uint64_t base, std::span<const DeviceTensor> inputs) {
  // In place only from the second run on the same addresses, and never from the lane's buffer (a
  // previous run's outputs passed on: this run's activations overwrite them).
  bool same = !in_place_disabled_ && last_device_inputs_.size() == inputs.size();
  for (std::size_t i = 0; same && i < inputs.size(); ++i)
    same = last_device_inputs_[i] == inputs[i].data &&
           !runtime_.in_lane_buffer(inputs[i].data, shape_elements(inputs[i].shape) * dtype_size(inputs[i].dtype));
  last_device_inputs_.resize(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    last_device_inputs_[i] = inputs[i].data;
    input_addresses_[i] = reinterpret_cast<std::uintptr_t>(inputs[i].data);
  }
  return same ? Status::ok() : copy_inputs(base);
}

Status CudaExecutor::copy_inputs(std::uint64_t base) {
  // On the compute stream, after the previous run and the caller's kernels that wrote the inputs.
  for (std::size_t i = 0; i < input_addresses_.size(); ++i) {
    if (input_addresses_[i] == 0) continue;
    const Value& value = graph_.values[graph_.inputs[i]];
    const std::size_t bytes = static_cast<std::size_t>(shape_elements(value.shape)) * dtype_size(value.dtype);
    if (bytes > 0)
      FSWAP_CUDA_CHECK(cudaMemcpyAsync(device_address(base + static_cast<std::uint64_t>(plan_.offset[graph_.inputs[i]])),
                                       device_address(input_addresses_[i]), bytes, cudaMemcpyDeviceToDevice,
                                       runtime_.device().compute_stream()));
    input_addresses_[i] = 0;
  }
  return Status::ok();
}

bool CudaExecutor::reads_in_place() const {
  return std::any_of(input_addresses_.begin(), input_addresses_.end(), [](std::uint64_t a) { return a != 0; });
}

Status CudaExecutor::enter_unified(std::size_t n) {
  auto& dev = runtime_.device();
  for (int c : node_chunks_[n]) {
    FSWAP_ASSIGN_OR_RETURN(DeviceEvent ready, constants_.prefetch(c));
    dev.compute_wait(ready);
    chunk_ptrs_[static_cast<std::size_t>(c)] = constants_.managed(c);
  }
  // The next chunks' migrations overlap this node's kernels (each chunk is prefetched once).
  std::uint64_t ahead = 0;
  const std::vector<memory::BlockId>& order = walk_.schedule();
  for (std::size_t i = walk_.next_acquire(n); i < order.size() && ahead < geometry_.prefetch_bytes; ++i) {
    const int c = static_cast<int>(order[i]);
    ahead += constants_.chunk_bytes(c);
    FSWAP_RETURN_IF_ERROR(constants_.prefetch(c).status());
  }
  return Status::ok();
}

Status CudaExecutor::run_nodes(std::uint64_t base, const std::function<void()>& after_node) {
  NvtxRange range(graph_.path + " node by node");
  auto& rm = runtime_.residency();
  const std::uint64_t prefetch_bytes = geometry_.prefetch_bytes;
  for (std::size_t n = 0; n < nodes_.size(); ++n) {
    const BoundNode& b = nodes_[n];
    if (constants_.unified()) {
      if (Status s = enter_unified(n); !s.is_ok()) return node_error(graph_, *b.node, s);
    } else {
      const auto start = std::chrono::steady_clock::now();
      const Status entered = walk_.enter(rm, n, prefetch_bytes);
      runtime_.issue_times().residency_s += seconds_since(start);
      if (!entered.is_ok()) return node_error(graph_, *b.node, entered);
      for (std::size_t i = 0; i < node_chunks_[n].size(); ++i)
        chunk_ptrs_[static_cast<std::size_t>(node_chunks_[n][i])] = walk_.pointers()[i];
    }
    NvtxRange node_range(b.node->name);
    if (Status s = launch_node(b, base); !s.is_ok()) {
      if (!constants_.unified()) (void)walk_.leave(rm);
      return s;
    }
    if (after_node) after_node();
  }
  return constants_.unified() ? Status::ok() : walk_.leave(rm);
}

bool CudaExecutor::use_graph() const {
  // The first run searches cuDNN's algorithms and grows the workspace (neither may happen while
  // capturing). Then a graph runs when all of the model's weights fit beside the blocks of models
  // dearer to stream (ResidencyManager::room_beside_dearer): run_graph loads what is missing first
  // (those copies do not overlap its kernels) and the arena mostly puts chunks back at the same
  // addresses, so the graph is relaunched, not recaptured. A model whose weights do not fit there
  // streams them node by node, each chunk's copy overlapping the kernels before it, evicting its
  // own and cheaper models' chunks first, so a dearer model keeps its graph.
  if (graph_disabled_ || plain_runs_ < 1) return false;
  if (constants_.unified()) return true;
  return weight_bytes_ <= runtime_.residency().room_beside_dearer(constants_.model());
}

Status CudaExecutor::acquire_chunks(std::size_t count, std::size_t& held, bool spare_dearer) {
  auto& rm = runtime_.residency();
  const auto acquiring = std::chrono::steady_clock::now();
  Status s;
  for (held = 0; held < count; ++held) {
    const int c = chunks_[held];
    if (constants_.unified()) {
      chunk_ptrs_[static_cast<std::size_t>(c)] = constants_.managed(c);
      continue;
    }
    Result<memory::DevicePtr> p = rm.acquire(constants_.block(c), spare_dearer);
    if (!p.is_ok()) {
      s = p.status();
      break;
    }
    chunk_ptrs_[static_cast<std::size_t>(c)] = *p;
  }
  runtime_.issue_times().residency_s += seconds_since(acquiring);
  return s;
}

void CudaExecutor::release_chunks(std::size_t count) {
  if (constants_.unified()) return;
  for (std::size_t i = 0; i < count; ++i) (void)runtime_.residency().release(constants_.block(chunks_[i]));
}

bool CudaExecutor::CapturedGraph::serves(const std::vector<std::uint64_t>& addresses) {
  if (!stale(addresses) || addresses == missed) return true;
  missed = addresses;
  return false;
}

bool CudaExecutor::CapturedGraph::wasting() {
  wasted = exec && launches < kMinGraphLaunches ? wasted + 1 : 0;
  return wasted > kMaxWastedCaptures;
}

Status CudaExecutor::launch(CapturedGraph& g, std::vector<std::uint64_t> signature,
                            const std::function<Result<cudaGraphExec_t>()>& capture) {
  if (g.stale(signature)) {
    g.exec.reset();
    const auto capturing = std::chrono::steady_clock::now();
    Result<cudaGraphExec_t> made = capture();
    runtime_.issue_times().capture_s += seconds_since(capturing);
    if (!made.is_ok()) return unsupported("capture failed: " + made.status().message());
    g.exec.reset(*made);
    g.signature = std::move(signature);
    g.launches = 0;
    log_debug(graph_.path + ": CUDA graph captured in " + ms_since(capturing));
  }
  FSWAP_CUDA_CHECK(cudaGraphLaunch(g.exec.get(), runtime_.device().compute_stream()));
  ++g.launches;
  return Status::ok();
}

Result<bool> CudaExecutor::run_graph(std::uint64_t base) {
  std::size_t held = 0;
  Status s = acquire_chunks(chunks_.size(), held);
  if (s.is_ok()) s = runtime_.restore_workspace(workspace_need_);
  bool launched = false;
  if (s.is_ok()) {
    // The graph bakes in every address: the activations, the workspace and each chunk. Addresses
    // a run meets for the first time are captured only when the next run meets them again: a GPU
    // turn gives the buffers back, and a turn that runs the model once would pay a capture (the
    // nodes' issue plus an instantiation) where issuing the nodes suffices.
    std::vector<std::uint64_t> signature = {base, runtime_.workspace_address()};
    for (int c : chunks_) signature.push_back(chunk_ptrs_[static_cast<std::size_t>(c)].address);
    // Inputs read in place have a graph of their own, which bakes their addresses in; where it
    // would not launch (addresses met once), they are copied and the other graph runs, so a
    // caller whose inputs move costs no more runs node by node than one whose inputs are copied.
    if (reads_in_place()) {
      std::vector<std::uint64_t> in_place = signature;
      in_place.insert(in_place.end(), input_addresses_.begin(), input_addresses_.end());
      if (in_place_graph_.serves(in_place)) {
        if (in_place_graph_.stale(in_place) && in_place_graph_.wasting()) in_place_disabled_ = true;
        s = launch(in_place_graph_, std::move(in_place), [&] { return capture(base); });
        launched = s.is_ok();
      } else {
        s = copy_inputs(base);
      }
    }
    if (s.is_ok() && !launched && resident_graph_.serves(signature)) {
      s = launch(resident_graph_, std::move(signature), [&] { return capture(base); });
      launched = s.is_ok();
    }
  }
  release_chunks(held);
  FSWAP_RETURN_IF_ERROR(s);
  return launched;
}

Result<cudaGraphExec_t> CudaExecutor::capture(std::uint64_t base) {
  NvtxRange range(graph_.path + " capture");
  cudaStream_t stream = runtime_.device().compute_stream();
  FSWAP_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  Status launched;
  for (const BoundNode& b : nodes_) {
    launched = launch_node(b, base);
    if (!launched.is_ok()) break;
  }
  return finish_capture(runtime_, stream, {launched});
}

Status CudaExecutor::run_ring(const Started& run) {
  if (run.ring_resident != ring_resident_ || run.ring_bytes != ring_planned_bytes_)
    FSWAP_RETURN_IF_ERROR(plan_ring_split(run.ring_resident, run.ring_bytes));
  // The resident chunks are acquired for the launch, as a resident graph's are, but not by
  // evicting a dearer model's: they can stream instead.
  std::size_t held = 0;
  Status s = acquire_chunks(ring_resident_, held, /*spare_dearer=*/true);
  if (!s.is_ok() && s.code() == StatusCode::kOutOfMemory) {
    // The room was counted in bytes, the arena's free ranges may be too small: the chunks held
    // stay resident, the ring takes the rest.
    log_debug(graph_.path + ": " + std::to_string(held) + " of " + std::to_string(ring_resident_) +
              " chunks resident beside the weight ring: " + s.message());
    ring_resident_cap_ = held;
    s = plan_ring_split(held, ring_planned_bytes_);
  }
  if (s.is_ok()) s = runtime_.restore_workspace(workspace_need_);
  if (s.is_ok()) {
    // The graph bakes in the activations, the workspace, the ring and the resident chunks.
    // Resident chunks that other models keep evicting (so they come back elsewhere) would cost a
    // capture a pass: after kMaxWastedCaptures such captures in a row every chunk streams from
    // the next run on, and the addresses stay put.
    std::vector<std::uint64_t> signature = {run.base, runtime_.workspace_address(), run.ring, ring_resident_};
    for (std::size_t i = 0; i < ring_resident_; ++i)
      signature.push_back(chunk_ptrs_[static_cast<std::size_t>(chunks_[i])].address);
    if (ring_graph_.stale(signature)) {
      log_debug(graph_.path + ": weight-ring graph: " + std::to_string(ring_resident_) + " of " +
                std::to_string(chunks_.size()) + " chunks resident, " + ring_.describe());
      if (ring_graph_.wasting()) {
        ring_resident_cap_ = 0;
        log_debug(graph_.path + ": the weight ring's resident chunks keep moving: every chunk streams from now on");
      }
    }
    // The head: loaded ahead during the run before (prefetch_head) for this plan and ring, else now.
    const bool ahead = runtime_.take_ring_head(this) && head_plan_id_ == ring_plan_id_ && head_ring_ == run.ring;
    if (!ahead) {
      Result<cudaEvent_t> now = record_head_start();
      s = now.is_ok() ? load_ring_head(run.ring, *now, 0, *now) : now.status();
    } else {
      runtime_.residency().count_ring_ahead(constants_.model(), ring_head_bytes_);
    }
    if (s.is_ok()) s = launch(ring_graph_, std::move(signature), [&] { return capture_ring(run.base, run.ring); });
  }
  release_chunks(held);
  if (s.is_ok()) runtime_.residency().count_ring_pass(constants_.model(), ring_.load_bytes, ring_.loads.size());
  return s;
}

Result<cudaGraphExec_t> CudaExecutor::capture_ring(std::uint64_t base, std::uint64_t ring) {
  NvtxRange range(graph_.path + " capture (weight ring)");
  cudaStream_t compute = runtime_.device().compute_stream(), copy = ring_stream_.get();
  const std::vector<memory::RingLoad>& loads = ring_.loads;
  // The head's copies are not in the graph (load_ring_head issues them before each launch, or
  // during the run before): its nodes wait for their events, recorded outside.
  // Events order the two streams inside the capture, where they become the graph's edges.
  std::vector<memory::CudaEvent> events;
  const auto record = [&](cudaStream_t stream) -> Result<cudaEvent_t> {
    cudaEvent_t e = nullptr;
    FSWAP_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    events.emplace_back(e);
    FSWAP_CUDA_CHECK(cudaEventRecord(e, stream));
    return e;
  };
  std::vector<bool> waited_for(nodes_.size(), false);
  for (const memory::RingLoad& l : loads)
    if (l.after_node >= 0) waited_for[static_cast<std::size_t>(l.after_node)] = true;

  if (!ring_stream_ || head_copied_.size() != loads.size())
    return internal_error(graph_.path + ": weight ring captured before its head was loaded");
  FSWAP_CUDA_CHECK(cudaStreamBeginCapture(compute, cudaStreamCaptureModeThreadLocal));
  const Status captured = [&]() -> Status {
    std::vector<cudaEvent_t> node_done(nodes_.size(), nullptr), copied(loads.size(), nullptr);
    FSWAP_ASSIGN_OR_RETURN(cudaEvent_t fork, record(compute));
    FSWAP_CUDA_CHECK(cudaStreamWaitEvent(copy, fork, 0));
    // The copies in plan order, each as soon as the node it waits for is captured.
    std::size_t next_copy = 0;
    const auto issue_copies = [&](std::ptrdiff_t done) -> Status {
      for (; next_copy < loads.size() && loads[next_copy].after_node <= done; ++next_copy) {
        const memory::RingLoad& l = loads[next_copy];
        if (l.after_node < 0) continue;  // the head
        FSWAP_CUDA_CHECK(cudaStreamWaitEvent(copy, node_done[static_cast<std::size_t>(l.after_node)], 0));
        const void* host = runtime_.residency().block(constants_.block(static_cast<int>(l.block))).host;
        FSWAP_CUDA_CHECK(
            cudaMemcpyAsync(device_address(ring + ring_place(l)), host, l.bytes, cudaMemcpyHostToDevice, copy));
        FSWAP_ASSIGN_OR_RETURN(copied[next_copy], record(copy));
      }
      return Status::ok();
    };
    FSWAP_RETURN_IF_ERROR(issue_copies(-1));
    std::size_t first_read = 0;  // the next load in order of first_node
    for (std::size_t n = 0; n < nodes_.size(); ++n) {
      for (; first_read < loads.size() && loads[first_read].first_node == n; ++first_read) {
        FSWAP_CHECK(first_read < next_copy, "weight ring: a load's copy waits for a node after its reader");
        if (loads[first_read].after_node < 0) {
          FSWAP_CUDA_CHECK(cudaStreamWaitEvent(compute, head_copied_[first_read].get(), cudaEventWaitExternal));
        } else {
          FSWAP_CUDA_CHECK(cudaStreamWaitEvent(compute, copied[first_read], 0));
        }
      }
      // The streamed chunks' addresses in the ring (the resident ones were set when acquired).
      std::size_t streamed = 0;
      for (int c : node_chunks_[n])
        if (chunk_order_[static_cast<std::size_t>(c)] >= ring_resident_)
          chunk_ptrs_[static_cast<std::size_t>(c)] = {ring + ring_place(loads[ring_.node_loads[n][streamed++]])};
      FSWAP_RETURN_IF_ERROR(launch_node(nodes_[n], base));
      if (waited_for[n]) {
        FSWAP_ASSIGN_OR_RETURN(node_done[n], record(compute));
      }
      FSWAP_RETURN_IF_ERROR(issue_copies(static_cast<std::ptrdiff_t>(n)));
    }
    return Status::ok();
  }();
  // The copy stream joins the compute stream before the capture ends, also when it failed (an
  // unjoined stream would stay capturing).
  const Status joined = [&]() -> Status {
    FSWAP_ASSIGN_OR_RETURN(cudaEvent_t done, record(copy));
    FSWAP_CUDA_CHECK(cudaStreamWaitEvent(compute, done, 0));
    return Status::ok();
  }();
  return finish_capture(runtime_, compute, {captured, joined});
}

Status CudaExecutor::check_inputs(std::size_t count, const std::function<std::pair<DType, Shape>(std::size_t)>& input) const {
  if (count != graph_.inputs.size())
    return invalid_input(graph_.path + ": expected " + std::to_string(graph_.inputs.size()) + " inputs, got " +
                         std::to_string(count));
  for (std::size_t i = 0; i < count; ++i) {
    const Value& value = graph_.values[graph_.inputs[i]];
    const auto [dtype, shape] = input(i);
    if (shape != value.shape || dtype != value.dtype)
      return invalid_input(graph_.path + ": input " + value.name + " is " + dtype_name(dtype) + shape_to_string(shape) +
                           ", this plan expects " + dtype_name(value.dtype) + shape_to_string(value.shape));
  }
  return Status::ok();
}

Result<CudaExecutor::Started> CudaExecutor::start(bool may_ring) {
  runtime_.begin_run(this);
  // Eviction prefers blocks this run needs latest, other models' blocks first.
  if (!constants_.unified()) runtime_.residency().set_schedule(walk_.schedule());
  const std::uint64_t activation_bytes = std::max<std::uint64_t>(plan_.arena_bytes, 256);
  // From the second run on, weights that do not fit beside the blocks of dearer models stream
  // through the lane's weight ring, all but the chunks that fit beside it; when the budget cannot
  // give the ring, the run streams node by node.
  bool stream = false;
  std::uint64_t room = 0, grow = 0;
  if (may_ring && ring_bytes_ > 0 && !ring_disabled_ && plain_runs_ >= 1) {
    room = runtime_.residency().room_beside_dearer(constants_.model());
    const std::uint64_t activation_growth = runtime_.lane_growth(activation_bytes, 0);
    stream = weight_bytes_ + activation_growth > room;
    grow = runtime_.lane_growth(activation_bytes, ring_bytes_);
    // A model cheap to issue node by node does so while at least half its weights fit (beside no
    // ring: one asked for stays with the lane, and under a large budget a quarter of the room is
    // more than the few chunks it would stream).
    if (issue_cheap_ && room >= activation_growth + weight_bytes_ / 2) stream = false;
    // A ring that grows the lane's buffer allocates it anew, activations included: only where the
    // room holds the growth (else the attempt would evict every weight and still fail).
    if (grow > room) stream = false;
  }
  Started run;
  if (stream) {
    // Before the activations: a ring that grows the lane's buffer moves it.
    Result<CudaRuntime::Ring> ring = runtime_.weight_ring(activation_bytes, ring_bytes_);
    if (ring.is_ok()) {
      run.ring = ring->address;
      run.ring_bytes = ring->bytes;
      run.ring_resident = ring_split(room > grow ? room - grow : 0);
    } else if (ring.status().code() == StatusCode::kOutOfMemory) {
      log_debug(graph_.path + ": no room for the weight ring: " + ring.status().message());
    } else {
      return ring.status();
    }
  }
  FSWAP_ASSIGN_OR_RETURN(memory::DevicePtr activations, runtime_.activations(activation_bytes));
  run.base = activations.address;
  // The run's time on the compute stream (the runtime's GPU-busy figure), from a start mark that
  // completes when the work queued before it has.
  run.span = std::make_unique<memory::ComputeSpan>(runtime_.device());
  return run;
}

Status CudaExecutor::upload_inputs(const Started& run, const std::vector<TensorView>& inputs) {
  std::fill(input_addresses_.begin(), input_addresses_.end(), 0);
  // Staged on the compute stream (CudaRuntime::upload): after the previous run's kernels, which may
  // still read these activation bytes, and without the host waiting for them.
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].bytes() == 0) continue;
    void* dst = reinterpret_cast<void*>(
        static_cast<std::uintptr_t>(run.base + static_cast<std::uint64_t>(plan_.offset[graph_.inputs[i]])));
    FSWAP_RETURN_IF_ERROR(runtime_.upload(dst, inputs[i].data, HostRows::contiguous(inputs[i].bytes())));
  }
  return Status::ok();
}

CudaExecutor::~CudaExecutor() { runtime_.withdraw(this); }

Status CudaExecutor::prefetch_head(std::uint64_t used_bytes) {
  if (constants_.unified()) return Status::ok();
  auto& rm = runtime_.residency();
  const auto start = std::chrono::steady_clock::now();
  if (ringed_ && ring_graph_.exec) {
    // The head of the ring its last run streamed through, where the lane's buffer still holds that
    // ring: copied now, the loads landing above the bytes the current run uses after the work
    // before it, the others after it.
    const std::uint64_t activation_bytes = std::max<std::uint64_t>(plan_.arena_bytes, 256);
    const CudaRuntime::Ring ring = runtime_.current_weight_ring(activation_bytes);
    if (ring.address != 0 && ring.address == head_ring_ && ring.bytes == ring_planned_bytes_) {
      FSWAP_ASSIGN_OR_RETURN(cudaEvent_t now, record_head_start());
      const std::uint64_t early_from = used_bytes > ring.offset ? used_bytes - ring.offset : 0;
      FSWAP_RETURN_IF_ERROR(load_ring_head(ring.address, runtime_.run_start_event(), early_from, now));
      runtime_.note_ring_head(this, head_done_.get());
    }
  }
  std::vector<memory::BlockId> missing;
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < (ringed_ ? ring_resident_ : chunks_.size()) && bytes < geometry_.prefetch_bytes; ++i) {
    const memory::BlockId block = constants_.block(chunks_[i]);
    bytes += constants_.chunk_bytes(chunks_[i]);
    if (!rm.is_resident(block)) missing.push_back(block);
  }
  Status s;
  if (!missing.empty()) {
    rm.set_schedule(walk_.schedule());
    for (memory::BlockId block : missing) {
      s = rm.prefetch(block);
      if (!s.is_ok()) break;
    }
  }
  runtime_.issue_times().residency_s += seconds_since(start);
  return s;
}

Status CudaExecutor::compute(const Started& run) {
  FSWAP_RETURN_IF_ERROR(issue_kernels(run));
  // The lane's bytes this run uses: its activations, or all of them when it streamed through the ring.
  return runtime_.ran(this, ringed_ ? std::numeric_limits<std::uint64_t>::max() : plan_.arena_bytes);
}

Status CudaExecutor::issue_kernels(const Started& run) {
  const std::uint64_t base = run.base;
  ringed_ = false;
  if (run.ring != 0) {
    FSWAP_RETURN_IF_ERROR(copy_inputs(base));  // the ring's graph bakes in no caller's addresses
    const Status ringed = run_ring(run);
    if (ringed.is_ok()) {
      ++runtime_.issue_times().graph_runs;
      ringed_ = true;
      return Status::ok();
    }
    log_debug(graph_.path + ": weight ring not used: " + ringed.to_string());
    // Out of memory is this run's (the next may find the room); a failed capture is for good.
    if (ringed.code() != StatusCode::kOutOfMemory) ring_disabled_ = true;
  }
  if (use_graph()) {
    Result<bool> launched = run_graph(base);
    if (launched.is_ok() && *launched) {
      ++runtime_.issue_times().graph_runs;
      return Status::ok();
    }
    if (!launched.is_ok()) {
      log_debug(graph_.path + ": CUDA graph not used: " + launched.status().to_string());
      if (launched.status().code() != StatusCode::kOutOfMemory) graph_disabled_ = true;
    }
    ++runtime_.issue_times().node_runs;
    return run_nodes(base);
  }
  // The first run searches cuDNN's algorithms for problems the cache has not seen.
  const auto start = std::chrono::steady_clock::now();
  ++runtime_.issue_times().node_runs;
  (void)runtime_.take_workspace_used();
  FSWAP_RETURN_IF_ERROR(run_nodes(base));
  workspace_need_ = std::max(workspace_need_, runtime_.take_workspace_used());
  if (plain_runs_ == 0) log_debug(graph_.path + ": first run issued in " + ms_since(start));
  ++plain_runs_;
  return Status::ok();
}

Status CudaExecutor::IssuedRun::wait() {
  for (auto& [output, copy] : copies)
    FSWAP_RETURN_IF_ERROR(copy->wait(outputs[output].raw(), HostRows::contiguous(outputs[output].view().bytes())));
  copies.clear();
  return Status::ok();
}

Result<CudaExecutor::IssuedRun> CudaExecutor::issue(const std::vector<TensorView>& inputs) {
  FSWAP_RETURN_IF_ERROR(check_inputs(inputs.size(), [&](std::size_t i) {
    return std::pair{inputs[i].dtype, inputs[i].shape};
  }));
  NvtxRange range(graph_.path + " run");
  FSWAP_ASSIGN_OR_RETURN(Started run, start(true));
  FSWAP_RETURN_IF_ERROR(upload_inputs(run, inputs));
  FSWAP_RETURN_IF_ERROR(compute(run));
  const DeviceEvent computed = run.span->mark_end();
  // The outputs go down on the compute stream, so a later run's kernels cannot overwrite the
  // activations before they are copied.
  IssuedRun issued;
  for (int out : graph_.outputs) {
    const Value& value = graph_.values[out];
    if (const Tensor* data = graph_.constant_data(out)) {
      issued.outputs.push_back(Tensor::copy_of(data->view()));
      continue;
    }
    issued.outputs.push_back(Tensor::zeros(value.dtype, value.shape));
    const std::size_t bytes = issued.outputs.back().view().bytes();
    if (bytes == 0) continue;
    const void* src = reinterpret_cast<const void*>(
        static_cast<std::uintptr_t>(run.base + static_cast<std::uint64_t>(plan_.offset[out])));
    FSWAP_ASSIGN_OR_RETURN(auto copy, runtime_.download_later(src, bytes));
    issued.copies.emplace_back(issued.outputs.size() - 1, std::move(copy));
  }
  runtime_.count_run_when_done(std::move(run.span), computed);
  return issued;
}

Result<std::vector<Tensor>> CudaExecutor::run(const std::vector<TensorView>& inputs) {
  FSWAP_ASSIGN_OR_RETURN(IssuedRun issued, issue(inputs));
  FSWAP_RETURN_IF_ERROR(issued.wait());
  return std::move(issued.outputs);
}

Result<std::vector<NodeTime>> CudaExecutor::profile(const std::vector<TensorView>& inputs) {
  FSWAP_RETURN_IF_ERROR(check_inputs(inputs.size(), [&](std::size_t i) {
    return std::pair{inputs[i].dtype, inputs[i].shape};
  }));
  NvtxRange range(graph_.path + " profile");
  auto& dev = runtime_.device();
  FSWAP_ASSIGN_OR_RETURN(Started run, start(false));
  FSWAP_RETURN_IF_ERROR(upload_inputs(run, inputs));
  TimedMarks marks(dev);
  cuda::StreamGate gate;  // after marks: opened before they are released, on every return
  FSWAP_RETURN_IF_ERROR(gate.close("profile", dev.compute_stream()));
  marks.record();
  const Status issued = run_nodes(run.base, [&marks] { marks.record(); });
  gate.open();
  FSWAP_RETURN_IF_ERROR(issued);
  FSWAP_RETURN_IF_ERROR(dev.wait(marks.marks().back()));
  if (gate.expired())
    log_warn(graph_.path + ": profile: the host took over " + std::to_string(cuda::kGateLimit.count()) +
             " ms to issue the nodes, so the GPU started before; the last nodes' times may include the host's issue time");
  std::vector<NodeTime> times;
  for (std::size_t n = 0; n < nodes_.size(); ++n) {
    const BoundNode& b = nodes_[n];
    FSWAP_ASSIGN_OR_RETURN(double seconds, dev.elapsed_seconds(marks.marks()[n], marks.marks()[n + 1]));
    times.push_back({b.node->name, op_name(b.node->op), shapes_text(b.outputs), seconds * 1e3});
  }
  return times;
}

Status CudaExecutor::run_on_device(std::span<const DeviceTensor> inputs, const DeviceOutputsFn& consume) {
  FSWAP_RETURN_IF_ERROR(check_inputs(inputs.size(), [&](std::size_t i) {
    return std::pair{inputs[i].dtype, inputs[i].shape};
  }));
  for (int out : graph_.outputs)
    if (graph_.constant_data(out) != nullptr)
      return unsupported(graph_.path + ": output " + graph_.values[out].name + " is a constant; run it with host tensors");
  NvtxRange range(graph_.path + " device run");
  FSWAP_ASSIGN_OR_RETURN(Started run, start(true));
  FSWAP_RETURN_IF_ERROR(place_device_inputs(run.base, inputs));
  FSWAP_RETURN_IF_ERROR(compute(run));
  const DeviceEvent computed = run.span->mark_end();
  std::vector<DeviceTensor> outputs;
  for (int out : graph_.outputs) {
    const Value& value = graph_.values[out];
    void* data = reinterpret_cast<void*>(static_cast<std::uintptr_t>(run.base + static_cast<std::uint64_t>(plan_.offset[out])));
    outputs.push_back({data, value.dtype, value.shape});
  }
  FSWAP_RETURN_IF_ERROR(consume(outputs));
  runtime_.count_run_when_done(std::move(run.span), computed);
  return Status::ok();
}

}  // namespace fswap
