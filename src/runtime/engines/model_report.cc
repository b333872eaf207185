#include "runtime/engines/model_report.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include "onnx/onnx_loader.h"
#include "runtime/device_graph.h"
#include "runtime/memory_plan.h"
#include "runtime/passes.h"
#include "runtime/schedule.h"

namespace fswap {
namespace {

std::string dims(const Shape& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i) out += ',';
    out += s[i] < 0 ? std::string("?") : std::to_string(s[i]);
  }
  out += ']';
  return out;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", b, units[u]);
  return buf;
}

std::string human_count(double n, const char* unit) {
  const char* prefixes[] = {"", "K", "M", "G", "T"};
  int p = 0;
  while (n >= 1000 && p < 4) n /= 1000, ++p;
  char buf[32];
  std::snprintf(buf, sizeof buf, p == 0 ? "%.0f %s%s" : "%.2f %s%s", n, prefixes[p], unit);
  return buf;
}

std::string with_commas(std::int64_t n) {
  const std::string digits = std::to_string(n);
  std::string s;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0 && digits[i - 1] != '-') s += ',';
    s += digits[i];
  }
  return s;
}

std::string histogram(const Graph& g) {
  std::map<std::string, int> counts;
  for (const Node& n : g.nodes) ++counts[op_name(n.op)];
  std::vector<std::pair<std::string, int>> sorted(counts.begin(), counts.end());
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string out;
  for (const auto& [name, count] : sorted) out += (out.empty() ? "" : ", ") + name + " " + std::to_string(count);
  return out;
}

int count_op(const Graph& g, OpType op) {
  return static_cast<int>(std::count_if(g.nodes.begin(), g.nodes.end(), [op](const Node& n) { return n.op == op; }));
}

// The Convs of a device graph whose weights align_conv_channels padded (widened ones and their readers).
int aligned_convs(const Graph& g) {
  return static_cast<int>(std::count_if(g.nodes.begin(), g.nodes.end(), [&](const Node& n) {
    return n.op == OpType::kConv && n.inputs.size() > 1 && g.values[n.inputs[1]].name.ends_with(kAlignedWeightSuffix);
  }));
}

// The largest constant a node of g reads, at its dtype in g (fp16 on the device).
std::string largest_weight(const Graph& g) {
  int largest = -1;
  std::size_t largest_bytes = 0;
  for (const Node& n : g.nodes)
    for (int in : n.inputs) {
      if (in < 0 || g.constant_data(in) == nullptr) continue;
      const std::size_t bytes = static_cast<std::size_t>(shape_elements(g.values[in].shape)) * dtype_size(g.values[in].dtype);
      if (bytes > largest_bytes) largest = in, largest_bytes = bytes;
    }
  if (largest < 0) return "none";
  return g.values[largest].name + " " + dims(g.values[largest].shape) + " " + human_bytes(static_cast<double>(largest_bytes));
}

// The values live at the plan's peak (the step with the most bytes live), largest first (at most `count`).
std::string live_at_peak(const Graph& g, const MemoryPlan& plan, std::size_t count) {
  std::vector<std::pair<std::size_t, int>> live;
  for (int v : plan.live_at_peak)
    live.emplace_back(static_cast<std::size_t>(shape_elements(g.values[v].shape)) * dtype_size(g.values[v].dtype), v);
  std::stable_sort(live.begin(), live.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::string out = "at node " + (plan.peak_node < 0 ? std::string("(inputs)") : g.nodes[plan.peak_node].name) + ", " +
                    std::to_string(live.size()) + " values:";
  for (std::size_t i = 0; i < live.size() && i < count; ++i)
    out += (i ? ", " : " ") + g.values[live[i].second].name + " " + human_bytes(static_cast<double>(live[i].first));
  return out;
}

// The plan the CUDA executor makes at fp16 with channels-last islands where they pay
// (runtime/device_graph.h), and its arena in the graph's own node order.
std::string device_plan_text(const Graph& optimized, const std::vector<Shape>& shapes) {
  ChannelsLastWeights transposed;
  ScheduleReport order;
  Result<Graph> g = device_graph(optimized, shapes, Precision::kFloat16,
                                 {.choice = LayoutChoice::kWherePays, .weights = &transposed, .align_channels = true},
                                 &order);
  Result<MemoryPlan> plan = g ? plan_memory(*g) : Result<MemoryPlan>(g.status());
  if (!plan) return "not computed: " + plan.status().message() + "\n";
  std::string text = human_bytes(static_cast<double>(plan->arena_bytes)) + " (" + order.order + " node order; " +
                     human_bytes(static_cast<double>(order.given_bytes)) + " in the model's; at most " +
                     human_bytes(static_cast<double>(plan->live_peak_bytes)) + " live at once); largest weight " +
                     largest_weight(*g) + "; " + std::to_string(aligned_convs(*g)) +
                     " Convs aligned to 8 channels\n  live at the peak " + live_at_peak(*g, *plan, 6) + "\n";
  // What a budget under 8× the plan gets (the CUDA executor's rule, cuda_executor.cc).
  Result<int> banded = band_large_resizes(*g);
  if (!banded) return text + "  banded: not computed: " + banded.status().message() + "\n";
  if (*banded == 0) return text;
  Result<MemoryPlan> tight = plan_memory(*g);
  if (!tight) return text + "  banded: not computed: " + tight.status().message() + "\n";
  return text + "  with its " + std::to_string(*banded) + " large resizes banded into their convolutions (budgets under " +
         human_bytes(8.0 * static_cast<double>(plan->arena_bytes)) + "): " +
         human_bytes(static_cast<double>(tight->arena_bytes)) + "; live at the peak " + live_at_peak(*g, *tight, 6) + "\n";
}

}  // namespace

