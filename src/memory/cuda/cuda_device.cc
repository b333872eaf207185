#include "memory/cuda/cuda_device.h"

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime_api.h>

#include <chrono>
#include <cstring>

#include "core/log.h"
#include "memory/budget.h"

namespace fswap::memory {

namespace {

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Errors after which the context is unusable: cudaGetLastError would not clear them anyway.
bool is_sticky(cudaError_t e) {
  return e == cudaErrorIllegalAddress || e == cudaErrorLaunchFailure || e == cudaErrorHardwareStackError ||
         e == cudaErrorIllegalInstruction || e == cudaErrorMisalignedAddress || e == cudaErrorInvalidPc ||
         e == cudaErrorAssert;
}

const char* short_path(const char* file) {
  const char* s = std::strstr(file, "src/");
  return s != nullptr ? s : file;
}

void* as_ptr(DevicePtr p) { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(p.address)); }

// For calls whose failure we can only log (destructors, the void members of the interface).
void log_if_error(cudaError_t e, const char* call) {
  if (e != cudaSuccess) log_error(cuda_status(static_cast<int>(e), call, __FILE__, __LINE__).to_string());
}

}  // namespace

// The driver's virtual memory calls, found through the runtime (cudaGetDriverEntryPointByVersion)
// rather than linked: fswap links no libcuda, so a machine without a driver still gets create()'s
// clear kUnsupported instead of a loader error.
struct CudaDevice::DriverMemory {
  PFN_cuMemGetAllocationGranularity_v10020 granularity = nullptr;
  PFN_cuMemAddressReserve_v10020 reserve = nullptr;
  PFN_cuMemAddressFree_v10020 unreserve = nullptr;
  PFN_cuMemCreate_v10020 create = nullptr;
  PFN_cuMemRelease_v10020 release = nullptr;
  PFN_cuMemMap_v10020 map = nullptr;
  PFN_cuMemUnmap_v10020 unmap = nullptr;
  PFN_cuMemSetAccess_v10020 set_access = nullptr;
  PFN_cuGetErrorName_v6000 error_name = nullptr;
  CUmemAllocationProp prop{};  // device memory of this device, no export handle

  static Result<DriverMemory> load(int device) {
    DriverMemory d;
    const auto find = [](const char* symbol, auto& fn) -> Status {
      void* p = nullptr;
      cudaDriverEntryPointQueryResult found{};
      FSWAP_CUDA_CHECK(cudaGetDriverEntryPointByVersion(symbol, &p, 12000, cudaEnableDefault, &found));
      if (found != cudaDriverEntryPointSuccess || p == nullptr)
        return unsupported(std::string("the CUDA driver has no ") + symbol + " (virtual memory management)");
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(p);
      return Status::ok();
    };
    FSWAP_RETURN_IF_ERROR(find("cuMemGetAllocationGranularity", d.granularity));
    FSWAP_RETURN_IF_ERROR(find("cuMemAddressReserve", d.reserve));
    FSWAP_RETURN_IF_ERROR(find("cuMemAddressFree", d.unreserve));
    FSWAP_RETURN_IF_ERROR(find("cuMemCreate", d.create));
    FSWAP_RETURN_IF_ERROR(find("cuMemRelease", d.release));
    FSWAP_RETURN_IF_ERROR(find("cuMemMap", d.map));
    FSWAP_RETURN_IF_ERROR(find("cuMemUnmap", d.unmap));
    FSWAP_RETURN_IF_ERROR(find("cuMemSetAccess", d.set_access));
    FSWAP_RETURN_IF_ERROR(find("cuGetErrorName", d.error_name));
    d.prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    d.prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    d.prop.location.id = device;
    return d;
  }

