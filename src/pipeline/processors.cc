#include "pipeline/processors.h"

#include <filesystem>

#include "face/recognizer_arcface.h"

namespace fswap {
namespace fs = std::filesystem;

Result<std::unique_ptr<FaceSwapper>> make_face_swapper(Engine& engine, const SwapJob& job, const Image& source_image,
                                                       const Face& source) {
  if (job.face_swapper_model == "classical") {
    FSWAP_ASSIGN_OR_RETURN(ClassicalSwapper classical, ClassicalSwapper::create(source_image, source));
    return std::unique_ptr<FaceSwapper>(std::make_unique<ClassicalFaceSwapper>(std::move(classical), job.swap));
  }
  FSWAP_ASSIGN_OR_RETURN(FaceSwapperModelSpec spec, face_swapper_model_spec(job.face_swapper_model));
  FSWAP_ASSIGN_OR_RETURN(int pixel_boost, parse_pixel_boost(job.face_swapper_pixel_boost, spec));
  const std::string& dir = job.analyser.models_dir;
  const SessionOptions& session = job.analyser.session;
  FaceMaskOptions mask_options = job.face_mask;
  mask_options.blur = job.swap.mask_blur;
  FSWAP_ASSIGN_OR_RETURN(FaceMasker masker, FaceMasker::load(engine, dir, mask_options, session));
  FSWAP_ASSIGN_OR_RETURN(std::shared_ptr<FaceSwapperModel> model, FaceSwapperModel::load(engine, dir, spec, session));
  FaceSwapperSource identity{{}, &source_image, source.landmarks5};
  if (spec.source != FaceSwapperSourceKind::kImage) {
    // FaceFusion takes the source identity from arcface_w600k_r50.
    const std::string arcface = dir + "/arcface_w600k_r50.onnx";
    std::error_code ec;
    if (!fs::exists(arcface, ec))
      return not_found(arcface + ": no such file; --face-swapper-model " + spec.name +
                       " needs FaceFusion's arcface_w600k_r50.onnx in --models-dir for the source identity");
    FSWAP_ASSIGN_OR_RETURN(auto recognizer, ArcfaceRecognizer::load(engine, arcface, session));
    FSWAP_ASSIGN_OR_RETURN(ArcfaceEmbedding id, recognizer->embed(source_image, source.landmarks5));
    identity.embedding = std::move(id.embedding);
  }
  FSWAP_ASSIGN_OR_RETURN(auto swapper, FaceFusionFaceSwapper::create(std::move(model), identity, std::move(masker), pixel_boost));
  return std::unique_ptr<FaceSwapper>(std::move(swapper));
}

Result<std::unique_ptr<FaceEnhancer>> make_face_enhancer(Engine& engine, const SwapJob& job) {
  FSWAP_ASSIGN_OR_RETURN(auto model, FaceEnhancerModel::load(engine, job.analyser.models_dir, job.face_enhancer_model,
                                                             job.analyser.session));
  FaceEnhancerOptions options = job.face_enhancer;
  options.face_mask_blur = job.swap.mask_blur;
  return std::make_unique<FaceEnhancer>(std::move(model), options);
}

}  // namespace fswap
