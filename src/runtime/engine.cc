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

int InferenceSession::output_index(const std::string& name) const {
  const auto& outs = outputs();
  for (std::size_t i = 0; i < outs.size(); ++i) {
    if (outs[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace fswap
