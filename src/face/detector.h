// Face detectors: find face boxes (and keypoints, when the model gives them) in an RGB image.
//
//   FSWAP_ASSIGN_OR_RETURN(auto detector, make_face_detector("fr_detect", engine, models_dir, opts));
//   FSWAP_ASSIGN_OR_RETURN(std::vector<Face> faces, detector->detect(frame, {.score_threshold = 0.5f}));
//
// Faces come back sorted by score, highest first, after non-maximum suppression, in the
// image's pixel coordinates. A detector is used from one thread at a time.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "face/face.h"
#include "imaging/image.h"
#include "runtime/engine.h"

namespace fswap {

struct DetectOptions {
  float score_threshold = 0.5f;  // --face-detector-score
  float nms_iou = 0.4f;          // boxes overlapping more than this with a better one are dropped
  int detector_size = 640;       // --face-detector-size, square (yoloface: 640 only; scrfd: a multiple of 32)
  // FaceFusion's detectors only (the others refuse anything but the defaults):
  std::array<int, 4> margin{0, 0, 0, 0};  // --face-detector-margin top right bottom left, 0..100
  std::vector<int> angles{0};             // --face-detector-angles: 0, 90, 180, 270 (counter-clockwise)
};

class FaceDetector {
 public:
  virtual ~FaceDetector() = default;
  virtual Result<std::vector<Face>> detect(const Image& rgb, const DetectOptions& options) = 0;
};

// Known names: "fr_detect" (default; UltraFace-style, 320×240) and "blazeface" (MediaPipe
// BlazeFace full range, 256×256, 6 keypoints), and FaceFusion's "yoloface" (yoloface_8n.onnx),
// "scrfd" (scrfd_2.5g.onnx), "retinaface" (retinaface_10g.onnx), "yunet" (yunet_2023_mar.onnx) and
// "many" (yoloface, scrfd and retinaface merged), 5 keypoints each. Model files are looked up in models_dir.
Result<std::unique_ptr<FaceDetector>> make_face_detector(const std::string& name, Engine& engine,
                                                         const std::string& models_dir,
                                                         const SessionOptions& session_options);

// Greedy NMS: keeps faces in descending score order, dropping any whose IoU with a kept face
// exceeds iou_threshold. Returns the kept faces, best first.
std::vector<Face> non_max_suppression(std::vector<Face> faces, float iou_threshold);

// --face-detector-size as FaceFusion writes it, "640x640" (or "640"): a square side, a multiple of
// 32 from 160 to 640; kInvalidInput otherwise. Which sizes a detector takes is its own check.
Result<int> parse_detector_size(const std::string& text);

}  // namespace fswap
