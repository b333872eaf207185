// FaceFusion's yoloface_8n, scrfd_2.5g, retinaface_10g and yunet_2023_mar detectors and `many`
// (facefusion/face_detector.py, 3.8.1; reference/facefusion.md §2.2). Callers use
// make_face_detector("yoloface" | "scrfd" | "retinaface" | "yunet" | "many", ...); the
// steps are declared here so tests can check each against FaceFusion's formulas.
//
//   FacefusionDetectInput in = facefusion_detect_input(rgb, 640, 0.f, 1.f / 255.f);
//   FSWAP_ASSIGN_OR_RETURN(auto outputs, session->run({in.tensor}));
//   FSWAP_ASSIGN_OR_RETURN(auto faces, decode_yoloface(outputs[0], 0.5f, in.ratio_width, in.ratio_height));
#pragma once

#include <array>
#include <memory>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "face/detector.h"
#include "imaging/geometry.h"
#include "imaging/image.h"
#include "runtime/engine.h"

namespace fswap {

// The detector input as FaceFusion builds it (restrict_frame + prepare_detect_frame):
// the frame is shrunk, aspect kept, to fit size × size with INTER_LINEAR (never enlarged),
// pasted top-left into a zero canvas, planes in BGR order, value (v − offset) · scale — the
// zero padding is normalised too.
struct FacefusionDetectInput {
  Tensor tensor;             // [1, 3, size, size] float32
  float ratio_width = 1.f;   // frame width / shrunk width: input pixels → frame pixels
  float ratio_height = 1.f;  // frame height / shrunk height
};
// rgb: 3 channels, RGB.
FacefusionDetectInput facefusion_detect_input(const Image& rgb, int size, float offset, float scale);

// yoloface_8n output0 [1, 20, N] (cx, cy, w, h, score, 5 × (x, y, conf), input pixels) →
// faces with score > score_threshold, box and 5 keypoints in frame pixels, before NMS, in
// anchor order. FaceFusion's quirk is kept: when the only candidate is anchor 0, none is kept.
Result<std::vector<Face>> decode_yoloface(const Tensor& output0, float score_threshold, float ratio_width,
                                          float ratio_height);

// scrfd outputs in FaceFusion's order: score_8/16/32 [N, 1], bbox_8/16/32 [N, 4],
// kps_8/16/32 [N, 10], N = (size/s)² · 2. Anchors are the cell's top-left corner (x·s, y·s),
// two per cell; box = anchor ∓ distance·s, keypoints = anchor + offset·s. Keeps
// score ≥ score_threshold (per stride, with the same anchor-0 quirk), before NMS.
Result<std::vector<Face>> decode_scrfd(const std::array<const Tensor*, 9>& outputs, int size, float score_threshold,
                                       float ratio_width, float ratio_height);

// yunet_2023_mar outputs in FaceFusion's order: cls_8/16/32 [1, N, 1], obj_8/16/32 [1, N, 1],
// bbox_8/16/32 [1, N, 4], kps_8/16/32 [1, N, 10], N = (size/s)², one anchor per cell at the cell's
// top-left corner (x·s, y·s). score = cls·obj; box centre = anchor + offset·s, box size =
// exp(w, h)·s; keypoints = anchor + offset·s. Keeps score ≥ score_threshold (per stride, with the
// same anchor-0 quirk), before NMS.
Result<std::vector<Face>> decode_yunet(const std::array<const Tensor*, 12>& outputs, int size, float score_threshold,
                                       float ratio_width, float ratio_height);

// --face-detector-margin: the zero border FaceFusion adds around the frame before detecting
// (prepare_margin): top/bottom = int(m / 100 · 0.5 · height), left/right likewise with the width.
// Returns {top, right, bottom, left} in pixels; kInvalidInput for a value outside 0..100.
Result<std::array<int, 4>> facefusion_margin_pixels(const std::array<int, 4>& margin, int width, int height);

// --face-detector-angles: the frame turned counter-clockwise by a multiple of 90° (an exact pixel
// permutation), and a point of the turned frame mapped back into the frame it came from (width ×
// height: that frame's size; continuous coordinates, pixel i spans [i, i + 1)).
Image rotate_frame(const Image& rgb, int angle);
Point2f unrotate_point(Point2f p, int angle, int width, int height);
// FaceFusion's NMS IoU for n angles: 0.4, 0.3, 0.2, 0.1 for 1..4 (with one angle, `fallback`).
float facefusion_angles_iou(std::size_t angles, float fallback);

// FaceFusion's final step (cv2.dnn.NMSBoxes: score > threshold, IoU > nms_iou dropped), then
// boxes clamped into the width × height frame; faces left empty by the clamp are dropped.
std::vector<Face> facefusion_select_faces(std::vector<Face> faces, const DetectOptions& options, int width, int height);

// The detectors behind make_face_detector; the session must be the matching model.
std::unique_ptr<FaceDetector> make_yoloface_detector(std::unique_ptr<InferenceSession> session);
std::unique_ptr<FaceDetector> make_scrfd_detector(std::unique_ptr<InferenceSession> session);
// retinaface_10g: scrfd's head and processing (reference/facefusion.md §2.2).
std::unique_ptr<FaceDetector> make_retinaface_detector(std::unique_ptr<InferenceSession> session);
// yunet: raw 0..255 BGR in, only 640; not part of `many` (FaceFusion's many is the three above).
std::unique_ptr<FaceDetector> make_yunet_detector(std::unique_ptr<InferenceSession> session);
// FaceFusion's `many`: the candidates of retinaface, scrfd and yoloface together, then one NMS at
// IoU 0.1 (DetectOptions::nms_iou is ignored) and the clamp. yoloface needs detector size 640.
std::unique_ptr<FaceDetector> make_many_detector(std::unique_ptr<InferenceSession> retinaface,
                                                 std::unique_ptr<InferenceSession> scrfd,
                                                 std::unique_ptr<InferenceSession> yoloface);

}  // namespace fswap
