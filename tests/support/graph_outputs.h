// Running an IR graph on the CPU and comparing outputs, for tests of graph passes: a pass's
// graph must compute what the original does.
//
//   const auto want = test::run_on_cpu(original, inputs);
//   test::expect_close(want, test::run_on_cpu(optimised, inputs, /*channels_last=*/true));
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/channels_last.h"
#include "runtime/engines/executor.h"

namespace fswap::test {

// The graph's outputs on the CPU at these inputs' shapes under a layout plan; none (and a test
// failure) when it cannot run.
inline std::vector<Tensor> run_on_cpu(const Graph& g, const std::vector<Tensor>& inputs, const ChannelsLastPlan& plan) {
  std::vector<Shape> shapes;
  std::vector<TensorView> views;
  for (const Tensor& t : inputs) {
    shapes.push_back(t.shape());
    views.push_back(t.view());
  }
  auto exec = Executor::create(g, shapes, plan);
  EXPECT_TRUE(exec.is_ok()) << exec.status().to_string();
  if (!exec.is_ok()) return {};
  auto out = (*exec)->run(views);
  EXPECT_TRUE(out.is_ok()) << out.status().to_string();
  return out.is_ok() ? std::move(*out) : std::vector<Tensor>{};
}

// ... optionally with every island channels-last.
inline std::vector<Tensor> run_on_cpu(const Graph& g, const std::vector<Tensor>& inputs, bool channels_last = false) {
  ChannelsLastWeights weights;
  ChannelsLastPlan plan;
  if (channels_last) plan = {LayoutChoice::kEverywhere, &weights};
  return run_on_cpu(g, inputs, plan);
}

// Float32 outputs of equal shapes, every element within rtol of the largest magnitude of the
// expected output.
inline void expect_close(const std::vector<Tensor>& want, const std::vector<Tensor>& got, double rtol = 1e-5) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].shape(), want[i].shape()) << "output " << i;
    ASSERT_EQ(want[i].dtype(), DType::kFloat32);
    double scale = 1e-6, worst = 0;
    for (std::int64_t k = 0; k < want[i].elements(); ++k) {
      scale = std::max(scale, double(std::abs(want[i].data<float>()[k])));
      worst = std::max(worst, double(std::abs(want[i].data<float>()[k] - got[i].data<float>()[k])));
    }
    EXPECT_LE(worst, rtol * scale) << "output " << i << ": max difference " << worst << " of values up to " << scale;
  }
}

}  // namespace fswap::test