  // "<call> failed at <file>:<line>: <CUDA_ERROR_...>", kOutOfMemory for CUDA_ERROR_OUT_OF_MEMORY.
  Status status(CUresult r, const char* call, int line) const {
    if (r == CUDA_SUCCESS) return Status::ok();
    const char* name = nullptr;
    if (error_name(r, &name) != CUDA_SUCCESS || name == nullptr) name = "unknown CUresult";
    std::string message = std::string(call) + " failed at " + short_path(__FILE__) + ":" + std::to_string(line) + ": " + name;
    if (r == CUDA_ERROR_OUT_OF_MEMORY)
      return out_of_memory(message + " (the device has too little free memory: lower the batch or the budget)");
    return internal_error(message);
  }

  // `size` bytes of new device memory (a multiple of the granularity) at new addresses: reserves
  // them, creates the memory, maps it there and grants the device read/write access, undoing what
  // it did on a failure. The handle is released once mapped: the memory lives until unmap_new().
  Result<CUdeviceptr> map_new(std::uint64_t size) const {
    CUdeviceptr address = 0;
    FSWAP_RETURN_IF_ERROR(status(reserve(&address, size, 0, 0, 0), "cuMemAddressReserve", __LINE__));
    CUmemGenericAllocationHandle handle = 0;
    Status s = status(create(&handle, size, &prop, 0), "cuMemCreate", __LINE__);
    if (s.is_ok()) {
      s = status(map(address, size, 0, handle, 0), "cuMemMap", __LINE__);
      (void)release(handle);
    }
    if (s.is_ok()) {
      CUmemAccessDesc access{};
      access.location = prop.location;
      access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
      s = status(set_access(address, size, &access, 1), "cuMemSetAccess", __LINE__);
      if (!s.is_ok()) (void)unmap(address, size);
    }
    if (!s.is_ok()) {
      (void)unreserve(address, size);
      return s;
    }
    return address;
  }
  // Gives back what map_new(size) returned.
  Status unmap_new(CUdeviceptr address, std::uint64_t size) const {
    FSWAP_RETURN_IF_ERROR(status(unmap(address, size), "cuMemUnmap", __LINE__));
    return status(unreserve(address, size), "cuMemAddressFree", __LINE__);
  }
};

Status cuda_status(int error, const char* call, const char* file, int line) {
  const auto e = static_cast<cudaError_t>(error);
  if (e == cudaSuccess) return Status::ok();
  if (!is_sticky(e)) (void)cudaGetLastError();  // the failure is reported here, not by the next call
  std::string message = std::string(call) + " failed at " + short_path(file) + ":" + std::to_string(line) + ": " +
                        cudaGetErrorName(e) + ": " + cudaGetErrorString(e);
  if (e == cudaErrorMemoryAllocation)
    return out_of_memory(message + " (the device has too little free memory: lower the batch or the budget)");
  return internal_error(message);
}

namespace cuda_detail {
void StreamDeleter::operator()(CUstream_st* s) const { log_if_error(cudaStreamDestroy(s), "cudaStreamDestroy"); }
void EventDeleter::operator()(CUevent_st* e) const { log_if_error(cudaEventDestroy(e), "cudaEventDestroy"); }
void PinnedDeleter::operator()(void* p) const { log_if_error(cudaFreeHost(p), "cudaFreeHost"); }
}  // namespace cuda_detail

// ---- CudaDevice -------------------------------------------------------------------------------

CudaDevice::CudaDevice(CudaDeviceOptions options) : options_(options), start_s_(steady_seconds()) {}

Result<std::unique_ptr<CudaDevice>> CudaDevice::create(CudaDeviceOptions options) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver || (e == cudaSuccess && count == 0)) {
    (void)cudaGetLastError();
    return unsupported(std::string("no usable CUDA device (") + cudaGetErrorName(e) +
                       "): run on a machine with an NVIDIA GPU and driver, or use the CPU backend");
  }
  FSWAP_CUDA_CHECK(e);
  if (options.device < 0 || options.device >= count)
    return invalid_input("CUDA device " + std::to_string(options.device) + " does not exist (" +
                         std::to_string(count) + " found)");
  std::unique_ptr<CudaDevice> dev(new CudaDevice(options));
  FSWAP_RETURN_IF_ERROR(dev->init());
  return dev;
}

