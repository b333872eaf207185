#include "memory/residency.h"

#include <algorithm>

#include "memory/budget.h"

namespace fswap::memory {

ResidencyManager::ResidencyManager(DeviceArena& arena) : arena_(arena) {}

ResidencyManager::~ResidencyManager() {
  for (Block& b : blocks_)
    if (b.registered && b.resident) {
      b.dirty = false;  // no write-back on teardown
      (void)drop(b, false);
    }
}

ResidencyManager::Block* ResidencyManager::find(BlockId id) {
  return id < blocks_.size() && blocks_[id].registered ? &blocks_[id] : nullptr;
}

const WeightBlockDesc& ResidencyManager::block(BlockId id) const {
  FSWAP_CHECK(id < blocks_.size(), "unknown block id");
  return blocks_[id].desc;
}

bool ResidencyManager::is_resident(BlockId id) const {
  return id < blocks_.size() && blocks_[id].registered && blocks_[id].resident;
}

bool ResidencyManager::is_pinned(BlockId id) const {
  return id < blocks_.size() && blocks_[id].registered && blocks_[id].pins > 0;
}

std::uint64_t ResidencyManager::evictable_bytes_excluding(const std::string& model) const {
  std::uint64_t n = 0;
  for (BlockId id : resident_)
    if (blocks_[id].pins == 0 && blocks_[id].desc.model != model) n += blocks_[id].desc.bytes;
  return n;
}

Result<BlockId> ResidencyManager::register_block(WeightBlockDesc desc) {
  if (desc.bytes == 0) return invalid_input("weight block \"" + desc.name + "\" has 0 bytes");
  const auto id = static_cast<BlockId>(blocks_.size());
  Block b;
  b.desc = std::move(desc);
  for (std::size_t i = 0; i < schedule_.size(); ++i)
    if (schedule_[i] == id) b.positions.push_back(i);
  stats_.per_model[b.desc.model];  // the model shows in the summary even before its first load
  if (auto cost = keep_costs_.find(b.desc.model); cost != keep_costs_.end()) b.keep_cost = cost->second;
  b.used_at = loaded_bytes_;
  b.used_in_stage = stage_;
  registered_bytes_ += b.desc.bytes;
  blocks_.push_back(std::move(b));
  return id;
}

Status ResidencyManager::unregister_block(BlockId id) {
  Block* b = find(id);
  if (b == nullptr) return invalid_input("unregister of unknown block " + std::to_string(id));
  if (b->pins > 0) return invalid_input("unregister of block \"" + b->desc.name + "\" while it is acquired");
  if (b->resident) {
    b->dirty = false;
    FSWAP_RETURN_IF_ERROR(drop(*b, false));
  }
  b->registered = false;
  registered_bytes_ -= b->desc.bytes;
  b->positions.clear();
  return Status::ok();
}

Status ResidencyManager::unregister_model(const std::string& model) {
  for (BlockId id = 0; id < blocks_.size(); ++id)
    if (blocks_[id].registered && blocks_[id].desc.model == model) FSWAP_RETURN_IF_ERROR(unregister_block(id));
  return Status::ok();
}

void ResidencyManager::set_schedule(std::vector<BlockId> order, bool cyclic) {
  for (Block& b : blocks_) b.positions.clear();
  schedule_ = std::move(order);
  cyclic_ = cyclic;
  cursor_ = 0;
  for (std::size_t i = 0; i < schedule_.size(); ++i)
    if (schedule_[i] < blocks_.size()) blocks_[schedule_[i]].positions.push_back(i);
}

std::uint64_t ResidencyManager::next_use(const Block& b) const {
  if (b.positions.empty()) return kNever;
  auto it = std::lower_bound(b.positions.begin(), b.positions.end(), cursor_);
  if (it != b.positions.end()) return *it - cursor_;
  return cyclic_ ? b.positions.front() + schedule_.size() - cursor_ : kNever;
}

void ResidencyManager::advance_schedule(BlockId id) {
  if (schedule_.empty() || id >= blocks_.size()) return;
  const Block& b = blocks_[id];
  if (cursor_ < schedule_.size() && schedule_[cursor_] == id) {
    ++cursor_;
  } else if (!b.positions.empty()) {  // off schedule: resynchronise to this block's next occurrence
    auto it = std::lower_bound(b.positions.begin(), b.positions.end(), cursor_);
    if (it != b.positions.end()) cursor_ = *it + 1;
    else if (cyclic_) cursor_ = b.positions.front() + 1;
  }
  if (cyclic_ && cursor_ >= schedule_.size()) cursor_ = 0;
}

void ResidencyManager::note_resident(Block& b, bool added) {
  ResidencyCounters& m = model_counters(b);
  const auto id = static_cast<BlockId>(&b - blocks_.data());
  if (added) {
    b.resident_slot = resident_.size();
    resident_.push_back(id);
  } else {
    const BlockId last = resident_.back();
    resident_[b.resident_slot] = last;
    blocks_[last].resident_slot = b.resident_slot;
    resident_.pop_back();
  }
  if (added) {
    m.resident_bytes += b.desc.bytes;
    stats_.total.resident_bytes += b.desc.bytes;
    m.peak_resident_bytes = std::max(m.peak_resident_bytes, m.resident_bytes);
    stats_.total.peak_resident_bytes = std::max(stats_.total.peak_resident_bytes, stats_.total.resident_bytes);
  } else {
    m.resident_bytes -= b.desc.bytes;
    stats_.total.resident_bytes -= b.desc.bytes;
  }
}

void ResidencyManager::set_keep_cost(const std::string& model, double cost) {
  keep_costs_[model] = cost;
  for (Block& b : blocks_)
    if (b.desc.model == model) b.keep_cost = cost;
}

bool ResidencyManager::idle(const Block& b) const {
  return b.used_in_stage < stage_ || loaded_bytes_ - b.used_at > registered_bytes_;
}

bool ResidencyManager::evict_before(const Block& a, std::uint64_t a_next, const Block& b, std::uint64_t b_next) const {
  if (const bool a_idle = idle(a); a_idle != idle(b)) return a_idle;
  if (a.keep_cost != b.keep_cost) return a.keep_cost < b.keep_cost;
  if (a_next != b_next) return a_next > b_next;
  return a.last_access < b.last_access;
}

std::uint64_t ResidencyManager::room_beside_dearer(const std::string& model) const {
  const auto found = keep_costs_.find(model);
  const double cost = found != keep_costs_.end() ? found->second : 0;
  std::uint64_t held = arena_.allocated_bytes();
  for (BlockId id : resident_) {
    const Block& b = blocks_[id];
    if (b.pins == 0 && b.in_arena && (b.desc.model == model || b.keep_cost <= cost || idle(b))) held -= b.alloc.bytes;
  }
  return arena_.cap_bytes() > held ? arena_.cap_bytes() - held : 0;
}

ResidencyManager::Block* ResidencyManager::choose_victim(const Block* for_block, bool for_prefetch) {
  const std::uint64_t target_next = for_block != nullptr ? next_use(*for_block) : kNever;
  Block* best = nullptr;
  std::uint64_t best_next = 0;
  for (BlockId id : resident_) {
    Block& v = blocks_[id];
    if (v.pins > 0 || &v == for_block) continue;
    const std::uint64_t vn = next_use(v);
    if (for_prefetch) {
      // A prefetch must not push out what is needed sooner, nor another prefetch not yet used.
      const bool later = vn > target_next || (vn == kNever && target_next == kNever);
      if (!later || v.prefetched_unused) continue;
    }
    if (best == nullptr || evict_before(v, vn, *best, best_next)) {
      best = &v;
      best_next = vn;
    }
  }
  return best;
}

Result<DeviceAllocation> ResidencyManager::allocate_evicting(std::uint64_t bytes, const Block* for_block, bool for_prefetch,
                                                             bool scratch) {
  while (true) {
    Result<DeviceAllocation> a = arena_.allocate(bytes, {.may_block = !for_prefetch, .scratch = scratch});
    if (a.is_ok() || arena_.last_failure() != ArenaFailure::kBudget) return a;
    Block* victim = choose_victim(for_block, for_prefetch);
    if (victim == nullptr) return no_victim(a.status(), for_block, for_prefetch);
    FSWAP_RETURN_IF_ERROR(drop(*victim, true));
  }
}

Status ResidencyManager::no_victim(const Status& arena_failure, const Block* for_block, bool for_prefetch) const {
  std::uint64_t pinned = 0;
  for (BlockId id : resident_)
    if (blocks_[id].pins > 0) pinned += blocks_[id].desc.bytes;
  return out_of_memory(arena_failure.message() + "; " + format_bytes(pinned) + " of it is acquired (pinned) and nothing" +
                       (for_prefetch ? " that is needed later" : "") + " can be evicted" +
                       (for_block != nullptr ? " for \"" + for_block->desc.name + "\"" : std::string()));
}

Status ResidencyManager::add_managed(const std::string& model, std::uint64_t bytes) {
  while (true) {
    Status charged = arena_.charge(bytes);
    if (charged.is_ok()) break;
    Block* victim = choose_victim(nullptr, false);
    if (victim == nullptr) return no_victim(charged, nullptr, false);
    FSWAP_RETURN_IF_ERROR(drop(*victim, true));
  }
  for (ResidencyCounters* c : {&stats_.per_model[model], &stats_.total}) c->managed_bytes += bytes;
  return Status::ok();
}

void ResidencyManager::remove_managed(const std::string& model, std::uint64_t bytes) {
  arena_.uncharge(bytes);
  for (ResidencyCounters* c : {&stats_.per_model[model], &stats_.total}) c->managed_bytes -= bytes;
}

void ResidencyManager::count_managed_prefetch(const std::string& model, std::uint64_t bytes) {
  for (ResidencyCounters* c : {&stats_.per_model[model], &stats_.total}) {
    c->managed_prefetch_bytes += bytes;
    ++c->managed_prefetches;
  }
}

void ResidencyManager::end_stage() { ++stage_; }

void ResidencyManager::count_ring_pass(const std::string& model, std::uint64_t bytes, std::uint64_t copies) {
  for (ResidencyCounters* c : {&stats_.per_model[model], &stats_.total}) {
    c->h2d_bytes += bytes;
    c->h2d_copies += copies;
    ++c->ring_passes;
  }
}

Status ResidencyManager::load(Block& b, bool for_prefetch) {
  DeviceAllocation a;
  if (!b.placed.is_null()) {
    a = {b.placed, b.desc.bytes, b.placed_after};
    b.in_arena = false;
  } else {
    FSWAP_ASSIGN_OR_RETURN(a, allocate_evicting(b.desc.bytes, &b, for_prefetch));
    b.in_arena = true;
  }
  Result<DeviceEvent> copied = device().copy_to_device(a.ptr, b.desc.host, b.desc.bytes, b.desc.host_kind, a.ready_after);
  if (!copied.is_ok()) {
    if (b.in_arena) (void)arena_.free(a.ptr, a.ready_after);
    return copied.status();
  }
  b.alloc = std::move(a);
  b.ready = *copied;
  loaded_bytes_ += b.desc.bytes;
  b.last_use.clear();
  b.resident = true;
  b.dirty = false;
  note_resident(b, true);
  for (ResidencyCounters* c : {&model_counters(b), &stats_.total}) {
    c->h2d_bytes += b.desc.bytes;
    ++c->h2d_copies;
  }
  return Status::ok();
}

Status ResidencyManager::drop(Block& b, bool count_eviction) {
  // Its bytes are free once the copy that filled it and every lane's last use of it are done.
  std::vector<DeviceEvent> pending = b.last_use;
  pending.push_back(b.ready);
  if (b.dirty && b.desc.device_writes) {
    FSWAP_ASSIGN_OR_RETURN(DeviceEvent back,
                           device().copy_to_host(b.desc.host, b.alloc.ptr, b.desc.bytes, b.desc.host_kind, pending));
    pending.push_back(back);
    for (ResidencyCounters* c : {&model_counters(b), &stats_.total}) {
      c->d2h_bytes += b.desc.bytes;
      ++c->d2h_copies;
    }
  }
  if (b.in_arena) FSWAP_RETURN_IF_ERROR(arena_.free(b.alloc.ptr, pending));
  for (ResidencyCounters* c : {&model_counters(b), &stats_.total}) {
    if (count_eviction) {
      ++c->evictions;
      c->evicted_bytes += b.desc.bytes;
    }
    if (b.prefetched_unused) ++c->prefetches_wasted;
  }
  note_resident(b, false);
  b.resident = false;
  b.dirty = false;
  b.prefetched_unused = false;
  b.in_arena = false;
  b.alloc = {};
  b.placed = {};
  b.placed_after.clear();
  return Status::ok();
}

Result<DevicePtr> ResidencyManager::acquire(BlockId id) {
  Block* b = find(id);
  if (b == nullptr) return invalid_input("acquire of unknown block " + std::to_string(id));
  ResidencyCounters& m = model_counters(*b);
  std::uint64_t ResidencyCounters::*outcome = &ResidencyCounters::resident_hits;
  if (!b->resident) {
    FSWAP_RETURN_IF_ERROR(load(*b, false));
    outcome = &ResidencyCounters::prefetch_misses;
  }
  const double before = device().compute_stall_seconds();
  device().compute_wait(b->ready);
  const double stall = device().compute_stall_seconds() - before;
  if (b->prefetched_unused)  // judged from the compute stream's view: did it have to wait?
    outcome = stall > 0 ? &ResidencyCounters::prefetch_late : &ResidencyCounters::prefetch_hits;
  for (ResidencyCounters* c : {&m, &stats_.total}) {
    ++c->acquires;
    ++(c->*outcome);
    c->stall_seconds += stall;
  }
  b->prefetched_unused = false;
  ++b->pins;
  b->last_access = ++clock_;
  b->used_at = loaded_bytes_;
  b->used_in_stage = stage_;
  if (b->desc.device_writes) b->dirty = true;
  advance_schedule(id);
  return b->alloc.ptr;
}

Status ResidencyManager::release(BlockId id) {
  Block* b = find(id);
  if (b == nullptr || b->pins == 0) return invalid_input("release of block " + std::to_string(id) + " that is not acquired");
  --b->pins;
  const auto lane = static_cast<std::size_t>(device().compute_lane());
  if (b->last_use.size() <= lane) b->last_use.resize(lane + 1);
  b->last_use[lane] = device().record_compute();
  b->last_access = ++clock_;
  return Status::ok();
}

Status ResidencyManager::prefetch(BlockId id) {
  Block* b = find(id);
  if (b == nullptr) return invalid_input("prefetch of unknown block " + std::to_string(id));
  if (b->resident) return Status::ok();
  Status loaded = load(*b, true);
  ResidencyCounters& m = model_counters(*b);
  if (!loaded.is_ok()) {
    if (loaded.code() != StatusCode::kOutOfMemory || arena_.last_failure() != ArenaFailure::kBudget) return loaded;
    ++m.prefetches_skipped;
    ++stats_.total.prefetches_skipped;
    return Status::ok();
  }
  ++m.prefetches_issued;
  ++stats_.total.prefetches_issued;
  b->prefetched_unused = true;
  b->last_access = ++clock_;
  b->used_at = loaded_bytes_;  // about to be used: not idle
  b->used_in_stage = stage_;
  return Status::ok();
}

Status ResidencyManager::evict(BlockId id) {
  Block* b = find(id);
  if (b == nullptr) return invalid_input("evict of unknown block " + std::to_string(id));
  if (b->pins > 0) return invalid_input("evict of block \"" + b->desc.name + "\" while it is acquired");
  return b->resident ? drop(*b, true) : Status::ok();
}

Status ResidencyManager::evict_model(const std::string& model) {
  for (BlockId id = 0; id < blocks_.size(); ++id)
    if (blocks_[id].registered && blocks_[id].desc.model == model) FSWAP_RETURN_IF_ERROR(evict(id));
  return Status::ok();
}

Status ResidencyManager::place(BlockId id, DevicePtr at, std::span<const DeviceEvent> after) {
  Block* b = find(id);
  if (b == nullptr) return invalid_input("place of unknown block " + std::to_string(id));
  if (b->resident || b->pins > 0) return invalid_input("place of block \"" + b->desc.name + "\" while it is resident");
  b->placed = at;  // a null `at` cancels a placement
  b->placed_after.assign(after.begin(), after.end());
  return Status::ok();
}

Result<DeviceAllocation> ResidencyManager::allocate_scratch(std::uint64_t bytes) {
  return allocate_evicting(bytes, nullptr, false, /*scratch=*/true);
}

// ---- Weight streaming -------------------------------------------------------------------------

const char* residency_mode_name(ResidencyMode mode) {
  switch (mode) {
    case ResidencyMode::kResident: return "resident";
    case ResidencyMode::kResidentAfterEviction: return "resident after eviction";
    case ResidencyMode::kStreamed: return "streamed";
  }
  return "?";
}

std::string ResidencyPlan::describe() const {
  std::string s = std::string(residency_mode_name(mode)) + ": weights " + format_bytes(weight_bytes) +
                  ", activation peak " + format_bytes(activation_peak_bytes) + ", device peak " + format_bytes(peak_bytes);
  if (mode == ResidencyMode::kResidentAfterEviction) s += ", evicting " + format_bytes(evict_bytes) + " of other models";
  if (mode == ResidencyMode::kStreamed)
    s += std::string(double_buffered ? ", double-buffered" : ", one layer at a time") + ", stream buffer " +
         format_bytes(stream_buffer_bytes);
  return s;
}

namespace {
std::uint64_t align_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }
}  // namespace

