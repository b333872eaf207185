// The native engine on CUDA: a model's weights as residency blocks, and one executor per input
// shape that runs the graph's kernels on the device under the shared budget.
//
//   DeviceConstants constants(runtime, "inswapper_128", MemoryMode::kExplicit);
//   FSWAP_ASSIGN_OR_RETURN(auto exec, CudaExecutor::create(runtime, constants, optimized, {{1, 3, 128, 128}, {1, 512}},
//                                                          Precision::kFloat16));
//   auto lock = runtime.enter();
//   FSWAP_ASSIGN_OR_RETURN(std::vector<Tensor> outputs, exec->run({target.view(), source.view()}));
//
// Memory: the weights and constants are packed in run order into chunks of 0.5–16 MiB (by the room
// the budget leaves beside the activation plan),
// each a block of the runtime's ResidencyManager (its host copy pinned, converted to the device
// dtype). A node holds the chunks it reads while its kernels are issued (memory::ChunkWalk), and
// the chunks of the next prefetch_bytes of the run are prefetched on the copy stream meanwhile.
// When everything fits the chunks simply stay resident; when the model's weights exceed what the
// budget leaves, the same loop streams them (the schedule makes eviction keep what is needed
// soonest). In unified mode the chunks are managed memory instead, prefetched once, never
// evicted. The activations are one scratch allocation per run, laid out by the static memory plan.
// From the second run on, a model whose weights stay resident runs as a CUDA graph (captured
// when a run meets the addresses the previous one met, relaunched while the activation,
// workspace and weight addresses stay the same): one launch instead of a few hundred, and no
// per-node host work. A model whose weights do not fit
// beside dearer models streams them, from the second run on, through the runtime's weight ring
// (memory/weight_ring.h; above its activations in the lane's buffer), all but the chunks that fit
// beside it: a second CUDA graph whose copies, on a stream of their own, run ahead of the kernels
// as far as the ring allows, with no host work per chunk. The ring's head (the loads that fill it
// first) is copied outside the graph, which waits for each load's event: during the run before
// when the runtime expects this model next (CudaRuntime::ran), else just before the launch. A
// model of few nodes for its bytes streams node by node instead while at least half its weights
// fit.
// Built with FSWAP_CUDA only. Thread-safety: run() under the runtime's mutex.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "backends/cuda/cuda_kernels.h"
#include "core/status.h"
#include "core/tensor.h"
#include "memory/cuda/cuda_device.h"
#include "memory/weight_chunks.h"
#include "memory/weight_ring.h"
#include "runtime/channels_last.h"
#include "runtime/engine.h"
#include "runtime/engines/cuda_runtime.h"
#include "runtime/engines/native_engine.h"
#include "runtime/graph.h"
#include "runtime/memory_plan.h"
#include "runtime/split_weights.h"

struct CUgraphExec_st;

namespace fswap {

struct GraphExecDeleter {
  void operator()(CUgraphExec_st* exec) const;
};

// The device copies of one model's weights and constants, packed in run order into chunks
// (memory/weight_chunks.h) sized by the first executor from the room its activations leave. Explicit mode: each chunk is one
// residency block owned by `model` with a pinned host copy. Unified mode: each chunk is one
// managed allocation (read-mostly, preferred on the device) that stays charged to the budget and
// is prefetched on the copy stream before its first use.
class DeviceConstants {
 public:
  DeviceConstants(CudaRuntime& runtime, std::string model, MemoryMode mode)
      : runtime_(runtime), model_(std::move(model)), unified_(mode == MemoryMode::kUnified) {}
  // Waits for the device, then unregisters every block (explicit) or frees the managed memory.
  ~DeviceConstants();
  DeviceConstants(const DeviceConstants&) = delete;
  DeviceConstants& operator=(const DeviceConstants&) = delete;

