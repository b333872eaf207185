#include "cli/model_commands.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>

#include "core/npy.h"
#include "core/parallel.h"
#include "runtime/engine.h"
#include "runtime/engines/model_tools.h"
#include "runtime/engines/model_report.h"

namespace fswap {
namespace {

// An engine and one session of it; the session is destroyed first (declared last).
struct OpenModel {
  std::unique_ptr<Engine> engine;
  std::unique_ptr<InferenceSession> session;
};

Result<OpenModel> open_model(const ModelCommandOptions& o, const std::string& engine_name, const SessionOptions& so) {
  OpenModel m;
  FSWAP_ASSIGN_OR_RETURN(m.engine, make_engine(engine_name));
  FSWAP_ASSIGN_OR_RETURN(m.session, m.engine->load(o.model, so));
  return m;
}

// --engine and --device with the session flags, as run and bench take them.
Result<SessionOptions> single_session_options(const ModelCommandOptions& o) {
  SessionOptions so;
  so.threads = o.threads;
  FSWAP_ASSIGN_OR_RETURN(so.device, parse_device(o.device));
  FSWAP_RETURN_IF_ERROR(o.session.apply(so));
  return so;
}

// One side of `model compare`: an ENGINE[:DEVICE] entry of --engines.
struct CompareSide {
  std::string engine;  // as given: native, ort, auto
  Device device;       // cpu when the entry names none
  SessionOptions options;
  std::string note;    // which session flags this side does not take, and what it runs with instead
  std::string label() const { return engine + ":" + device.to_string(); }
  // fp16, the budget and unified memory are the native engine's on CUDA.
  bool takes_gpu_flags() const { return engine == "native" && device.kind == DeviceKind::kCuda; }
};

Result<CompareSide> parse_compare_side(const std::string& text) {
  const auto colon = text.find(':');
  CompareSide side;
  side.engine = text.substr(0, colon);
  if (side.engine.empty())
    return invalid_input("--engines " + text + ": expected ENGINE[:DEVICE], e.g. native:cuda or ort:cpu");
  if (auto engine = make_engine(side.engine); !engine)
    return invalid_input("--engines " + text + ": " + engine.status().message());
  if (colon != std::string::npos) {
    auto device = parse_device(text.substr(colon + 1));
    if (!device) return invalid_input("--engines " + text + ": " + device.status().message());
    side.device = *device;
  }
  return side;
}

// The compare rule: --precision fp16 and --memory-mode unified apply to the sides that take
// them (native on CUDA); the others run in fp32 with explicit memory. If no side takes a flag
// that was asked for, the comparison would not test it: kInvalidInput.
Status resolve_compare_options(const ModelCommandOptions& o, std::vector<CompareSide>& sides) {
  bool fp16_applies = false, unified_applies = false;
  for (CompareSide& side : sides) {
    SessionFlags flags = o.session;
    if (!side.takes_gpu_flags()) {
      std::vector<std::string> notes;
      if (flags.precision == "fp16") {
        flags.precision = "fp32";
        notes.push_back("--precision fp16 applies only to the native engine on CUDA");
      }
      if (flags.memory_mode == "unified") {
        flags.memory_mode = "explicit";
        notes.push_back("--memory-mode unified applies only to the native engine on CUDA");
      }
      for (const auto& n : notes) side.note += (side.note.empty() ? "" : "; ") + n;
    } else {
      fp16_applies |= flags.precision == "fp16";
      unified_applies |= flags.memory_mode == "unified";
    }
    side.options.device = side.device;
    side.options.threads = o.threads;
    FSWAP_RETURN_IF_ERROR(flags.apply(side.options));
  }
  const std::string both = sides[0].label() + " nor " + sides[1].label();
  if (o.session.precision == "fp16" && !fp16_applies)
    return invalid_input("--precision fp16 applies only to the native engine on CUDA, and neither " + both +
                         " is one (the CPU computes in fp32); e.g. --engines native:cuda,native:cpu --precision fp16");
  if (o.session.memory_mode == "unified" && !unified_applies)
    return invalid_input("--memory-mode unified applies only to the native engine on CUDA, and neither " + both + " is one");
  return Status::ok();
}

// Each distinct non-empty memory summary of the engines, in order (engines of one kind may
// share their device statistics).
void print_memory_summaries(const std::vector<const Engine*>& engines) {
  std::vector<std::string> printed;
  for (const Engine* engine : engines) {
    std::string summary = engine->memory_summary();
    if (summary.empty() || std::find(printed.begin(), printed.end(), summary) != printed.end()) continue;
    std::fputs(summary.c_str(), stdout);
    if (summary.back() != '\n') std::fputc('\n', stdout);
    printed.push_back(std::move(summary));
  }
}

// Named .npy inputs where given (NAME=FILE.npy), seeded random tensors for the rest.
Result<std::vector<Tensor>> model_inputs(const ModelCommandOptions& o, const std::vector<TensorInfo>& infos) {
  std::vector<std::pair<std::string, Shape>> shapes;
  for (const auto& text : o.input_shapes) {
    FSWAP_ASSIGN_OR_RETURN(auto shape, parse_input_shape(text));
    shapes.push_back(std::move(shape));
  }
  std::vector<Tensor> tensors = random_inputs(infos, o.batch, o.seed, shapes);
  for (const auto& spec : o.inputs) {
    const auto eq = spec.find('=');
    if (eq == std::string::npos) return invalid_input("--input " + spec + ": expected NAME=FILE.npy");
    const std::string name = spec.substr(0, eq);
    const auto it = std::find_if(infos.begin(), infos.end(), [&](const TensorInfo& t) { return t.name == name; });
    if (it == infos.end()) return invalid_input("--input " + spec + ": the model has no input named " + name);
    FSWAP_ASSIGN_OR_RETURN(tensors[it - infos.begin()], read_npy(spec.substr(eq + 1)));
  }
  return tensors;
}

std::string safe_file_name(std::string name) {
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') c = '_';
  return name;
}

Status run_inspect(const ModelCommandOptions& o) {
  FSWAP_ASSIGN_OR_RETURN(std::string report, describe_model(o.model));
  std::fputs(report.c_str(), stdout);
  return Status::ok();
}

Status run_model(const ModelCommandOptions& o) {
  if (o.output_dir.empty()) return invalid_input("--output-dir is required");
  FSWAP_ASSIGN_OR_RETURN(SessionOptions so, single_session_options(o));
  std::error_code ec;
  std::filesystem::create_directories(o.output_dir, ec);
  if (ec) return invalid_input("--output-dir " + o.output_dir + ": " + ec.message());
  FSWAP_ASSIGN_OR_RETURN(OpenModel m, open_model(o, o.engine, so));
  FSWAP_ASSIGN_OR_RETURN(auto inputs, model_inputs(o, m.session->inputs()));
  FSWAP_ASSIGN_OR_RETURN(auto outputs, m.session->run(inputs));
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const std::string file = safe_file_name(m.session->outputs()[i].name) + ".npy";
    const std::string path = (std::filesystem::path(o.output_dir) / file).string();
    FSWAP_RETURN_IF_ERROR(write_npy(path, outputs[i]));
    std::printf("%s %s%s\n", path.c_str(), dtype_name(outputs[i].dtype()), shape_to_string(outputs[i].shape()).c_str());
  }
  return Status::ok();
}

Status run_compare(const ModelCommandOptions& o) {
  if (o.engines.size() != 2)
    return invalid_input("--engines takes two ENGINE[:DEVICE] entries, e.g. native,ort or native:cuda,native:cpu");
  std::vector<CompareSide> sides;
  for (const auto& text : o.engines) {
    FSWAP_ASSIGN_OR_RETURN(CompareSide side, parse_compare_side(text));
    sides.push_back(std::move(side));
  }
  FSWAP_RETURN_IF_ERROR(resolve_compare_options(o, sides));
  FSWAP_ASSIGN_OR_RETURN(OpenModel a, open_model(o, sides[0].engine, sides[0].options));
  FSWAP_ASSIGN_OR_RETURN(OpenModel b, open_model(o, sides[1].engine, sides[1].options));
  FSWAP_ASSIGN_OR_RETURN(auto inputs, model_inputs(o, a.session->inputs()));
  FSWAP_ASSIGN_OR_RETURN(auto out_a, a.session->run(inputs));
  FSWAP_ASSIGN_OR_RETURN(auto out_b, b.session->run(inputs));
  std::printf("%s, batch %lld, seed %llu\n", o.model.c_str(), static_cast<long long>(o.batch),
              static_cast<unsigned long long>(o.seed));
  for (const CompareSide& side : sides) {
    std::string line = "precision " + describe_precision(side.options.precision, side.engine, side.device);
    if (!side.note.empty()) line += " (" + side.note + ")";
    std::printf("%-16s %s\n", side.label().c_str(), line.c_str());
  }
  std::printf("%-24s %14s %14s %14s\n", "output", "max abs err", "max rel err", "max |ref|");
  for (const auto& d : compare_outputs(a.session->outputs(), out_a, out_b)) {
    if (d.shape_mismatch)
      std::printf("%-24s shapes or dtypes differ\n", d.name.c_str());
    else
      std::printf("%-24s %14.3e %14.3e %14.3e\n", d.name.c_str(), d.max_abs, d.max_rel, d.scale);
  }
  for (const auto& [side, session] : {std::pair{&sides[0], a.session.get()}, std::pair{&sides[1], b.session.get()}}) {
    FSWAP_ASSIGN_OR_RETURN(double ms, median_latency_ms(*session, inputs, o.runs));
    std::printf("%-16s median latency %.3f ms over %d runs\n", side->label().c_str(), ms, o.runs);
  }
  print_memory_summaries({a.engine.get(), b.engine.get()});
  return Status::ok();
}

Status run_bench(const ModelCommandOptions& o) {
  FSWAP_ASSIGN_OR_RETURN(SessionOptions so, single_session_options(o));
  FSWAP_ASSIGN_OR_RETURN(OpenModel m, open_model(o, o.engine, so));
  FSWAP_ASSIGN_OR_RETURN(auto inputs, model_inputs(o, m.session->inputs()));
  // Items per batch: the first input's leading dimension (--batch where it is dynamic).
  std::int64_t items = o.batch;
  if (!inputs.empty() && !inputs[0].shape().empty()) {
    items = inputs[0].shape()[0];
    if (o.batch != 1 && items != o.batch)
      return invalid_input("--batch " + std::to_string(o.batch) + ": " + o.model + " input '" +
                           m.session->inputs()[0].name + "' has shape " + shape_to_string(inputs[0].shape()) +
                           ", its batch is fixed at " + std::to_string(items) + "; run with --batch 1");
  }
  FSWAP_ASSIGN_OR_RETURN(LatencyStats t, measure_latency(*m.session, inputs, o.runs, o.warmup));
  std::printf("%s on %s:%s, precision %s, batch %lld\n", o.model.c_str(), o.engine.c_str(), so.device.to_string().c_str(),
              describe_precision(so.precision, o.engine, so.device).c_str(), static_cast<long long>(items));
  std::printf("latency: median %.3f ms, p10 %.3f ms, p90 %.3f ms per batch (%d runs after %d warm-up)\n", t.median_ms,
              t.p10_ms, t.p90_ms, t.runs, t.warmup);
  std::printf("throughput: %.1f items/s (batch %lld / median)\n", t.median_ms > 0 ? items * 1000.0 / t.median_ms : 0.0,
              static_cast<long long>(items));
  print_memory_summaries({m.engine.get()});
  return Status::ok();
}

}  // namespace

