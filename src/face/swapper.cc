#include "face/swapper.h"

#include <array>

#include "face/recognizer.h"

namespace fswap {

FaceSwapper::~FaceSwapper() = default;

Status FaceSwapper::swap_on_device(const DeviceFrame&, const Face&, TimeLedger*) {
  return unsupported("this face swapper works on host frames only");
}

Rect FaceSwapper::device_region(const Face&, int frame_width, int frame_height) const {
  return {0, 0, frame_width, frame_height};
}

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


DeviceWork* FaceFusionFaceSwapper::device_work() {
  if (recognizer_ || crop_size_ != model_->spec().size) return nullptr;
  DeviceWork* gpu = model_->device_work();
  return gpu != nullptr && masker_.runs_on(*gpu) ? gpu : nullptr;
}

void FaceFusionFaceSwapper::release_device_buffers() {
  source_on_gpu_ = KeptBuffer();
  mask_on_gpu_ = KeptBuffer();
}

Affine FaceFusionFaceSwapper::crop_affine(const Face& target) const {
  return align_to_template(target.landmarks5, *model_->spec().face_template, static_cast<float>(crop_size_));
}

Rect FaceFusionFaceSwapper::device_region(const Face& target, int frame_width, int frame_height) const {
  if (!target.has_landmarks) return {0, 0, frame_width, frame_height};
  return crop_step_rect(frame_width, frame_height, crop_size_, crop_size_, crop_affine(target));
}

Status FaceFusionFaceSwapper::swap_on_device(const DeviceFrame& frame, const Face& target, TimeLedger* ledger) {
  const std::string& name = model_->spec().name;
  if (!target.has_landmarks) return invalid_input(name + " swap: the target face has no landmarks");
  DeviceWork* gpu = device_work();
  if (gpu == nullptr) return unsupported(name + " swap: this model or these options need the frame on the host");
  const int size = crop_size_;
  // A fixed mask (the box alone) is uploaded once; the others are made per face on the GPU.
  const bool per_face = !masker_.mask_is_fixed();
  if (!per_face && mask_on_gpu_.empty()) {
    const ImageF fixed = *masker_.fixed_mask(size);
    FSWAP_ASSIGN_OR_RETURN(DeviceBuffer m, upload_buffer(*gpu, fixed.pixels.data(), fixed.pixels.size() * sizeof(float)));
    mask_on_gpu_ = KeptBuffer(*gpu, std::move(m));
  }
  if (source_on_gpu_.empty()) {
    FSWAP_ASSIGN_OR_RETURN(DeviceBuffer source, upload_buffer(*gpu, source_.raw(), source_.view().bytes()));
    source_on_gpu_ = KeptBuffer(*gpu, std::move(source));
  }
  const Affine frame_to_crop = crop_affine(target);
  FSWAP_ASSIGN_OR_RETURN(DeviceBuffer swapped, gpu->allocate(static_cast<std::size_t>(size) * size * 3 * sizeof(float)));
  DeviceBuffer mask;  // this face's, unless the mask is fixed
  {
    ScopedTimer t(ledger, "swap");
    if (per_face) {
      FSWAP_ASSIGN_OR_RETURN(mask, masker_.before_swap_on_device(frame, frame_to_crop, size));
    }
    const DeviceTensor source{source_on_gpu_.get().data(), source_.dtype(), source_.shape()};
    FSWAP_RETURN_IF_ERROR(model_->run_on_device(frame, frame_to_crop, source, swapped));
  }
  ScopedTimer t(ledger, "blend");
  if (per_face) {
    std::array<Point2f, 68> landmarks68;
    for (int i = 0; i < 68; ++i) landmarks68[i] = frame_to_crop.apply(target.landmarks68[i]);
    FSWAP_RETURN_IF_ERROR(masker_.after_swap_on_device(*gpu, swapped, size, landmarks68, mask));
  }
  return paste_back(frame, swapped, per_face ? mask : mask_on_gpu_.get(), size, frame_to_crop, 1.f);
}

}  // namespace fswap