  struct Request {
    const Tensor* data = nullptr;  // must outlive this object
    DType dtype = DType::kFloat32;  // float32 data is converted when dtype is kFloat16
    std::string name;
  };
  struct Slot {
    int chunk = -1;
    std::uint64_t offset = 0;
  };
  // Where each requested constant lives; the ones not placed yet are packed, in the order given
  // (the run order), into new chunks of about chunk_bytes. Caller holds the runtime's mutex.
  // In unified mode, when the budget or the card's free memory cannot take the first placement's
  // chunks as managed memory, the model switches to explicit mode for good (pinned host chunks
  // the residency manager streams) and says so in the log; later placements of a unified model
  // that do not fit are kOutOfMemory.
  Result<std::vector<Slot>> place(std::span<const Request> requests, std::uint64_t chunk_bytes);

  bool unified() const { return unified_; }
  const std::string& model() const { return model_; }
  std::uint64_t chunk_bytes(int chunk) const { return chunks_[static_cast<std::size_t>(chunk)].bytes; }
  memory::BlockId block(int chunk) const { return chunks_[static_cast<std::size_t>(chunk)].block; }  // explicit
  memory::DevicePtr managed(int chunk) const;  // unified: the chunk's address
  // Unified: starts the chunk's migration to the device unless it was started before; the event
  // (null once complete) orders kernels reading the chunk after it.
  Result<memory::DeviceEvent> prefetch(int chunk);
  // The slices of the model's oversize weights (runtime/split_weights.h), shared by its executors
  // and kept as long as the chunks holding their copies.
  WeightSlices& slices() { return slices_; }

 private:
  struct Chunk {
    std::uint64_t bytes = 0;
    memory::BlockId block = 0;     // explicit
    memory::PinnedHostPtr host;    // explicit: the pinned host copy
    void* managed = nullptr;       // unified
    bool prefetched = false;       // unified
    memory::DeviceEvent ready;     // unified: its prefetch
  };
  Status fill(void* chunk, std::span<const Request> requests, std::span<const Slot> slots, int chunk_id) const;
  // Appends chunk number chunks_.size() of `bytes`, filled with the requests placed in it.
  Status add_chunk(std::uint64_t bytes, std::span<const Request> requests, std::span<const Slot> slots);
  // Unregisters (explicit) or frees and uncharges (unified) chunks [first, end) and forgets them.
  void drop_chunks_from(std::size_t first);

  CudaRuntime& runtime_;
  std::string model_;
  bool unified_ = false;
  std::vector<Chunk> chunks_;
  std::map<std::pair<const Tensor*, DType>, Slot> slots_;
  WeightSlices slices_;
};

class CudaExecutor {
 public:
  // Makes the graph to run from `optimized` (device_graph: specialised for input_shapes, the
  // layout plan, fp16 storage when precision is kFloat16, reordered for memory), plans its
  // activations, splits each Gemm/MatMul weight larger than the chunk size the budget leaves
  // (split_large_weights, slices shared through `constants`), and registers its weights and
  // constants. kUnsupported names the first op without a CUDA kernel.
  static Result<std::unique_ptr<CudaExecutor>> create(CudaRuntime& runtime, DeviceConstants& constants,
                                                      const Graph& optimized, const std::vector<Shape>& input_shapes,
                                                      Precision precision, const ChannelsLastPlan& layout = {});