void ModelCommands::add_to(CLI::App& app) {
  model = app.add_subcommand("model", "Inspect, run, compare or benchmark an ONNX model on fswap's engines");
  model->require_subcommand(1);
  inspect = model->add_subcommand("inspect", "Inputs, outputs, op histogram, parameters, FLOPs, peak memory");
  inspect->add_option("model", options.model, "ONNX model file")->required();

  run = model->add_subcommand("run", "Run a model once; write its outputs as .npy files");
  run->add_option("model", options.model, "ONNX model file")->required();
  run->add_option("--input", options.inputs, "NAME=FILE.npy (random inputs from --seed otherwise)");
  run->add_option("--output-dir", options.output_dir, "Folder for OUTPUT_NAME.npy files")->required();

  compare = model->add_subcommand(
      "compare",
      "Run two engines on the same random inputs; errors and latency. --precision fp16 and --memory-mode unified "
      "apply to the sides that take them (native on CUDA); the other sides run fp32 with explicit memory, and the "
      "output says so. --vram-budget acts on CUDA sides only.");
  compare->add_option("model", options.model, "ONNX model file")->required();
  compare->add_option("--engines", options.engines,
                      "Two ENGINE[:DEVICE] entries, e.g. native,ort or native:cuda,native:cpu (device cpu when left out)")
      ->delimiter(',')->capture_default_str();
  compare->add_option("--runs", options.runs, "Timed runs per engine")->check(CLI::PositiveNumber)->capture_default_str();

  bench = model->add_subcommand("bench", "Latency (median, p10, p90 per batch), throughput and device-memory statistics");
  bench->add_option("model", options.model, "ONNX model file")->required();
  bench->add_option("--runs", options.runs, "Timed runs")->check(CLI::PositiveNumber)->capture_default_str();
  bench->add_option("--warmup", options.warmup, "Untimed runs first")->check(CLI::NonNegativeNumber)->capture_default_str();

  for (CLI::App* sub : {run, bench}) {
    sub->add_option("--engine", options.engine, "native or ort")->capture_default_str();
    sub->add_option("--device", options.device, "cpu, cuda or cuda:N")->capture_default_str();
  }
  for (CLI::App* sub : {run, compare, bench}) {
    options.session.add_to(*sub);
    sub->add_option("--batch", options.batch, "Size of dynamic batch dimensions")->check(CLI::PositiveNumber)->capture_default_str();
    sub->add_option("--seed", options.seed, "Seed of the random inputs")->capture_default_str();
    sub->add_option("--input-shape", options.input_shapes, "NAME=D0xD1x... for an input with dynamic dims");
    sub->add_option("--threads", options.threads, "CPU threads (0 = all cores)")->capture_default_str();
  }
}

Status ModelCommands::run_selected() const {
  set_worker_threads(options.threads);
  if (*inspect) return run_inspect(options);
  if (*run) return run_model(options);
  if (*compare) return run_compare(options);
  if (*bench) return run_bench(options);
  return invalid_input("fswap model: choose inspect, run, compare or bench");
}

}  // namespace fswap
