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
  if (job.face_swapper_model != "inswapper_128")
    return invalid_input("unknown --face-swapper-model '" + job.face_swapper_model + "' (classical, inswapper_128)");
  // FaceFusion's inswapper_128 takes the source identity from arcface_w600k_r50.
  const std::string dir = job.analyser.models_dir + "/";
  for (const char* file : {"inswapper_128.onnx", "arcface_w600k_r50.onnx"}) {
    std::error_code ec;
    if (!fs::exists(dir + file, ec))
      return not_found(dir + file + ": no such file; --face-swapper-model inswapper_128 needs FaceFusion's " +
                       "inswapper_128.onnx and arcface_w600k_r50.onnx in --models-dir");
  }
  FSWAP_ASSIGN_OR_RETURN(auto recognizer, ArcfaceRecognizer::load(engine, dir + "arcface_w600k_r50.onnx", job.analyser.session));
  FSWAP_ASSIGN_OR_RETURN(ArcfaceEmbedding identity, recognizer->embed(source_image, source.landmarks5));
  FSWAP_ASSIGN_OR_RETURN(std::shared_ptr<InswapperModel> model,
                         InswapperModel::load(engine, dir + "inswapper_128.onnx", job.analyser.session));
  InswapperSwapOptions options;
  options.face_mask_blur = job.swap.mask_blur;
  FSWAP_ASSIGN_OR_RETURN(auto swapper, InswapperFaceSwapper::create(std::move(model), identity.embedding, options));
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