  // inputs in Graph::inputs order with the shapes given at creation; host memory in and out.
  Result<std::vector<Tensor>> run(const std::vector<TensorView>& inputs);
  // run() in two halves: issue() queues the input copies, the kernels and the output copies (the
  // caller holds the runtime's mutex); wait() waits for the outputs and needs no mutex, so other
  // sessions can queue their work on the device meanwhile. The run's GPU time is counted once it
  // completed (CudaRuntime::count_run_when_done).
  struct IssuedRun {
    std::vector<Tensor> outputs;  // filled in by wait()
    std::vector<std::pair<std::size_t, std::unique_ptr<DeviceWork::PendingDownload>>> copies;  // by output
    Status wait();
  };
  Result<IssuedRun> issue(const std::vector<TensorView>& inputs);
  // The same with inputs in device memory; the outputs stay in the runtime's activation buffer,
  // read by `consume` (InferenceSession::run_on_device). Inputs at the addresses of the previous
  // run_on_device are read in place by the run's kernels, a CUDA graph of their own baking them
  // in (as PyTorch's and ONNX Runtime's graphs read static input buffers; until that graph is
  // captured they are copied and the usual graph runs); others, those of a weight-ring run, and
  // any in the runtime's activation buffer (a previous run's outputs) are first copied into the
  // activations on the compute stream; either way the caller may overwrite them with work it
  // queues on the compute stream after this call. The run's GPU time is counted once it completed
  // (CudaRuntime::count_run_when_done): nothing waits here.
  Status run_on_device(std::span<const DeviceTensor> inputs, const DeviceOutputsFn& consume);
  // run()'s inputs, run once node by node (never as the CUDA graph) with a timed event before the
  // first node and after each; waits for the device and returns each node's ms between its two
  // marks (profile_cuda_nodes). The nodes are issued while the compute stream is held (for at
  // most half a second), so they run back to back. The outputs are not read back; the run is not
  // counted in the runtime's GPU-busy figure and leaves nothing that changes later runs.
  Result<std::vector<NodeTime>> profile(const std::vector<TensorView>& inputs);

  // Withdraws its next-model prefetch from the runtime. Caller holds the runtime's mutex.
  ~CudaExecutor();
  CudaExecutor(const CudaExecutor&) = delete;
  CudaExecutor& operator=(const CudaExecutor&) = delete;

