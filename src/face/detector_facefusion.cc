#include "face/detector_facefusion.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "imaging/transform.h"

namespace fswap {

FacefusionDetectInput facefusion_detect_input(const Image& rgb, int size, float offset, float scale) {
  // vision.restrict_frame: Python floats, int() truncation.
  int w = rgb.width, h = rgb.height;
  Image shrunk;
  const Image* src = &rgb;
  if (h > size || w > size) {
    const double s = std::min(static_cast<double>(size) / h, static_cast<double>(size) / w);
    w = static_cast<int>(w * s);
    h = static_cast<int>(h * s);
    shrunk = resize(rgb, w, h, Interp::kBilinear);
    src = &shrunk;
  }
  FacefusionDetectInput in;
  in.ratio_width = static_cast<float>(static_cast<double>(rgb.width) / w);
  in.ratio_height = static_cast<float>(static_cast<double>(rgb.height) / h);
  in.tensor = Tensor::zeros(DType::kFloat32, {1, 3, size, size});
  float* p = in.tensor.data<float>();
  const std::size_t plane = static_cast<std::size_t>(size) * size;
  const float pad = (0.f - offset) * scale;
  std::fill(p, p + 3 * plane, pad);
  for (int c = 0; c < 3; ++c) {
    float* dst = p + c * plane;
    const int from = 2 - c;  // FaceFusion's frames are BGR
    for (int y = 0; y < h; ++y) {
      const std::uint8_t* row = src->row(y);
      for (int x = 0; x < w; ++x) dst[static_cast<std::size_t>(y) * size + x] = (row[x * 3 + from] - offset) * scale;
    }
  }
  return in;
}

Result<std::vector<Face>> decode_yoloface(const Tensor& output0, float score_threshold, float ratio_width,
                                          float ratio_height) {
  const Shape& shape = output0.shape();
  if (shape.size() != 3 || shape[0] != 1 || shape[1] != 20)
    return invalid_input("yoloface: output0 must be [1, 20, N] (box, score, 5 keypoints × 3)");
  const std::int64_t n = shape[2];
  const float* d = output0.data<float>();
  auto at = [&](int channel, std::int64_t i) { return d[channel * n + i]; };
  std::vector<Face> faces;
  bool kept_other_than_first = false;
  for (std::int64_t i = 0; i < n; ++i) {
    const float score = at(4, i);
    if (!(score > score_threshold)) continue;
    if (i > 0) kept_other_than_first = true;
    const float cx = at(0, i), cy = at(1, i), bw = at(2, i), bh = at(3, i);
    Face f;
    f.score = score;
    f.box = {(cx - bw / 2) * ratio_width, (cy - bh / 2) * ratio_height, (cx + bw / 2) * ratio_width,
             (cy + bh / 2) * ratio_height};
    for (int k = 0; k < 5; ++k) f.keypoints.push_back({at(5 + 3 * k, i) * ratio_width, at(6 + 3 * k, i) * ratio_height});
    faces.push_back(std::move(f));
  }
  // `if numpy.any(keep_indices)` is false when index 0 is the only one kept.
  if (!kept_other_than_first) faces.clear();
  return faces;
}

Result<std::vector<Face>> decode_scrfd(const std::array<const Tensor*, 9>& outputs, int size, float score_threshold,
                                       float ratio_width, float ratio_height) {
  constexpr int kStrides[3] = {8, 16, 32};
  constexpr int kAnchorsPerCell = 2;
  std::vector<Face> faces;
  for (int s = 0; s < 3; ++s) {
    const int stride = kStrides[s];
    const std::int64_t cells_x = size / stride, cells_y = size / stride;
    const std::int64_t n = cells_x * cells_y * kAnchorsPerCell;
    const Tensor* parts[3] = {outputs[s], outputs[s + 3], outputs[s + 6]};
    const int widths[3] = {1, 4, 10};
    for (int k = 0; k < 3; ++k) {
      if (!parts[k] || parts[k]->dtype() != DType::kFloat32 || parts[k]->elements() != n * widths[k])
        return invalid_input("scrfd: stride " + std::to_string(stride) + " output " + std::to_string(k) +
                             " does not have " + std::to_string(n) + "×" + std::to_string(widths[k]) +
                             " floats for detector size " + std::to_string(size));
    }
    const float* score = parts[0]->data<float>();
    const float* bbox = parts[1]->data<float>();
    const float* kps = parts[2]->data<float>();
    std::vector<Face> here;
    bool kept_other_than_first = false;
    for (std::int64_t i = 0; i < n; ++i) {
      if (!(score[i] >= score_threshold)) continue;
      if (i > 0) kept_other_than_first = true;
      const std::int64_t cell = i / kAnchorsPerCell;
      const float ax = static_cast<float>((cell % cells_x) * stride);
      const float ay = static_cast<float>((cell / cells_x) * stride);
      const float* b = bbox + 4 * i;
      const float* p = kps + 10 * i;
      Face f;
      f.score = score[i];
      f.box = {(ax - b[0] * stride) * ratio_width, (ay - b[1] * stride) * ratio_height,
               (ax + b[2] * stride) * ratio_width, (ay + b[3] * stride) * ratio_height};
      for (int k = 0; k < 5; ++k)
        f.keypoints.push_back({(ax + p[2 * k] * stride) * ratio_width, (ay + p[2 * k + 1] * stride) * ratio_height});
      here.push_back(std::move(f));
    }
    if (kept_other_than_first) faces.insert(faces.end(), here.begin(), here.end());
  }
  return faces;
}

Result<std::vector<Face>> decode_yunet(const std::array<const Tensor*, 12>& outputs, int size, float score_threshold,
                                       float ratio_width, float ratio_height) {
  constexpr int kStrides[3] = {8, 16, 32};
  std::vector<Face> faces;
  for (int s = 0; s < 3; ++s) {
    const int stride = kStrides[s];
    const std::int64_t cells_x = size / stride, n = cells_x * (size / stride);
    const Tensor* parts[4] = {outputs[s], outputs[s + 3], outputs[s + 6], outputs[s + 9]};
    const int widths[4] = {1, 1, 4, 10};
    for (int k = 0; k < 4; ++k) {
      if (!parts[k] || parts[k]->dtype() != DType::kFloat32 || parts[k]->elements() != n * widths[k])
        return invalid_input("yunet: stride " + std::to_string(stride) + " output " + std::to_string(k) +
                             " does not have " + std::to_string(n) + "×" + std::to_string(widths[k]) +
                             " floats for detector size " + std::to_string(size));
    }
    const float* cls = parts[0]->data<float>();
    const float* obj = parts[1]->data<float>();
    const float* bbox = parts[2]->data<float>();
    const float* kps = parts[3]->data<float>();
    std::vector<Face> here;
    bool kept_other_than_first = false;
    for (std::int64_t i = 0; i < n; ++i) {
      const float score = cls[i] * obj[i];
      if (!(score >= score_threshold)) continue;
      if (i > 0) kept_other_than_first = true;
      const float ax = static_cast<float>((i % cells_x) * stride);
      const float ay = static_cast<float>((i / cells_x) * stride);
      const float* b = bbox + 4 * i;
      const float* p = kps + 10 * i;
      const float cx = b[0] * stride + ax, cy = b[1] * stride + ay;
      const float w = std::exp(b[2]) * stride, h = std::exp(b[3]) * stride;
      Face f;
      f.score = score;
      f.box = {(cx - w / 2) * ratio_width, (cy - h / 2) * ratio_height, (cx + w / 2) * ratio_width,
               (cy + h / 2) * ratio_height};
      for (int k = 0; k < 5; ++k)
        f.keypoints.push_back({(p[2 * k] * stride + ax) * ratio_width, (p[2 * k + 1] * stride + ay) * ratio_height});
      here.push_back(std::move(f));
    }
    if (kept_other_than_first) faces.insert(faces.end(), here.begin(), here.end());
  }
  return faces;
}

Result<std::array<int, 4>> facefusion_margin_pixels(const std::array<int, 4>& margin, int width, int height) {
  std::array<int, 4> pixels{};
  for (int side = 0; side < 4; ++side) {
    if (margin[side] < 0 || margin[side] > 100)
      return invalid_input("--face-detector-margin: " + std::to_string(margin[side]) + " is outside 0..100");
    const int extent = side % 2 == 0 ? height : width;  // top, bottom: height; right, left: width
    pixels[side] = static_cast<int>(margin[side] / 100.0 * 0.5 * extent);
  }
  return pixels;
}

Image rotate_frame(const Image& rgb, int angle) {
  const int w = rgb.width, h = rgb.height, c = rgb.channels;
  const bool quarter = angle == 90 || angle == 270;
  Image out(quarter ? h : w, quarter ? w : h, c);
  for (int v = 0; v < out.height; ++v)
    for (int u = 0; u < out.width; ++u) {
      // The source pixel of (u, v): the inverse of the counter-clockwise turn, on pixel centres.
      const int x = angle == 90 ? w - 1 - v : angle == 180 ? w - 1 - u : angle == 270 ? v : u;
      const int y = angle == 90 ? u : angle == 180 ? h - 1 - v : angle == 270 ? h - 1 - u : v;
      std::copy_n(&rgb.at(x, y), c, &out.at(u, v));
    }
  return out;
}

Point2f unrotate_point(Point2f p, int angle, int width, int height) {
  const float w = static_cast<float>(width), h = static_cast<float>(height);
  switch (angle) {
    case 90: return {w - p.y, p.x};
    case 180: return {w - p.x, h - p.y};
    case 270: return {p.y, h - p.x};
    default: return p;
  }
}

float facefusion_angles_iou(std::size_t angles, float fallback) {
  static constexpr float kIou[] = {0.4f, 0.3f, 0.2f, 0.1f};
  return angles <= 1 ? fallback : kIou[std::min<std::size_t>(angles, 4) - 1];
}

std::vector<Face> facefusion_select_faces(std::vector<Face> faces, const DetectOptions& options, int width,
                                          int height) {
  std::erase_if(faces, [&](const Face& f) { return !(f.score > options.score_threshold); });
  faces = non_max_suppression(std::move(faces), options.nms_iou);
  std::vector<Face> kept;
  for (Face& f : faces) {
    f.box.x1 = std::clamp(f.box.x1, 0.f, static_cast<float>(width));
    f.box.x2 = std::clamp(f.box.x2, 0.f, static_cast<float>(width));
    f.box.y1 = std::clamp(f.box.y1, 0.f, static_cast<float>(height));
    f.box.y2 = std::clamp(f.box.y2, 0.f, static_cast<float>(height));
    if (f.box.area() > 0) kept.push_back(std::move(f));
  }
  return kept;
}

namespace {

Status check_frame(const Image& rgb, const char* model) {
  if (rgb.channels != 3 || rgb.width <= 0 || rgb.height <= 0)
    return invalid_input(std::string(model) + ": needs a non-empty 3-channel RGB frame, got " +
                         std::to_string(rgb.width) + "×" + std::to_string(rgb.height) + "×" +
                         std::to_string(rgb.channels));
  return Status::ok();
}

// The model's outputs in FaceFusion's order: by name where the file has these names (as the
// replicas and the released files do), else by position, as FaceFusion reads them.
template <std::size_t N>
Result<std::array<const Tensor*, N>> outputs_in_order(const InferenceSession& session,
                                                      const std::vector<Tensor>& outputs,
                                                      const std::array<const char*, N>& names, const char* model) {
  if (outputs.size() < N)
    return invalid_input(std::string(model) + ": the model has " + std::to_string(outputs.size()) + " outputs, needs " +
                         std::to_string(N));
  std::array<const Tensor*, N> parts{};
  for (std::size_t k = 0; k < N; ++k) {
    const int at = session.output_index(names[k]);
    parts[k] = &outputs[at >= 0 ? static_cast<std::size_t>(at) : k];
  }
  return parts;
}

// FaceFusion's detectors share the last step: candidates from the model, then
// facefusion_select_faces. `many` merges several detectors' candidates before that step.
class FacefusionDetector : public FaceDetector {
 public:
  // Candidates in frame pixels, before NMS (decode_yoloface / decode_scrfd).
  virtual Result<std::vector<Face>> candidates(const Image& rgb, const DetectOptions& options) = 0;

