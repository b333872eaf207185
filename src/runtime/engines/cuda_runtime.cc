#include "runtime/engines/cuda_runtime.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <utility>

#include "backends/cuda/conv_algo_cache.h"
#include "backends/cuda/libraries.h"
#include "core/log.h"
#include "core/parallel.h"
#include "memory/stats.h"
#include "memory/weight_ring.h"

namespace fswap {
namespace {

// `rows` rows of `row_bytes` from src to dst, each advancing by its stride. Spread over the
// worker threads in chunks of about kCopyChunk bytes: a whole 4K frame is 25 MB, which one
// core copies at a fraction of the memory's bandwidth.
constexpr std::uint64_t kCopyChunk = 1 << 20;
void copy_rows(std::uint8_t* dst, std::uint64_t dst_stride, const std::uint8_t* src, std::uint64_t src_stride,
               std::uint64_t row_bytes, std::uint64_t rows) {
  if (dst_stride == row_bytes && src_stride == row_bytes) {  // one span
    const std::uint64_t bytes = row_bytes * rows;
    parallel_for(static_cast<int>((bytes + kCopyChunk - 1) / kCopyChunk), [&](int c0, int c1) {
      const std::uint64_t b0 = c0 * kCopyChunk, b1 = std::min(bytes, c1 * kCopyChunk);
      std::memcpy(dst + b0, src + b0, b1 - b0);
    });
    return;
  }
  const int rows_per_chunk =
      static_cast<int>(std::max<std::uint64_t>(1, kCopyChunk / std::max<std::uint64_t>(1, row_bytes)));
  parallel_for(static_cast<int>(rows), [&](int r0, int r1) {
    for (int r = r0; r < r1; ++r) std::memcpy(dst + r * dst_stride, src + r * src_stride, row_bytes);
  }, rows_per_chunk);
}

// Where cuDNN's algorithm choices are kept between runs: $XDG_CACHE_HOME/fswap, ~/.cache/fswap.
std::filesystem::path cache_dir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0')
    return std::filesystem::path(xdg) / "fswap";
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0')
    return std::filesystem::path(home) / ".cache" / "fswap";
  return std::filesystem::temp_directory_path() / "fswap-cache";
}

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
std::map<int, std::weak_ptr<CudaRuntime>>& registry() {
  static std::map<int, std::weak_ptr<CudaRuntime>> r;
  return r;
}

}  // namespace

Result<std::shared_ptr<CudaRuntime>> CudaRuntime::acquire(const CudaRuntimeOptions& options) {
  std::lock_guard lock(registry_mutex());
  if (auto existing = registry()[options.device].lock()) {
    if (!options.vram_budget.empty() && options.vram_budget != existing->budget_.source)
      return invalid_input("--vram-budget " + options.vram_budget + ": cuda:" + std::to_string(options.device) +
                           " already runs under a budget of " + existing->budget_.source +
                           "; every model on a device shares one budget");
    return existing;
  }
  std::shared_ptr<CudaRuntime> rt(new CudaRuntime());
  FSWAP_RETURN_IF_ERROR(rt->init(options));
  registry()[options.device] = rt;
  return rt;
}

Status CudaRuntime::open_lane(int lane) {
  if (lane < 0 || lane >= kLanes)
    return invalid_input("compute lane " + std::to_string(lane) + " (a CUDA device has lanes 0 to " +
                         std::to_string(kLanes - 1) + ")");
  if (open_[static_cast<std::size_t>(lane)]) return Status::ok();
  std::lock_guard lock(mutex_);
  if (open_[static_cast<std::size_t>(lane)]) return Status::ok();
  device_->make_current();
  const int entered = device_->compute_lane();
  Status s = make_lane(lane);
  FSWAP_RETURN_IF_ERROR(device_->set_compute_lane(entered));
  return s;
}

