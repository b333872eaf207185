// FaceAnalyser: detector + 68-point landmarker + recognizer (+ the fairface classifier for the
// selector's filters), the analysis every stage needs.
//
//   FSWAP_ASSIGN_OR_RETURN(auto analyser, FaceAnalyser::load(engine, {.models_dir = dir}));
//   FSWAP_ASSIGN_OR_RETURN(auto faces, analyser->analyse(frame, /*embed=*/true, &ledger));
//   FSWAP_ASSIGN_OR_RETURN(FaceClasses c, analyser->classify(frame, faces[0], &ledger));  // options.classify
//
// Records "detect", "landmarks", "embed" and "classify" time in the ledger. One thread at a time,
// except that detect(), add_landmarks() and the other calls may each run on a thread of their own
// (their models differ): a video's frames are detected and landmarked ahead of their analysis.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/time_ledger.h"
#include "face/classifier_fairface.h"
#include "face/detector.h"
#include "face/landmarker.h"
#include "face/landmarker_facefusion.h"
#include "face/recognizer.h"

namespace fswap {

// A frame and its faces, for add_landmarks over several frames.
struct FrameFaces {
  const Image* rgb = nullptr;
  std::vector<Face>* faces = nullptr;
};

struct AnalyserOptions {
  std::string models_dir;
  std::string detector = "fr_detect";  // --face-detector-model: fr_detect | blazeface | yoloface | scrfd
  // --face-landmarker-model: fr_landmark, or FaceFusion's 2dfan4 | peppa_wutz
  // (face/landmarker_facefusion.h). Below --face-landmarker-score, a face whose detector gave five
  // keypoints keeps them, with fan_68_5's 68 points when fan_68_5.onnx is in models_dir; those
  // 68/5 points also give the face angle the landmarker's crop is turned by (else 0).
  std::string landmarker = "fr_landmark";
  float landmarker_score = 0.5f;
  // Load FaceFusion's fairface.onnx from models_dir for classify() (the selector's gender, race
  // and age filters); a missing file fails load with kNotFound naming it. false: no classifier.
  bool classify = false;
  DetectOptions detect;
  SessionOptions session;
};

class FaceAnalyser {
 public:
  static Result<std::unique_ptr<FaceAnalyser>> load(Engine& engine, const AnalyserOptions& options);

  // Faces with box, score, landmarks (and embeddings when embed is true), best score first. A face
  // whose landmarks are not finite (a landmarker overflowing fp16) cannot be aligned and is left
  // out, here and in follow; a FaceFusion landmarker's failure with the detector's five points
  // falls back to them first.
  Result<std::vector<Face>> analyse(const Image& rgb, bool embed, TimeLedger* ledger = nullptr);
  // analyse() in two halves: the detector's faces (box, score, keypoints), then the landmarks of
  // those that have none yet (leaving out, as analyse does, those whose landmarks are not finite;
  // a call that failed part way can be made again for the rest).
  Result<std::vector<Face>> detect(const Image& rgb, TimeLedger* ledger = nullptr);
  Status add_landmarks(const Image& rgb, std::vector<Face>& faces, TimeLedger* ledger = nullptr);
  // The same for several frames at once: a FaceFusion landmarker runs once for all their faces
  // when its model takes a batch (FaceFusionLandmarker::takes_batches), so a video's landmarks
  // cost fewer, larger GPU launches.
  Status add_landmarks(std::span<const FrameFaces> frames, TimeLedger* ledger = nullptr);
  Status embed(const Image& rgb, Face& face, TimeLedger* ledger = nullptr);
  // The previous frame's faces followed into this one without the detector (fswap's
  // --face-detector-interval): each keeps its box, score and track_id, gets this frame's
  // landmarks, and its box and keypoints move by as much as the centre of its 68 landmarks moved.
  // Records "landmarks".
  Result<std::vector<Face>> follow(const Image& rgb, const std::vector<Face>& previous, TimeLedger* ledger = nullptr);
  // fairface's gender, race and age bucket of a face with landmarks. Needs options.classify.
  Result<FaceClasses> classify(const Image& rgb, const Face& face, TimeLedger* ledger = nullptr);

 private:
  FaceAnalyser() = default;
  // The landmarks of every face of the frames that has none (non-finite ones left in).
  Status landmark_faces(std::span<const FrameFaces> frames);
  AnalyserOptions options_;
  std::unique_ptr<FaceDetector> detector_;
  std::unique_ptr<FaceLandmarker> landmarker_;                   // fr_landmark
  std::unique_ptr<FaceFusionLandmarker> facefusion_landmarker_;  // 2dfan4, peppa_wutz
  std::unique_ptr<FaceLandmarkEstimator> fan_68_5_;              // optional, with them
  std::unique_ptr<FaceRecognizer> recognizer_;
  std::unique_ptr<FairfaceClassifier> classifier_;               // options.classify
};

}  // namespace fswap