  // The frame with its margin, turned by each angle in turn; every turn's candidates mapped back
  // into the frame, then one selection (FaceFusion's NMS IoU for the number of angles).
  Result<std::vector<Face>> detect(const Image& rgb, const DetectOptions& options) final {
    FSWAP_RETURN_IF_ERROR(check_frame(rgb, "face detector"));
    if (options.angles.empty()) return invalid_input("--face-detector-angles: at least one angle");
    for (int angle : options.angles)
      if (angle != 0 && angle != 90 && angle != 180 && angle != 270)
        return invalid_input("--face-detector-angles: " + std::to_string(angle) + " is not one of 0, 90, 180, 270");
    FSWAP_ASSIGN_OR_RETURN(const auto pad, facefusion_margin_pixels(options.margin, rgb.width, rgb.height));
    const bool padded = pad != std::array<int, 4>{0, 0, 0, 0};
    const Image framed = padded ? with_margin(rgb, pad) : Image();
    const Image& frame = padded ? framed : rgb;
    std::vector<Face> faces;
    for (int angle : options.angles) {
      FSWAP_ASSIGN_OR_RETURN(auto found, candidates(angle == 0 ? frame : rotate_frame(frame, angle), options));
      for (Face& f : found) {
        const auto back = [&](Point2f p) {
          const Point2f q = unrotate_point(p, angle, frame.width, frame.height);
          return Point2f{q.x - pad[3], q.y - pad[0]};
        };
        const Point2f a = back({f.box.x1, f.box.y1}), b = back({f.box.x2, f.box.y2});
        f.box = {std::min(a.x, b.x), std::min(a.y, b.y), std::max(a.x, b.x), std::max(a.y, b.y)};
        for (Point2f& k : f.keypoints) k = back(k);
        faces.push_back(std::move(f));
      }
    }
    DetectOptions selection = options;
    selection.nms_iou = nms_iou(options);
    return facefusion_select_faces(std::move(faces), selection, rgb.width, rgb.height);
  }