 private:
  struct BoundNode {
    cuda::CudaKernel kernel = nullptr;
    const Node* node = nullptr;
    std::vector<DeviceConstants::Slot> slots;   // per input: its chunk (or -1) and offset
    std::vector<std::int64_t> input_offsets;    // per input: byte offset in the arena, or -1
    std::vector<int> graph_inputs;              // per input: its index in Graph::inputs, or -1
    std::vector<std::int64_t> output_offsets;
    std::vector<TensorView> inputs, outputs, host_inputs;  // device data filled in at run()
  };
  CudaExecutor(CudaRuntime& runtime, DeviceConstants& constants) : runtime_(runtime), constants_(constants) {}
  // A run begun: its activations' base address, its weight ring's (0: none) with how many chunks
  // stay resident beside it, and its GPU-time span (start mark recorded).
  struct Started {
    std::uint64_t base = 0;
    std::uint64_t ring = 0, ring_bytes = 0;
    std::size_t ring_resident = 0;
    std::unique_ptr<memory::ComputeSpan> span;
  };
  // kInvalidInput unless `count` inputs of the (dtype, shape) `input(i)` gives match the plan.
  Status check_inputs(std::size_t count, const std::function<std::pair<DType, Shape>(std::size_t)>& input) const;
  // Sets the eviction schedule, takes the activation buffer (and the weight ring when `may_ring`,
  // the first run is over and the weights do not fit beside the blocks of dearer models), starts
  // the span.
  Result<Started> start(bool may_ring);
  // Sizes the weight ring this model asks of its lane from the room the budget leaves beside the
  // activations and plans it with every chunk streamed. No ring (ring_bytes_ 0) when a node's
  // chunks cannot be placed.
  void plan_ring(std::uint64_t budget);
  // Plans a ring of `ring_bytes` for the chunks after the first `resident` (in first-use order).
  Status plan_ring_split(std::size_t resident, std::uint64_t ring_bytes);
  // The ring's head (its loads into bytes no node read yet that pass) to `ring`, on the ring's
  // stream: the loads placed at `early_from` or above after `early`, then the others after `late`;
  // each load's event for the ring graph's nodes, head_done_ after the last.
  Status load_ring_head(std::uint64_t ring, CUevent_st* early, std::uint64_t early_from, CUevent_st* late);
  // Where load `l` of ring_ lies in the ring: the plan's places mirrored, so the loads that fill it
  // first (the head) lie mostly at its top, the farthest from the activations below it.
  std::uint64_t ring_place(const memory::RingLoad& l) const;
  // An event recorded now on the compute stream (after the work issued so far).
  Result<CUevent_st*> record_head_start();
  // How many chunks stay resident when `resident_room` bytes are left for them.
  std::size_t ring_split(std::uint64_t resident_room) const;
  // Copies host inputs into the run's activations, staged on the compute stream.
  Status upload_inputs(const Started& run, const std::vector<TensorView>& inputs);
  // issue_kernels, then the runtime's next-model prefetch (CudaRuntime::ran).
  Status compute(const Started& run);
  // The graph's kernels on the compute stream: through the weight ring when the run has one, as
  // a CUDA graph when the weights stay resident, else node by node.
  Status issue_kernels(const Started& run);
  // The run the runtime expects next is this executor's (CudaRuntime::ran; the current run uses
  // the lane's first `used_bytes`): when its last run streamed through the weight ring, loads the
  // ring's head (CudaRuntime::note_ring_head); prefetches the chunks its run acquires first, up to
  // the prefetch depth (the resident ones beside the weight ring when its last run streamed
  // through it), evicting by its own schedule, so what goes first is what it needs last (the model
  // that just ran, if it comes again after this one).
  Status prefetch_head(std::uint64_t used_bytes);
  // Places every constant the graph reads (in run order), then binds each node.
  Status bind_all();
  Status bind(const Node& node, const std::map<int, DeviceConstants::Slot>& slots);
  // Enqueues one node's kernel with the activations at `base`, chunk c at chunk_ptrs_[c] and
  // graph input i at input_addresses_[i] when set.
  Status launch_node(const BoundNode& b, std::uint64_t base);
  // run_on_device's `inputs` for a run with its activations at `base`: left where they are
  // (input_addresses_) when they were there the run before and lie outside the lane's buffer,
  // else copied now (copy_inputs).
  Status place_device_inputs(std::uint64_t base, std::span<const DeviceTensor> inputs);
  // Copies the inputs read in place into the activations at `base` (compute stream); from then on
  // the run reads them there.
  Status copy_inputs(std::uint64_t base);
  bool reads_in_place() const;
  // Node by node, each holding its chunks (acquired, or prefetched in unified mode) and
  // prefetching the next ones; `after_node` (optional, profile() only) is called after each
  // node's kernels were issued, while it still holds them.
  Status run_nodes(std::uint64_t base, const std::function<void()>& after_node = {});
  Status enter_unified(std::size_t node);
  bool use_graph() const;
  // A captured CUDA graph, the addresses it bakes in, and what its captures served.
  struct CapturedGraph {
    std::unique_ptr<CUgraphExec_st, GraphExecDeleter> exec;
    std::vector<std::uint64_t> signature;
    std::vector<std::uint64_t> missed;  // the addresses of the last run it did not serve
    int launches = 0;  // of the current capture
    int wasted = 0;    // captures in a row that served fewer than kMinGraphLaunches launches (the ring's rule)
    // Whether a launch baking in `addresses` needs a new capture.
    bool stale(const std::vector<std::uint64_t>& addresses) const { return !exec || addresses != signature; }
    // Whether a run meeting `addresses` launches it: they are baked in, or met by the last run it
    // did not serve (a capture then pays for itself); else they are remembered as that run's.
    bool serves(const std::vector<std::uint64_t>& addresses);
    // Before a recapture: counts the capture it replaces; true once more than kMaxWastedCaptures
    // wasted ones came in a row.
    bool wasting();
  };
  // Launches `g` on the compute stream, capturing it first with `capture` when `signature`
  // differs from the one it baked in (kUnsupported when that capture fails).
  Status launch(CapturedGraph& g, std::vector<std::uint64_t> signature,
                const std::function<Result<CUgraphExec_st*>()>& capture);
  // Acquires chunks_[0, count) (unified: takes their managed addresses) into chunk_ptrs_; `held`:
  // how many are acquired, also after a failure (the caller releases them). `spare_dearer`: never
  // by evicting a dearer model's chunks (ResidencyManager::acquire).
  Status acquire_chunks(std::size_t count, std::size_t& held, bool spare_dearer = false);
  void release_chunks(std::size_t count);
  // Acquires every chunk and launches the graph, capturing it first when its addresses changed to
  // those the previous run met; false (no kernel issued) when they are new: the caller runs the
  // nodes one by one. Inputs read in place take in_place_graph_ by the same rule, or are copied
  // (copy_inputs) for resident_graph_.
  Result<bool> run_graph(std::uint64_t base);
  Result<CUgraphExec_st*> capture(std::uint64_t base);
  // Acquires the resident chunks (fewer when the arena cannot place them all: the ring takes the
  // rest), launches the weight-ring graph, capturing it when an address it bakes in changed, and
  // counts the pass's copies in the residency statistics.
  Status run_ring(const Started& run);
  Result<CUgraphExec_st*> capture_ring(std::uint64_t base, std::uint64_t ring);