Result<ResidencyPlan> plan_residency(std::span<const LayerFootprint> layers, std::uint64_t budget_bytes,
                                     std::uint64_t others_resident_bytes, std::uint64_t alignment) {
  if (layers.empty()) return invalid_input("residency plan of a model with no layers");
  if (alignment == 0) alignment = 1;
  ResidencyPlan p;
  p.alignment = alignment;
  const std::size_t n = layers.size();
  std::vector<std::uint64_t> w(n), a(n);
  for (std::size_t i = 0; i < n; ++i) {
    w[i] = align_up(layers[i].weight_bytes, alignment);
    a[i] = align_up(layers[i].activation_bytes, alignment);
    p.weight_bytes += w[i];
    p.activation_peak_bytes = std::max(p.activation_peak_bytes, a[i]);
  }
  const std::uint64_t resident = p.weight_bytes + p.activation_peak_bytes;
  if (resident <= budget_bytes) {
    p.peak_bytes = resident;
    p.activation_arena_bytes = p.activation_peak_bytes;
    if (others_resident_bytes <= budget_bytes - resident) {
      p.mode = ResidencyMode::kResident;
    } else {
      p.mode = ResidencyMode::kResidentAfterEviction;
      p.evict_bytes = others_resident_bytes - (budget_bytes - resident);
    }
    return p;
  }
  p.mode = ResidencyMode::kStreamed;
  std::uint64_t pair = w[0];
  for (std::size_t i = 0; i + 1 < n; ++i) pair = std::max(pair, w[i] + w[i + 1]);
  if (p.activation_peak_bytes + pair <= budget_bytes) {
    p.double_buffered = true;
    p.stream_buffer_bytes = pair;
    p.activation_arena_bytes = p.activation_peak_bytes;
    p.peak_bytes = p.activation_peak_bytes + pair;
    return p;
  }
  for (std::size_t i = 0; i < n; ++i) {
    p.stream_buffer_bytes = std::max(p.stream_buffer_bytes, w[i]);
    p.peak_bytes = std::max(p.peak_bytes, w[i] + a[i]);
    if (w[i] + a[i] > budget_bytes)
      return out_of_memory("layer " + std::to_string(i) + " needs " + format_bytes(w[i]) + " of weights + " +
                           format_bytes(a[i]) + " of activations = " + format_bytes(w[i] + a[i]) + ", over the " +
                           format_bytes(budget_bytes) + " budget even when streamed one layer at a time; raise "
                           "--vram-budget to at least " + format_bytes(w[i] + a[i]) + " or use a smaller batch");
  }
  return p;
}

