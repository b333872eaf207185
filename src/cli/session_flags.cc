#include "cli/session_flags.h"

#include "memory/budget.h"

namespace fswap {

void SessionFlags::add_to(CLI::App& app) {
  app.add_option("--precision", precision,
                 "Storage precision: auto (the engine's default: native fp16 on CUDA, fp32 on the CPU; ort as exported), fp32, "
                 "fp16 (native engine on CUDA only)")
      ->check(CLI::IsMember({"auto", "fp32", "fp16"}))->capture_default_str();
  app.add_option("--vram-budget", vram_budget,
                 "Device-memory cap of the native engine on CUDA, e.g. 4GiB, 512MiB, 1.5GB, 80% of the GPU "
                 "(default: free memory minus a margin)");
  app.add_option("--memory-mode", memory_mode,
                 "Device memory of the native engine on CUDA: explicit (fswap's arena and residency manager) or "
                 "unified (weights in managed memory inside the budget; a model they do not fit streams them as explicit does)")
      ->check(CLI::IsMember({"explicit", "unified"}))->capture_default_str();
  app.add_option("--layout", layout,
                 "Activation layout of the native engine: auto (channels-last islands around convolutions on CUDA at "
                 "fp16, where that saves work), nchw (ONNX's layout everywhere), nhwc (every island channels-last, on "
                 "either device; for comparisons)")
      ->check(CLI::IsMember({"auto", "nchw", "nhwc"}))->capture_default_str();
}

Status SessionFlags::apply(SessionOptions& options) const {
  FSWAP_ASSIGN_OR_RETURN(options.precision, parse_precision(precision));
  FSWAP_ASSIGN_OR_RETURN(options.memory_mode, parse_memory_mode(memory_mode));
  FSWAP_ASSIGN_OR_RETURN(options.layout, parse_layout(layout));
  // Syntax only: the device's real size is known when the engine opens it. A device of 2^62
  // bytes accepts every well-formed budget, percentages included.
  constexpr std::uint64_t kAnySize = std::uint64_t{1} << 62;
  FSWAP_RETURN_IF_ERROR(memory::parse_budget(vram_budget, {.total_bytes = kAnySize, .free_bytes = kAnySize}).status());
  options.vram_budget = vram_budget;
  if (options.device.kind == DeviceKind::kCpu) {
    if (options.precision == Precision::kFloat16)
      return invalid_input("--precision fp16 needs --device cuda: on the CPU fswap computes in fp32 "
                           "(use --precision auto or fp32 with --device cpu)");
    if (options.memory_mode == MemoryMode::kUnified)
      return invalid_input("--memory-mode unified needs --device cuda: the CPU has no device memory to manage");
  }
  return Status::ok();
}

Result<std::vector<Device>> parse_device_list(const std::string& text) {
  std::vector<Device> devices;
  std::size_t begin = 0;
  while (true) {
    const std::size_t comma = text.find(',', begin);
    const std::string entry = text.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin);
    const bool bare_index = !entry.empty() && entry.find_first_not_of("0123456789") == std::string::npos;
    if (bare_index && !devices.empty() && devices.back().kind == DeviceKind::kCuda) {
      FSWAP_ASSIGN_OR_RETURN(Device device, parse_device("cuda:" + entry));
      devices.push_back(device);
    } else {
      auto device = parse_device(entry);
      if (!device) {
        return invalid_input("--device " + text + ": entry '" + entry +
                             "' is not a device (cpu, cuda, cuda:N; after a cuda entry a bare N means cuda:N)");
      }
      devices.push_back(*device);
    }
    if (comma == std::string::npos) return devices;
    begin = comma + 1;
  }
}

std::string describe_precision(Precision precision, const std::string& engine, const Device& device) {
  switch (precision) {
    case Precision::kFloat16: return "fp16";
    case Precision::kFloat32: return "fp32";
    case Precision::kDefault: break;
  }
  if (engine == "native") return device.kind == DeviceKind::kCuda ? "auto = fp16" : "auto = fp32";
  return "auto = as exported";  // ONNX Runtime runs the model's own precision
}

}  // namespace fswap
