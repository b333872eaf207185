#include "face/detector.h"

#include <algorithm>
#include <cmath>

#include "face/detector_facefusion.h"
#include "face/model_input.h"
#include "imaging/transform.h"

namespace fswap {

Result<int> parse_detector_size(const std::string& text) {
  const auto x = text.find('x');
  const std::string w = text.substr(0, x), h = x == std::string::npos ? w : text.substr(x + 1);
  const auto number = [](const std::string& s) {
    return !s.empty() && s.size() <= 4 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })
               ? std::stoi(s)
               : -1;
  };
  const int side = number(w);
  if (side < 160 || side > 640 || side % 32 != 0 || number(h) != side)
    return invalid_input("--face-detector-size \"" + text + "\": expected a square NxN, N a multiple of 32 from 160 to 640");
  return side;
}

std::vector<Face> non_max_suppression(std::vector<Face> faces, float iou_threshold) {
  std::stable_sort(faces.begin(), faces.end(), [](const Face& a, const Face& b) { return a.score > b.score; });
  std::vector<Face> kept;
  for (auto& f : faces) {
    bool overlaps = std::any_of(kept.begin(), kept.end(),
                                [&](const Face& k) { return iou(k.box, f.box) > iou_threshold; });
    if (!overlaps) kept.push_back(std::move(f));
  }
  return kept;
}

namespace {

Result<std::unique_ptr<InferenceSession>> load_model(Engine& engine, const std::string& models_dir,
                                                     const std::string& file, const SessionOptions& options) {
  return engine.load(models_dir + "/" + file, options);
}

// fr_detect and blazeface have no margin or angles: refused rather than ignored.
Status require_upright(const DetectOptions& options, const char* model) {
  if (options.margin != std::array<int, 4>{0, 0, 0, 0} || options.angles != std::vector<int>{0})
    return unsupported(std::string(model) +
                       ": --face-detector-margin and --face-detector-angles need one of FaceFusion's detectors "
                       "(yoloface, scrfd, retinaface, yunet, many)");
  return Status::ok();
}

FaceBox clamp_box(FaceBox b, int width, int height) {
  b.x1 = std::clamp(b.x1, 0.f, static_cast<float>(width));
  b.x2 = std::clamp(b.x2, 0.f, static_cast<float>(width));
  b.y1 = std::clamp(b.y1, 0.f, static_cast<float>(height));
  b.y2 = std::clamp(b.y2, 0.f, static_cast<float>(height));
  return b;
}

// fr_detect (faceplugin, UltraFace-RFB style): the whole image stretched to 320×240,
// (v − 127) / 128; `scores` [1,N,2] softmaxed (index 1 = face), `boxes` [1,N,4] normalised x1y1x2y2.
class FrDetector final : public FaceDetector {
 public:
  explicit FrDetector(std::unique_ptr<InferenceSession> session) : session_(std::move(session)) {}

  Result<std::vector<Face>> detect(const Image& rgb, const DetectOptions& options) override {
    FSWAP_RETURN_IF_ERROR(require_upright(options, "fr_detect"));
    Image input = resize(rgb, kWidth, kHeight, Interp::kBilinear);
    FSWAP_ASSIGN_OR_RETURN(auto outputs, session_->run({image_to_nchw(input, 127.f, 1.f / 128.f)}));
    const int scores_at = session_->output_index("scores"), boxes_at = session_->output_index("boxes");
    if (scores_at < 0 || boxes_at < 0) return invalid_input("fr_detect: model lacks the scores/boxes outputs");
    const Tensor& scores = outputs[scores_at];
    const Tensor& boxes = outputs[boxes_at];
    const std::int64_t n = scores.shape().at(1);
    const float* s = scores.data<float>();
    const float* b = boxes.data<float>();
    std::vector<Face> faces;
    for (std::int64_t i = 0; i < n; ++i) {
      const float score = s[2 * i + 1];
      if (score < options.score_threshold) continue;
      Face f;
      f.score = score;
      f.box = clamp_box({b[4 * i] * rgb.width, b[4 * i + 1] * rgb.height, b[4 * i + 2] * rgb.width,
                         b[4 * i + 3] * rgb.height},
                        rgb.width, rgb.height);
      if (f.box.area() > 0) faces.push_back(std::move(f));
    }
    return non_max_suppression(std::move(faces), options.nms_iou);
  }

 private:
  static constexpr int kWidth = 320, kHeight = 240;
  std::unique_ptr<InferenceSession> session_;
};

// MediaPipe BlazeFace full range: 256×256 NHWC in [−1, 1]; two heads (16×16 cells × 2 anchors,
// 8×8 cells × 6 anchors) of sigmoid scores and 16 regressors (box centre/size and 6 keypoints,
// in input pixels relative to the anchor centre). The image is letterboxed to a square so the
// aspect ratio is kept.
class BlazeFaceDetector final : public FaceDetector {
 public:
  explicit BlazeFaceDetector(std::unique_ptr<InferenceSession> session) : session_(std::move(session)) {}

