// The native engine's CUDA backend on whole models (the default models and the replicas):
// CUDA vs CPU in fp32 and fp16; the budget never exceeded, by the arena's count and by
// cudaMemGetInfo, from "everything fits" down to weight streaming; allocation failures injected
// at every allocation of a run: a clean error, nothing leaked, and the next run correct.
#include <gtest/gtest.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <thread>
#include <atomic>
#include <chrono>
#include <span>

#include "gpu/compare.h"
#include "gpu/gpu_env.h"
#include "memory/budget.h"
#include "runtime/engines/cuda_executor.h"
#include "runtime/engines/cuda_runtime.h"
#include "onnx/onnx_loader.h"
#include "runtime/engines/executor.h"
#include "runtime/engines/native_engine.h"
#include "runtime/passes.h"

namespace fswap {
namespace {

using test::gpu_model;

const char* const kModels[] = {"fr_detect", "fr_landmark", "fr_feature", "inswapper_128", "arcface_w600k_r50",
                               "scrfd_2.5g", "yoloface_8n", "2dfan4", "hyperswap_1a_256", "simswap_256",
                               "gfpgan_1.4", "xseg", "bisenet_resnet_34", "retinaface_10g", "codeformer",
                               "real_esrgan_x4", "yunet_2023_mar", "fan_68_5"};

// Random inputs for the model's declared inputs (a dynamic batch = 1, dynamic spatial dims = 320;
// float in [-1, 1]).
std::vector<Tensor> inputs_for(InferenceSession& s, unsigned seed) {
  std::vector<Tensor> inputs;
  for (const TensorInfo& info : s.inputs()) {
    Shape shape = info.shape;
    for (std::size_t d = 0; d < shape.size(); ++d)
      if (shape[d] < 0) shape[d] = d < 2 ? 1 : 320;
    // codeformer's `weight` is float64: a value in [0, 1].
    inputs.push_back(info.dtype == DType::kFloat64 ? test::random_tensor(shape, seed++, 0, 1, DType::kFloat64)
                                                   : test::random_tensor(shape, seed++));
  }
  return inputs;
}

// One run of `path` on the GPU without a budget: its inputs (from `seed`), its outputs, and what the
// runtime held (the weights resident at peak, the arena's peak). The runtime is gone on return.
struct UnlimitedRun {
  std::vector<Tensor> inputs, outputs;
  // arena_peak: the most the run's allocations held at once (what the arena reserved beyond it is
  // cache, which keeps holes whole where the budget has room).
  std::uint64_t weight_bytes = 0, arena_peak = 0;
};
Result<UnlimitedRun> unlimited_run(NativeEngine& engine, const std::string& path, unsigned seed) {
  FSWAP_ASSIGN_OR_RETURN(auto s, engine.load(path, {.device = {DeviceKind::kCuda, 0}}));
  UnlimitedRun r;
  r.inputs = inputs_for(*s, seed);
  FSWAP_ASSIGN_OR_RETURN(r.outputs, s->run(r.inputs));
  const std::shared_ptr<CudaRuntime> rt = CudaRuntime::live().at(0);
  r.weight_bytes = rt->residency().stats().total.peak_resident_bytes;
  r.arena_peak = rt->arena().stats().peak_allocated_bytes;
  return r;
}

// The largest |value| of any float activation of the optimised model on these inputs (CPU, fp32).
// Replicas carry random weights without trained normalisation statistics, and some grow
// activations past the float16 range (65504), where any fp16 engine gives inf.
float max_activation(const std::string& path, const std::vector<Tensor>& inputs) {
  Graph g = load_onnx(path).value();
  EXPECT_TRUE(optimize(g).is_ok());
  g.outputs.clear();
  for (int v = 0; v < static_cast<int>(g.values.size()); ++v)
    if (g.values[v].dtype == DType::kFloat32 && g.constant_data(v) == nullptr && g.values[v].weight < 0)
      g.outputs.push_back(v);
  std::vector<Shape> shapes;
  std::vector<TensorView> views;
  for (const Tensor& t : inputs) {
    shapes.push_back(t.shape());
    views.push_back(t.view());
  }
  auto exec = Executor::create(g, shapes);
  EXPECT_TRUE(exec.is_ok()) << exec.status().to_string();
  auto outs = (*exec)->run(views);
  EXPECT_TRUE(outs.is_ok()) << outs.status().to_string();
  float peak = 0;
  for (const Tensor& t : *outs)
    if (t.dtype() == DType::kFloat32)
      for (std::int64_t i = 0; i < t.elements(); ++i) peak = std::max(peak, std::abs(t.data<float>()[i]));
  return peak;
}

// Replicas not yet drawn to keep their activations within float16 (PyTorch in fp16 gives non-finite
// values on codeformer's; real_esrgan_x4's is unmeasured). Any other model past the range is a
// replica generator regression, not a skip.
bool may_pass_float16_range(const std::string& model) { return model == "codeformer" || model == "real_esrgan_x4"; }

std::size_t device_used_bytes() {
  std::size_t free = 0, total = 0;
  EXPECT_EQ(cudaMemGetInfo(&free, &total), cudaSuccess);
  return total - free;
}

class CudaModel : public ::testing::TestWithParam<const char*> {};

TEST_P(CudaModel, MatchesTheCpuBackendInFp32AndFp16) {
  const std::string path = gpu_model(GetParam());
  if (path.empty()) GTEST_SKIP() << GetParam() << " not in FSWAP_GPU_MODELS";
  NativeEngine engine;
  auto cpu = engine.load(path, {});
  ASSERT_TRUE(cpu.is_ok()) << cpu.status().to_string();
  const auto inputs32 = inputs_for(**cpu, 11);
  const auto inputs16 = test::rounded_to_half(inputs32);
  const float peak = max_activation(path, inputs16);
  // Whole models accumulate rounding over dozens of layers: 1e-3 in fp32, 3e-2 in fp16.
  for (auto [precision, rtol] : {std::pair{Precision::kFloat32, 1e-3}, std::pair{Precision::kFloat16, 3e-2}}) {
    const bool fp16 = precision == Precision::kFloat16;
    if (fp16 && peak > 32768) {
      ASSERT_TRUE(may_pass_float16_range(GetParam()))
          << GetParam() << ": fp32 activations reach " << peak
          << ", past the float16 range; the replica's gains (tools/replicas/generate_replicas.py) must keep them within";
      std::printf("model %-18s fp16 n/a: fp32 activations reach %.3g, past the float16 range (random replica weights)\n",
                  GetParam(), peak);
      continue;
    }
    const auto& inputs = fp16 ? inputs16 : inputs32;
    auto want = (*cpu)->run(inputs);
    ASSERT_TRUE(want.is_ok()) << want.status().to_string();
    auto cuda = engine.load(path, {.device = {DeviceKind::kCuda, 0}, .precision = precision});
    ASSERT_TRUE(cuda.is_ok()) << cuda.status().to_string();
    // Run 1 goes node by node (cuDNN's algorithm search); run 2 meets its addresses for the first
    // time and goes node by node too; run 3 captures a CUDA graph and launches it; run 4
    // relaunches it.
    for (int run = 1; run <= 4; ++run) {
      auto got = (*cuda)->run(inputs);
      ASSERT_TRUE(got.is_ok()) << "run " << run << ": " << got.status().to_string();
      for (std::size_t i = 0; i < got->size(); ++i) {
        const std::string& name = (*cpu)->outputs()[i].name;
        const test::Comparison c = test::compare((*want)[i], (*got)[i], rtol);
        // A handful of elements may sit where an activation's slope is steep (sigmoid scores at 0.5).
        EXPECT_LE(c.bad, std::max<std::int64_t>(2, c.elements / 1000))
            << GetParam() << " run " << run << " output " << name << " " << (fp16 ? "fp16" : "fp32") << ": "
            << c.describe();
        if (run == 4)
          std::printf("model %-18s %s output %-12s worst relative error %.2e (activations up to %.3g)\n", GetParam(),
                      fp16 ? "fp16" : "fp32", name.c_str(), c.worst_relative, peak);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, CudaModel, ::testing::ValuesIn(kModels),
                         [](const auto& param_info) {
                           std::string n = param_info.param;
                           for (char& c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

// One model under shrinking budgets: the outputs stay those of the unlimited run (to fp16
// tolerance), the arena
// never holds more than the budget and the device's used memory grows by no more than it.
TEST(CudaBudget, NeverExceededFromAllResidentToStreaming) {
  const std::string path = gpu_model("inswapper_128");
  if (path.empty()) GTEST_SKIP() << "inswapper_128 not in FSWAP_GPU_MODELS";
  NativeEngine engine;
  Result<UnlimitedRun> unlimited = unlimited_run(engine, path, 5);
  ASSERT_TRUE(unlimited.is_ok()) << unlimited.status().to_string();
  const std::vector<Tensor>& inputs = unlimited->inputs;
  const std::vector<Tensor>& reference = unlimited->outputs;
  const std::uint64_t weight_bytes = unlimited->weight_bytes;
  ASSERT_GT(weight_bytes, 0u);
  // Weights move in chunks sized by the budget (memory/weight_chunks.h). 25% = 66 MiB, 20% = 53 MiB,
  // 18% = 47.5 MiB: the activation plan (28 MiB in fp16) plus one 19 MiB layer is the arena's floor,
  // and the CUDA pool maps 32 MiB pieces, which the budget counts too (DeviceBackend::held_bytes).
  // Below 50% a clean kOutOfMemory is also accepted (measured on an H200: 25% is refused); what ran is printed.
  for (double fraction : {1.5, 0.5, 0.25, 0.2, 0.18, 0.16}) {
    const auto budget = static_cast<std::uint64_t>(static_cast<double>(weight_bytes) * fraction);
    const std::size_t used_before = device_used_bytes();
    auto s = engine.load(path, {.device = {DeviceKind::kCuda, 0}, .vram_budget = std::to_string(budget)});
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    bool refused = false;
    for (int run = 0; run < 3 && !refused; ++run) {
      auto out = (*s)->run(inputs);
      if (!out.is_ok() && fraction < 0.5 && out.status().code() == StatusCode::kOutOfMemory) {
        std::printf("budget %4.0f%% of weights (%s): refused: %s\n", fraction * 100, memory::format_bytes(budget).c_str(),
                    out.status().to_string().c_str());
        refused = true;
        break;
      }
      ASSERT_TRUE(out.is_ok()) << "budget " << fraction << ": " << out.status().to_string();
      // fp16; a short budget leaves less workspace, so cuDNN may run other algorithms: fp16 tolerance.
      const test::Comparison c = test::compare(reference[0], (*out)[0], 1e-2);
      EXPECT_EQ(c.bad, 0) << "budget " << fraction << ": " << c.describe();
    }
    auto rt = CudaRuntime::live();
    ASSERT_EQ(rt.size(), 1u);
    const memory::ArenaStats arena = rt[0]->arena().stats();
    const memory::MemoryStats& mem = rt[0]->residency().stats();
    EXPECT_LE(arena.peak_reserved_bytes, budget);
    // cuDNN and cuBLASLt keep a little memory of their own outside the pool (the margin's purpose).
    const std::size_t used_delta = device_used_bytes() - std::min(device_used_bytes(), used_before);
    EXPECT_LE(used_delta, budget + (64ull << 20)) << "budget " << fraction;
    if (refused) continue;
    std::printf("budget %4.0f%% of weights (%s): arena peak %s, device +%s, H2D %s in %llu copies, evictions %llu, "
                "prefetch hits %llu late %llu misses %llu, ring passes %llu\n",
                fraction * 100, memory::format_bytes(budget).c_str(),
                memory::format_bytes(arena.peak_reserved_bytes).c_str(), memory::format_bytes(used_delta).c_str(),
                memory::format_bytes(mem.total.h2d_bytes).c_str(), static_cast<unsigned long long>(mem.total.h2d_copies),
                static_cast<unsigned long long>(mem.total.evictions),
                static_cast<unsigned long long>(mem.total.prefetch_hits),
                static_cast<unsigned long long>(mem.total.prefetch_late),
                static_cast<unsigned long long>(mem.total.prefetch_misses),
                static_cast<unsigned long long>(mem.total.ring_passes));
  }
}

// --memory-mode unified: the weights in managed memory (read-mostly, preferred on the device),
// prefetched once on the copy stream, charged to the budget. Same outputs as explicit mode; every
// weight byte prefetched exactly once over three runs; under a budget that cannot hold the weights
// the model streams them as explicit mode does (managed memory is never oversubscribed: see
// docs/DESIGN.md), with the same outputs.
TEST(CudaUnified, MatchesExplicitAndPrefetchesEachWeightOnce) {
  const std::string path = gpu_model("inswapper_128");
  if (path.empty()) GTEST_SKIP() << "inswapper_128 not in FSWAP_GPU_MODELS";
  NativeEngine engine;
  Result<UnlimitedRun> unlimited = unlimited_run(engine, path, 7);
  ASSERT_TRUE(unlimited.is_ok()) << unlimited.status().to_string();
  const std::vector<Tensor>& inputs = unlimited->inputs;
  const std::vector<Tensor>& reference = unlimited->outputs;
  const std::uint64_t weight_bytes = unlimited->weight_bytes;
  // A unified session under `budget`, run `runs` times, each output compared with the reference;
  // null when it does not load or a run fails.
  const auto unified_runs = [&](std::uint64_t budget, int runs) -> std::unique_ptr<InferenceSession> {
    auto s = engine.load(path, {.device = {DeviceKind::kCuda, 0},
                                .vram_budget = std::to_string(budget),
                                .memory_mode = MemoryMode::kUnified});
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    if (!s.is_ok()) return nullptr;
    for (int run = 0; run < runs; ++run) {
      auto out = (*s)->run(inputs);
      EXPECT_TRUE(out.is_ok()) << "run " << run << ": " << out.status().to_string();
      if (!out.is_ok()) return nullptr;
      const test::Comparison c = test::compare(reference[0], (*out)[0], 1e-2);
      EXPECT_EQ(c.bad, 0) << "run " << run << ": " << c.describe();
    }
    return std::move(*s);
  };
  {
    const std::size_t used_before = device_used_bytes();
    const std::uint64_t budget = 2 * weight_bytes;
    const auto s = unified_runs(budget, 3);
    ASSERT_NE(s, nullptr);
    auto rt = CudaRuntime::live();
    ASSERT_EQ(rt.size(), 1u);
    const memory::ResidencyCounters& total = rt[0]->residency().stats().total;
    EXPECT_EQ(total.managed_bytes, weight_bytes);
    EXPECT_EQ(total.managed_prefetch_bytes, weight_bytes);
    EXPECT_EQ(total.h2d_bytes, 0u);
    EXPECT_LE(rt[0]->arena().stats().peak_reserved_bytes, budget);
    const std::size_t used_delta = device_used_bytes() - std::min(device_used_bytes(), used_before);
    EXPECT_LE(used_delta, budget + (64ull << 20));
    std::printf("unified: weights %s managed, prefetched %s in %llu prefetches, arena peak (with managed) %s, device +%s\n",
                memory::format_bytes(total.managed_bytes).c_str(),
                memory::format_bytes(total.managed_prefetch_bytes).c_str(),
                static_cast<unsigned long long>(total.managed_prefetches),
                memory::format_bytes(rt[0]->arena().stats().peak_reserved_bytes).c_str(),
                memory::format_bytes(used_delta).c_str());
  }
  {
    // Half the weights: they cannot be managed memory within the budget, so the model streams them
    // from pinned host memory as explicit mode does (never more managed memory than fits).
    const std::uint64_t budget = weight_bytes / 2;
    const auto s = unified_runs(budget, 2);
    ASSERT_NE(s, nullptr);
    auto rt = CudaRuntime::live();
    ASSERT_EQ(rt.size(), 1u);
    const memory::ResidencyCounters& total = rt[0]->residency().stats().total;
    EXPECT_EQ(total.managed_bytes, 0u);
    EXPECT_GT(total.h2d_bytes, weight_bytes) << "two runs stream the weights at least once each";
    EXPECT_LE(rt[0]->arena().stats().peak_reserved_bytes, budget);
    std::printf("unified at 50%% of the weights: streamed as explicit, H2D %s in %llu copies, arena peak %s\n",
                memory::format_bytes(total.h2d_bytes).c_str(), static_cast<unsigned long long>(total.h2d_copies),
                memory::format_bytes(rt[0]->arena().stats().peak_reserved_bytes).c_str());
  }
}

// A model's weight ring starts where its own activation plan ends: a ring that fits in the part
// of a larger plan's activations the model leaves unused takes no memory of its own, and a longer
// one grows the lane's buffer only by what it lacks there (before, each ring was added above the
// largest plan: 47 MiB of a 402 MiB budget went to a ring nothing needed).
TEST(CudaRuntime, AWeightRingGrowsTheLaneOnlyByWhatTheLargestPlanLeavesShort) {
  Result<std::shared_ptr<CudaRuntime>> rt = CudaRuntime::acquire({.device = 0, .vram_budget = "1GiB"});
  ASSERT_TRUE(rt.is_ok()) << rt.status().to_string();
  constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;
  auto lock = (*rt)->enter();
  ASSERT_TRUE((*rt)->activations(80 * kMiB).is_ok());
  EXPECT_EQ((*rt)->lane_growth(24 * kMiB, 40 * kMiB), 0u);
  EXPECT_EQ((*rt)->lane_growth(24 * kMiB, 70 * kMiB), 14 * kMiB);
  const std::uint64_t allocated = (*rt)->arena().allocated_bytes();
  Result<CudaRuntime::Ring> inside = (*rt)->weight_ring(24 * kMiB, 40 * kMiB);
  ASSERT_TRUE(inside.is_ok()) << inside.status().to_string();
  EXPECT_EQ(inside->offset, 24 * kMiB);
  EXPECT_EQ(inside->bytes, 56 * kMiB);  // the rest of the 80 MiB plan's bytes
  EXPECT_EQ((*rt)->arena().allocated_bytes(), allocated);
  Result<CudaRuntime::Ring> longer = (*rt)->weight_ring(24 * kMiB, 70 * kMiB);
  ASSERT_TRUE(longer.is_ok()) << longer.status().to_string();
  EXPECT_EQ(longer->bytes, 70 * kMiB);
  EXPECT_EQ((*rt)->lane_growth(80 * kMiB, 0), 0u);  // the largest plan still fits below it
  Result<memory::DevicePtr> plan = (*rt)->activations(80 * kMiB);
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  EXPECT_EQ(plan->address + 24 * kMiB, longer->address);  // the same buffer
  EXPECT_TRUE((*rt)->release_scratch().is_ok());
}

// An enhancer (many nodes for its bytes) under half of what it holds unlimited: from the second
// run on its weights stream through the weight ring's CUDA graph, and the outputs stay those of the
// unlimited run (fp16 tolerance) with the arena within the budget.
TEST(CudaBudget, AnEnhancerThatDoesNotFitStreamsThroughTheWeightRing) {
  const std::string path = gpu_model("gfpgan_1.4");
  if (path.empty()) GTEST_SKIP() << "gfpgan_1.4 not in FSWAP_GPU_MODELS";
  NativeEngine engine;
  Result<UnlimitedRun> unlimited = unlimited_run(engine, path, 9);
  ASSERT_TRUE(unlimited.is_ok()) << unlimited.status().to_string();
  const std::vector<Tensor>& inputs = unlimited->inputs;
  const std::vector<Tensor>& reference = unlimited->outputs;
  const std::uint64_t budget = unlimited->arena_peak / 2;
  auto s = engine.load(path, {.device = {DeviceKind::kCuda, 0}, .vram_budget = std::to_string(budget)});
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  for (int run = 0; run < 3; ++run) {
    auto out = (*s)->run(inputs);
    ASSERT_TRUE(out.is_ok()) << "run " << run << ": " << out.status().to_string();
    const test::Comparison c = test::compare(reference[0], (*out)[0], 1e-2);
    EXPECT_EQ(c.bad, 0) << "run " << run << ": " << c.describe();
  }
  auto rt = CudaRuntime::live();
  ASSERT_EQ(rt.size(), 1u);
  const memory::ResidencyCounters& mem = rt[0]->residency().stats().total;
  EXPECT_EQ(mem.ring_passes, 2u);
  EXPECT_LE(rt[0]->arena().stats().peak_reserved_bytes, budget);
  std::printf("gfpgan_1.4 under %s (half its unlimited peak): %llu passes through the weight ring, H2D %s in %llu copies\n",
              memory::format_bytes(budget).c_str(), static_cast<unsigned long long>(mem.ring_passes),
              memory::format_bytes(mem.h2d_bytes).c_str(), static_cast<unsigned long long>(mem.h2d_copies));
}

// Two models run in turn under a budget that holds one at a time: once the runtime has seen the
// order, issuing the first one's run starts the copy of the second one's first weights (before
// it runs: its first chunks, or its weight ring's head when it streams through the ring), and its
// run then finds them there; outputs stay those of the unlimited runs. The first is the dearer
// to stream (more nodes per byte), so its runs push out the second's weights (the other way
// round the dearer one would stay and nothing would need a prefetch).
TEST(CudaBudget, ModelsRunInTurnPrefetchTheNextOnesFirstWeights) {
  const std::string first = gpu_model("2dfan4"), next = gpu_model("arcface_w600k_r50");
  if (first.empty() || next.empty()) GTEST_SKIP() << "2dfan4 or arcface_w600k_r50 not in FSWAP_GPU_MODELS";
  NativeEngine engine;
  // Twice: the first runs may search cuDNN's algorithms, with workspaces a warm run never takes.
  for (const std::string& path : {first, next}) ASSERT_TRUE(unlimited_run(engine, path, 4).is_ok()) << path;
  Result<UnlimitedRun> a = unlimited_run(engine, first, 5), b = unlimited_run(engine, next, 6);
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  // Each fits alone (the larger one's unlimited peak), the two do not.
  const std::uint64_t budget = std::max(a->arena_peak, b->arena_peak);
  ASSERT_LT(budget, a->weight_bytes + b->weight_bytes) << "the budget must not hold both models' weights";
  const SessionOptions options{.device = {DeviceKind::kCuda, 0}, .vram_budget = std::to_string(budget)};
  auto sa = engine.load(first, options);
  auto sb = engine.load(next, options);
  ASSERT_TRUE(sa.is_ok()) << sa.status().to_string();
  ASSERT_TRUE(sb.is_ok()) << sb.status().to_string();
  auto check = [](const std::vector<Tensor>& reference, Result<std::vector<Tensor>> got, const char* what) {
    ASSERT_TRUE(got.is_ok()) << what << ": " << got.status().to_string();
    const test::Comparison c = test::compare(reference[0], (*got)[0], 1e-2);
    EXPECT_LE(c.bad, std::max<std::int64_t>(2, c.elements / 1000)) << what << ": " << c.describe();
  };
  for (int pass = 0; pass < 3; ++pass) {
    check(a->outputs, (*sa)->run(a->inputs), "2dfan4");
    check(b->outputs, (*sb)->run(b->inputs), "arcface");
  }
  auto rt = CudaRuntime::live();
  ASSERT_EQ(rt.size(), 1u);
  auto counters = [&] { return rt[0]->residency().stats().per_model.at("arcface_w600k_r50"); };
  const memory::ResidencyCounters before = counters();
  check(a->outputs, (*sa)->run(a->inputs), "2dfan4");
  const memory::ResidencyCounters after_first = counters();
  check(b->outputs, (*sb)->run(b->inputs), "arcface");
  const memory::ResidencyCounters after_next = counters();
  const std::uint64_t prefetched = after_first.prefetches_issued - before.prefetches_issued;
  const std::uint64_t found = after_next.prefetch_hits + after_next.prefetch_late - after_first.prefetch_hits -
                              after_first.prefetch_late;
  const std::uint64_t ring_ahead = after_next.ring_ahead_bytes - after_first.ring_ahead_bytes;
  EXPECT_TRUE((prefetched > 0 && found > 0) || ring_ahead > 0) << "arcface's first weights were not copied ahead";
  EXPECT_LE(rt[0]->arena().stats().peak_reserved_bytes, budget);
  std::printf("2dfan4 then arcface under %s: arcface prefetched %llu chunks during 2dfan4's run, %llu acquired prefetched, "
              "%s of its weight ring's head copied ahead\n",
              memory::format_bytes(budget).c_str(), static_cast<unsigned long long>(prefetched),
              static_cast<unsigned long long>(found), memory::format_bytes(ring_ahead).c_str());
}

// bench_native's light pipeline (swapper, face enhancer, frame enhancer on a 64x64 tile) in turn
// under room for a quarter of its weights beside the activations: the streamed models go through
// the lane's weight ring, the swapper's ring head is copied during the frame enhancer's run before
// it (above the bytes that run uses), and every pass's outputs stay those of the unlimited runs
// with the arena within the budget.
TEST(CudaBudget, ModelsStreamingInTurnLoadTheNextRingsHeadDuringTheRunBefore) {
  const char* names[] = {"inswapper_128", "gfpgan_1.4", "real_esrgan_x4"};
  std::vector<std::string> paths;
  for (const char* name : names) {
    paths.push_back(gpu_model(name));
    if (paths.back().empty()) GTEST_SKIP() << name << " not in FSWAP_GPU_MODELS";
  }
  NativeEngine engine;
  struct Stage {
    std::vector<Tensor> inputs, reference;
    std::unique_ptr<InferenceSession> session;
  };
  std::vector<Stage> stages(paths.size());
  std::uint64_t weights = 0, headroom = 0;
  for (int round = 0; round < 2; ++round) {  // the first may search cuDNN's algorithms (larger workspaces)
    weights = headroom = 0;
    for (std::size_t i = 0; i < paths.size(); ++i) {
      auto s = engine.load(paths[i], {.device = {DeviceKind::kCuda, 0}});
      ASSERT_TRUE(s.is_ok()) << s.status().to_string();
      stages[i].inputs.clear();
      unsigned seed = 20 + static_cast<unsigned>(i);
      for (const TensorInfo& info : (*s)->inputs()) {
        Shape shape = info.shape;
        for (std::size_t d = 0; d < shape.size(); ++d)
          if (shape[d] < 0) shape[d] = d < 2 ? 1 : 64;
        stages[i].inputs.push_back(test::random_tensor(shape, seed++, 0, 1));
      }
      auto out = (*s)->run(stages[i].inputs);
      ASSERT_TRUE(out.is_ok()) << out.status().to_string();
      stages[i].reference = std::move(*out);
      const std::shared_ptr<CudaRuntime> rt = CudaRuntime::live().at(0);
      const std::uint64_t w = rt->residency().stats().total.peak_resident_bytes;
      weights += w;
      headroom = std::max(headroom, rt->arena().stats().peak_allocated_bytes - w);
    }
  }
  const std::uint64_t budget = headroom + weights / 4;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    auto s = engine.load(paths[i], {.device = {DeviceKind::kCuda, 0}, .vram_budget = std::to_string(budget)});
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    stages[i].session = std::move(*s);
  }
  for (int pass = 0; pass < 6; ++pass)
    for (std::size_t i = 0; i < stages.size(); ++i) {
      auto out = stages[i].session->run(stages[i].inputs);
      ASSERT_TRUE(out.is_ok()) << names[i] << " pass " << pass << ": " << out.status().to_string();
      const test::Comparison c = test::compare(stages[i].reference[0], (*out)[0], 1e-2);
      EXPECT_LE(c.bad, std::max<std::int64_t>(2, c.elements / 1000)) << names[i] << " pass " << pass << ": " << c.describe();
    }
  auto rt = CudaRuntime::live();
  ASSERT_EQ(rt.size(), 1u);
  const memory::ResidencyCounters& swapper = rt[0]->residency().stats().per_model.at("inswapper_128");
  EXPECT_GT(swapper.ring_passes, 0u);
  EXPECT_GT(swapper.ring_ahead_bytes, 0u) << "the swapper's ring head was never copied during the run before";
  EXPECT_LE(rt[0]->arena().stats().peak_reserved_bytes, budget);
  std::printf("light pipeline under %s (weights %s): inswapper %llu ring passes, %s of their %s copied during the run before\n",
              memory::format_bytes(budget).c_str(), memory::format_bytes(weights).c_str(),
              static_cast<unsigned long long>(swapper.ring_passes), memory::format_bytes(swapper.ring_ahead_bytes).c_str(),
              memory::format_bytes(swapper.ring_h2d_bytes).c_str());
}

TEST(CudaBudget, TooSmallForOneLayerIsACleanOutOfMemory) {
  const std::string path = gpu_model("inswapper_128");
  if (path.empty()) GTEST_SKIP() << "inswapper_128 not in FSWAP_GPU_MODELS";
  NativeEngine engine;
  auto s = engine.load(path, {.device = {DeviceKind::kCuda, 0}, .vram_budget = "1MiB"});
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  auto out = (*s)->run(inputs_for(**s, 5));
  ASSERT_FALSE(out.is_ok());
  EXPECT_EQ(out.status().code(), StatusCode::kOutOfMemory) << out.status().to_string();
}

// ArcFace at batch 3, CUDA against the CPU backend in fp32 and fp16 (CudaModel's tolerances): the
// Convs that took its pre-activation BatchNormalizations add a residual of batch 1 to every item
// (runtime/passes.h), which CudaModel's batch 1 does not broadcast.
TEST(CudaModelBatch, ArcfaceAtBatch3MatchesTheCpuBackend) {
  const std::string path = gpu_model("arcface_w600k_r50");
  if (path.empty()) GTEST_SKIP() << "arcface_w600k_r50 not in FSWAP_GPU_MODELS";
  NativeEngine engine;
  auto cpu = engine.load(path, {.device = {DeviceKind::kCpu, 0}, .batch = 3});
  ASSERT_TRUE(cpu.is_ok()) << cpu.status().to_string();
  const std::vector<Tensor> inputs32 = {test::random_tensor({3, 3, 112, 112}, 12)};
  const std::vector<Tensor> inputs16 = test::rounded_to_half(inputs32);
  for (auto [precision, rtol] : {std::pair{Precision::kFloat32, 1e-3}, std::pair{Precision::kFloat16, 3e-2}}) {
    const bool fp16 = precision == Precision::kFloat16;
    const auto& inputs = fp16 ? inputs16 : inputs32;
    auto want = (*cpu)->run(inputs);
    ASSERT_TRUE(want.is_ok()) << want.status().to_string();
    auto cuda = engine.load(path, {.device = {DeviceKind::kCuda, 0}, .precision = precision, .batch = 3});
    ASSERT_TRUE(cuda.is_ok()) << cuda.status().to_string();
    for (int run = 1; run <= 2; ++run) {  // node by node, then the CUDA graph
      auto got = (*cuda)->run(inputs);
      ASSERT_TRUE(got.is_ok()) << "run " << run << ": " << got.status().to_string();
      const test::Comparison c = test::compare((*want)[0], (*got)[0], rtol);
      EXPECT_LE(c.bad, std::max<std::int64_t>(2, c.elements / 1000))
          << "run " << run << " " << (fp16 ? "fp16" : "fp32") << ": " << c.describe();
      if (run == 2)
        std::printf("arcface batch 3 %s worst relative error %.2e\n", fp16 ? "fp16" : "fp32", c.worst_relative);
    }
  }
}

// A batch whose activations do not fit the budget beside the weights runs in parts (halves, as
// often as needed; NativeSession), never failing: same outputs as the unlimited batch to fp16
// tolerance, the arena within the budget. The budget lies between what batch 1 and batch 32 of
// arcface (a dynamic batch) hold when unlimited.
TEST(CudaBudget, ABatchTooLargeForTheBudgetRunsInParts) {
  const std::string path = gpu_model("arcface_w600k_r50");
  if (path.empty()) GTEST_SKIP() << "arcface_w600k_r50 not in FSWAP_GPU_MODELS";
  const std::vector<Tensor> inputs = {test::random_tensor({32, 3, 112, 112}, 3)};
  auto peak_of = [&](const std::vector<Tensor>& in, std::vector<Tensor>* out) -> std::uint64_t {
    NativeEngine engine;
    auto s = engine.load(path, {.device = {DeviceKind::kCuda, 0}, .batch = 32});
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    if (!s) return 0;
    auto got = (*s)->run(in);
    EXPECT_TRUE(got.is_ok()) << got.status().to_string();
    if (got && out) *out = std::move(*got);
    return CudaRuntime::live().at(0)->arena().stats().peak_reserved_bytes;
  };
  std::vector<Tensor> reference;
  const std::uint64_t whole = peak_of(inputs, &reference);
  const std::uint64_t single = peak_of({test::random_tensor({1, 3, 112, 112}, 4)}, nullptr);
  ASSERT_GT(whole, single);
  const std::uint64_t budget = (whole + single) / 2;
  NativeEngine engine;
  auto s = engine.load(path, {.device = {DeviceKind::kCuda, 0}, .vram_budget = std::to_string(budget), .batch = 32});
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  for (int run = 0; run < 2; ++run) {
    auto out = (*s)->run(inputs);
    ASSERT_TRUE(out.is_ok()) << "run " << run << ": " << out.status().to_string();
    ASSERT_EQ((*out)[0].shape(), reference[0].shape());
    const test::Comparison c = test::compare(reference[0], (*out)[0], 1e-2);
    EXPECT_LE(c.bad, c.elements / 1000) << "run " << run << ": " << c.describe();
  }
  auto rt = CudaRuntime::live();
  ASSERT_EQ(rt.size(), 1u);
  EXPECT_LE(rt[0]->arena().stats().peak_reserved_bytes, budget);
  std::printf("budget %s (batch 1 holds %s, batch 32 %s unlimited): arcface batch 32 ran in parts, arena peak %s\n",
              memory::format_bytes(budget).c_str(), memory::format_bytes(single).c_str(),
              memory::format_bytes(whole).c_str(), memory::format_bytes(rt[0]->arena().stats().peak_reserved_bytes).c_str());
}

// The runtime's GPU-busy figure: N runs of a small model are N runs counted, and their time on
// the compute stream is positive and no more than the runs' wall time; the engine's statistics
// and the memory summary report it.
TEST(CudaGpuBusy, CountsEachRunWithinItsWallTime) {
  const std::string path = gpu_model("fr_detect");
  if (path.empty()) GTEST_SKIP() << "fr_detect not in FSWAP_GPU_MODELS";
  NativeEngine engine;
  auto s = engine.load(path, {.device = {DeviceKind::kCuda, 0}});
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  const auto inputs = inputs_for(**s, 11);
  auto warm = (*s)->run(inputs);  // cuDNN's algorithm search; the run after next captures a CUDA graph
  ASSERT_TRUE(warm.is_ok()) << warm.status().to_string();
  auto rt = CudaRuntime::live();
  ASSERT_EQ(rt.size(), 1u);
  const CudaRuntime::GpuBusy before = rt[0]->gpu_busy();
  EXPECT_GE(before.runs, 1u);
  constexpr int kRuns = 20;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kRuns; ++i) {
    auto out = (*s)->run(inputs);
    ASSERT_TRUE(out.is_ok()) << "run " << i << ": " << out.status().to_string();
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const CudaRuntime::GpuBusy after = rt[0]->gpu_busy();
  const double busy = after.seconds - before.seconds;
  EXPECT_EQ(after.runs - before.runs, static_cast<std::uint64_t>(kRuns));
  EXPECT_GT(busy, 0.0);
  EXPECT_LE(busy, wall);
  const auto stats = engine.memory_stats();
  ASSERT_TRUE(stats.has_value());
  EXPECT_DOUBLE_EQ(stats->gpu_busy_seconds, after.seconds);
  EXPECT_NE(engine.memory_summary().find("gpu busy"), std::string::npos) << engine.memory_summary();
  std::printf("fr_detect: %d runs in %.2f ms of wall time, GPU busy %.2f ms (%.0f%%)\n", kRuns, wall * 1e3, busy * 1e3,
              100 * busy / wall);
}

// Device buffers holding `tensors` (uploaded on the device's stream), as the device tensors of a
// run_on_device; `buffers` keeps them. Caller holds gpu.hold().
std::vector<DeviceTensor> on_device(DeviceWork& gpu, const std::vector<Tensor>& tensors,
                                    std::vector<DeviceBuffer>& buffers) {
  std::vector<DeviceTensor> device;
  for (const Tensor& t : tensors) {
    auto buffer = gpu.allocate(t.view().bytes());
    EXPECT_TRUE(buffer.is_ok()) << buffer.status().to_string();
    if (!buffer.is_ok()) return {};
    EXPECT_TRUE(gpu.upload(buffer->data(), t.raw(), HostRows::contiguous(t.view().bytes())).is_ok());
    device.push_back({buffer->data(), t.dtype(), t.shape()});
    buffers.push_back(std::move(*buffer));
  }
  return device;
}

// The mean GPU ms of `runs` device-resident runs (run_on_device: no host copies in the timed span),
// by the runtime's event timing: a plain run, a CUDA graph after the first.
double device_run_gpu_ms(InferenceSession& s, const std::vector<Tensor>& inputs, int runs) {
  DeviceWork* gpu = s.device_work();
  auto* runtime = dynamic_cast<CudaRuntime*>(gpu);
  EXPECT_NE(runtime, nullptr);
  if (runtime == nullptr) return 0;
  auto held = gpu->hold();
  std::vector<DeviceBuffer> buffers;
  const std::vector<DeviceTensor> tensors = on_device(*gpu, inputs, buffers);
  if (tensors.size() != inputs.size()) return 0;
  CudaRuntime::GpuBusy before{};
  for (int i = 0; i < runs + 2; ++i) {  // two untimed: cuDNN's search, the graph's capture
    if (i == 2) before = runtime->gpu_busy();
    Status run = s.run_on_device(tensors, [](std::span<const DeviceTensor>) { return Status::ok(); });
    EXPECT_TRUE(run.is_ok()) << run.to_string();
    std::uint8_t sink = 0;
    EXPECT_TRUE(gpu->download(&sink, buffers[0].data(), 1).is_ok());  // waits for the run
  }
  const CudaRuntime::GpuBusy after = runtime->gpu_busy();
  EXPECT_EQ(after.runs - before.runs, static_cast<std::uint64_t>(runs));
  return (after.seconds - before.seconds) / runs * 1e3;
}

// Overwrites device tensors made by on_device with `tensors` of the same shapes.
void rewrite(DeviceWork& gpu, const std::vector<DeviceTensor>& device, const std::vector<Tensor>& tensors) {
  for (std::size_t i = 0; i < device.size(); ++i)
    EXPECT_TRUE(gpu.upload(device[i].data, tensors[i].raw(), HostRows::contiguous(tensors[i].view().bytes())).is_ok());
}

// One run_on_device whose first output must equal want[0] within 1e-5 (`what` names the run in
// failures); returns that output where it lies (valid until the next run). Caller holds gpu.hold().
DeviceTensor expect_device_run(InferenceSession& s, DeviceWork& gpu, const std::vector<DeviceTensor>& inputs,
                               const std::vector<Tensor>& want, const std::string& what) {
  DeviceTensor first{};
  Status run = s.run_on_device(inputs, [&](std::span<const DeviceTensor> outputs) -> Status {
    Tensor got = Tensor::zeros(outputs[0].dtype, outputs[0].shape);
    FSWAP_RETURN_IF_ERROR(gpu.download(got.raw(), outputs[0].data, got.view().bytes()));
    const test::Comparison c = test::compare(want[0], got, 1e-5);
    EXPECT_EQ(c.bad, 0) << what << ": " << c.describe();
    first = outputs[0];
    return Status::ok();
  });
  EXPECT_TRUE(run.is_ok()) << what << ": " << run.to_string();
  return first;
}

// A CUDA session of `model` in fp16, or null (the test skips) when the model is not there.
std::unique_ptr<InferenceSession> fp16_session(NativeEngine& engine, const std::string& model) {
  const std::string path = gpu_model(model);
  if (path.empty()) return nullptr;
  auto s = engine.load(path, {.device = {DeviceKind::kCuda, 0}, .precision = Precision::kFloat16});
  EXPECT_TRUE(s.is_ok()) << s.status().to_string();
  return s.is_ok() ? std::move(*s) : nullptr;
}

// run_on_device reads inputs at the previous call's addresses in place (a CUDA graph baking them
// in from the third such call) and copies others: on one buffer, new contents written between
// calls are what the next run sees, and every run gives what run() gives on the same host inputs.
TEST(CudaDeviceRuns, InputsAtTheSameAddressesAreReadInPlaceAndFollowTheirContents) {
  NativeEngine engine;
  auto s = fp16_session(engine, "inswapper_128");  // two inputs: the target crop and the source embedding
  if (!s) GTEST_SKIP() << "inswapper_128 not in FSWAP_GPU_MODELS";
  const std::vector<Tensor> a = inputs_for(*s, 31), b = inputs_for(*s, 41);
  auto want_a = s->run(a), want_b = s->run(b);
  ASSERT_TRUE(want_a.is_ok() && want_b.is_ok());
  DeviceWork* gpu = s->device_work();
  ASSERT_NE(gpu, nullptr);
  auto held = gpu->hold();
  std::vector<DeviceBuffer> buffers;
  const std::vector<DeviceTensor> x = on_device(*gpu, a, buffers), y = on_device(*gpu, a, buffers);
  ASSERT_EQ(y.size(), a.size());
  for (int i = 0; i < 4; ++i) expect_device_run(*s, *gpu, x, *want_a, "x holding a, call " + std::to_string(i + 1));
  rewrite(*gpu, x, b);  // the same addresses, new contents: the graph reads them
  expect_device_run(*s, *gpu, x, *want_b, "x rewritten with b");
  expect_device_run(*s, *gpu, y, *want_a, "y holding a");  // new addresses: copied
  expect_device_run(*s, *gpu, x, *want_b, "back to x");
}

// Inputs whose addresses change in pairs (x, x, y, y, ...) never make a run go node by node: an
// in-place graph that would not launch leaves its inputs copied for the graph that does.
TEST(CudaDeviceRuns, InputsMovingInPairsRunNoNodeByNode) {
  NativeEngine engine;
  auto s = fp16_session(engine, "inswapper_128");
  if (!s) GTEST_SKIP() << "inswapper_128 not in FSWAP_GPU_MODELS";
  const std::vector<Tensor> a = inputs_for(*s, 61);
  auto want = s->run(a);
  ASSERT_TRUE(want.is_ok()) << want.status().to_string();
  auto* runtime = dynamic_cast<CudaRuntime*>(s->device_work());
  ASSERT_NE(runtime, nullptr);
  auto held = runtime->hold();
  std::vector<DeviceBuffer> buffers;
  const std::vector<DeviceTensor> x = on_device(*runtime, a, buffers), y = on_device(*runtime, a, buffers);
  ASSERT_EQ(y.size(), a.size());
  // Warm-up: both graphs captured (x read in place, y copied).
  for (int i = 0; i < 3; ++i) expect_device_run(*s, *runtime, x, *want, "warm-up x " + std::to_string(i));
  expect_device_run(*s, *runtime, y, *want, "warm-up y");
  const std::uint64_t node_runs = runtime->issue_times().node_runs;
  for (int i = 0; i < 16; ++i) expect_device_run(*s, *runtime, i % 4 < 2 ? x : y, *want, "call " + std::to_string(i));
  EXPECT_EQ(runtime->issue_times().node_runs, node_runs);
}

// A run's outputs passed on as the next run's inputs lie in the lane's buffer, which that run's
// activations overwrite: they are copied first, also on the second call from the same address
// (gfpgan's output is its input's shape, so its outputs feed it again).
TEST(CudaDeviceRuns, APreviousRunsOutputsPassedOnAreCopiedNotReadInPlace) {
  NativeEngine engine;
  auto s = fp16_session(engine, "gfpgan_1.4");
  if (!s) GTEST_SKIP() << "gfpgan_1.4 not in FSWAP_GPU_MODELS";
  std::vector<std::vector<Tensor>> want = {inputs_for(*s, 51)};  // want[i + 1] = run(want[i])
  for (int i = 0; i < 3; ++i) {  // from the buffer, then twice from the same output address
    auto out = s->run(want.back());
    ASSERT_TRUE(out.is_ok()) << out.status().to_string();
    ASSERT_EQ(out->size(), 1u);
    ASSERT_EQ((*out)[0].shape(), want.back()[0].shape());
    want.push_back(std::move(*out));
  }
  DeviceWork* gpu = s->device_work();
  ASSERT_NE(gpu, nullptr);
  auto held = gpu->hold();
  std::vector<DeviceBuffer> buffers;
  std::vector<DeviceTensor> input = on_device(*gpu, want[0], buffers);
  ASSERT_EQ(input.size(), 1u);
  for (std::size_t i = 1; i < want.size(); ++i)
    input = {expect_device_run(*s, *gpu, input, want[i], "run " + std::to_string(i))};  // read where it lies
}

// A node profile (profile_cuda_nodes) of fr_detect in fp16: one entry per node of the graph the
// executor runs (the optimised graph specialised to the inputs, converted to fp16), in run order,
// each timed; the nodes run back to back, so their sum is near a plain run's GPU time.
TEST(CudaProfile, TimesEveryNodeOfARun) {
  const std::string path = gpu_model("fr_detect");
  if (path.empty()) GTEST_SKIP() << "fr_detect not in FSWAP_GPU_MODELS";
  NativeEngine engine;
  auto s = engine.load(path, {.device = {DeviceKind::kCuda, 0}, .precision = Precision::kFloat16});
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  const auto inputs = inputs_for(**s, 11);
  const double plain_ms = device_run_gpu_ms(**s, inputs, 10);
  ASSERT_GT(plain_ms, 0.0);

  auto nodes = profile_cuda_nodes(path, inputs, Precision::kFloat16, 2);
  ASSERT_TRUE(nodes.is_ok()) << nodes.status().to_string();
  Graph g = load_onnx(path).value();
  ASSERT_TRUE(optimize(g).is_ok());
  std::vector<Shape> shapes;
  for (const Tensor& t : inputs) shapes.push_back(t.shape());
  ASSERT_TRUE(specialize(g, shapes).is_ok());
  ChannelsLastWeights transposed;  // as the executor at fp16: islands where they pay
  ASSERT_TRUE(to_channels_last(g, transposed, LayoutChoice::kWherePays).is_ok());
  ASSERT_TRUE(convert_to_fp16(g).is_ok());
  ASSERT_EQ(nodes->size(), g.nodes.size());
  double sum = 0;
  for (std::size_t i = 0; i < g.nodes.size(); ++i) {
    const NodeTime& n = (*nodes)[i];
    EXPECT_EQ(n.name, g.nodes[i].name) << "node " << i;
    EXPECT_EQ(n.op, op_name(g.nodes[i].op)) << n.name;
    EXPECT_TRUE(n.output_shapes.starts_with("[")) << n.name << ": " << n.output_shapes;
    EXPECT_GE(n.ms, 0.0) << n.name;
    sum += n.ms;
  }
  EXPECT_GE(sum, 0.5 * plain_ms);
  EXPECT_LE(sum, 3 * plain_ms);
  std::printf("fr_detect fp16: %zu nodes, node sum %.3f ms, plain run %.3f ms GPU\n", nodes->size(), sum, plain_ms);
}

// CudaExecutor::profile between runs of an executor that runs as a CUDA graph leaves those runs as
// they were: after profiling inputs A, a run on inputs B gives what it gave before.
TEST(CudaProfile, LeavesTheExecutorsRunsAsTheyWere) {
  const std::string path = gpu_model("fr_detect");
  if (path.empty()) GTEST_SKIP() << "fr_detect not in FSWAP_GPU_MODELS";
  NativeEngine engine;
  auto session = engine.load(path, {.device = {DeviceKind::kCuda, 0}});
  ASSERT_TRUE(session.is_ok()) << session.status().to_string();
  const std::vector<Tensor> a = inputs_for(**session, 11), b = inputs_for(**session, 21);
  std::vector<TensorView> a_views, b_views;
  std::vector<Shape> shapes;
  for (std::size_t i = 0; i < a.size(); ++i) {
    a_views.push_back(a[i].view());
    b_views.push_back(b[i].view());
    shapes.push_back(a[i].shape());
  }
  Graph g = load_onnx(path).value();
  ASSERT_TRUE(optimize(g).is_ok());
  auto rt = CudaRuntime::acquire({.device = 0, .vram_budget = ""});
  ASSERT_TRUE(rt.is_ok()) << rt.status().to_string();
  DeviceConstants constants(**rt, "fr_detect", MemoryMode::kExplicit);
  auto lock = (*rt)->enter();
  auto exec = CudaExecutor::create(**rt, constants, g, shapes, Precision::kFloat16);  // destroyed under the lock
  ASSERT_TRUE(exec.is_ok()) << exec.status().to_string();
  ASSERT_TRUE((*exec)->run(a_views).is_ok());  // node by node: cuDNN's search
  auto before = (*exec)->run(b_views);          // captured as a CUDA graph
  ASSERT_TRUE(before.is_ok()) << before.status().to_string();
  const CudaRuntime::GpuBusy busy = (*rt)->gpu_busy();
  auto nodes = (*exec)->profile(a_views);
  ASSERT_TRUE(nodes.is_ok()) << nodes.status().to_string();
  EXPECT_EQ((*rt)->gpu_busy().runs, busy.runs) << "a profiled run is not a counted run";
  auto after = (*exec)->run(b_views);
  ASSERT_TRUE(after.is_ok()) << after.status().to_string();
  ASSERT_EQ(after->size(), before->size());
  for (std::size_t o = 0; o < before->size(); ++o) {
    const test::Comparison c = test::compare((*before)[o], (*after)[o], 1e-6);
    EXPECT_EQ(c.bad, 0) << "output " << o << ": " << c.describe();
  }
}

// Two sessions on two compute lanes (SessionOptions::lane), run from two threads at once: each
// gives what it gives alone on lane 0, and a lane-1 session refuses run_on_device under lane 0's
// hold (the processors' device path).
TEST(CudaLanes, SessionsOnTwoLanesRunAtOnceAndGiveTheOneLaneOutputs) {
  const std::string swapper = gpu_model("inswapper_128"), detector = gpu_model("fr_detect");
  if (swapper.empty() || detector.empty()) GTEST_SKIP() << "inswapper_128 or fr_detect not in FSWAP_GPU_MODELS";
  NativeEngine engine;
  struct Model {
    std::unique_ptr<InferenceSession> alone, laned;
    std::vector<Tensor> inputs, want;
  };
  Model models[2];
  const std::string paths[2] = {swapper, detector};
  for (int m = 0; m < 2; ++m) {
    auto alone = engine.load(paths[m], {.device = {DeviceKind::kCuda, 0}});
    auto laned = engine.load(paths[m], {.device = {DeviceKind::kCuda, 0}, .lane = m});
    ASSERT_TRUE(alone.is_ok() && laned.is_ok()) << paths[m];
    models[m].alone = std::move(*alone);
    models[m].laned = std::move(*laned);
    models[m].inputs = inputs_for(*models[m].alone, 5 + m);
    auto want = models[m].alone->run(models[m].inputs);
    ASSERT_TRUE(want.is_ok()) << want.status().to_string();
    models[m].want = std::move(*want);
  }
  auto bad = engine.load(detector, {.device = {DeviceKind::kCuda, 0}, .lane = 2});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidInput) << bad.status().to_string();

  std::atomic<int> mismatches[2] = {0, 0};
  std::atomic<bool> failed{false};
  auto work = [&](int m) {
    for (int run = 0; run < 40 && !failed; ++run) {
      auto got = models[m].laned->run(models[m].inputs);
      if (!got.is_ok()) {
        ADD_FAILURE() << paths[m] << ": " << got.status().to_string();
        failed = true;
        return;
      }
      for (std::size_t o = 0; o < got->size(); ++o)
        if (test::compare(models[m].want[o], (*got)[o], 1e-3).bad > 0) ++mismatches[m];
    }
  };
  std::thread lane1([&] { work(1); });
  work(0);
  lane1.join();
  EXPECT_EQ(mismatches[0].load(), 0) << swapper << " on lane 0 beside lane 1";
  EXPECT_EQ(mismatches[1].load(), 0) << detector << " on lane 1 beside lane 0";

  DeviceWork* gpu = models[1].laned->device_work();
  ASSERT_NE(gpu, nullptr);
  auto held = gpu->hold();  // lane 0
  std::vector<DeviceTensor> none(models[1].inputs.size());
  for (std::size_t i = 0; i < none.size(); ++i)
    none[i] = {nullptr, models[1].inputs[i].dtype(), models[1].inputs[i].shape()};
  const Status refused = models[1].laned->run_on_device(none, [](std::span<const DeviceTensor>) { return Status::ok(); });
  EXPECT_EQ(refused.code(), StatusCode::kInvalidInput) << refused.to_string();
}

// The i-th device allocation of a run fails: the run reports kOutOfMemory, the arena holds only
// what is resident (no scratch leaked), and the next run gives the right answer.
TEST(CudaFailureInjection, EveryAllocationOfARunFailsCleanly) {
  const std::string path = gpu_model("fr_detect");
  if (path.empty()) GTEST_SKIP() << "fr_detect not in FSWAP_GPU_MODELS";
  NativeEngine engine;
  auto cpu = engine.load(path, {});
  ASSERT_TRUE(cpu.is_ok());
  const auto inputs = inputs_for(**cpu, 3);
  auto want = (*cpu)->run(inputs);
  ASSERT_TRUE(want.is_ok());
  int failures = 0, absorbed = 0;
  for (int i = 1; i <= 8; ++i) {
    auto s = engine.load(path, {.device = {DeviceKind::kCuda, 0}, .precision = Precision::kFloat32});
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    auto rt = CudaRuntime::live();
    ASSERT_EQ(rt.size(), 1u);
    // Every allocation from the i-th on fails, so the session's retry (after giving back the
    // device's scratch) fails too; a single failure is absorbed by that retry.
    rt[0]->device().fail_allocations_from(rt[0]->device().allocation_calls() + i);
    auto out = (*s)->run(inputs);
    rt[0]->device().fail_allocations_from(0);
    if (out.is_ok()) {
      ++absorbed;  // the arena reused cached segments, or i was past the run's allocations
    } else {
      ++failures;
      EXPECT_EQ(out.status().code(), StatusCode::kOutOfMemory) << "allocation " << i << ": " << out.status().to_string();
      ASSERT_TRUE(rt[0]->release_scratch().is_ok());
      EXPECT_EQ(rt[0]->arena().allocated_bytes(), rt[0]->residency().resident_bytes()) << "allocation " << i;
    }
    auto again = (*s)->run(inputs);
    ASSERT_TRUE(again.is_ok()) << "allocation " << i << ": " << again.status().to_string();
    const test::Comparison c = test::compare((*want)[0], (*again)[0], 1e-3);
    EXPECT_EQ(c.bad, 0) << "allocation " << i << ": " << c.describe();
  }
  EXPECT_GT(failures, 0);
  std::printf("failure injection: 8 runs, the device's allocations failing from the i-th on: %d clean out-of-memory errors, %d runs needed fewer; every next run correct\n",
              failures, absorbed);
}

}  // namespace
}  // namespace fswap