std::unique_lock<std::mutex> CudaRuntime::enter(int lane) {
  std::unique_lock lock(mutex_);
  FSWAP_CHECK(lane >= 0 && lane < kLanes && open_[static_cast<std::size_t>(lane)],
              "compute lane " + std::to_string(lane) + " entered before open_lane()");
  device_->make_current();
  (void)device_->set_compute_lane(lane);  // in range: checked above, the device has kLanes
  return lock;
}

Status CudaRuntime::make_lane(int lane) {
  FSWAP_RETURN_IF_ERROR(device_->set_compute_lane(lane));
  Lane& l = lanes_[static_cast<std::size_t>(lane)];
  FSWAP_ASSIGN_OR_RETURN(cuda::CudaLibraries libraries, cuda::CudaLibraries::create(device_->compute_stream()));
  l.libraries = std::make_unique<cuda::CudaLibraries>(std::move(libraries));
  l.context.stream = device_->compute_stream();
  l.context.cudnn = l.libraries->cudnn();
  l.context.cublaslt = l.libraries->cublaslt();
  l.context.conv_algos = conv_algos_.get();
  l.conv_plans = std::make_unique<cuda::ConvGraphPlans>();
  l.context.conv_plans = l.conv_plans.get();
  l.context.workspace = [this](std::size_t bytes) { return workspace(bytes); };
  cudaEvent_t run_start = nullptr;
  FSWAP_CUDA_CHECK(cudaEventCreateWithFlags(&run_start, cudaEventDisableTiming));
  l.run_start.reset(run_start);
  open_[static_cast<std::size_t>(lane)] = true;
  return Status::ok();
}

std::vector<std::shared_ptr<CudaRuntime>> CudaRuntime::live() {
  std::lock_guard lock(registry_mutex());
  std::vector<std::shared_ptr<CudaRuntime>> out;
  for (auto& [ordinal, weak] : registry())
    if (auto rt = weak.lock()) out.push_back(std::move(rt));
  return out;
}

Status CudaRuntime::init(const CudaRuntimeOptions& options) {
  FSWAP_ASSIGN_OR_RETURN(auto probe, memory::CudaDevice::create({.device = options.device}));
  FSWAP_ASSIGN_OR_RETURN(budget_, memory::parse_budget(options.vram_budget,
                                                       {.total_bytes = probe->total_bytes(),
                                                        .free_bytes = probe->free_bytes()}));
  if (!budget_.warning.empty()) log_warn(budget_.warning);
  probe.reset();
  FSWAP_ASSIGN_OR_RETURN(device_, memory::CudaDevice::create({.device = options.device, .compute_lanes = kLanes}));
  // Weight chunks share small segments, so an evicted chunk's bytes are reused for the next one
  // without unmapping a segment and mapping another (0.1–1 ms of the host each, and the arena
  // waits for the work using a segment before it returns it). Segment sizes scale with the budget
  // (memory/weight_chunks.h); each executor sizes its chunks by the room its activation plan leaves.
  arena_ = std::make_unique<memory::DeviceArena>(*device_, memory::chunk_geometry(budget_.bytes).arena_options(budget_.bytes));
  residency_ = std::make_unique<memory::ResidencyManager>(*arena_);
  conv_algos_ = std::make_unique<cuda::ConvAlgoCache>(cache_dir().string());
  lanes_.resize(kLanes);  // lane 0 now, the others when a session asks (open_lane)
  return make_lane(0);
}

CudaRuntime::~CudaRuntime() {
  if (device_ != nullptr) {
    device_->make_current();
    if (Status s = device_->synchronize(); !s.is_ok()) log_error(s.to_string());
  }
  for (Lane& l : lanes_)
    for (KeptBuffer* b : {&l.workspace, &l.buffer}) (void)b->reset();
  residency_.reset();
  arena_.reset();
}

