#include "runtime/engine.h"

#include <charconv>


namespace fswap {

std::string Device::to_string() const {
  switch (kind) {
    case DeviceKind::kCpu: return "cpu";
    case DeviceKind::kCuda: return "cuda:" + std::to_string(index);
  }
  return "unknown";
}

Result<Device> parse_device(const std::string& text) {
  if (text == "cpu") return Device{DeviceKind::kCpu, 0};
  if (text == "cuda") return Device{DeviceKind::kCuda, 0};
  const std::string prefix = "cuda:";
  if (text.size() > prefix.size() && text.compare(0, prefix.size(), prefix) == 0) {
    const char* first = text.data() + prefix.size();
    const char* last = text.data() + text.size();
    int index = -1;
    auto [end, ec] = std::from_chars(first, last, index);
    if (ec == std::errc() && end == last && index >= 0) return Device{DeviceKind::kCuda, index};
  }
  return invalid_input("unknown device '" + text + "': use cpu, cuda or cuda:N (N = GPU index, 0 or more)");
}

Result<Precision> parse_precision(const std::string& text) {
  if (text == "auto" || text.empty()) return Precision::kDefault;
  if (text == "fp32") return Precision::kFloat32;
  if (text == "fp16") return Precision::kFloat16;
  return invalid_input("unknown precision '" + text + "': use auto, fp32 or fp16");
}

Result<MemoryMode> parse_memory_mode(const std::string& text) {
  if (text == "explicit") return MemoryMode::kExplicit;
  if (text == "unified") return MemoryMode::kUnified;
  return invalid_input("unknown memory mode '" + text + "': use explicit or unified");
}

Result<Layout> parse_layout(const std::string& text) {
  if (text == "auto" || text.empty()) return Layout::kAuto;
  if (text == "nchw") return Layout::kNchw;
  if (text == "nhwc") return Layout::kNhwc;
  return invalid_input("unknown layout '" + text + "': use auto, nchw or nhwc");
}

int InferenceSession::output_index(const std::string& name) const {
  const auto& outs = outputs();
  for (std::size_t i = 0; i < outs.size(); ++i) {
    if (outs[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

Status InferenceSession::run_on_device(std::span<const DeviceTensor>, const DeviceOutputsFn&) {
  return unsupported("this session runs host tensors only (device runs need the native engine on CUDA)");
}

}  // namespace fswap
