// bench_memory: the memory layer's numbers on a real GPU.
//   copies:    host→device and device→host GB/s from pinned and pageable memory, both directions at once
//   mapping:   what the card holds for allocations of assorted sizes (CudaDevice's 2 MiB units)
//   allocation: CudaDevice's map+unmap against cudaMallocAsync+cudaFreeAsync on a pool with the
//               release threshold raised and with threshold 0, and cudaMalloc+cudaFree; DeviceArena
//               reuse for scale
//   streaming: ResidencyManager cycling a weight set 4× the budget, GB/s against the pinned link
// Copies are timed with CUDA events, allocations with the host clock; every figure is the median of
// many runs after warm-up. Usage: bench_memory [--copy-mib N] [--budget-mib N]
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "memory/budget.h"
#include "memory/cuda/cuda_device.h"
#include "memory/device_arena.h"
#include "memory/residency.h"

using namespace fswap;
using namespace fswap::memory;

namespace {

constexpr std::uint64_t kMiB = 1ull << 20;

#define BENCH_CHECK(call)                                                               \
  do {                                                                                  \
    const Status s_ = cuda_status(static_cast<int>(call), #call, __FILE__, __LINE__); \
    if (!s_.is_ok()) {                                                                  \
      std::fprintf(stderr, "%s\n", s_.to_string().c_str());                            \
      std::exit(1);                                                                     \
    }                                                                                   \
  } while (0)

template <class T>
T must(Result<T> r, const char* what) {
  if (!r) {
    std::fprintf(stderr, "%s: %s\n", what, r.status().to_string().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}
void must(const Status& s, const char* what) {
  if (!s.is_ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.to_string().c_str());
    std::exit(1);
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double host_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Median seconds of `issue` (work enqueued on `stream`), timed with events.
double time_stream(cudaStream_t stream, int warmup, int runs, const std::function<void()>& issue) {
  cudaEvent_t a, b;
  BENCH_CHECK(cudaEventCreate(&a));
  BENCH_CHECK(cudaEventCreate(&b));
  std::vector<double> t;
  for (int i = 0; i < warmup + runs; ++i) {
    BENCH_CHECK(cudaEventRecord(a, stream));
    issue();
    BENCH_CHECK(cudaEventRecord(b, stream));
    BENCH_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    BENCH_CHECK(cudaEventElapsedTime(&ms, a, b));
    if (i >= warmup) t.push_back(ms * 1e-3);
  }
  BENCH_CHECK(cudaEventDestroy(a));
  BENCH_CHECK(cudaEventDestroy(b));
  return median(t);
}

// Median host microseconds of `f`.
double time_host_us(int warmup, int runs, const std::function<void()>& f) {
  std::vector<double> t;
  for (int i = 0; i < warmup + runs; ++i) {
    const double t0 = host_seconds();
    f();
    if (i >= warmup) t.push_back((host_seconds() - t0) * 1e6);
  }
  return median(t);
}

struct Row {
  std::string what;
  double value;
  std::string unit;
};
std::vector<Row> rows;
void report(const std::string& what, double value, const std::string& unit) {
  rows.push_back({what, value, unit});
  std::printf("%-58s %10.2f %s\n", what.c_str(), value, unit.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t copy_mib = 1024, budget_mib = 1024;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--copy-mib")) copy_mib = std::strtoull(argv[i + 1], nullptr, 10);
    if (!std::strcmp(argv[i], "--budget-mib")) budget_mib = std::strtoull(argv[i + 1], nullptr, 10);
  }
  const std::uint64_t copy_bytes = copy_mib * kMiB, budget = budget_mib * kMiB;
  auto dev = must(CudaDevice::create(), "CudaDevice::create");
  std::printf("device: %s, %s total, %s free\n", dev->name().c_str(), format_bytes(dev->total_bytes()).c_str(),
              format_bytes(dev->free_bytes()).c_str());

  // ---- copies ----
  const double gb = static_cast<double>(copy_bytes) / 1e9;
  double pinned_h2d = 0;
  {
    const double t0 = host_seconds();
    PinnedHostPool pinned = must(PinnedHostPool::create(2 * copy_bytes), "pinned pool");
    report("cudaHostAlloc (pinning), per GiB", (host_seconds() - t0) * 1e3 / (2.0 * copy_mib / 1024.0), "ms");
    void* up = must(pinned.allocate(copy_bytes), "pinned");
    void* down = must(pinned.allocate(copy_bytes), "pinned");
    std::vector<unsigned char> pageable_up(copy_bytes), pageable_down(copy_bytes);
    for (std::uint64_t i = 0; i < copy_bytes; i += 4096) {
      static_cast<unsigned char*>(up)[i] = static_cast<unsigned char>(i >> 12);
      pageable_up[i] = static_cast<unsigned char>(i >> 12);
      pageable_down[i] = 1;
    }
    DevicePtr d0 = must(dev->allocate(copy_bytes), "device buffer");
    DevicePtr d1 = must(dev->allocate(copy_bytes), "device buffer");
    void* p0 = reinterpret_cast<void*>(d0.address);
    void* p1 = reinterpret_cast<void*>(d1.address);
    must(dev->synchronize(), "sync");
    cudaStream_t h2d = dev->h2d_stream(), d2h = dev->d2h_stream();
    auto h2d_from = [&](const void* src) { BENCH_CHECK(cudaMemcpyAsync(p0, src, copy_bytes, cudaMemcpyHostToDevice, h2d)); };
    auto d2h_to = [&](void* dst) { BENCH_CHECK(cudaMemcpyAsync(dst, p1, copy_bytes, cudaMemcpyDeviceToHost, d2h)); };
    pinned_h2d = gb / time_stream(h2d, 2, 10, [&] { h2d_from(up); });
    report("H2D pinned (" + std::to_string(copy_mib) + " MiB)", pinned_h2d, "GB/s");
    report("H2D pageable", gb / time_stream(h2d, 1, 5, [&] { h2d_from(pageable_up.data()); }), "GB/s");
    report("D2H pinned", gb / time_stream(d2h, 2, 10, [&] { d2h_to(down); }), "GB/s");
    report("D2H pageable", gb / time_stream(d2h, 1, 5, [&] { d2h_to(pageable_down.data()); }), "GB/s");
    // Both directions at once, each on its own stream: time the pair with the host clock.
    const double both_us = time_host_us(2, 10, [&] {
      BENCH_CHECK(cudaMemcpyAsync(p0, up, copy_bytes, cudaMemcpyHostToDevice, h2d));
      BENCH_CHECK(cudaMemcpyAsync(down, p1, copy_bytes, cudaMemcpyDeviceToHost, d2h));
      BENCH_CHECK(cudaStreamSynchronize(h2d));
      BENCH_CHECK(cudaStreamSynchronize(d2h));
    });
    report("H2D + D2H pinned at once (sum of both)", 2 * gb / (both_us * 1e-6), "GB/s");
    report("D2D copy (read + write)", 2 * gb / time_stream(h2d, 2, 10, [&] {
      BENCH_CHECK(cudaMemcpyAsync(p1, p0, copy_bytes, cudaMemcpyDeviceToDevice, h2d));
    }), "GB/s");
    must(dev->free(d0), "free");
    must(dev->free(d1), "free");
  }

  // ---- what the card holds for a segment (the arena's budget check counts these bytes) ----
  {
    const double mib = static_cast<double>(kMiB);
    for (std::uint64_t size_mib : {1, 2, 3, 4, 6, 16, 31, 32, 33, 64, 65, 130}) {
      const std::uint64_t before = dev->held_bytes();
      DevicePtr d = must(dev->allocate(size_mib * kMiB), "probe segment");
      report("held for one " + std::to_string(size_mib) + " MiB allocation",
             static_cast<double>(dev->held_bytes() - before) / mib, "MiB");
      must(dev->free(d), "free");
    }
    // Segments kept together, as the arena keeps them: 1 + 2 + 3 + ... MiB, then 65 MiB.
    std::vector<DevicePtr> kept;
    std::uint64_t asked = 0;
    const std::uint64_t start = dev->held_bytes();
    for (std::uint64_t size_mib : {1, 2, 3, 4, 6, 10, 16, 24, 32, 48, 65}) {
      kept.push_back(must(dev->allocate(size_mib * kMiB), "probe segment"));
      asked += size_mib * kMiB;
      report("held for " + std::to_string(kept.size()) + " segments of " + std::to_string(asked / kMiB) + " MiB",
             static_cast<double>(dev->held_bytes() - start) / mib, "MiB");
    }
    for (DevicePtr d : kept) must(dev->free(d), "free");
  }

  // ---- allocation ----
  {
    constexpr std::uint64_t kAlloc = 64 * kMiB;
    cudaStream_t s = dev->compute_stream();
    cudaMemPoolProps props{};
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = dev->ordinal();
    cudaMemPool_t raised = nullptr;
    BENCH_CHECK(cudaMemPoolCreate(&raised, &props));
    std::uint64_t threshold = budget;  // cuuint64_t
    BENCH_CHECK(cudaMemPoolSetAttribute(raised, cudaMemPoolAttrReleaseThreshold, &threshold));
    // Warm the pool so the raised threshold keeps the bytes.
    void* p = nullptr;
    BENCH_CHECK(cudaMallocFromPoolAsync(&p, kAlloc, raised, s));
    BENCH_CHECK(cudaFreeAsync(p, s));
    BENCH_CHECK(cudaStreamSynchronize(s));
    report("cudaMallocAsync+cudaFreeAsync 64 MiB, threshold=budget", time_host_us(100, 2000, [&] {
      BENCH_CHECK(cudaMallocFromPoolAsync(&p, kAlloc, raised, s));
      BENCH_CHECK(cudaFreeAsync(p, s));
    }), "us");
    report("  same + cudaStreamSynchronize", time_host_us(100, 2000, [&] {
      BENCH_CHECK(cudaMallocFromPoolAsync(&p, kAlloc, raised, s));
      BENCH_CHECK(cudaFreeAsync(p, s));
      BENCH_CHECK(cudaStreamSynchronize(s));
    }), "us");
    BENCH_CHECK(cudaMemPoolDestroy(raised));
    cudaMemPool_t zero = nullptr;
    BENCH_CHECK(cudaMemPoolCreate(&zero, &props));  // threshold 0: the default
    report("cudaMallocAsync+cudaFreeAsync+sync 64 MiB, threshold=0", time_host_us(10, 200, [&] {
      BENCH_CHECK(cudaMallocFromPoolAsync(&p, kAlloc, zero, s));
      BENCH_CHECK(cudaFreeAsync(p, s));
      BENCH_CHECK(cudaStreamSynchronize(s));
    }), "us");
    BENCH_CHECK(cudaMemPoolDestroy(zero));
    report("cudaMalloc+cudaFree 64 MiB", time_host_us(10, 200, [&] {
      BENCH_CHECK(cudaMalloc(&p, kAlloc));
      BENCH_CHECK(cudaFree(p));
    }), "us");
    report("CudaDevice::allocate+free 64 MiB (map+unmap)", time_host_us(100, 2000, [&] {
      DevicePtr d = must(dev->allocate(kAlloc), "allocate");
      must(dev->free(d), "free");
    }), "us");
    DeviceArena arena(*dev, {.cap_bytes = budget});
    report("DeviceArena::allocate+free 64 MiB (cached)", time_host_us(100, 2000, [&] {
      DeviceAllocation a = must(arena.allocate(kAlloc), "arena allocate");
      must(arena.free(a.ptr), "arena free");
    }), "us");
    std::printf("events created by CudaDevice so far: %zu\n", dev->events_created());
  }

  // ---- weight streaming through the residency manager ----
  {
    constexpr std::uint64_t kBlock = 64 * kMiB;
    const std::uint64_t weight_bytes = 4 * budget;
    const int blocks = static_cast<int>(weight_bytes / kBlock);
    PinnedHostPool pinned = must(PinnedHostPool::create(weight_bytes), "pinned weights");
    DeviceArena arena(*dev, {.cap_bytes = budget});
    ResidencyManager rm(arena);
    std::vector<BlockId> ids;
    for (int i = 0; i < blocks; ++i) {
      void* host = must(pinned.allocate(kBlock), "pinned block");
      std::memset(host, i, kBlock);
      ids.push_back(must(rm.register_block({.name = "layer" + std::to_string(i), .model = "big", .bytes = kBlock, .host = host}),
                         "register"));
    }
    rm.set_schedule(ids);
    // One pass: each layer acquired, the next one prefetched, then the host waits for the
    // layer's "kernels" (none here: the wait is for its copy), as a stage-major pipeline would.
    auto pass = [&](bool prefetch) {
      for (int i = 0; i < blocks; ++i) {
        must(rm.acquire(ids[i]), "acquire");
        if (prefetch) must(rm.prefetch(ids[(i + 1) % blocks]), "prefetch");
        must(dev->wait(dev->record_compute()), "wait");
        must(rm.release(ids[i]), "release");
      }
    };
    for (bool prefetch : {false, true}) {
      pass(prefetch);  // warm-up
      const std::uint64_t h2d0 = rm.stats().total.h2d_bytes;
      const double t0 = host_seconds();
      for (int r = 0; r < 3; ++r) pass(prefetch);
      must(dev->synchronize(), "sync");
      const double s = host_seconds() - t0;
      const double gbs = static_cast<double>(rm.stats().total.h2d_bytes - h2d0) / 1e9 / s;
      report(std::string("stream ") + format_bytes(weight_bytes) + " through " + format_bytes(budget) +
                 (prefetch ? ", prefetch 1 ahead" : ", no prefetch"), gbs, "GB/s");
      report(prefetch ? "  of the pinned H2D link (prefetch)" : "  of the pinned H2D link (no prefetch)",
             100.0 * gbs / pinned_h2d, "%");
    }
    const ResidencyCounters& t = rm.stats().total;
    std::printf("residency: %llu evictions, %llu prefetch hits, %llu late, %llu misses, peak arena %s of %s\n",
                static_cast<unsigned long long>(t.evictions), static_cast<unsigned long long>(t.prefetch_hits),
                static_cast<unsigned long long>(t.prefetch_late), static_cast<unsigned long long>(t.prefetch_misses),
                format_bytes(arena.stats().peak_reserved_bytes).c_str(), format_bytes(budget).c_str());
    if (arena.stats().peak_reserved_bytes > budget) {
      std::fprintf(stderr, "budget exceeded\n");
      return 1;
    }
  }

  std::printf("\n| what (%s) | value | unit |\n|---|---:|---|\n", dev->name().c_str());
  for (const Row& r : rows) std::printf("| %s | %.2f | %s |\n", r.what.c_str(), r.value, r.unit.c_str());
  return 0;
}