  CudaRuntime& runtime_;
  DeviceConstants& constants_;
  Graph graph_;
  MemoryPlan plan_;
  std::vector<BoundNode> nodes_;
  std::vector<std::vector<int>> node_chunks_;  // per node: the distinct chunks it reads
  std::vector<int> chunks_;                    // the distinct chunks this graph reads
  std::vector<memory::DevicePtr> chunk_ptrs_;  // by chunk id, valid while held
  // By graph input: the device address its readers take it from this run, 0 for the activations.
  std::vector<std::uint64_t> input_addresses_;
  std::vector<const void*> last_device_inputs_;  // run_on_device's previous inputs
  // A graph input is also an output (read from the activations), or in-place graphs kept being
  // captured for few launches: inputs are always copied.
  bool in_place_disabled_ = false;
  memory::ChunkWalk walk_;                     // over block ids (explicit) or chunk ids (unified)
  // Chunk size and prefetch depth for the room the budget leaves beside this plan's activations.
  memory::ChunkGeometry geometry_;
  std::uint64_t weight_bytes_ = 0;
  int plain_runs_ = 0;
  std::size_t workspace_need_ = 0;  // the most workspace a plain run's kernels used (restored before a capture)
  bool graph_disabled_ = false;               // a capture failed
  CapturedGraph resident_graph_;
  CapturedGraph in_place_graph_;               // resident_graph_ reading the inputs where the caller has them
  std::vector<std::size_t> chunk_order_;       // by chunk id: its index in chunks_ (first-use order)
  std::vector<std::uint64_t> prefix_bytes_;    // [i]: the bytes of chunks_[0, i)
  std::uint64_t ring_bytes_ = 0;                // the ring asked of the lane beyond the activations; 0: no ring
  bool issue_cheap_ = false;                    // its nodes cost the host less to issue than its weights to copy
  memory::RingPlan ring_;                       // for the chunks after the first ring_resident_
  std::uint64_t ring_planned_bytes_ = 0;        // the ring size ring_ was planned for
  std::uint64_t ring_plan_id_ = 0;              // counts plans
  std::uint64_t ring_head_bytes_ = 0;           // ring_'s head loads' bytes
  std::vector<memory::CudaEvent> head_copied_;  // by load of ring_: a head load's copy (null for the others)
  memory::CudaEvent head_done_, head_start_;    // the head's last copy; record_head_start's
  std::uint64_t head_plan_id_ = 0, head_ring_ = 0;  // the plan and ring address of the head loaded last
  std::size_t ring_resident_ = 0;
  std::size_t ring_resident_cap_ = SIZE_MAX;   // a longer prefix did not fit the arena, or kept moving
  bool ring_disabled_ = false;                  // its capture failed
  bool ringed_ = false;                         // the last run streamed through the weight ring
  memory::CudaStream ring_stream_;              // the ring's copies (made at its first capture)
  CapturedGraph ring_graph_;
};

}  // namespace fswap