Result<void*> CudaRuntime::workspace(std::size_t bytes) {
  // Workspace buys faster algorithms, weights and activations come first: at most an eighth of
  // the budget (the convolution search then falls back to algorithms that need less).
  if (bytes > budget_.bytes / 8)
    return out_of_memory("kernel workspace of " + memory::format_bytes(bytes) + " exceeds an eighth of the budget");
  Lane& lane = current();
  if (bytes > lane.workspace.bytes || lane.workspace.bytes == 0) {
    // While a CUDA graph is being captured nothing may be freed or allocated (the capture would be
    // invalidated): the kernel falls back to what the workspace holds, as it did in the plain run.
    cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    FSWAP_CUDA_CHECK(cudaStreamIsCapturing(device_->compute_stream(), &capturing));
    if (capturing != cudaStreamCaptureStatusNone)
      return out_of_memory("kernel workspace of " + memory::format_bytes(bytes) +
                           " asked for while capturing a CUDA graph; " + memory::format_bytes(lane.workspace.bytes) +
                           " are held");
  }
  FSWAP_ASSIGN_OR_RETURN(memory::DevicePtr p, kept_buffer(lane.workspace, bytes));
  lane.workspace_used = std::max(lane.workspace_used, bytes);
  return reinterpret_cast<void*>(static_cast<std::uintptr_t>(p.address));
}

std::size_t CudaRuntime::take_workspace_used() { return std::exchange(current().workspace_used, 0); }

Status CudaRuntime::restore_workspace(std::size_t bytes) {
  if (bytes == 0) return Status::ok();
  return workspace(bytes).status();
}

Result<memory::DevicePtr> CudaRuntime::kept_buffer(KeptBuffer& buffer, std::uint64_t bytes) {
  if (bytes <= buffer.bytes && buffer.bytes > 0) return buffer.allocation.ptr();
  FSWAP_RETURN_IF_ERROR(buffer.reset());
  FSWAP_ASSIGN_OR_RETURN(memory::DeviceAllocation a, residency_->allocate_scratch(bytes));
  for (memory::DeviceEvent e : a.ready_after) device_->compute_wait(e);
  buffer.allocation = memory::ScopedAllocation(*arena_, std::move(a));
  buffer.bytes = bytes;
  return buffer.allocation.ptr();
}

CudaRuntime::LaneParts CudaRuntime::lane_parts(std::uint64_t activation_bytes, std::uint64_t ring_bytes) {
  const Lane& lane = current();
  LaneParts parts;
  parts.activations = std::max(activation_bytes, lane.activation_part);
  const std::uint64_t ring_end = memory::ring_aligned(activation_bytes) + ring_bytes;
  const std::uint64_t plan_end = memory::ring_aligned(parts.activations);
  parts.ring = std::max(lane.ring_part, ring_end > plan_end ? ring_end - plan_end : 0);
  return parts;
}

std::uint64_t CudaRuntime::lane_growth(std::uint64_t activation_bytes, std::uint64_t ring_bytes) {
  const std::uint64_t bytes = lane_parts(activation_bytes, ring_bytes).bytes();
  return bytes > current().buffer.bytes ? bytes - current().buffer.bytes : 0;
}

Result<memory::DevicePtr> CudaRuntime::lane_buffer(std::uint64_t activation_bytes, std::uint64_t ring_bytes) {
  Lane& lane = current();
  const LaneParts parts = lane_parts(activation_bytes, ring_bytes);
  if (parts.bytes() > lane.buffer.bytes) settle_ring_head(lane);  // its copies write the bytes about to be freed
  FSWAP_ASSIGN_OR_RETURN(memory::DevicePtr p, kept_buffer(lane.buffer, parts.bytes()));
  lane.activation_part = parts.activations;
  lane.ring_part = parts.ring;
  return p;
}

Result<memory::DevicePtr> CudaRuntime::activations(std::uint64_t bytes) { return lane_buffer(bytes, 0); }

