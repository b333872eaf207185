// Forward convolutions on cuDNN's graph (backend) API. The legacy API (cudnnFind*) times one engine
// configuration per algorithm, the one its heuristics pick; the graph API lists the configurations
// (engine and knobs: tile sizes, split-k, ...) and lets us time several. For the float16
// channels_last convolutions of ArcFace at batch 32 the heuristics' first pick is not the fastest
// (docs/BENCHMARKS.md), so conv.cc's search times the graph API's candidates beside the legacy
// algorithms and keeps the fastest; the choice persists in ConvAlgoCache as the engine's global
// index and knob values, and is rebuilt from them in the next process.
//
//   FSWAP_ASSIGN_OR_RETURN(auto candidates, graph_candidates(handle, problem, 8));   // search
//   (problem.epilogue non-empty: the plans compute bias, residual and activation too)
//   for (ConvGraphPlan& plan : candidates) time(plan.execute(handle, {x, w, y, workspace}));
//   ConvGraphPlans plans;                                                             // per handle
//   FSWAP_ASSIGN_OR_RETURN(const ConvGraphPlan* plan, plans.find_or_build(handle, problem, engine));
//   FSWAP_RETURN_IF_ERROR(plan->execute(handle, {x, w, y, workspace}));
//
// Scope: forward float16 convolutions (fp32 keeps the legacy API, which keeps it off TF32), no
// engine that compiles at run time (the bundle carries no NVRTC). Tensors are described with
// 16-byte alignment: the caller runs a plan only on operands aligned so (graph_aligned).
// Thread-safety: none; one ConvGraphPlans per cuDNN handle, used from that handle's thread.
// The header needs no cuDNN headers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "backends/cuda/conv_algo_cache.h"
#include "core/status.h"

struct cudnnContext;

namespace fswap::cuda {

// The operands of one execution, device pointers.
struct ConvGraphOperands {
  const void* x = nullptr;
  const void* w = nullptr;
  void* y = nullptr;
  void* workspace = nullptr;  // at least the plan's workspace_bytes() (nullptr when that is 0)
  const void* bias = nullptr;      // [k], when the problem's epilogue has one
  const void* residual = nullptr;  // y's shape and layout, when the problem's epilogue has one
};

// The alignment the plans assume of every operand.
constexpr std::size_t kGraphAlignment = 16;
bool graph_aligned(const ConvGraphOperands& operands);

// True for the problems this file serves: forward, float16.
bool graph_serves(const ConvProblem& problem);

// One finalized execution plan with the descriptors it was built from.
class ConvGraphPlan {
 public:
  ConvGraphPlan(ConvGraphPlan&&) noexcept;
  ConvGraphPlan& operator=(ConvGraphPlan&&) noexcept;
  ~ConvGraphPlan();

  const GraphEngine& engine() const { return engine_; }
  std::size_t workspace_bytes() const { return workspace_bytes_; }
  // Enqueues the convolution on the handle's stream (capturable in a CUDA graph).
  Status execute(cudnnContext* handle, const ConvGraphOperands& operands) const;

  struct Descriptors;  // conv_graph.cc

 private:
  friend Result<ConvGraphPlan> build_graph_plan(cudnnContext*, const ConvProblem&, const GraphEngine&);
  ConvGraphPlan(std::unique_ptr<Descriptors> descriptors, GraphEngine engine, ConvEpilogue epilogue,
                std::size_t workspace_bytes);

  std::unique_ptr<Descriptors> descriptors_;
  GraphEngine engine_;
  ConvEpilogue epilogue_;  // what execute() binds besides x, w and y
  std::size_t workspace_bytes_ = 0;
};

// Up to `most` plans for `problem`, its epilogue included, in the order cuDNN's heuristics (mode A)
// rank them, leaving out configurations that fail to finalize or compile at run time; then up to
// 12 variants of each of the first 4, one knob set to another value of its range (tile, split of
// the reduction, ...), those that finalize. kUnsupported when none is left (cuDNN 9.19 on the H100 has precompiled engines for a bias and for a bias and
// Relu after the convolution, none for a residual or LeakyRelu).
Result<std::vector<ConvGraphPlan>> graph_candidates(cudnnContext* handle, const ConvProblem& problem, int most);
// The plan of a stored engine configuration.
Result<ConvGraphPlan> build_graph_plan(cudnnContext* handle, const ConvProblem& problem, const GraphEngine& engine);

// Built plans by problem and engine, for one cuDNN handle (building one takes ~0.1–1 ms).
class ConvGraphPlans {
 public:
  Result<const ConvGraphPlan*> find_or_build(cudnnContext* handle, const ConvProblem& problem,
                                             const GraphEngine& engine);

 private:
  std::map<std::pair<ConvProblem, GraphEngine>, ConvGraphPlan> plans_;
};

}  // namespace fswap::cuda
