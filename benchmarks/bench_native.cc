// The native engine's CUDA backend on the GPU machine:
//   latency  per model: median ms per batch at batch 1, 8 and 32 in fp16 (and fp32 at batch 1),
//            after warm-up, host to host (input upload and output download included);
//   budget   a pipeline of swapper + face enhancer + frame enhancer (inswapper_128, gfpgan_1.4,
//            real_esrgan_x4) run in turn, with room for 100%, 50%, 25% and 10% of their total
//            weight bytes: budget = the non-weight peak of an unlimited run (the largest activation
//            plan and workspace, which are not streamed) + that share of the weights. Throughput as
//            a ratio to an unlimited budget, bytes copied and the copy bandwidth while streaming.
// Models from FSWAP_GPU_MODELS (the default models and generated replicas). Prints JSON lines
// (for tools/bench/torch_baseline.py's comparison) and markdown tables.
//   bench_native [latency|budget]... [--runs N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "memory/budget.h"
#include "runtime/engines/cuda_runtime.h"
#include "runtime/engines/native_engine.h"
#include "../tests/gpu/gpu_env.h"

namespace fswap {
namespace {

using Clock = std::chrono::steady_clock;

int g_runs = 30;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Dynamic dims: the batch, then 640 for spatial dims (the detectors' default size, as
// tools/bench/torch_baseline.py uses), 1 otherwise.
Shape batch_shape(const TensorInfo& info, std::int64_t batch) {
  Shape s = info.shape;
  for (std::size_t d = 0; d < s.size(); ++d)
    if (s[d] < 0) s[d] = d == 0 ? batch : (s.size() == 4 && d >= 2 ? 640 : 1);
  return s;
}

// Median seconds of session.run on these inputs, after warm-up runs.
Result<double> time_runs(InferenceSession& s, const std::vector<Tensor>& inputs, int runs) {
  for (int i = 0; i < 3; ++i) FSWAP_RETURN_IF_ERROR(s.run(inputs).status());
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    const auto start = Clock::now();
    FSWAP_RETURN_IF_ERROR(s.run(inputs).status());
    t.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  return median(t);
}

void latency() {
  const char* models[] = {"fr_detect", "fr_landmark", "fr_feature", "inswapper_128", "arcface_w600k_r50",
                          "scrfd_2.5g", "yoloface_8n", "2dfan4", "hyperswap_1a_256", "simswap_256",
                          "gfpgan_1.4", "xseg", "bisenet_resnet_34", "real_esrgan_x4"};
  std::printf("\n| model | precision | batch | ms per batch | ms per item |\n|---|---|---|---|---|\n");
  NativeEngine engine;
  for (const char* name : models) {
    const std::string path = test::gpu_model(name);
    if (path.empty()) continue;
    for (Precision p : {Precision::kFloat16, Precision::kFloat32}) {
      auto session = engine.load(path, {.device = {DeviceKind::kCuda, 0}, .precision = p});
      if (!session.is_ok()) {
        std::printf("| %s | - | - | %s | |\n", name, session.status().to_string().c_str());
        break;
      }
      const bool dynamic = (*session)->inputs()[0].shape.empty() || (*session)->inputs()[0].shape[0] < 0;
      std::vector<std::int64_t> batches = {1};
      if (dynamic && p == Precision::kFloat16) batches = {1, 8, 32};
      for (std::int64_t batch : batches) {
        std::vector<Tensor> inputs;
        unsigned seed = 1;
        for (const TensorInfo& info : (*session)->inputs())
          inputs.push_back(test::random_tensor(batch_shape(info, batch), seed++));
        auto t = time_runs(**session, inputs, g_runs);
        if (!t.is_ok()) {
          std::printf("| %s | %s | %lld | %s | |\n", name, p == Precision::kFloat16 ? "fp16" : "fp32",
                      static_cast<long long>(batch), t.status().to_string().c_str());
          continue;
        }
        const double ms = *t * 1e3;
        std::printf("| %s | %s | %lld | %.3f | %.3f |\n", name, p == Precision::kFloat16 ? "fp16" : "fp32",
                    static_cast<long long>(batch), ms, ms / static_cast<double>(batch));
        std::fprintf(stderr, "{\"model\":\"%s\",\"engine\":\"native\",\"precision\":\"%s\",\"batch\":%lld,\"median_ms\":%.4f}\n",
                     name, p == Precision::kFloat16 ? "fp16" : "fp32", static_cast<long long>(batch), ms);
      }
    }
  }
}

struct Stage {
  std::string name;
  std::unique_ptr<InferenceSession> session;
  std::vector<Tensor> inputs;
};

Result<std::vector<Stage>> load_pipeline(NativeEngine& engine, const std::string& budget) {
  std::vector<Stage> stages;
  for (const char* name : {"inswapper_128", "gfpgan_1.4", "real_esrgan_x4"}) {
    const std::string path = test::gpu_model(name);
    if (path.empty()) return not_found(std::string(name) + " not in FSWAP_GPU_MODELS");
    Stage s{name, nullptr, {}};
    FSWAP_ASSIGN_OR_RETURN(s.session, engine.load(path, {.device = {DeviceKind::kCuda, 0}, .vram_budget = budget}));
    unsigned seed = 1;
    for (const TensorInfo& info : s.session->inputs())
      s.inputs.push_back(test::random_tensor(batch_shape(info, 1), seed++, 0, 1));
    stages.push_back(std::move(s));
  }
  return stages;
}

// Seconds per pipeline pass (median), after one warm-up pass.
Result<double> time_pipeline(std::vector<Stage>& stages, int runs) {
  for (Stage& s : stages) FSWAP_RETURN_IF_ERROR(s.session->run(s.inputs).status());
  std::vector<double> t;
  for (int i = 0; i < runs; ++i) {
    const auto start = Clock::now();
    for (Stage& s : stages) FSWAP_RETURN_IF_ERROR(s.session->run(s.inputs).status());
    t.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  return median(t);
}

void budget_sweep() {
  NativeEngine engine;
  std::uint64_t weights = 0, headroom = 0;
  double unlimited = 0;
  {
    auto stages = load_pipeline(engine, "");
    if (!stages.is_ok()) {
      std::printf("budget sweep skipped: %s\n", stages.status().to_string().c_str());
      return;
    }
    auto t = time_pipeline(*stages, g_runs);
    if (!t.is_ok()) {
      std::printf("budget sweep failed: %s\n", t.status().to_string().c_str());
      return;
    }
    unlimited = *t;
    auto rt = CudaRuntime::live()[0];
    weights = rt->residency().stats().total.peak_resident_bytes;
    const std::uint64_t peak = rt->arena().stats().peak_allocated_bytes;
    headroom = peak > weights ? peak - weights : 0;
  }
  std::printf("\nPipeline inswapper_128 + gfpgan_1.4 + real_esrgan_x4 (fp16), weights %s, activations and workspace "
              "%s; unlimited %.2f ms per pass\n\n",
              memory::format_bytes(weights).c_str(), memory::format_bytes(headroom).c_str(), unlimited * 1e3);
  std::printf("| budget | room for weights | ms per pass | throughput vs unlimited | H2D per pass | H2D GB/s while running | evictions per pass | arena peak |\n|---|---|---|---|---|---|---|---|\n");
  for (double fraction : {1.0, 0.5, 0.25, 0.1}) {
    const auto budget = headroom + static_cast<std::uint64_t>(static_cast<double>(weights) * fraction);
    auto stages = load_pipeline(engine, std::to_string(budget));
    if (!stages.is_ok()) {
      std::printf("| %s | %.0f%% | %s | | | | | |\n", memory::format_bytes(budget).c_str(), fraction * 100,
                  stages.status().to_string().c_str());
      continue;
    }
    auto rt = CudaRuntime::live()[0];
    auto warm = time_pipeline(*stages, 1);
    const auto before = rt->residency().stats().total;
    auto t = time_pipeline(*stages, g_runs);
    if (!warm.is_ok() || !t.is_ok()) {
      std::printf("| %s | %.0f%% | %s | | | | | |\n", memory::format_bytes(budget).c_str(), fraction * 100,
                  (!warm.is_ok() ? warm.status() : t.status()).to_string().c_str());
      continue;
    }
    const auto after = rt->residency().stats().total;
    const double passes = g_runs + 1;  // time_pipeline's warm-up pass copies too
    const double h2d = static_cast<double>(after.h2d_bytes - before.h2d_bytes) / passes;
    std::printf("| %s | %.0f%% | %.2f | %.2f | %s | %.1f | %.0f | %s |\n", memory::format_bytes(budget).c_str(),
                fraction * 100, *t * 1e3, unlimited / *t, memory::format_bytes(static_cast<std::uint64_t>(h2d)).c_str(),
                h2d / *t / 1e9, static_cast<double>(after.evictions - before.evictions) / passes,
                memory::format_bytes(rt->arena().stats().peak_reserved_bytes).c_str());
  }
}

}  // namespace
}  // namespace fswap

int main(int argc, char** argv) {
  std::vector<std::string> what;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
      fswap::g_runs = std::max(1, std::atoi(argv[++i]));
    } else {
      what.emplace_back(argv[i]);
    }
  }
  if (what.empty()) what = {"latency", "budget"};
  for (const std::string& w : what) {
    if (w == "latency") fswap::latency();
    else if (w == "budget") fswap::budget_sweep();
    else {
      std::fprintf(stderr, "bench_native: unknown part '%s' (latency, budget)\n", w.c_str());
      return 2;
    }
  }
  return 0;
}