Result<std::string> describe_model(const std::string& path) {
  FSWAP_ASSIGN_OR_RETURN(Graph loaded, load_onnx(path));
  std::ostringstream out;
  out << "model: " << std::filesystem::path(path).filename().string() << " (ai.onnx opset " << loaded.opset << ")\n";

  auto value_line = [&](int id) {
    const Value& v = loaded.values[id];
    out << "  " << v.name << "  " << dtype_name(v.dtype) << " " << (v.shape.empty() && !v.known_shape ? "[unknown]" : dims(v.shape))
        << "\n";
  };
  out << "inputs:\n";
  for (int v : loaded.inputs) value_line(v);
  out << "outputs:\n";
  for (int v : loaded.outputs) value_line(v);

  out << "ops (" << loaded.nodes.size() << " nodes): " << histogram(loaded) << "\n";
  Graph optimized = loaded;
  FSWAP_RETURN_IF_ERROR(optimize(optimized));
  int activations = 0, biases = 0, residuals = 0, styles = 0;
  for (const Node& n : optimized.nodes) {
    activations += n.attrs.activation.kind != Activation::kNone;
    styles += n.op == OpType::kInstanceNormalization && n.inputs.size() > 3;
    biases += n.op == OpType::kMatMul && n.inputs.size() == 3;
    residuals += (n.op == OpType::kConv || n.op == OpType::kConvTranspose) && n.inputs.size() > 3 && n.inputs[3] >= 0;
  }
  const int batchnorms = count_op(loaded, OpType::kBatchNormalization) - count_op(optimized, OpType::kBatchNormalization);
  const int siblings = count_op(loaded, OpType::kConv) - count_op(optimized, OpType::kConv);
  out << "after optimize (" << optimized.nodes.size() << " nodes): " << histogram(optimized) << "\n";
  out << "  fusions: " << activations << " activation, " << batchnorms << " BatchNormalization into Conv or Gemm, " << biases
      << " MatMul+Add bias, " << residuals << " residual Add into Conv, " << styles
      << " style Mul+Add into InstanceNormalization, " << siblings << " narrow Convs merged into siblings; "
      << optimized.constants.size() << " values folded to constants\n";

  std::int64_t params = 0;
  for (const auto& w : loaded.weights) {
    const DType d = w.data->dtype();
    if (d == DType::kFloat32 || d == DType::kFloat16 || d == DType::kFloat64) params += w.data->elements();
  }
  out << "parameters: " << with_commas(params) << " (" << human_bytes(static_cast<double>(loaded.weight_bytes()))
      << " of weights in the file, " << human_bytes(static_cast<double>(optimized.weight_bytes())) << " after optimize)\n";

  // Batch sizes: dim 0 of every input whose dim 0 is dynamic.
  bool dynamic_batch = false;
  std::string other_dynamic;
  std::int64_t fixed_batch = 1;
  for (int id : optimized.inputs) {
    const Value& v = optimized.values[id];
    if (v.shape.empty() && !v.known_shape) other_dynamic += " " + v.name + " (no shape)";
    for (std::size_t d = 0; d < v.shape.size(); ++d) {
      if (v.shape[d] >= 0) continue;
      if (d == 0) dynamic_batch = true;
      else other_dynamic += " " + v.name + dims(v.shape);
    }
    if (!v.shape.empty() && v.shape[0] > 0) fixed_batch = v.shape[0];
  }
  if (!other_dynamic.empty()) {
    out << "FLOPs and activations: not computed, dynamic sizes other than the batch in" << other_dynamic
        << " (the engine plans once it knows the input size)\n";
    return out.str();
  }
  auto shapes_at = [&](std::int64_t batch) {
    std::vector<Shape> shapes;
    for (int id : optimized.inputs) {
      Shape s = optimized.values[id].shape;
      if (!s.empty() && s[0] < 0) s[0] = batch;
      shapes.push_back(std::move(s));
    }
    return shapes;
  };
  auto plan_at = [&](std::int64_t batch) -> Result<MemoryPlan> {  // as the CPU executor plans it
    FSWAP_ASSIGN_OR_RETURN(const Graph planned, device_graph(optimized, shapes_at(batch), Precision::kFloat32));
    return plan_memory(planned);
  };
  auto b1 = plan_at(1);
  if (!b1) {
    out << "FLOPs and activations: not computed: " << b1.status().message() << "\n";
    return out.str();
  }
  const std::int64_t items = dynamic_batch ? 1 : fixed_batch;
  out << "FLOPs per item: " << human_count(static_cast<double>(b1->flops) / static_cast<double>(items), "FLOP") << "\n";
  out << "peak activations (arena): batch " << items << ": " << human_bytes(static_cast<double>(b1->arena_bytes)) << " ("
      << b1->in_place_nodes << " nodes in place)";
  if (dynamic_batch) {
    auto b8 = plan_at(8);
    if (b8) out << "; batch 8: " << human_bytes(static_cast<double>(b8->arena_bytes));
    else out << "; batch 8: not computed: " << b8.status().message();
    out << "\n";
  } else {
    out << "; batch 8: n/a, the model fixes the batch at " << fixed_batch << "\n";
  }
  out << "CUDA plan (fp16, channels-last where it pays): batch " << items << ": " << device_plan_text(optimized, shapes_at(1));
  return out.str();
}

}  // namespace fswap
