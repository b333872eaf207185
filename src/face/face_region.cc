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

Rect part_holding(const std::vector<Rect>& regions, int frame_width, int frame_height) {
  const Rect frame{0, 0, frame_width, frame_height};
  int x0 = frame_width, y0 = frame_height, x1 = 0, y1 = 0;
  for (const Rect& region : regions) {
    const Rect r = intersect(region, frame);
    if (r.empty()) continue;
    x0 = std::min(x0, r.x), y0 = std::min(y0, r.y);
    x1 = std::max(x1, r.x + r.width), y1 = std::max(y1, r.y + r.height);
  }
  return x1 > x0 && y1 > y0 ? Rect{x0, y0, x1 - x0, y1 - y0} : frame;
}

Status run_in_region(Image& frame, const Rect& region, const Face& face, const HostFaceStep& step) {
  FSWAP_ASSIGN_OR_RETURN(const Rect r, step_part(frame, region));
  if (r.empty()) return Status::ok();
  Image part = crop(frame, r);
  FSWAP_RETURN_IF_ERROR(step(part, translated(face, static_cast<float>(-r.x), static_cast<float>(-r.y))));
  place(part, frame, r.x, r.y);
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