void CudaDevice::make_current() const {
  if (cudaSetDevice(options_.device) != cudaSuccess) (void)cudaGetLastError();  // init() proved the device exists
}

Status CudaDevice::init() {
  FSWAP_CUDA_CHECK(cudaSetDevice(options_.device));
  cudaDeviceProp prop{};
  FSWAP_CUDA_CHECK(cudaGetDeviceProperties(&prop, options_.device));
  name_ = "cuda:" + std::to_string(options_.device) + " " + prop.name;
  std::size_t free_b = 0, total_b = 0;
  FSWAP_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  total_bytes_ = total_b;

  FSWAP_ASSIGN_OR_RETURN(DriverMemory driver, DriverMemory::load(options_.device));
  driver_ = std::make_unique<DriverMemory>(driver);
  std::size_t granularity = 0;
  FSWAP_RETURN_IF_ERROR(driver_->status(
      driver_->granularity(&granularity, &driver_->prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED),
      "cuMemGetAllocationGranularity", __LINE__));
  mapping_granularity_ = std::max<std::uint64_t>(granularity, 1);

  lanes_.resize(static_cast<std::size_t>(std::max(options_.compute_lanes, 1)));
  int least = 0, greatest = 0;
  FSWAP_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
  const std::vector<CudaStream*> streams = all_streams();  // the lanes first, in order
  for (std::size_t i = 0; i < streams.size(); ++i) {
    const bool later_lane = i > 0 && i < lanes_.size();
    cudaStream_t stream = nullptr;
    FSWAP_CUDA_CHECK(cudaStreamCreateWithPriority(&stream, cudaStreamNonBlocking, later_lane ? greatest : least));
    streams[i]->reset(stream);
  }
  return Status::ok();
}

CudaDevice::~CudaDevice() {
  for (CudaStream* s : all_streams())
    if (*s) log_if_error(cudaStreamSynchronize(s->get()), "cudaStreamSynchronize");
  if (!allocations_.empty()) {
    log_warn("CUDA device destroyed with " + std::to_string(allocations_.size()) + " allocations live; freeing them");
    while (!allocations_.empty()) {
      const Status s = free(DevicePtr{allocations_.begin()->first});
      if (!s.is_ok()) {
        log_error(s.to_string());
        allocations_.erase(allocations_.begin());
      }
    }
  }
  if (!managed_.empty()) {
    log_warn("CUDA device destroyed with " + std::to_string(managed_.size()) + " managed allocations live; freeing them");
    for (auto& [ptr, bytes] : managed_) log_if_error(cudaFree(const_cast<void*>(ptr)), "cudaFree");
  }
  pending_stalls_.clear();
  free_stall_pairs_.clear();
  live_events_.clear();
  free_events_.clear();
  timed_events_.clear();
  free_timed_events_.clear();
  lanes_.clear();
  h2d_.reset();
  d2h_.reset();
}

std::string CudaDevice::name() const { return name_; }

std::uint64_t CudaDevice::total_bytes() const { return total_bytes_; }

