// FaceAnalyser: detector + 68-point landmarker + recognizer, the analysis every stage needs.
//
//   FSWAP_ASSIGN_OR_RETURN(auto analyser, FaceAnalyser::load(engine, {.models_dir = dir}));
//   FSWAP_ASSIGN_OR_RETURN(auto faces, analyser->analyse(frame, /*embed=*/true, &ledger));
//
// Records "detect", "landmarks" and "embed" time in the ledger. One thread at a time.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/time_ledger.h"
#include "face/detector.h"
#include "face/landmarker.h"
#include "face/recognizer.h"

namespace fswap {

struct AnalyserOptions {
  std::string models_dir;
  std::string detector = "fr_detect";  // --face-detector-model: fr_detect | blazeface | yoloface | scrfd
  DetectOptions detect;
  SessionOptions session;
};

class FaceAnalyser {
 public:
  static Result<std::unique_ptr<FaceAnalyser>> load(Engine& engine, const AnalyserOptions& options);

  // Faces with box, score, landmarks (and embeddings when embed is true), best score first.
  Result<std::vector<Face>> analyse(const Image& rgb, bool embed, TimeLedger* ledger = nullptr);
  Status embed(const Image& rgb, Face& face, TimeLedger* ledger = nullptr);

 private:
  FaceAnalyser() = default;
  AnalyserOptions options_;
  std::unique_ptr<FaceDetector> detector_;
  std::unique_ptr<FaceLandmarker> landmarker_;
  std::unique_ptr<FaceRecognizer> recognizer_;
};

}  // namespace fswap