 protected:
  virtual float nms_iou(const DetectOptions& options) const {
    return facefusion_angles_iou(options.angles.size(), options.nms_iou);
  }

 private:
  // rgb inside a zero border of pad = {top, right, bottom, left} pixels.
  static Image with_margin(const Image& rgb, const std::array<int, 4>& pad) {
    Image out(rgb.width + pad[1] + pad[3], rgb.height + pad[0] + pad[2], rgb.channels);
    place(rgb, out, pad[3], pad[0]);
    return out;
  }
};

// yolo_face: x / 255, only 640.
class YolofaceDetector final : public FacefusionDetector {
 public:
  explicit YolofaceDetector(std::unique_ptr<InferenceSession> session) : session_(std::move(session)) {}

  Result<std::vector<Face>> candidates(const Image& rgb, const DetectOptions& options) override {
    FSWAP_RETURN_IF_ERROR(check_frame(rgb, "yoloface"));
    if (options.detector_size != kSize)
      return invalid_input("yoloface: detector size " + std::to_string(options.detector_size) +
                           " is not supported; FaceFusion's yoloface_8n runs at 640 only");
    FacefusionDetectInput in = facefusion_detect_input(rgb, kSize, 0.f, 1.f / 255.f);
    FSWAP_ASSIGN_OR_RETURN(auto outputs, session_->run({in.tensor}));
    if (outputs.empty()) return invalid_input("yoloface: the model returned no output");
    return decode_yoloface(outputs[0], options.score_threshold, in.ratio_width, in.ratio_height);
  }

