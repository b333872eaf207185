// ResidencyManager: which weight blocks are on the device. Blocks move device ⇄ host (their host
// copy, normally pinned, stays valid); acquire() pins a block while kernels use it; when the budget
// is short, unpinned blocks are evicted — first idle ones (see below), least recently used first;
// then those of the models cheapest to run without their device copies (set_keep_cost), among
// them the one used furthest in the future when a schedule is known (Belady), then the least
// recently used; prefetch() copies the next stage's blocks on the copy stream while the current
// stage computes.
// Idle: a block not acquired while more than twice the bytes of every registered block were
// loaded, or not acquired since the caller said a stage of its work ended (end_stage).
// Keep costs protect the models of a loop that runs them all in turn: each is used again before
// the loads of a pass, at most every registered byte, add up to twice that. (With a margin of
// one, a loop streaming nearly all its weights each pass, as one with room for a quarter of them
// does, left its dearest model idle in some passes and not in others: evicted, it ran node by
// node.) A model whose work is over for now (the source face's embedder, the analysis models
// during the processors' turn, the enhancer of the last window while the swapper runs the next)
// would otherwise keep its bytes while a cheaper model streams its own weights on every call. The
// clock is loads, not acquires: a run acquires a chunk once per stretch of nodes reading it,
// several times its bytes a pass, and while nothing is loaded no block needs to make room. A
// weight ring's copies count as loads: where every model streams, a chunk a ring no longer keeps
// resident (its prefix shrank) would otherwise never turn idle and would shrink cheaper models'
// room for good.
//
//   DeviceArena arena(device, {.cap_bytes = budget.bytes});
//   ResidencyManager rm(arena);
//   BlockId w = *rm.register_block({.name = "swapper.conv1", .model = "swapper", .bytes = n, .host = pinned});
//   rm.set_schedule({det, swap, enh});          // the acquire order of one chunk, repeating
//   FSWAP_ASSIGN_OR_RETURN(DevicePtr p, rm.acquire(w));  // resident; compute now waits for its copy
//   FSWAP_RETURN_IF_ERROR(rm.prefetch(next));  // overlaps the copy of the next stage
//   ... launch kernels reading p ...
//   FSWAP_RETURN_IF_ERROR(rm.release(w));      // kernels issued so far may still run: eviction waits for them
//
// A model whose weights exceed the budget streams them: its nodes walk its chunks
// (memory/weight_chunks.h), or its copies run inside a CUDA graph through a weight ring
// (memory/weight_ring.h) that other code owns.
// All device memory comes from the arena, so the budget holds for weights, scratch and activations.
// Thread-safety: none; one manager per device, used by the GPU worker thread.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "memory/device_arena.h"
#include "memory/stats.h"

namespace fswap::memory {

using BlockId = std::uint32_t;

// One unit of residency: an initializer, a layer's weights, or any buffer with a host copy.
struct WeightBlockDesc {
  std::string name;   // for messages, e.g. "inswapper.conv3.weight"
  std::string model;  // owning model: statistics and evict_model() group by it
  std::uint64_t bytes = 0;
  void* host = nullptr;  // host copy, `bytes` long, valid while registered; null only on the simulation
  HostMemoryKind host_kind = HostMemoryKind::kPinned;
  // False for weights: eviction drops the device copy (the host copy is still valid).
  // True for buffers kernels write: eviction writes them back to `host` first (D2H).
  bool device_writes = false;
};

class ResidencyManager {
 public:
  explicit ResidencyManager(DeviceArena& arena);
  // Frees the device copies of every block still registered (waiting for pending work).
  ~ResidencyManager();
  ResidencyManager(const ResidencyManager&) = delete;
  ResidencyManager& operator=(const ResidencyManager&) = delete;

  // kInvalidInput for 0 bytes. Nothing is copied until acquire() or prefetch().
  Result<BlockId> register_block(WeightBlockDesc desc);
  // Drops the device copy without write-back. kInvalidInput if pinned or unknown.
  Status unregister_block(BlockId id);
  Status unregister_model(const std::string& model);

  // The expected order of acquire() calls. Each acquire of the block at the cursor advances it;
  // an acquire of another scheduled block resynchronises to that block's next occurrence;
  // unscheduled blocks leave it alone. `cyclic`: the order repeats (a chunk loop).
  // Empty: no schedule, eviction is LRU.
  void set_schedule(std::vector<BlockId> order, bool cyclic = true);
  // What evicting `model`'s blocks costs beyond their copy back, in any unit the caller uses for
  // every model (0 by default): the CUDA executor gives its nodes per byte of weights, since a
  // model whose weights moved runs node by node instead of relaunching its CUDA graph, and a
  // model of many small nodes (an ESRGAN) then costs the host far more per byte than one of a few
  // large GEMMs. Blocks of a lower cost are evicted first, whenever they are needed.
  void set_keep_cost(const std::string& model, double cost);
  // Bytes `model` could hold by evicting only blocks of its own, of models no dearer (keep cost) or
  // idle ones: the budget less everything allocated except those unpinned blocks.
  std::uint64_t room_beside_dearer(const std::string& model) const;

  // Makes the block resident (evicting unpinned blocks if the budget is short), pins it and
  // makes compute issued from now on wait for its copy. Pins nest.
  // kOutOfMemory when the block cannot fit even after evicting every unpinned block (with
  // `spare_dearer`, every one but those of dearer models (keep cost) that are not idle: a block the
  // caller can do without, a weight ring's resident chunk), or when the device refuses memory the
  // budget allows; nothing is left half-done.
  Result<DevicePtr> acquire(BlockId id, bool spare_dearer = false);
  // Unpins. Kernels issued before this call may still read the block: an eviction orders after them.
  Status release(BlockId id);
  // Starts the copy of a block that is not resident. A hint: if making room would evict a pinned
  // block, (with a schedule) one needed sooner than this one, or with `spare_dearer` one of a
  // dearer model (keep cost) that is not idle, it does nothing and returns ok. A model's look-ahead
  // within its run spares them (a streamed swapper's pushed the frame enhancer out every pass); the
  // next model's head prefetch does not, since that model's run would evict them on demand anyway.
  Status prefetch(BlockId id, bool spare_dearer = false);
  // Drops the device copy of an unpinned block now (writing it back if device_writes).
  Status evict(BlockId id);
  Status evict_model(const std::string& model);

