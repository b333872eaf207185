#include "face/swapper.h"

namespace fswap {

FaceSwapper::~FaceSwapper() = default;

Status ClassicalFaceSwapper::swap(Image& frame, const Face& target, TimeLedger* ledger) {
  if (!target.has_landmarks) return invalid_input("classical swap: the target face has no landmarks");
  swapper_.swap(frame, target, options_, ledger);
  return Status::ok();
}

Result<std::unique_ptr<FaceFusionFaceSwapper>> FaceFusionFaceSwapper::create(std::shared_ptr<FaceSwapperModel> model,
                                                                             const FaceSwapperSource& source,
                                                                             FaceMasker masker, int pixel_boost,
                                                                             float weight,
                                                                             std::shared_ptr<ArcfaceRecognizer> recognizer) {
  if (!model) return invalid_input("face swapper: no model given");
  const int size = model->spec().size;
  if (pixel_boost < size || pixel_boost % size != 0)
    return invalid_input(model->spec().name + ": pixel boost " + std::to_string(pixel_boost) + " is not a multiple of " +
                         std::to_string(size));
  const bool balances = weight != 0.5f && model->spec().source != FaceSwapperSourceKind::kImage;
  if (balances && !recognizer)
    return invalid_input(model->spec().name + ": --face-swapper-weight other than 0.5 needs arcface_w600k_r50 for the target faces");
  std::unique_ptr<FaceFusionFaceSwapper> s(new FaceFusionFaceSwapper());
  s->weight_ = weight;
  if (balances) s->recognizer_ = std::move(recognizer);
  FSWAP_ASSIGN_OR_RETURN(s->source_, model->source_tensor(source));
  s->model_ = std::move(model);
  s->masker_ = std::move(masker);
  s->crop_size_ = pixel_boost;
  return s;
}

Status FaceFusionFaceSwapper::swap(Image& frame, const Face& target, TimeLedger* ledger) {
  const std::string& name = model_->spec().name;
  if (!target.has_landmarks) return invalid_input(name + " swap: the target face has no landmarks");
  if (frame.channels != 3) return invalid_input(name + " swap: the frame must be RGB");
  Affine frame_to_crop;
  ImageF swapped, mask;
  {
    ScopedTimer t(ledger, "swap");
    const Image crop = face_swapper_crop(frame, target.landmarks5, model_->spec(), crop_size_, &frame_to_crop);
    FSWAP_ASSIGN_OR_RETURN(mask, masker_.before_swap(crop));
    if (recognizer_) {
      // FaceFusion balances the prepared source against the target face's raw embedding.
      FSWAP_ASSIGN_OR_RETURN(ArcfaceEmbedding id, recognizer_->embed(frame, target.landmarks5));
      const std::vector<float> source(source_.data<float>(), source_.data<float>() + source_.elements());
      const std::vector<float> balanced = balance_source_embedding(source, id.embedding, model_->spec(), weight_);
      Tensor mixed = Tensor::zeros(DType::kFloat32, source_.shape());
      std::copy(balanced.begin(), balanced.end(), mixed.data<float>());
      FSWAP_ASSIGN_OR_RETURN(swapped, model_->swap(crop, mixed));
    } else {
      FSWAP_ASSIGN_OR_RETURN(swapped, model_->swap(crop, source_));
    }
  }
  ScopedTimer t(ledger, "blend");
  std::array<Point2f, 68> landmarks68;
  for (int i = 0; i < 68; ++i) landmarks68[i] = frame_to_crop.apply(target.landmarks68[i]);
  FSWAP_RETURN_IF_ERROR(masker_.after_swap(swapped, landmarks68, mask));
  paste_back(frame, swapped, mask, frame_to_crop);
  return Status::ok();
}

}  // namespace fswap
