#include "face/analyser.h"

#include <algorithm>
#include <filesystem>

namespace fswap {
namespace {

// A landmarker's output that is not a number (an fp16 overflow gives NaN) cannot align a face.
bool landmarks_finite(const Face& f) {
  return std::all_of(f.landmarks68.begin(), f.landmarks68.end(), is_finite) &&
         std::all_of(f.landmarks5.begin(), f.landmarks5.end(), is_finite);
}

}  // namespace

Result<std::unique_ptr<FaceAnalyser>> FaceAnalyser::load(Engine& engine, const AnalyserOptions& options) {
  std::unique_ptr<FaceAnalyser> a(new FaceAnalyser());
  a->options_ = options;
  FSWAP_ASSIGN_OR_RETURN(a->detector_, make_face_detector(options.detector, engine, options.models_dir, options.session));
  if (options.landmarker == "fr_landmark") {
    FSWAP_ASSIGN_OR_RETURN(a->landmarker_, FaceLandmarker::load(engine, options.models_dir, options.session));
  } else {
    FSWAP_ASSIGN_OR_RETURN(a->facefusion_landmarker_,
                           FaceFusionLandmarker::load(engine, options.models_dir, options.landmarker, options.session));
    std::error_code ec;
    if (std::filesystem::exists(options.models_dir + "/fan_68_5.onnx", ec)) {
      FSWAP_ASSIGN_OR_RETURN(a->fan_68_5_, FaceLandmarkEstimator::load(engine, options.models_dir, options.session));
    }
  }
  FSWAP_ASSIGN_OR_RETURN(a->recognizer_, FaceRecognizer::load(engine, options.models_dir, options.session));
  if (options.classify) {
    FSWAP_ASSIGN_OR_RETURN(a->classifier_, FairfaceClassifier::load(engine, options.models_dir, options.session));
  }
  return a;
}

Result<std::vector<Face>> FaceAnalyser::analyse(const Image& rgb, bool embed_faces, TimeLedger* ledger) {
  FSWAP_ASSIGN_OR_RETURN(std::vector<Face> faces, detect(rgb, ledger));
  FSWAP_RETURN_IF_ERROR(add_landmarks(rgb, faces, ledger));
  if (embed_faces)
    for (Face& f : faces) FSWAP_RETURN_IF_ERROR(embed(rgb, f, ledger));
  return faces;
}

Result<std::vector<Face>> FaceAnalyser::detect(const Image& rgb, TimeLedger* ledger) {
  ScopedTimer t(ledger, "detect");
  return detector_->detect(rgb, options_.detect);
}

Status FaceAnalyser::add_landmarks(const Image& rgb, std::vector<Face>& faces, TimeLedger* ledger) {
  const FrameFaces frame{&rgb, &faces};
  return add_landmarks(std::span(&frame, 1), ledger);
}

Status FaceAnalyser::add_landmarks(std::span<const FrameFaces> frames, TimeLedger* ledger) {
  const auto lacking = [](const FrameFaces& f) {
    return std::any_of(f.faces->begin(), f.faces->end(), [](const Face& face) { return !face.has_landmarks; });
  };
  if (std::none_of(frames.begin(), frames.end(), lacking)) return Status::ok();  // nothing to time
  ScopedTimer t(ledger, "landmarks");
  FSWAP_RETURN_IF_ERROR(landmark_faces(frames));
  for (const FrameFaces& f : frames) std::erase_if(*f.faces, [](const Face& face) { return !landmarks_finite(face); });
  return Status::ok();
}

Result<std::vector<Face>> FaceAnalyser::follow(const Image& rgb, const std::vector<Face>& previous,
                                               TimeLedger* ledger) {
  ScopedTimer t(ledger, "landmarks");
  const auto centre = [](const std::array<Point2f, 68>& points) {
    Point2f c{0, 0};
    for (const Point2f& p : points) c = {c.x + p.x / 68.f, c.y + p.y / 68.f};
    return c;
  };
  std::vector<Face> moved;
  for (const Face& was : previous) {
    Face f;
    f.box = was.box;
    f.score = was.score;
    f.keypoints = was.keypoints;
    f.track_id = was.track_id;
    moved.push_back(std::move(f));
  }
  const FrameFaces frame{&rgb, &moved};
  FSWAP_RETURN_IF_ERROR(landmark_faces(std::span(&frame, 1)));
  std::vector<Face> faces;
  for (std::size_t k = 0; k < moved.size(); ++k) {
    Face& f = moved[k];
    const Point2f from = centre(previous[k].landmarks68), to = centre(f.landmarks68);
    const float dx = to.x - from.x, dy = to.y - from.y;
    f.box = {f.box.x1 + dx, f.box.y1 + dy, f.box.x2 + dx, f.box.y2 + dy};
    for (Point2f& p : f.keypoints) p = {p.x + dx, p.y + dy};
    if (landmarks_finite(f)) faces.push_back(std::move(f));
  }
  return faces;
}

Status FaceAnalyser::landmark_faces(std::span<const FrameFaces> frames) {
  std::vector<Face*> todo;
  std::vector<const Image*> images;
  for (const FrameFaces& frame : frames)
    for (Face& f : *frame.faces) {
      if (f.has_landmarks) continue;
      todo.push_back(&f);
      images.push_back(frame.rgb);
    }
  if (landmarker_) {
    for (std::size_t i = 0; i < todo.size(); ++i) FSWAP_RETURN_IF_ERROR(landmarker_->landmark(*images[i], *todo[i]));
    return Status::ok();
  }
  // FaceFusion's create_faces: fan_68_5's 68/5 points from the detector's five give the face angle
  // the landmarker's crop is turned by; then the 68 points when their score passes, else the
  // detector's five (with the 68/5).
  std::vector<std::array<Point2f, 68>> estimated(todo.size());
  std::vector<LandmarkTarget> targets;
  for (std::size_t i = 0; i < todo.size(); ++i) {
    const Face& face = *todo[i];
    int angle = 0;
    if (fan_68_5_ && face.keypoints.size() == 5) {
      std::array<Point2f, 5> five;
      std::copy(face.keypoints.begin(), face.keypoints.end(), five.begin());
      FSWAP_ASSIGN_OR_RETURN(estimated[i], fan_68_5_->estimate(five));
      angle = facefusion_face_angle(estimated[i]);
    }
    targets.push_back({images[i], face.box, angle});
  }
  FSWAP_ASSIGN_OR_RETURN(std::vector<FaceLandmarks68> found, facefusion_landmarker_->detect(targets));
  for (std::size_t i = 0; i < todo.size(); ++i) {
    Face& face = *todo[i];
    if (found[i].score < options_.landmarker_score && face.keypoints.size() == 5) {
      std::copy(face.keypoints.begin(), face.keypoints.end(), face.landmarks5.begin());
      face.landmarks68 = fan_68_5_ ? estimated[i] : found[i].points;
    } else {
      face.landmarks68 = found[i].points;
      face.landmarks5 = facefusion_landmarks5_from_68(found[i].points);
    }
    face.has_landmarks = true;
  }
  return Status::ok();
}

Status FaceAnalyser::embed(const Image& rgb, Face& face, TimeLedger* ledger) {
  ScopedTimer t(ledger, "embed");
  return recognizer_->embed(rgb, face);
}

Result<FaceClasses> FaceAnalyser::classify(const Image& rgb, const Face& face, TimeLedger* ledger) {
  FSWAP_CHECK(classifier_ != nullptr, "FaceAnalyser::classify needs AnalyserOptions::classify");
  FSWAP_CHECK(face.has_landmarks, "FaceAnalyser::classify needs the face's landmarks");
  ScopedTimer t(ledger, "classify");
  return classifier_->classify(rgb, face.landmarks5);
}

}  // namespace fswap