 private:
  static constexpr int kSize = 640;
  std::unique_ptr<InferenceSession> session_;
};

// scrfd and retinaface (the same InsightFace head): (x − 127.5) / 128, sizes 160..640 (a multiple
// of 32).
class AnchorDetector final : public FacefusionDetector {
 public:
  AnchorDetector(std::unique_ptr<InferenceSession> session, const char* name)
      : session_(std::move(session)), name_(name) {}

  Result<std::vector<Face>> candidates(const Image& rgb, const DetectOptions& options) override {
    FSWAP_RETURN_IF_ERROR(check_frame(rgb, name_));
    const int size = options.detector_size;
    if (size < 32 || size % 32 != 0)
      return invalid_input(std::string(name_) + ": detector size " + std::to_string(size) +
                           " must be a multiple of 32 (FaceFusion offers 160, 320, 480, 512, 640)");
    FacefusionDetectInput in = facefusion_detect_input(rgb, size, 127.5f, 1.f / 128.f);
    FSWAP_ASSIGN_OR_RETURN(auto outputs, session_->run({in.tensor}));
    static constexpr std::array<const char*, 9> kNames = {"score_8", "score_16", "score_32", "bbox_8", "bbox_16",
                                                          "bbox_32",  "kps_8",    "kps_16",   "kps_32"};
    FSWAP_ASSIGN_OR_RETURN(auto parts, outputs_in_order(*session_, outputs, kNames, name_));
    return decode_scrfd(parts, size, options.score_threshold, in.ratio_width, in.ratio_height);
  }

