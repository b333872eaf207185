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
  return b.used_in_stage < stage_ || loaded_bytes_ - b.used_at > 2 * registered_bytes_;
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
    if (b.pins == 0 && (b.desc.model == model || b.keep_cost <= cost || idle(b))) held -= b.alloc.bytes;
  }
  return arena_.cap_bytes() > held ? arena_.cap_bytes() - held : 0;
}

ResidencyManager::Block* ResidencyManager::choose_victim(const Block* for_block, Need need) {
  const std::uint64_t target_next = for_block != nullptr ? next_use(*for_block) : kNever;
  Block* best = nullptr;
  std::uint64_t best_next = 0;
  for (BlockId id : resident_) {
    Block& v = blocks_[id];
    if (v.pins > 0 || &v == for_block) continue;
    const std::uint64_t vn = next_use(v);
    // Sparing dearer models: not the blocks of a dearer model (keep cost) that is not idle. A
    // prefetch also spares what is needed sooner and another prefetch not yet used.
    if (need.spare_dearer && for_block != nullptr && v.keep_cost > for_block->keep_cost && !idle(v)) continue;
    if (need.ahead) {
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

Result<DeviceAllocation> ResidencyManager::allocate_evicting(std::uint64_t bytes, const Block* for_block, Need need,
                                                             bool scratch) {
  while (true) {
    Result<DeviceAllocation> a = arena_.allocate(bytes, {.may_block = !need.ahead, .scratch = scratch});
    if (a.is_ok() || arena_.last_failure() != ArenaFailure::kBudget) return a;
    Block* victim = choose_victim(for_block, need);
    if (victim == nullptr) return no_victim(a.status(), for_block, need);
    FSWAP_RETURN_IF_ERROR(drop(*victim, true));
  }
}

Status ResidencyManager::no_victim(const Status& arena_failure, const Block* for_block, Need need) const {
  std::uint64_t pinned = 0;
  for (BlockId id : resident_)
    if (blocks_[id].pins > 0) pinned += blocks_[id].desc.bytes;
  return out_of_memory(arena_failure.message() + "; " + format_bytes(pinned) + " of it is acquired (pinned) and nothing" +
                       (need.ahead ? " that is needed later" : "") + (need.spare_dearer ? " but dearer models' blocks" : "") +
                       " can be evicted" +
                       (for_block != nullptr ? " for \"" + for_block->desc.name + "\"" : std::string()));
}

Status ResidencyManager::add_managed(const std::string& model, std::uint64_t bytes) {
  while (true) {
    Status charged = arena_.charge(bytes);
    if (charged.is_ok()) break;
    Block* victim = choose_victim(nullptr, {});
    if (victim == nullptr) return no_victim(charged, nullptr, {});
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
  loaded_bytes_ += bytes;
  for (ResidencyCounters* c : {&stats_.per_model[model], &stats_.total}) {
    c->h2d_bytes += bytes;
    c->h2d_copies += copies;
    ++c->ring_passes;
    c->ring_h2d_bytes += bytes;
  }
}

void ResidencyManager::count_ring_ahead(const std::string& model, std::uint64_t bytes) {
  for (ResidencyCounters* c : {&stats_.per_model[model], &stats_.total}) c->ring_ahead_bytes += bytes;
}

Status ResidencyManager::load(Block& b, Need need) {
  FSWAP_ASSIGN_OR_RETURN(DeviceAllocation a, allocate_evicting(b.desc.bytes, &b, need));
  Result<DeviceEvent> copied = device().copy_to_device(a.ptr, b.desc.host, b.desc.bytes, b.desc.host_kind, a.ready_after);
  if (!copied.is_ok()) {
    (void)arena_.free(a.ptr, a.ready_after);
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
  FSWAP_RETURN_IF_ERROR(arena_.free(b.alloc.ptr, pending));
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
  b.alloc = {};
  return Status::ok();
}

Result<DevicePtr> ResidencyManager::acquire(BlockId id, bool spare_dearer) {
  Block* b = find(id);
  if (b == nullptr) return invalid_input("acquire of unknown block " + std::to_string(id));
  ResidencyCounters& m = model_counters(*b);
  std::uint64_t ResidencyCounters::*outcome = &ResidencyCounters::resident_hits;
  if (!b->resident) {
    FSWAP_RETURN_IF_ERROR(load(*b, {.spare_dearer = spare_dearer}));
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

Status ResidencyManager::prefetch(BlockId id, bool spare_dearer) {
  Block* b = find(id);
  if (b == nullptr) return invalid_input("prefetch of unknown block " + std::to_string(id));
  if (b->resident) return Status::ok();
  Status loaded = load(*b, {.ahead = true, .spare_dearer = spare_dearer});
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

Result<DeviceAllocation> ResidencyManager::allocate_scratch(std::uint64_t bytes) {
  return allocate_evicting(bytes, nullptr, {}, /*scratch=*/true);
}

}  // namespace fswap::memory