std::uint64_t CudaDevice::free_bytes() const {
  std::size_t free_b = 0, total_b = 0;
  log_if_error(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
  return free_b;
}

void CudaDevice::fail_allocation(int call) { fail_call_ = call; }
void CudaDevice::fail_allocations_from(int call) { fail_from_call_ = call; }

Result<DevicePtr> CudaDevice::allocate(std::uint64_t bytes) {
  ++allocation_calls_;
  if (bytes == 0) return invalid_input("CUDA device: allocation of 0 bytes");
  if (allocation_calls_ == fail_call_ || (fail_from_call_ > 0 && allocation_calls_ >= fail_from_call_))
    return out_of_memory("device allocation of " + format_bytes(bytes) + ": injected failure of allocation call " +
                         std::to_string(allocation_calls_));
  const double start = steady_seconds();
  const std::uint64_t size = (bytes + mapping_granularity_ - 1) / mapping_granularity_ * mapping_granularity_;
  FSWAP_ASSIGN_OR_RETURN(const CUdeviceptr address, driver_->map_new(size));
  mapping_s_ += steady_seconds() - start;
  allocations_[address] = size;
  held_ += size;
  return DevicePtr{address};
}

Status CudaDevice::free(DevicePtr ptr) {
  auto it = allocations_.find(ptr.address);
  if (it == allocations_.end())
    return internal_error("CUDA device: free of " + std::to_string(ptr.address) + ", which allocate() did not return");
  // No issued work uses the bytes (the contract): unmapping hands them back to the driver at once,
  // so what the card holds for fswap is always the live allocations, in whole mapping units.
  const double start = steady_seconds();
  const std::uint64_t size = it->second;
  FSWAP_RETURN_IF_ERROR(driver_->unmap_new(ptr.address, size));
  mapping_s_ += steady_seconds() - start;
  allocations_.erase(it);
  held_ -= size;
  return Status::ok();
}

Result<DeviceEvent> CudaDevice::copy_to_device(DevicePtr dst, const void* src, std::uint64_t bytes,
                                               HostMemoryKind /*src_kind*/, std::span<const DeviceEvent> after) {
  if (src == nullptr || dst.is_null()) return invalid_input("CUDA device: host→device copy with a null pointer");
  FSWAP_RETURN_IF_ERROR(wait_all(h2d_.get(), after));
  // From pageable memory the runtime stages through its own pinned buffer (and may block the host).
  FSWAP_CUDA_CHECK(cudaMemcpyAsync(as_ptr(dst), src, bytes, cudaMemcpyHostToDevice, h2d_.get()));
  return record_on(h2d_.get());
}

Result<DeviceEvent> CudaDevice::copy_to_host(void* dst, DevicePtr src, std::uint64_t bytes,
                                             HostMemoryKind /*dst_kind*/, std::span<const DeviceEvent> after) {
  if (dst == nullptr || src.is_null()) return invalid_input("CUDA device: device→host copy with a null pointer");
  FSWAP_RETURN_IF_ERROR(wait_all(d2h_.get(), after));
  FSWAP_CUDA_CHECK(cudaMemcpyAsync(dst, as_ptr(src), bytes, cudaMemcpyDeviceToHost, d2h_.get()));
  return record_on(d2h_.get());
}

Status CudaDevice::set_compute_lane(int lane) {
  if (lane < 0 || lane >= compute_lanes())
    return invalid_input(name_ + ": compute lane " + std::to_string(lane) + " of " + std::to_string(compute_lanes()));
  lane_ = lane;
  return Status::ok();
}

std::vector<CudaStream*> CudaDevice::all_streams() {
  std::vector<CudaStream*> streams;
  for (CudaStream& s : lanes_) streams.push_back(&s);
  for (CudaStream* s : {&h2d_, &d2h_}) streams.push_back(s);
  return streams;
}

DeviceEvent CudaDevice::record_compute() {
  Result<DeviceEvent> e = record_on(compute_stream());
  if (e) return *e;
  // No event to hand out: make "already complete" true by waiting for the stream.
  log_error(e.status().to_string());
  log_if_error(cudaStreamSynchronize(compute_stream()), "cudaStreamSynchronize");
  return {};
}

void CudaDevice::compute_wait(DeviceEvent event) {
  CUevent_st* ev = live_event(event);
  if (ev == nullptr) return;
  const cudaError_t q = cudaEventQuery(ev);
  if (q == cudaSuccess) {
    retire(event);
    return;
  }
  if (q != cudaErrorNotReady) (void)cudaGetLastError();
  // Measure the wait: `begin` completes when earlier compute is done, `end` when the event also is.
  StallPair pair;
  if (!free_stall_pairs_.empty()) {
    pair = std::move(free_stall_pairs_.back());
    free_stall_pairs_.pop_back();
  } else {
    cudaEvent_t b = nullptr, e = nullptr;
    log_if_error(cudaEventCreate(&b), "cudaEventCreate");
    log_if_error(cudaEventCreate(&e), "cudaEventCreate");
    pair.begin.reset(b);
    pair.end.reset(e);
  }
  const bool timed = pair.begin && pair.end;
  if (timed) log_if_error(cudaEventRecord(pair.begin.get(), compute_stream()), "cudaEventRecord");
  log_if_error(cudaStreamWaitEvent(compute_stream(), ev, 0), "cudaStreamWaitEvent");
  if (timed) {
    log_if_error(cudaEventRecord(pair.end.get(), compute_stream()), "cudaEventRecord");
    pending_stalls_.push_back(std::move(pair));
  }
}

bool CudaDevice::is_done(DeviceEvent event) const {
  CUevent_st* ev = live_event(event);
  if (ev == nullptr) return true;
  const cudaError_t q = cudaEventQuery(ev);
  if (q == cudaSuccess) {
    retire(event);
    return true;
  }
  if (q != cudaErrorNotReady) log_if_error(q, "cudaEventQuery");
  return false;
}

Status CudaDevice::wait(DeviceEvent event) {
  CUevent_st* ev = live_event(event);
  if (ev == nullptr) {
    harvest_stalls();
    return Status::ok();
  }
  const double start = steady_seconds();
  FSWAP_CUDA_CHECK(cudaEventSynchronize(ev));
  host_wait_s_ += steady_seconds() - start;
  retire(event);
  harvest_stalls();
  return Status::ok();
}

DeviceEvent CudaDevice::record_compute_timed() {
  Result<DeviceEvent> e = record_on(compute_stream(), /*timed=*/true);
  if (e) return *e;
  // As record_compute: a null event is complete; elapsed_seconds then reports it as not timed.
  log_error(e.status().to_string());
  log_if_error(cudaStreamSynchronize(compute_stream()), "cudaStreamSynchronize");
  return {};
}

Result<double> CudaDevice::elapsed_seconds(DeviceEvent from, DeviceEvent to) const {
  CUevent_st* marks[2] = {};
  const DeviceEvent events[2] = {from, to};
  for (int i = 0; i < 2; ++i) {
    auto it = timed_events_.find(events[i].id);
    if (events[i].is_null() || it == timed_events_.end())
      return internal_error("CUDA device: elapsed_seconds of event " + std::to_string(events[i].id) +
                            ", which is not a timed event held (record_compute_timed, not yet released)");
    const cudaError_t q = cudaEventQuery(it->second.get());
    if (q == cudaErrorNotReady) {
      (void)cudaGetLastError();
      return internal_error("CUDA device: elapsed_seconds of event " + std::to_string(events[i].id) +
                            ", which has not completed: wait for it first");
    }
    FSWAP_CUDA_CHECK(q);
    marks[i] = it->second.get();
  }
  float ms = 0;
  FSWAP_CUDA_CHECK(cudaEventElapsedTime(&ms, marks[0], marks[1]));
  if (ms < 0)
    return internal_error("CUDA device: elapsed_seconds from event " + std::to_string(from.id) + " to event " +
                          std::to_string(to.id) + ", which completed earlier");
  return static_cast<double>(ms) * 1e-3;
}

void CudaDevice::release_timed(DeviceEvent event) {
  auto it = timed_events_.find(event.id);
  if (it == timed_events_.end()) return;
  // Even a pending event may be recorded again for a new id: a cudaStreamWaitEvent already issued
  // waits for the recording it saw, and nothing may wait on a released id.
  free_timed_events_.push_back(std::move(it->second));
  timed_events_.erase(it);
}

double CudaDevice::now_seconds() const { return steady_seconds() - start_s_; }

// No harvest here: ResidencyManager reads this just before and after compute_wait() and judges a
// prefetch late when the difference is positive; pairs completing in between belong to earlier waits.
double CudaDevice::compute_stall_seconds() const { return stall_s_; }

void CudaDevice::harvest_stalls() const {
  std::erase_if(pending_stalls_, [&](StallPair& p) {
    if (cudaEventQuery(p.end.get()) != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    float ms = 0;
    if (cudaEventElapsedTime(&ms, p.begin.get(), p.end.get()) == cudaSuccess) stall_s_ += ms * 1e-3;
    else (void)cudaGetLastError();
    free_stall_pairs_.push_back(std::move(p));
    return true;
  });
}

Status CudaDevice::synchronize() {
  for (CudaStream* s : all_streams())
    FSWAP_CUDA_CHECK(cudaStreamSynchronize(s->get()));
  sweep();
  harvest_stalls();
  return Status::ok();
}

Result<DeviceEvent> CudaDevice::record_on(CUstream_st* stream, bool timed) {
  if (!timed && free_events_.empty() && live_events_.size() >= sweep_at_) {
    sweep();
    // Many events genuinely in flight: sweep less often so recording stays O(1) amortised.
    if (live_events_.size() >= sweep_at_ / 2) sweep_at_ *= 2;
  }
  std::vector<CudaEvent>& pool = timed ? free_timed_events_ : free_events_;
  CudaEvent ev;
  if (!pool.empty()) {
    ev = std::move(pool.back());
    pool.pop_back();
  } else {
    cudaEvent_t e = nullptr;
    FSWAP_CUDA_CHECK(cudaEventCreateWithFlags(&e, timed ? cudaEventDefault : cudaEventDisableTiming));
    ev.reset(e);
    ++events_created_;
  }
  if (Status s = cuda_status(static_cast<int>(cudaEventRecord(ev.get(), stream)), "cudaEventRecord", __FILE__, __LINE__);
      !s.is_ok()) {
    pool.push_back(std::move(ev));
    return s;
  }
  const DeviceEvent id{next_event_id_++};
  (timed ? timed_events_ : live_events_).emplace(id.id, std::move(ev));
  return id;
}

Status CudaDevice::wait_all(CUstream_st* stream, std::span<const DeviceEvent> after) {
  for (DeviceEvent e : after)
    if (CUevent_st* ev = live_event(e)) FSWAP_CUDA_CHECK(cudaStreamWaitEvent(stream, ev, 0));
  return Status::ok();
}

CUevent_st* CudaDevice::live_event(DeviceEvent event) const {
  if (event.is_null()) return nullptr;
  if (auto it = live_events_.find(event.id); it != live_events_.end()) return it->second.get();
  auto timed = timed_events_.find(event.id);
  return timed == timed_events_.end() ? nullptr : timed->second.get();
}

void CudaDevice::retire(DeviceEvent event) const {
  auto it = live_events_.find(event.id);
  if (it == live_events_.end()) return;
  free_events_.push_back(std::move(it->second));
  live_events_.erase(it);
}

void CudaDevice::sweep() const {
  for (auto it = live_events_.begin(); it != live_events_.end();) {
    const cudaError_t q = cudaEventQuery(it->second.get());
    if (q == cudaSuccess) {
      free_events_.push_back(std::move(it->second));
      it = live_events_.erase(it);
    } else {
      if (q != cudaErrorNotReady) (void)cudaGetLastError();
      ++it;
    }
  }
}

Result<void*> CudaDevice::allocate_managed(std::uint64_t bytes) {
  constexpr std::uint64_t kMargin = 256ull << 20;
  if (bytes == 0) return invalid_input("CUDA device: managed allocation of 0 bytes");
  const std::uint64_t free_now = free_bytes();
  if (bytes + kMargin > free_now)
    return out_of_memory("cudaMallocManaged of " + format_bytes(bytes) + " refused: the card has " +
                         format_bytes(free_now) + " free, and managed memory is never asked beyond what is free "
                         "(less a 256 MiB margin); use --memory-mode explicit");
  void* p = nullptr;
  FSWAP_CUDA_CHECK(cudaMallocManaged(&p, bytes, cudaMemAttachGlobal));
  managed_[p] = bytes;
  managed_bytes_ += bytes;
  return p;
}

Status CudaDevice::free_managed(void* ptr) {
  auto it = managed_.find(ptr);
  if (it == managed_.end()) return internal_error("CUDA device: free of managed memory allocate_managed() did not return");
  FSWAP_RETURN_IF_ERROR(synchronize());  // cudaFree of managed memory in use is undefined
  FSWAP_CUDA_CHECK(cudaFree(ptr));
  managed_bytes_ -= it->second;
  managed_.erase(it);
  return Status::ok();
}

Status CudaDevice::advise_read_mostly(const void* ptr, std::uint64_t bytes) {
  cudaMemLocation device{};
  device.type = cudaMemLocationTypeDevice;
  device.id = options_.device;
  FSWAP_CUDA_CHECK(cudaMemAdvise(ptr, bytes, cudaMemAdviseSetReadMostly, device));
  FSWAP_CUDA_CHECK(cudaMemAdvise(ptr, bytes, cudaMemAdviseSetPreferredLocation, device));
  return Status::ok();
}

Result<DeviceEvent> CudaDevice::prefetch_managed(const void* ptr, std::uint64_t bytes) {
  cudaMemLocation device{};
  device.type = cudaMemLocationTypeDevice;
  device.id = options_.device;
  FSWAP_CUDA_CHECK(cudaMemPrefetchAsync(ptr, bytes, device, 0, h2d_.get()));
  return record_on(h2d_.get());
}

// ---- PinnedHostPool ---------------------------------------------------------------------------

PinnedHostPool::PinnedHostPool(PinnedHostPtr base, std::uint64_t capacity) : base_(std::move(base)), capacity_(capacity) {
  free_[0] = capacity;
}

Result<PinnedHostPool> PinnedHostPool::create(std::uint64_t capacity_bytes) {
  if (capacity_bytes == 0) return invalid_input("pinned host pool of 0 bytes");
  void* p = nullptr;
  FSWAP_CUDA_CHECK(cudaHostAlloc(&p, capacity_bytes, cudaHostAllocPortable));
  return PinnedHostPool(PinnedHostPtr(p), capacity_bytes);
}

Result<void*> PinnedHostPool::allocate(std::uint64_t bytes) {
  if (bytes == 0) return invalid_input("pinned host pool: allocation of 0 bytes");
  const std::uint64_t size = (bytes + 255) / 256 * 256;
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < size) continue;
    const std::uint64_t offset = it->first, left = it->second - size;
    free_.erase(it);
    if (left > 0) free_[offset + size] = left;
    used_[offset] = size;
    allocated_ += size;
    return static_cast<void*>(static_cast<unsigned char*>(base_.get()) + offset);
  }
  return out_of_memory("pinned host pool: no free range of " + format_bytes(size) + " (" + format_bytes(allocated_) +
                       " of " + format_bytes(capacity_) + " in use): create the pool larger");
}

Status PinnedHostPool::free(void* ptr) {
  const auto offset = static_cast<std::uint64_t>(static_cast<unsigned char*>(ptr) - static_cast<unsigned char*>(base_.get()));
  auto it = used_.find(offset);
  if (ptr == nullptr || it == used_.end()) return internal_error("pinned host pool: free of a pointer it did not allocate");
  std::uint64_t start = offset, size = it->second;
  used_.erase(it);
  allocated_ -= size;
  if (auto next = free_.find(start + size); next != free_.end()) {
    size += next->second;
    free_.erase(next);
  }
  if (auto prev = free_.lower_bound(start); prev != free_.begin()) {
    --prev;
    if (prev->first + prev->second == start) {
      start = prev->first;
      size += prev->second;
      free_.erase(prev);
    }
  }
  free_[start] = size;
  return Status::ok();
}

}  // namespace fswap::memory