 private:
  std::unique_ptr<InferenceSession> session_;
  const char* name_;
};

// yunet: raw 0..255, only 640.
class YunetDetector final : public FacefusionDetector {
 public:
  explicit YunetDetector(std::unique_ptr<InferenceSession> session) : session_(std::move(session)) {}

  Result<std::vector<Face>> candidates(const Image& rgb, const DetectOptions& options) override {
    FSWAP_RETURN_IF_ERROR(check_frame(rgb, "yunet"));
    if (options.detector_size != kSize)
      return invalid_input("yunet: detector size " + std::to_string(options.detector_size) +
                           " is not supported; FaceFusion's yunet_2023_mar runs at 640 only");
    FacefusionDetectInput in = facefusion_detect_input(rgb, kSize, 0.f, 1.f);
    FSWAP_ASSIGN_OR_RETURN(auto outputs, session_->run({in.tensor}));
    static constexpr std::array<const char*, 12> kNames = {"cls_8",  "cls_16",  "cls_32",  "obj_8",
                                                           "obj_16", "obj_32",  "bbox_8",  "bbox_16",
                                                           "bbox_32", "kps_8",  "kps_16",  "kps_32"};
    FSWAP_ASSIGN_OR_RETURN(auto parts, outputs_in_order(*session_, outputs, kNames, "yunet"));
    return decode_yunet(parts, kSize, options.score_threshold, in.ratio_width, in.ratio_height);
  }

 private:
  static constexpr int kSize = 640;
  std::unique_ptr<InferenceSession> session_;
};

// many: every detector's candidates in one list, then one NMS at IoU 0.1 (FaceFusion's value for
// `many`, whatever --face-detector's IoU would be).
class ManyDetector final : public FacefusionDetector {
 public:
  explicit ManyDetector(std::vector<std::unique_ptr<FacefusionDetector>> detectors)
      : detectors_(std::move(detectors)) {}

  Result<std::vector<Face>> candidates(const Image& rgb, const DetectOptions& options) override {
    std::vector<Face> all;
    for (auto& d : detectors_) {
      FSWAP_ASSIGN_OR_RETURN(auto faces, d->candidates(rgb, options));
      all.insert(all.end(), std::make_move_iterator(faces.begin()), std::make_move_iterator(faces.end()));
    }
    return all;
  }

 protected:
  float nms_iou(const DetectOptions&) const override { return kManyIou; }

 private:
  static constexpr float kManyIou = 0.1f;
  std::vector<std::unique_ptr<FacefusionDetector>> detectors_;
};

}  // namespace

std::unique_ptr<FaceDetector> make_yoloface_detector(std::unique_ptr<InferenceSession> session) {
  return std::make_unique<YolofaceDetector>(std::move(session));
}

std::unique_ptr<FaceDetector> make_scrfd_detector(std::unique_ptr<InferenceSession> session) {
  return std::make_unique<AnchorDetector>(std::move(session), "scrfd");
}

std::unique_ptr<FaceDetector> make_retinaface_detector(std::unique_ptr<InferenceSession> session) {
  return std::make_unique<AnchorDetector>(std::move(session), "retinaface");
}

std::unique_ptr<FaceDetector> make_yunet_detector(std::unique_ptr<InferenceSession> session) {
  return std::make_unique<YunetDetector>(std::move(session));
}

std::unique_ptr<FaceDetector> make_many_detector(std::unique_ptr<InferenceSession> retinaface,
                                                 std::unique_ptr<InferenceSession> scrfd,
                                                 std::unique_ptr<InferenceSession> yoloface) {
  std::vector<std::unique_ptr<FacefusionDetector>> detectors;
  detectors.push_back(std::make_unique<AnchorDetector>(std::move(retinaface), "retinaface"));
  detectors.push_back(std::make_unique<AnchorDetector>(std::move(scrfd), "scrfd"));
  detectors.push_back(std::make_unique<YolofaceDetector>(std::move(yoloface)));
  return std::make_unique<ManyDetector>(std::move(detectors));
}

}  // namespace fswap