Result<CudaRuntime::Ring> CudaRuntime::weight_ring(std::uint64_t activation_bytes, std::uint64_t ring_bytes) {
  FSWAP_ASSIGN_OR_RETURN(memory::DevicePtr base, lane_buffer(activation_bytes, ring_bytes));
  const std::uint64_t offset = memory::ring_aligned(activation_bytes);
  return Ring{base.address + offset, offset, current().buffer.bytes - offset};
}

CudaRuntime::Ring CudaRuntime::current_weight_ring(std::uint64_t activation_bytes) {
  const Lane& lane = current();
  const std::uint64_t offset = memory::ring_aligned(activation_bytes);
  if (lane.buffer.bytes <= offset) return {};
  return {lane.buffer.address() + offset, offset, lane.buffer.bytes - offset};
}

bool CudaRuntime::in_lane_buffer(const void* address, std::uint64_t bytes) {
  const Lane& lane = current();
  const auto begin = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(address));
  return lane.buffer.bytes > 0 && begin < lane.buffer.address() + lane.buffer.bytes &&
         lane.buffer.address() < begin + bytes;
}

void CudaRuntime::settle_ring_head(Lane& lane) {
  if (lane.head_owner == nullptr) return;
  (void)cudaStreamWaitEvent(device_->compute_stream(), lane.head_done, 0);
  lane.head_owner = nullptr;
  lane.head_done = nullptr;
}

void CudaRuntime::begin_run(const void* executor) {
  Lane& lane = current();
  if (lane.head_owner != executor) settle_ring_head(lane);
  (void)cudaEventRecord(lane.run_start.get(), device_->compute_stream());
}

CUevent_st* CudaRuntime::run_start_event() { return current().run_start.get(); }

void CudaRuntime::note_ring_head(const void* executor, CUevent_st* done) {
  Lane& lane = current();
  lane.head_owner = executor;
  lane.head_done = done;
}

bool CudaRuntime::take_ring_head(const void* executor) {
  Lane& lane = current();
  if (lane.head_owner != executor) return false;
  lane.head_owner = nullptr;
  lane.head_done = nullptr;
  return true;
}

Status CudaRuntime::release_scratch() {
  // Each lane's buffers are freed with that lane current, so their reuse waits for its work.
  const int entered = device_->compute_lane();
  Status status;
  for (int i = 0; i < kLanes; ++i) {
    FSWAP_RETURN_IF_ERROR(device_->set_compute_lane(i));
    Lane& lane = lanes_[static_cast<std::size_t>(i)];
    settle_ring_head(lane);
    lane.activation_part = lane.ring_part = 0;
    for (KeptBuffer* b : {&lane.workspace, &lane.buffer})
      if (Status s = b->reset(); status.is_ok()) status = s;
  }
  FSWAP_RETURN_IF_ERROR(device_->set_compute_lane(entered));
  // The segments left empty go back to the device now, not when a later request finds no room:
  // meanwhile a smaller request would be carved out of one (a 4K face's 13 MiB region out of the
  // 80 MiB an enhancer's activations left, which then found no whole range again).
  if (status.is_ok()) status = arena_->release_cached();
  return status;
}

namespace {

// An arena allocation as a DeviceBuffer's owner.
class ArenaBufferOwner final : public DeviceBuffer::Owner {
 public:
  explicit ArenaBufferOwner(memory::ScopedAllocation allocation) : allocation_(std::move(allocation)) {}

 private:
  memory::ScopedAllocation allocation_;
};

void* host_pointer(memory::DevicePtr p) { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(p.address)); }

}  // namespace

std::string CudaRuntime::describe_lane_buffers() const {
  std::string out;
  for (std::size_t i = 0; i < lanes_.size(); ++i) {
    const Lane& lane = lanes_[i];
    if (lane.buffer.bytes + lane.workspace.bytes == 0) continue;
    out += (out.empty() ? "lane " : "; lane ") + std::to_string(i) + ": activations " +
           memory::format_bytes(lane.activation_part) + ", weight ring " + memory::format_bytes(lane.ring_part) +
           ", workspace " + memory::format_bytes(lane.workspace.bytes);
  }
  return out.empty() ? "no lane buffers held" : out;
}

