// A face step on the part of the frame it touches. FaceFusion's face processors read a frame only
// inside their crop's footprint and write only inside its paste rectangle (their device_region:
// face/swapper.h, face/enhancer.h), so their step on a copy of that part, with the face
// translated into it, leaves the frame with the same pixels as on the whole frame. The pipeline
// sends a face's region to the GPU instead of the whole frame when the frame cannot stay there
// or would go up and down for one processor (pipeline/swap_job.cc).
//
//   const Rect region = enhancer.device_region(face, frame.width, frame.height);
//   FSWAP_RETURN_IF_ERROR(run_in_region(frame, region, face, [&](Image& part, const Face& f) {
//     return enhancer.enhance(part, f, &ledger);
//   }));
//   // On the GPU (the caller not holding it): the part goes up, the device step, the part comes back.
//   FSWAP_RETURN_IF_ERROR(run_on_gpu_in_region(gpu, frame, region, face, [&](const DeviceFrame& part, const Face& f) {
//     return enhancer.enhance_on_device(part, f, &ledger);
//   }, &ledger));
//
// Faces go one after another: a later face's region holds the earlier faces' pastes, as the
// whole frame would. Thread-safe on distinct frames.
#pragma once

#include <functional>
#include <vector>

#include "core/status.h"
#include "core/time_ledger.h"
#include "face/device_face.h"
#include "face/face.h"
#include "imaging/image.h"
#include "runtime/device_work.h"

namespace fswap {

// The part of a frame that holds all of `regions` (each clipped to the frame): several face steps
// work on it, each with its face translated into it, as they would on the whole frame. The whole
// frame when the regions hold nothing.
Rect part_holding(const std::vector<Rect>& regions, int frame_width, int frame_height);

// A face processor's step on a frame (host or device), in place.
using HostFaceStep = std::function<Status(Image& frame, const Face& face)>;
using DeviceFaceStep = std::function<Status(const DeviceFrame& frame, const Face& face)>;

// Copies `region` (clipped to the RGB frame) into an image of its own, runs `step` on it with
// translated(face, −x, −y), and copies it back into the frame. An error leaves the frame as it
// was. An empty region runs nothing (the step would write nothing).
Status run_in_region(Image& frame, const Rect& region, const Face& face, const HostFaceStep& step);

// run_in_region with the part on `gpu`: its rows uploaded from the frame and `step` run under
// gpu.hold(), downloaded into the frame's rows with the wait outside it (the caller must not hold
// `gpu`); no host copy of the part. Records "upload" and "download" in
// the ledger (null: no timing). An error — kOutOfMemory when an allocation does not fit — leaves
// the frame as it was.
Status run_on_gpu_in_region(DeviceWork& gpu, Image& frame, const Rect& region, const Face& face,
                            const DeviceFaceStep& step, TimeLedger* ledger);

}  // namespace fswap
