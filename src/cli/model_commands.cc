#include "cli/model_commands.h"

#include <cstdio>
#include <filesystem>

#include "core/npy.h"
#include "core/parallel.h"
#include "runtime/engine.h"
#include "runtime/engines/model_tools.h"
#include "runtime/engines/model_report.h"

namespace fswap {
namespace {

Result<std::unique_ptr<InferenceSession>> open_session(const ModelCommandOptions& o, const std::string& engine_name) {
  FSWAP_ASSIGN_OR_RETURN(auto engine, make_engine(engine_name));
  SessionOptions so;
  so.threads = o.threads;
  return engine->load(o.model, so);
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
  std::error_code ec;
  std::filesystem::create_directories(o.output_dir, ec);
  if (ec) return invalid_input("--output-dir " + o.output_dir + ": " + ec.message());
  FSWAP_ASSIGN_OR_RETURN(auto session, open_session(o, o.engine));
  FSWAP_ASSIGN_OR_RETURN(auto inputs, model_inputs(o, session->inputs()));
  FSWAP_ASSIGN_OR_RETURN(auto outputs, session->run(inputs));
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const std::string path = (std::filesystem::path(o.output_dir) / (safe_file_name(session->outputs()[i].name) + ".npy")).string();
    FSWAP_RETURN_IF_ERROR(write_npy(path, outputs[i]));
    std::printf("%s %s%s\n", path.c_str(), dtype_name(outputs[i].dtype()), shape_to_string(outputs[i].shape()).c_str());
  }
  return Status::ok();
}

Status run_compare(const ModelCommandOptions& o) {
  if (o.engines.size() != 2) return invalid_input("--engines takes two engines, e.g. native,ort");
  if (o.precision != "fp32")
    return unsupported("--precision " + o.precision + ": fp16 needs the native CUDA backend, not built yet");
  FSWAP_ASSIGN_OR_RETURN(auto a, open_session(o, o.engines[0]));
  FSWAP_ASSIGN_OR_RETURN(auto b, open_session(o, o.engines[1]));
  FSWAP_ASSIGN_OR_RETURN(auto inputs, model_inputs(o, a->inputs()));
  FSWAP_ASSIGN_OR_RETURN(auto out_a, a->run(inputs));
  FSWAP_ASSIGN_OR_RETURN(auto out_b, b->run(inputs));
  std::printf("%s, batch %lld, seed %llu\n", o.model.c_str(), static_cast<long long>(o.batch),
              static_cast<unsigned long long>(o.seed));
  std::printf("%-24s %14s %14s %14s\n", "output", "max abs err", "max rel err", "max |ref|");
  for (const auto& d : compare_outputs(a->outputs(), out_a, out_b)) {
    if (d.shape_mismatch)
      std::printf("%-24s shapes or dtypes differ\n", d.name.c_str());
    else
      std::printf("%-24s %14.3e %14.3e %14.3e\n", d.name.c_str(), d.max_abs, d.max_rel, d.scale);
  }
  for (const auto& [name, session] : {std::pair{o.engines[0], a.get()}, std::pair{o.engines[1], b.get()}}) {
    FSWAP_ASSIGN_OR_RETURN(double ms, median_latency_ms(*session, inputs, o.runs));
    std::printf("%-8s median latency %.3f ms over %d runs\n", name.c_str(), ms, o.runs);
  }
  return Status::ok();
}

}  // namespace

void ModelCommands::add_to(CLI::App& app) {
  model = app.add_subcommand("model", "Inspect, run or compare an ONNX model on fswap's engines");
  model->require_subcommand(1);
  inspect = model->add_subcommand("inspect", "Inputs, outputs, op histogram, parameters, FLOPs, peak memory");
  inspect->add_option("model", options.model, "ONNX model file")->required();

  run = model->add_subcommand("run", "Run a model once; write its outputs as .npy files");
  run->add_option("model", options.model, "ONNX model file")->required();
  run->add_option("--engine", options.engine, "native or ort")->capture_default_str();
  run->add_option("--input", options.inputs, "NAME=FILE.npy (random inputs from --seed otherwise)");
  run->add_option("--output-dir", options.output_dir, "Folder for OUTPUT_NAME.npy files")->required();

  compare = model->add_subcommand("compare", "Run two engines on the same random inputs; errors and latency");
  compare->add_option("model", options.model, "ONNX model file")->required();
  compare->add_option("--engines", options.engines, "Two engines, e.g. native,ort")->delimiter(',')->capture_default_str();
  compare->add_option("--precision", options.precision, "fp32 or fp16")
      ->check(CLI::IsMember({"fp32", "fp16"}))->capture_default_str();
  compare->add_option("--runs", options.runs, "Timed runs per engine")->capture_default_str();

  for (CLI::App* sub : {run, compare}) {
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
  return invalid_input("fswap model: choose inspect, run or compare");
}

}  // namespace fswap