Result<DeviceBuffer> CudaRuntime::allocate(std::uint64_t bytes) {
  Result<memory::DeviceAllocation> allocated = residency_->allocate_scratch(std::max<std::uint64_t>(bytes, 256));
  if (!allocated) return Status(allocated.status().code(), allocated.status().message() + " (" + describe_lane_buffers() + ")");
  memory::DeviceAllocation a = std::move(*allocated);
  for (memory::DeviceEvent e : a.ready_after) device_->compute_wait(e);
  void* data = host_pointer(a.ptr);
  return DeviceBuffer(data, bytes, std::make_unique<ArenaBufferOwner>(memory::ScopedAllocation(*arena_, std::move(a))));
}

// Pinned host buffers for the staged copies (upload, download_later), kept for reuse (pinning
// costs ~0.3 ms per MiB), taken and given back from any thread. A buffer an upload still reads
// is given back with the upload's event and reused once that completed.
class PinnedStaging {
 public:
  ~PinnedStaging() {
    for (auto& [p, done] : in_flight_) (void)cudaEventSynchronize(done), (void)cudaEventDestroy(done), (void)cudaFreeHost(p);
    for (auto& [bytes, p] : free_) (void)cudaFreeHost(p);
  }
  Result<void*> take(std::uint64_t bytes) {
    {
      std::lock_guard lock(mutex_);
      std::erase_if(in_flight_, [&](const std::pair<void*, cudaEvent_t>& f) {
        if (cudaEventQuery(f.second) != cudaSuccess) return false;
        (void)cudaEventDestroy(f.second);
        free_.emplace(sizes_.at(f.first), f.first);
        free_bytes_ += sizes_.at(f.first);
        sizes_.erase(f.first);
        return true;
      });
      (void)cudaGetLastError();  // cudaEventQuery's cudaErrorNotReady
      if (auto it = free_.lower_bound(bytes); it != free_.end() && it->first <= 2 * bytes) {
        void* p = it->second;
        sizes_[p] = it->first;
        free_bytes_ -= it->first;
        free_.erase(it);
        return p;
      }
    }
    void* p = nullptr;
    FSWAP_CUDA_CHECK(cudaMallocHost(&p, bytes));
    std::lock_guard lock(mutex_);
    sizes_[p] = bytes;
    return p;
  }
  void give_back(void* p) {
    std::lock_guard lock(mutex_);
    free_.emplace(sizes_.at(p), p);
    free_bytes_ += sizes_.at(p);
    sizes_.erase(p);
    // Kept for reuse: cudaFreeHost waits for the whole device (and cudaMallocHost is slow), so
    // unpinning in the steady state would stall every thread issuing work. The buffers in use at
    // once are few (one per copy in flight), so the cap is only a guard.
    while (free_bytes_ > kMaxFreeBytes && !free_.empty()) {
      auto largest = std::prev(free_.end());
      free_bytes_ -= largest->first;
      (void)cudaFreeHost(largest->second);
      free_.erase(largest);
    }
  }
  // Given back once `done` completed (the event is the staging's from now on).
  void give_back_after(void* p, cudaEvent_t done) {
    std::lock_guard lock(mutex_);
    in_flight_.emplace_back(p, done);
  }

 private:
  static constexpr std::uint64_t kMaxFreeBytes = 1ull << 30;
  std::mutex mutex_;
  std::multimap<std::uint64_t, void*> free_;        // by size
  std::uint64_t free_bytes_ = 0;
  std::map<void*, std::uint64_t> sizes_;            // taken or in flight
  std::vector<std::pair<void*, cudaEvent_t>> in_flight_;
};