  Result<std::vector<Face>> detect(const Image& rgb, const DetectOptions& options) override {
    FSWAP_RETURN_IF_ERROR(require_upright(options, "blazeface"));
    const float side = static_cast<float>(std::max(rgb.width, rgb.height));
    const float scale = kSize / side;
    const Affine to_input{scale, 0, (kSize - rgb.width * scale) / 2, 0, scale, (kSize - rgb.height * scale) / 2};
    Image input = warp_affine(rgb, to_input, kSize, kSize, Border::kConstant);
    FSWAP_ASSIGN_OR_RETURN(auto outputs, session_->run({image_to_nhwc(input, 127.5f, 1.f / 127.5f)}));
    const Affine to_image = *to_input.inverse();

    std::vector<Face> faces;
    // Heads are matched by their anchor count: 512 (16×16×2) and 384 (8×8×6).
    for (const auto& [cells, per_cell] : {std::pair{16, 2}, std::pair{8, 6}}) {
      const std::int64_t anchors = static_cast<std::int64_t>(cells) * cells * per_cell;
      const Tensor* scores = nullptr;
      const Tensor* regressors = nullptr;
      for (const Tensor& t : outputs) {
        if (t.shape().size() != 3 || t.shape()[1] != anchors) continue;
        (t.shape()[2] == 1 ? scores : regressors) = &t;
      }
      if (!scores || !regressors) return invalid_input("blazeface: unexpected output shapes");
      const float* s = scores->data<float>();
      const float* r = regressors->data<float>();
      for (std::int64_t i = 0; i < anchors; ++i) {
        const float score = 1.f / (1.f + std::exp(-std::clamp(s[i], -80.f, 80.f)));
        if (score < options.score_threshold) continue;
        const std::int64_t cell = i / per_cell;
        const float ax = (static_cast<float>(cell % cells) + 0.5f) / cells * kSize;
        const float ay = (static_cast<float>(cell / cells) + 0.5f) / cells * kSize;
        const float* v = r + i * 16;
        const Point2f c = to_image.apply({ax + v[0], ay + v[1]});
        const float w = v[2] / scale, h = v[3] / scale;
        Face f;
        f.score = score;
        f.box = clamp_box({c.x - w / 2, c.y - h / 2, c.x + w / 2, c.y + h / 2}, rgb.width, rgb.height);
        for (int k = 0; k < 6; ++k) f.keypoints.push_back(to_image.apply({ax + v[4 + 2 * k], ay + v[5 + 2 * k]}));
        if (f.box.area() > 0) faces.push_back(std::move(f));
      }
    }
    return non_max_suppression(std::move(faces), options.nms_iou);
  }

 private:
  static constexpr int kSize = 256;
  std::unique_ptr<InferenceSession> session_;
};

}  // namespace

Result<std::unique_ptr<FaceDetector>> make_face_detector(const std::string& name, Engine& engine,
                                                         const std::string& models_dir,
                                                         const SessionOptions& session_options) {
  if (name == "fr_detect") {
    FSWAP_ASSIGN_OR_RETURN(auto session, load_model(engine, models_dir, "fr_detect.onnx", session_options));
    return std::unique_ptr<FaceDetector>(std::make_unique<FrDetector>(std::move(session)));
  }
  if (name == "blazeface") {
    FSWAP_ASSIGN_OR_RETURN(auto session, load_model(engine, models_dir, "blazeface_back_256.onnx", session_options));
    return std::unique_ptr<FaceDetector>(std::make_unique<BlazeFaceDetector>(std::move(session)));
  }
  if (name == "yoloface") {
    FSWAP_ASSIGN_OR_RETURN(auto session, load_model(engine, models_dir, "yoloface_8n.onnx", session_options));
    return make_yoloface_detector(std::move(session));
  }
  if (name == "scrfd") {
    FSWAP_ASSIGN_OR_RETURN(auto session, load_model(engine, models_dir, "scrfd_2.5g.onnx", session_options));
    return make_scrfd_detector(std::move(session));
  }
  if (name == "retinaface") {
    FSWAP_ASSIGN_OR_RETURN(auto session, load_model(engine, models_dir, "retinaface_10g.onnx", session_options));
    return make_retinaface_detector(std::move(session));
  }
  if (name == "yunet") {
    FSWAP_ASSIGN_OR_RETURN(auto session, load_model(engine, models_dir, "yunet_2023_mar.onnx", session_options));
    return make_yunet_detector(std::move(session));
  }
  if (name == "many") {
    FSWAP_ASSIGN_OR_RETURN(auto retinaface, load_model(engine, models_dir, "retinaface_10g.onnx", session_options));
    FSWAP_ASSIGN_OR_RETURN(auto scrfd, load_model(engine, models_dir, "scrfd_2.5g.onnx", session_options));
    FSWAP_ASSIGN_OR_RETURN(auto yoloface, load_model(engine, models_dir, "yoloface_8n.onnx", session_options));
    return make_many_detector(std::move(retinaface), std::move(scrfd), std::move(yoloface));
  }
  return invalid_input("unknown face detector '" + name +
                       "' (known: fr_detect, blazeface, yoloface, scrfd, retinaface, yunet, many)");
}

}  // namespace fswap
