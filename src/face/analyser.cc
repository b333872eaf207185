#include "face/analyser.h"

namespace fswap {

Result<std::unique_ptr<FaceAnalyser>> FaceAnalyser::load(Engine& engine, const AnalyserOptions& options) {
  std::unique_ptr<FaceAnalyser> a(new FaceAnalyser());
  a->options_ = options;
  FSWAP_ASSIGN_OR_RETURN(a->detector_, make_face_detector(options.detector, engine, options.models_dir, options.session));
  FSWAP_ASSIGN_OR_RETURN(a->landmarker_, FaceLandmarker::load(engine, options.models_dir, options.session));
  FSWAP_ASSIGN_OR_RETURN(a->recognizer_, FaceRecognizer::load(engine, options.models_dir, options.session));
  return a;
}

Result<std::vector<Face>> FaceAnalyser::analyse(const Image& rgb, bool embed_faces, TimeLedger* ledger) {
  std::vector<Face> faces;
  {
    ScopedTimer t(ledger, "detect");
    FSWAP_ASSIGN_OR_RETURN(faces, detector_->detect(rgb, options_.detect));
  }
  {
    ScopedTimer t(ledger, "landmarks");
    for (Face& f : faces) FSWAP_RETURN_IF_ERROR(landmarker_->landmark(rgb, f));
  }
  if (embed_faces)
    for (Face& f : faces) FSWAP_RETURN_IF_ERROR(embed(rgb, f, ledger));
  return faces;
}

Status FaceAnalyser::embed(const Image& rgb, Face& face, TimeLedger* ledger) {
  ScopedTimer t(ledger, "embed");
  return recognizer_->embed(rgb, face);
}

}  // namespace fswap