Status CudaRuntime::upload(void* device, const void* host, HostRows rows) {
  const std::uint64_t bytes = rows.bytes();
  if (bytes == 0) return Status::ok();
  // Staged through pinned memory on the compute stream: ordered after the work issued so far,
  // and the host does not wait for it (a pageable copy would wait for the stream).
  if (!staging_) staging_ = std::make_shared<PinnedStaging>();
  FSWAP_ASSIGN_OR_RETURN(void* buffer, staging_->take(bytes));
  copy_rows(static_cast<std::uint8_t*>(buffer), rows.row_bytes, static_cast<const std::uint8_t*>(host), rows.stride,
            rows.row_bytes, rows.rows);
  cudaEvent_t done = nullptr;
  Status s = memory::cuda_status(cudaMemcpyAsync(device, buffer, bytes, cudaMemcpyHostToDevice, device_->compute_stream()),
                                 "cudaMemcpyAsync", __FILE__, __LINE__);
  if (s.is_ok())
    s = memory::cuda_status(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "cudaEventCreateWithFlags",
                            __FILE__, __LINE__);
  if (s.is_ok()) s = memory::cuda_status(cudaEventRecord(done, device_->compute_stream()), "cudaEventRecord", __FILE__, __LINE__);
  if (!s.is_ok()) {
    // The copy may be queued: wait for the stream before the buffer can be reused.
    (void)cudaStreamSynchronize(device_->compute_stream());
    if (done != nullptr) (void)cudaEventDestroy(done);
    staging_->give_back(buffer);
    return s;
  }
  staging_->give_back_after(buffer, done);
  return Status::ok();
}

namespace {

// A copy into a staging buffer on the compute stream, marked by an event of its own (waited on
// without the runtime's hold: the device's pooled events are one thread's).
class StagedDownload final : public DeviceWork::PendingDownload {
 public:
  StagedDownload(std::shared_ptr<PinnedStaging> staging, void* buffer, std::uint64_t bytes, cudaEvent_t done)
      : staging_(std::move(staging)), buffer_(buffer), bytes_(bytes), done_(done) {}
  ~StagedDownload() override {
    // Never given back while the copy may still write it.
    if (done_ != nullptr) (void)cudaEventSynchronize(done_), (void)cudaEventDestroy(done_);
    staging_->give_back(buffer_);
  }
  Status wait(void* host, HostRows rows) override {
    if (rows.bytes() != bytes_)
      return invalid_input("a download of " + std::to_string(bytes_) + " bytes waited into " +
                           std::to_string(rows.bytes()) + " bytes of host rows");
    FSWAP_CUDA_CHECK(cudaEventSynchronize(done_));
    copy_rows(static_cast<std::uint8_t*>(host), rows.stride, static_cast<const std::uint8_t*>(buffer_), rows.row_bytes,
              rows.row_bytes, rows.rows);
    return Status::ok();
  }

 private:
  std::shared_ptr<PinnedStaging> staging_;
  void* buffer_;
  std::uint64_t bytes_;
  cudaEvent_t done_;
};

}  // namespace

Result<std::unique_ptr<DeviceWork::PendingDownload>> CudaRuntime::download_later(const void* device, std::uint64_t bytes) {
  if (!staging_) staging_ = std::make_shared<PinnedStaging>();
  FSWAP_ASSIGN_OR_RETURN(void* buffer, staging_->take(std::max<std::uint64_t>(bytes, 1)));
  // A blocking event: its waiter sleeps instead of spinning on a core. The waits are the model
  // runs' and the frames' (milliseconds, beside an encoder that wants every core), and an event
  // made without the flag busy-waits whatever the device's scheduling flags say.
  cudaEvent_t done = nullptr;
  Status s = memory::cuda_status(cudaEventCreateWithFlags(&done, cudaEventDisableTiming | cudaEventBlockingSync),
                                 "cudaEventCreateWithFlags", __FILE__, __LINE__);
  if (s.is_ok() && bytes > 0)
    s = memory::cuda_status(cudaMemcpyAsync(buffer, device, bytes, cudaMemcpyDeviceToHost, device_->compute_stream()),
                            "cudaMemcpyAsync", __FILE__, __LINE__);
  if (s.is_ok())
    s = memory::cuda_status(cudaEventRecord(done, device_->compute_stream()), "cudaEventRecord", __FILE__, __LINE__);
  if (!s.is_ok()) {
    if (done != nullptr) (void)cudaEventDestroy(done);
    staging_->give_back(buffer);
    return s;
  }
  return std::unique_ptr<PendingDownload>(std::make_unique<StagedDownload>(staging_, buffer, bytes, done));
}

