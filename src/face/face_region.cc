#include "face/face_region.h"

#include <algorithm>
#include <optional>

namespace fswap {
namespace {

// The part of `region` inside the frame (empty: the step has nothing to do); kInvalidInput for a
// frame that is not RGB.
Result<Rect> step_part(const Image& frame, const Rect& region) {
  if (frame.channels != 3) return invalid_input("a face step's frame must be RGB");
  return intersect(region, Rect{0, 0, frame.width, frame.height});
}

}  // namespace

Status run_in_region(Image& frame, const Rect& region, const Face& face, const HostFaceStep& step) {
  FSWAP_ASSIGN_OR_RETURN(const Rect r, step_part(frame, region));
  if (r.empty()) return Status::ok();
  Image part = crop(frame, r);
  FSWAP_RETURN_IF_ERROR(step(part, translated(face, static_cast<float>(-r.x), static_cast<float>(-r.y))));
  const std::size_t row = static_cast<std::size_t>(r.width) * 3;
  for (int y = 0; y < r.height; ++y) std::copy_n(part.row(y), row, frame.row(r.y + y) + static_cast<std::size_t>(r.x) * 3);
  return Status::ok();
}

Status run_on_gpu_in_region(DeviceWork& gpu, Image& frame, const Rect& region, const Face& face,
                            const DeviceFaceStep& step, TimeLedger* ledger) {
  FSWAP_ASSIGN_OR_RETURN(const Rect r, step_part(frame, region));
  if (r.empty()) return Status::ok();
  // The region's rows go up from the frame and come back into it: no host copy of the region.
  std::optional<DeviceFrame> on_gpu;  // outlives the hold: a DeviceFrame frees itself under it
  const Status s = [&]() -> Status {
    auto held = gpu.hold();
    {
      ScopedTimer t(ledger, "upload");
      FSWAP_ASSIGN_OR_RETURN(on_gpu, DeviceFrame::upload(gpu, frame, r));
    }
    return step(*on_gpu, translated(face, static_cast<float>(-r.x), static_cast<float>(-r.y)));
  }();
  FSWAP_RETURN_IF_ERROR(s);  // on_gpu is freed on the way out, not under the hold
  return frame_to_host(frame, on_gpu, ledger);
}

}  // namespace fswap