  // Device scratch (activation arenas, frame buffers) that shares the budget: evicts unpinned
  // blocks when it is short. Free it with arena().free(ptr, {events of work using it}).
  Result<DeviceAllocation> allocate_scratch(std::uint64_t bytes);

  // A stage of the caller's work ended (a pipeline's processor over a window of frames): every
  // block becomes idle until acquired again, so the next stage's models may take the room of the
  // models that ran, before keep costs protect them. A hint: nothing moves until room is needed.
  void end_stage();

  // Unified mode: `bytes` of `model`'s weights live in managed memory the device keeps (no
  // residency block, no eviction). They count against the budget like arena bytes (evicting
  // unpinned blocks when it is short); kOutOfMemory when even that leaves too little.
  Status add_managed(const std::string& model, std::uint64_t bytes);
  void remove_managed(const std::string& model, std::uint64_t bytes);
  // A cudaMemPrefetchAsync of `bytes` of the model's managed weights to the device was issued.
  void count_managed_prefetch(const std::string& model, std::uint64_t bytes);
  // A pass of `model` streamed `bytes` of its weights in `copies` copies through a weight ring
  // (memory/weight_ring.h), outside the blocks: counted as host→device traffic, a ring pass and
  // loads on the idle rule's clock.
  void count_ring_pass(const std::string& model, std::uint64_t bytes, std::uint64_t copies);
  // Of such a pass, `bytes` (its ring's head) were copied while the run before executed.
  void count_ring_ahead(const std::string& model, std::uint64_t bytes);

  bool is_resident(BlockId id) const;
  bool is_pinned(BlockId id) const;
  const WeightBlockDesc& block(BlockId id) const;
  std::uint64_t resident_bytes() const { return stats_.total.resident_bytes; }
  // Resident bytes of blocks not owned by `model` and not pinned: what evicting others can free.
  std::uint64_t evictable_bytes_excluding(const std::string& model) const;
  const MemoryStats& stats() const { return stats_; }
  DeviceArena& arena() { return arena_; }
  DeviceBackend& device() { return arena_.device(); }

 private:
  static constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();

  struct Block {
    WeightBlockDesc desc;
    bool registered = true;
    bool resident = false;
    DeviceAllocation alloc;
    DeviceEvent ready;       // its host→device copy
    std::vector<DeviceEvent> last_use;  // by compute lane: its compute at its last release()
    int pins = 0;
    std::uint64_t last_access = 0;  // LRU clock
    std::uint64_t used_at = 0;      // loaded_bytes_ at its last acquire (or prefetch, or registration)
    std::uint64_t used_in_stage = 0;  // stage_ then
    double keep_cost = 0;           // set_keep_cost of its model
    bool prefetched_unused = false;
    bool dirty = false;      // device_writes block acquired since its last write-back
    std::vector<std::uint64_t> positions;  // indices in the schedule
    std::size_t resident_slot = 0;          // index in resident_ while resident
  };

  bool idle(const Block& b) const;
  // The better victim of two blocks with these next uses (idle first, then keep cost, Belady, LRU).
  bool evict_before(const Block& a, std::uint64_t a_next, const Block& b, std::uint64_t b_next) const;
  Block* find(BlockId id);
  std::uint64_t next_use(const Block& b) const;  // distance from the schedule cursor; kNever if none
  // How a block is loaded: acquired or prefetched (`ahead`), sparing dearer models' blocks or not.
  struct Need {
    bool ahead = false, spare_dearer = false;
  };
  // Evicts victims until the arena supplies `bytes`. For a prefetch, victims must be used later
  // than `for_block` (Belady) or not be prefetched-and-unused themselves (LRU); when sparing dearer
  // models, not of a dearer model that is not idle.
  Result<DeviceAllocation> allocate_evicting(std::uint64_t bytes, const Block* for_block, Need need,
                                            bool scratch = false);
  // The out-of-memory message once no victim is left.
  Status no_victim(const Status& arena_failure, const Block* for_block, Need need) const;
  // Scans the resident blocks only (resident_), not every registered one.
  Block* choose_victim(const Block* for_block, Need need);
  Status load(Block& b, Need need);  // allocate + copy; b not resident
  Status drop(Block& b, bool count_eviction);    // writes back when dirty
  void advance_schedule(BlockId id);
  ResidencyCounters& model_counters(const Block& b) { return stats_.per_model[b.desc.model]; }
  void note_resident(Block& b, bool added);  // also keeps resident_

  DeviceArena& arena_;
  std::vector<Block> blocks_;
  std::vector<BlockId> resident_;  // the resident blocks, in no order
  std::map<std::string, double> keep_costs_;  // set_keep_cost, for blocks registered later
  std::vector<BlockId> schedule_;
  bool cyclic_ = true;
  std::uint64_t cursor_ = 0;
  std::uint64_t clock_ = 0;
  std::uint64_t loaded_bytes_ = 0;      // bytes of every load so far, rings' included (the idle rule's clock)
  std::uint64_t registered_bytes_ = 0;  // bytes of the registered blocks
  std::uint64_t stage_ = 0;             // end_stage() calls so far
  MemoryStats stats_;
};

}  // namespace fswap::memory