void CudaRuntime::enroll(const void* executor, std::function<Status(std::uint64_t)> prefetch_head) {
  head_prefetches_[executor] = std::move(prefetch_head);
}

void CudaRuntime::withdraw(const void* executor) {
  head_prefetches_.erase(executor);
  run_order_.forget(executor);
  // Its head's copies are waited for here: their event goes with the executor.
  for (Lane& lane : lanes_) {
    if (lane.head_owner != executor) continue;
    (void)cudaEventSynchronize(lane.head_done);
    lane.head_owner = nullptr;
    lane.head_done = nullptr;
  }
}

Status CudaRuntime::ran(const void* executor, std::uint64_t used_bytes) {
  const void* next = run_order_.ran(device_->compute_lane(), executor);
  const auto prefetch = next != nullptr ? head_prefetches_.find(next) : head_prefetches_.end();
  return prefetch != head_prefetches_.end() ? prefetch->second(used_bytes) : Status::ok();
}

void CudaRuntime::count_run_when_done(std::unique_ptr<memory::ComputeSpan> span, memory::DeviceEvent end) {
  (void)gpu_busy();  // settles the earlier ones that completed, so the list stays short
  pending_spans_.push_back({std::move(span), end});
}

CudaRuntime::GpuBusy CudaRuntime::gpu_busy() {
  // Every session's runs on this device are issued under mutex(); on one lane their spans follow
  // each other in stream order, so the plain sum is the GPU's busy time when one lane is used
  // (runs on two lanes may overlap and count twice).
  std::erase_if(pending_spans_, [&](PendingSpan& p) {
    if (!device_->is_done(p.end)) return false;
    if (Result<double> busy = p.span->seconds()) {
      gpu_busy_.seconds += *busy;
      ++gpu_busy_.runs;
    } else {
      log_warn("run not timed: " + busy.status().to_string());
    }
    return true;
  });
  return gpu_busy_;
}

std::string CudaRuntime::memory_summary() {
  (void)gpu_busy();  // settles the runs that have completed
  char busy[256];
  const IssueTimes& t = issue_times_;
  std::snprintf(busy, sizeof busy,
                ", gpu busy %.2f s in %llu runs; host issuing %.2f s (residency %.2f s, %llu graph captures %.2f s), "
                "%llu graph and %llu node-by-node runs",
                gpu_busy_.seconds, static_cast<unsigned long long>(gpu_busy_.runs), t.total_s, t.residency_s,
                static_cast<unsigned long long>(t.captures), t.capture_s, static_cast<unsigned long long>(t.graph_runs),
                static_cast<unsigned long long>(t.node_runs));
  return device_->name() + ", budget " + budget_.source + " (" + memory::format_bytes(budget_.bytes) + ")" + busy +
         "\n" + memory::format_memory_summary(residency_->stats(), arena_->stats());
}

std::vector<std::string> cuda_device_names() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    return {};
  }
  std::vector<std::string> names;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
      (void)cudaGetLastError();
      continue;
    }
    names.push_back("cuda:" + std::to_string(i) + " " + prop.name);
  }
  return names;
}

}  // namespace fswap
