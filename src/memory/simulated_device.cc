#include "memory/simulated_device.h"

#include <algorithm>
#include <cstring>

namespace fswap::memory {

namespace {
std::string hex(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}
}  // namespace

SimulatedDevice::SimulatedDevice(SimulatedDeviceOptions options)
    : options_(options), compute_tails_(static_cast<std::size_t>(std::max(options.compute_lanes, 1)), 0.0) {}

Result<DevicePtr> SimulatedDevice::allocate(std::uint64_t bytes) {
  ++allocation_calls_;
  const bool injected = allocation_calls_ == fail_call_ || (fail_from_call_ > 0 && allocation_calls_ >= fail_from_call_);
  if (injected) return out_of_memory("simulated device: injected failure of allocation #" + std::to_string(allocation_calls_));
  if (bytes == 0) return invalid_input("simulated device: allocation of 0 bytes");
  const std::uint64_t a = options_.alignment;
  const std::uint64_t rounded = (bytes + a - 1) / a * a;
  const std::uint64_t g = mapping_granularity();
  const std::uint64_t held = rounded >= g ? (rounded + g - 1) / g * g : rounded;
  if (held > free_bytes())
    return out_of_memory("simulated device: " + std::to_string(bytes) + " bytes requested, " +
                         std::to_string(free_bytes()) + " free");
  const std::uint64_t base = next_address_;
  next_address_ += rounded + a;  // never reuse addresses: a stale pointer stays detectable
  Allocation alloc;
  alloc.bytes = rounded;
  alloc.held = held;
  if (options_.backing_store) alloc.data.assign(rounded, 0);
  allocations_.emplace(base, std::move(alloc));
  used_bytes_ += held;
  peak_used_bytes_ = std::max(peak_used_bytes_, used_bytes_);
  return DevicePtr{base};
}

Status SimulatedDevice::free(DevicePtr ptr) {
  auto it = allocations_.find(ptr.address);
  if (it == allocations_.end()) return internal_error("simulated device: free of unknown pointer " + hex(ptr.address));
  const std::uint64_t end = ptr.address + it->second.bytes;
  for (auto w = written_.lower_bound(ptr.address); w != written_.end() && w->first < end;) {
    if (w->second.ready_s > host_now_ || w->second.read_until_s > host_now_)
      return internal_error("simulated device: free of " + hex(ptr.address) + " while work on it is pending (until " +
                            std::to_string(std::max(w->second.ready_s, w->second.read_until_s)) + " s, now " +
                            std::to_string(host_now_) + " s)");
    w = written_.erase(w);
  }
  used_bytes_ -= it->second.held;
  allocations_.erase(it);
  return Status::ok();
}

Result<std::map<std::uint64_t, SimulatedDevice::Allocation>::iterator> SimulatedDevice::find(DevicePtr p, std::uint64_t bytes,
                                                                                             const char* what) {
  auto it = allocations_.upper_bound(p.address);
  if (it != allocations_.begin()) {
    --it;
    if (p.address + bytes <= it->first + it->second.bytes) return it;
  }
  return internal_error(std::string("simulated device: ") + what + " touches unallocated memory [" + hex(p.address) +
                        ", +" + std::to_string(bytes) + ")");
}

double SimulatedDevice::start_after(double stream_tail, std::span<const DeviceEvent> after) const {
  double t = std::max(host_now_, stream_tail);
  for (DeviceEvent e : after) t = std::max(t, event_end_s_.at(e.id));
  return t;
}

DeviceEvent SimulatedDevice::new_event(double end_s) {
  event_end_s_.push_back(end_s);
  return {event_end_s_.size() - 1};
}

double SimulatedDevice::copy_seconds(std::uint64_t bytes, bool to_device, HostMemoryKind kind) const {
  const double bw = kind == HostMemoryKind::kPageable ? options_.pageable_bytes_per_s
                    : to_device                       ? options_.h2d_pinned_bytes_per_s
                                                      : options_.d2h_pinned_bytes_per_s;
  return options_.copy_latency_s + static_cast<double>(bytes) / bw;
}

Status SimulatedDevice::check_read(std::uint64_t addr, std::uint64_t bytes, double start_s, const char* what) {
  // Reads must see completed writes covering every byte; they extend each range's reader tail.
  const std::uint64_t end = addr + bytes;
  std::uint64_t covered = 0;
  auto w = written_.upper_bound(addr);
  if (w != written_.begin()) --w;
  for (; w != written_.end() && w->first < end; ++w) {
    const std::uint64_t lo = std::max(addr, w->first), hi = std::min(end, w->first + w->second.bytes);
    if (lo >= hi) continue;
    if (w->second.ready_s > start_s + 1e-15)
      return internal_error(std::string("simulated device: ") + what + " reads " + hex(lo) + " at " +
                            std::to_string(start_s) + " s before its write ends at " + std::to_string(w->second.ready_s) + " s");
    covered += hi - lo;
  }
  if (covered != bytes)
    return internal_error(std::string("simulated device: ") + what + " reads bytes of [" + hex(addr) + ", +" +
                          std::to_string(bytes) + ") that nothing wrote");
  return Status::ok();
}

Status SimulatedDevice::record_write(std::uint64_t addr, std::uint64_t bytes, double start_s, double end_s, const char* what) {
  const std::uint64_t end = addr + bytes;
  auto w = written_.upper_bound(addr);
  if (w != written_.begin()) --w;
  std::vector<std::pair<std::uint64_t, Written>> keep;
  while (w != written_.end() && w->first < end) {
    const std::uint64_t wlo = w->first, whi = w->first + w->second.bytes;
    if (whi <= addr) {
      ++w;
      continue;
    }
    if (w->second.read_until_s > start_s + 1e-15 || w->second.ready_s > start_s + 1e-15)
      return internal_error(std::string("simulated device: ") + what + " overwrites " + hex(std::max(addr, wlo)) + " at " +
                            std::to_string(start_s) + " s while it is still read or written until " +
                            std::to_string(std::max(w->second.read_until_s, w->second.ready_s)) + " s");
    if (wlo < addr) keep.push_back({wlo, {addr - wlo, w->second.ready_s, w->second.read_until_s}});
    if (whi > end) keep.push_back({end, {whi - end, w->second.ready_s, w->second.read_until_s}});
    w = written_.erase(w);
  }
  for (auto& [a, v] : keep) written_.emplace(a, v);
  written_.emplace(addr, Written{bytes, end_s, 0.0});
  return Status::ok();
}

void SimulatedDevice::mark_read(std::uint64_t addr, std::uint64_t bytes, double end_s) {
  auto w = written_.upper_bound(addr);
  if (w != written_.begin()) --w;
  for (; w != written_.end() && w->first < addr + bytes; ++w)
    if (w->first + w->second.bytes > addr) w->second.read_until_s = std::max(w->second.read_until_s, end_s);
}

Result<DeviceEvent> SimulatedDevice::copy_to_device(DevicePtr dst, const void* src, std::uint64_t bytes,
                                                    HostMemoryKind src_kind, std::span<const DeviceEvent> after) {
  FSWAP_ASSIGN_OR_RETURN(auto it, find(dst, bytes, "copy_to_device"));
  const double start = start_after(h2d_tail_, after);
  const double end = start + copy_seconds(bytes, true, src_kind);
  FSWAP_RETURN_IF_ERROR(record_write(dst.address, bytes, start, end, "copy_to_device"));
  if (options_.backing_store && src != nullptr)
    std::memcpy(it->second.data.data() + (dst.address - it->first), src, bytes);
  h2d_tail_ = end;
  h2d_bytes_ += bytes;
  return new_event(end);
}

Result<DeviceEvent> SimulatedDevice::copy_to_host(void* dst, DevicePtr src, std::uint64_t bytes, HostMemoryKind dst_kind,
                                                  std::span<const DeviceEvent> after) {
  FSWAP_ASSIGN_OR_RETURN(auto it, find(src, bytes, "copy_to_host"));
  const double start = start_after(d2h_tail_, after);
  const double end = start + copy_seconds(bytes, false, dst_kind);
  FSWAP_RETURN_IF_ERROR(check_read(src.address, bytes, start, "copy_to_host"));
  mark_read(src.address, bytes, end);
  if (options_.backing_store && dst != nullptr)
    std::memcpy(dst, it->second.data.data() + (src.address - it->first), bytes);
  d2h_tail_ = end;
  d2h_bytes_ += bytes;
  return new_event(end);
}

Result<DeviceEvent> SimulatedDevice::run_compute(double seconds, std::span<const DeviceRange> reads,
                                                 std::span<const DeviceRange> writes) {
  const double start = std::max(host_now_, compute_tail());
  const double end = start + seconds;
  for (const DeviceRange& r : reads) {
    FSWAP_RETURN_IF_ERROR(find(r.ptr, r.bytes, "kernel").status());
    FSWAP_RETURN_IF_ERROR(check_read(r.ptr.address, r.bytes, start, "kernel"));
  }
  for (const DeviceRange& r : reads) mark_read(r.ptr.address, r.bytes, end);
  for (const DeviceRange& r : writes) {
    FSWAP_RETURN_IF_ERROR(find(r.ptr, r.bytes, "kernel").status());
    FSWAP_RETURN_IF_ERROR(record_write(r.ptr.address, r.bytes, start, end, "kernel"));
  }
  compute_tail() = end;
  compute_busy_s_ += seconds;
  return new_event(end);
}

Status SimulatedDevice::set_compute_lane(int lane) {
  if (lane < 0 || lane >= compute_lanes())
    return invalid_input("simulated device: compute lane " + std::to_string(lane) + " of " +
                         std::to_string(compute_lanes()));
  lane_ = lane;
  return Status::ok();
}

DeviceEvent SimulatedDevice::record_compute() { return new_event(compute_tail()); }

DeviceEvent SimulatedDevice::record_compute_timed() {
  const DeviceEvent e = new_event(std::max(host_now_, compute_tail()));
  timed_.insert(e.id);
  return e;
}

Result<double> SimulatedDevice::elapsed_seconds(DeviceEvent from, DeviceEvent to) const {
  for (DeviceEvent e : {from, to}) {
    if (timed_.count(e.id) == 0)
      return internal_error("simulated device: elapsed_seconds of event " + std::to_string(e.id) +
                            ", which is not a timed event held (record_compute_timed, not yet released)");
    if (!is_done(e))
      return internal_error("simulated device: elapsed_seconds of event " + std::to_string(e.id) + ", which completes at " +
                            std::to_string(event_end_s_[e.id]) + " s, now " + std::to_string(host_now_) +
                            " s: wait for it first");
  }
  const double seconds = event_end_s_[to.id] - event_end_s_[from.id];
  if (seconds < 0)
    return internal_error("simulated device: elapsed_seconds from event " + std::to_string(from.id) + " to event " +
                          std::to_string(to.id) + ", which completed earlier");
  return seconds;
}

void SimulatedDevice::compute_wait(DeviceEvent event) {
  const double ready = event_end_s_.at(event.id);
  const double free_at = std::max(host_now_, compute_tail());
  if (ready > free_at) {
    stall_s_ += ready - free_at;
    compute_tail() = ready;
  }
}

bool SimulatedDevice::is_done(DeviceEvent event) const { return event_end_s_.at(event.id) <= host_now_; }

Status SimulatedDevice::wait(DeviceEvent event) {
  if (event.id >= event_end_s_.size()) return internal_error("simulated device: wait on unknown event");
  host_now_ = std::max(host_now_, event_end_s_[event.id]);
  return Status::ok();
}

void SimulatedDevice::synchronize() {
  host_now_ = std::max({host_now_, h2d_tail_, d2h_tail_});
  for (double tail : compute_tails_) host_now_ = std::max(host_now_, tail);
}

void SimulatedDevice::fail_allocation(int call) { fail_call_ = call; }
void SimulatedDevice::fail_allocations_from(int call) { fail_from_call_ = call; }

Status SimulatedDevice::read(DevicePtr src, void* dst, std::uint64_t bytes) const {
  if (!options_.backing_store) return unsupported("simulated device: read() needs options.backing_store");
  auto it = allocations_.upper_bound(src.address);
  if (it == allocations_.begin()) return internal_error("simulated device: read of unallocated memory");
  --it;
  if (src.address + bytes > it->first + it->second.bytes) return internal_error("simulated device: read past an allocation");
  std::memcpy(dst, it->second.data.data() + (src.address - it->first), bytes);
  return Status::ok();
}

}  // namespace fswap::memory