Status stream_pass(ResidencyManager& rm, std::span<const BlockId> layers, std::span<const LayerFootprint> footprints,
                   const ResidencyPlan& plan, const RunLayerFn& run_layer) {
  const std::size_t n = layers.size();
  if (n == 0 || footprints.size() != n) return invalid_input("stream_pass: layers and footprints differ in count");
  const std::uint64_t al = plan.alignment == 0 ? 1 : plan.alignment;
  DeviceBackend& dev = rm.device();
  // Resident: the blocks live in the arena and the buffer is the activation arena only.
  const bool streamed = plan.mode == ResidencyMode::kStreamed;
  FSWAP_ASSIGN_OR_RETURN(DeviceAllocation buffer,
                         rm.allocate_scratch(std::max<std::uint64_t>(streamed ? plan.peak_bytes : plan.activation_arena_bytes, al)));
  std::vector<DeviceEvent> buffer_events = buffer.ready_after;  // the buffer's first use waits on them
  Status status = Status::ok();
  std::vector<BlockId> acquired;

  if (!streamed) {
    DeviceAllocation act{buffer.ptr, plan.activation_arena_bytes, buffer_events};
    for (std::size_t i = 0; i < n && status.is_ok(); ++i) {
      Result<DevicePtr> w = rm.acquire(layers[i]);
      if (!w.is_ok()) {
        status = w.status();
        break;
      }
      if (i + 1 < n) status = rm.prefetch(layers[i + 1]);  // a hint: the next copy overlaps this layer
      if (status.is_ok()) status = run_layer(i, *w, act);
      act.ready_after.clear();
      Status r = rm.release(layers[i]);
      if (status.is_ok()) status = r;
    }
  } else {
    // Offsets in the buffer for layer i's weights and its activations.
    const DevicePtr base = buffer.ptr;
    const std::uint64_t size = plan.peak_bytes;
    auto weight_offset = [&](std::size_t i) -> std::uint64_t {
      const std::uint64_t wi = align_up(footprints[i].weight_bytes, al);
      if (!plan.double_buffered) return 0;
      return i % 2 == 0 ? plan.activation_arena_bytes : size - wi;
    };
    auto act_offset = [&](std::size_t i) -> std::uint64_t {
      return plan.double_buffered ? 0 : size - align_up(footprints[i].activation_bytes, al);
    };
    std::vector<DeviceEvent> done(n);  // compute of layer i finished: its bytes are free again
    auto place = [&](std::size_t i) -> Status {
      if (rm.is_resident(layers[i])) return Status::ok();
      std::vector<DeviceEvent> after = buffer_events;
      if (plan.double_buffered && i >= 2) after.push_back(done[i - 2]);  // same end of the buffer
      if (!plan.double_buffered && i >= 1) after.push_back(done[i - 1]);
      return rm.place(layers[i], base.offset(weight_offset(i)), after);
    };
    status = place(0);
    for (std::size_t i = 0; i < n && status.is_ok(); ++i) {
      Result<DevicePtr> w = rm.acquire(layers[i]);
      if (!w.is_ok()) {
        status = w.status();
        break;
      }
      acquired.push_back(layers[i]);
      if (plan.double_buffered && i + 1 < n) {
        status = place(i + 1);
        if (status.is_ok()) status = rm.prefetch(layers[i + 1]);
      }
      DeviceAllocation act{base.offset(act_offset(i)),
                           plan.double_buffered ? plan.activation_arena_bytes : footprints[i].activation_bytes,
                           buffer_events};
      if (i > 0 && !plan.double_buffered) act.ready_after.push_back(done[i - 1]);
      if (status.is_ok()) status = run_layer(i, *w, act);
      Status r = rm.release(layers[i]);
      acquired.pop_back();
      done[i] = dev.record_compute();
      if (status.is_ok()) status = r;
      if (status.is_ok()) status = rm.evict(layers[i]);
      if (status.is_ok() && !plan.double_buffered && i + 1 < n) status = place(i + 1);
    }
    // On failure, nothing may stay placed in (or loaded into) the buffer we are about to free.
    for (BlockId id : acquired) (void)rm.release(id);
    for (BlockId id : layers) {
      if (rm.is_resident(id)) (void)rm.evict(id);
      else (void)rm.place(id, DevicePtr{});
    }
  }
  Status freed = rm.arena().free(buffer.ptr, std::vector<DeviceEvent>{dev.record_compute()});
  return status.is_ok() ? freed : status;
}

}  // namespace fswap::memory
