#include "face/enhancer.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/parallel.h"
#include "face/device_masks.h"
#include "face/model_input.h"
#include "face/model_table.h"
#include "face/paste_back.h"
#include "face/recognizer.h"
#include "imaging/transform.h"

namespace fswap {

namespace {

// v ≥ 0 rounded to the nearest integer, ties to even (std::nearbyint in the default mode, as
// cv2.addWeighted's saturate_cast), then to a byte: adding and subtracting 2^23 leaves a float of
// [0, 2^23) rounded that way, without nearbyint's library call per value.
std::uint8_t round_to_byte(float v) {
  const float rounded = (v + 8388608.f) - 8388608.f;
  return static_cast<std::uint8_t>(std::min(rounded, 255.f));
}

const std::vector<FaceEnhancerModelInfo>& model_table() {
  static const std::vector<FaceEnhancerModelInfo> table = {
      {"codeformer", &kFaceFusionFfhq512, 512},
      {"gfpgan_1.2", &kFaceFusionFfhq512, 512},
      {"gfpgan_1.3", &kFaceFusionFfhq512, 512},
      {"gfpgan_1.4", &kFaceFusionFfhq512, 512},
      {"gpen_bfr_256", &kFaceFusionArcface128, 256},
      {"gpen_bfr_512", &kFaceFusionFfhq512, 512},
      {"gpen_bfr_1024", &kFaceFusionFfhq512, 1024},
      {"gpen_bfr_2048", &kFaceFusionFfhq512, 2048},
      {"restoreformer_plus_plus", &kFaceFusionFfhq512, 512},
  };
  return table;
}

// A dimension of a model's shape matches `want` when equal or dynamic (−1).
bool dim_fits(std::int64_t have, std::int64_t want) { return have == want || have < 0; }

bool image_shape_fits(const Shape& s, int size) {
  return s.size() == 4 && dim_fits(s[0], 1) && dim_fits(s[1], 3) && dim_fits(s[2], size) && dim_fits(s[3], size);
}

}  // namespace

const std::vector<std::string>& face_enhancer_model_names() {
  static const std::vector<std::string> names = model_table_names(model_table());
  return names;
}

Result<FaceEnhancerModelInfo> face_enhancer_model_info(const std::string& name) {
  return find_in_model_table(model_table(), name, "face enhancer");
}

Affine face_enhancer_affine(const std::array<Point2f, 5>& landmarks5, const FaceEnhancerModelInfo& info) {
  return align_to_template(landmarks5, *info.face_template, static_cast<float>(info.size));
}

Image face_enhancer_crop(const Image& rgb, const std::array<Point2f, 5>& landmarks5, const FaceEnhancerModelInfo& info,
                         Affine* frame_to_crop) {
  const Affine m = face_enhancer_affine(landmarks5, info);
  if (frame_to_crop) *frame_to_crop = m;
  return warp_affine(rgb, m, info.size, info.size, Border::kReplicate);
}

Tensor face_enhancer_input_tensor(const Image& rgb_crop) {
  // (v/255 − 0.5)/0.5 = (v − 127.5) / 127.5
  return image_to_nchw(rgb_crop, 127.5f, 1.f / 127.5f);
}

ImageF face_enhancer_output_to_crop(const Tensor& output) {
  // clip to [−1, 1], (x + 1) / 2 · 255, rounded (numpy's round: half to even)
  return nchw_to_image(output, -1.f, 1.f, /*round=*/true);
}

void face_enhancer_blend(Image& frame, const Image& pasted, float blend, const Rect& region) {
  FSWAP_CHECK(frame.width == pasted.width && frame.height == pasted.height && frame.channels == pasted.channels,
              "face_enhancer_blend: frame and pasted differ in size");
  const Rect r = intersect(region, Rect{0, 0, frame.width, frame.height});
  if (r.empty()) return;
  const float b = std::clamp(blend, 0.f, 100.f) / 100.f, a = 1.f - b;
  const int c = frame.channels;
  parallel_for(
      r.height,
      [&](int y_begin, int y_end) {
        for (int y = r.y + y_begin; y < r.y + y_end; ++y) {
          std::uint8_t* dst = &frame.at(r.x, y, 0);
          const std::uint8_t* src = &pasted.at(r.x, y, 0);
          for (int i = 0; i < r.width * c; ++i) dst[i] = round_to_byte(dst[i] * a + src[i] * b);
        }
      },
      rows_per_chunk(r.width));
}

Result<std::unique_ptr<FaceEnhancerModel>> FaceEnhancerModel::load(Engine& engine, const std::string& models_dir,
                                                                   const std::string& name,
                                                                   const SessionOptions& options) {
  FSWAP_ASSIGN_OR_RETURN(FaceEnhancerModelInfo info, face_enhancer_model_info(name));
  const std::string path = models_dir + "/" + name + ".onnx";
  FSWAP_RETURN_IF_ERROR(require_model_file(path, "--face-enhancer-model " + name));
  return load_file(engine, path, info, options);
}

Result<std::unique_ptr<FaceEnhancerModel>> FaceEnhancerModel::load_file(Engine& engine, const std::string& model_path,
                                                                        const FaceEnhancerModelInfo& info,
                                                                        const SessionOptions& options) {
  if (!info.face_template || info.size <= 0) return invalid_input(model_path + ": no template or crop size given");
  std::unique_ptr<FaceEnhancerModel> model(new FaceEnhancerModel());
  model->info_ = info;
  FSWAP_ASSIGN_OR_RETURN(model->session_, engine.load(model_path, options));
  const auto& in = model->session_->inputs();
  const auto& out = model->session_->outputs();
  int input = -1, weight = -1;
  for (int i = 0; i < static_cast<int>(in.size()); ++i) {
    if (in[i].name == "input") input = i;
    if (in[i].name == "weight") weight = i;
  }
  const std::string size = std::to_string(info.size);
  const std::string contract = "expected input [1,3," + size + "," + size + "] (float32), an optional one-value weight " +
                               "(float32 or float64), and an output [1,3," + size + "," + size + "]";
  bool ok = input >= 0 && in.size() == (weight >= 0 ? 2u : 1u) && in[input].dtype == DType::kFloat32 &&
            image_shape_fits(in[input].shape, info.size) && !out.empty() && out[0].dtype == DType::kFloat32 &&
            image_shape_fits(out[0].shape, info.size);
  if (ok && weight >= 0) {
    const TensorInfo& w = in[weight];
    std::int64_t elements = 1;
    for (auto d : w.shape) elements *= d < 0 ? 1 : d;
    ok = (w.dtype == DType::kFloat64 || w.dtype == DType::kFloat32) && elements == 1;
    model->weight_dtype_ = w.dtype;
  }
  if (!ok) return invalid_input(model_path + ": not a " + info.name + " face enhancer model: " + contract);
  model->input_index_ = input;
  model->weight_index_ = weight;
  return model;
}

Result<ImageF> FaceEnhancerModel::run(const Image& rgb_crop, float weight) {
  if (rgb_crop.width != info_.size || rgb_crop.height != info_.size || rgb_crop.channels != 3)
    return invalid_input(info_.name + ": the crop must be " + std::to_string(info_.size) + "×" +
                         std::to_string(info_.size) + " RGB");
  std::vector<Tensor> inputs(session_->inputs().size());
  inputs[input_index_] = face_enhancer_input_tensor(rgb_crop);
  if (weight_index_ >= 0) {
    Shape shape = session_->inputs()[weight_index_].shape;
    for (auto& d : shape) d = 1;
    Tensor w = Tensor::zeros(weight_dtype_, shape);
    if (weight_dtype_ == DType::kFloat64) *w.data<double>() = weight;
    else *w.data<float>() = weight;
    inputs[weight_index_] = std::move(w);
  }
  FSWAP_ASSIGN_OR_RETURN(auto outputs, session_->run(inputs));
  const Shape& s = outputs.at(0).shape();
  if (s.size() != 4 || s[0] != 1 || s[1] != 3)
    return invalid_input(info_.name + ": the model returned " + shape_to_string(s) + ", expected [1,3,H,W]");
  return face_enhancer_output_to_crop(outputs.at(0));
}

FaceEnhancer::FaceEnhancer(std::unique_ptr<FaceEnhancerModel> model, const FaceEnhancerOptions& options,
                           std::shared_ptr<FaceOccluder> occluder)
    : model_(std::move(model)), options_(options), occluder_(std::move(occluder)) {
  FSWAP_CHECK(model_ != nullptr, "FaceEnhancer: no model");
  const int size = model_->info().size;
  box_mask_ = create_box_mask(size, size, options_.face_mask_blur, FaceMaskPadding{});
}

Status FaceEnhancer::enhance(Image& frame, const Face& target, TimeLedger* ledger) {
  if (!target.has_landmarks) return invalid_input(model_->info().name + ": the target face has no landmarks");
  if (frame.channels != 3) return invalid_input(model_->info().name + ": the frame must be RGB");
  Affine frame_to_crop;
  ImageF restored, mask;
  {
    ScopedTimer t(ledger, "enhance");
    const Image crop = face_enhancer_crop(frame, target.landmarks5, model_->info(), &frame_to_crop);
    FSWAP_ASSIGN_OR_RETURN(restored, model_->run(crop, options_.weight));
    if (occluder_) {
      FSWAP_ASSIGN_OR_RETURN(mask, occluder_->mask(crop));
      for (std::size_t i = 0; i < mask.pixels.size(); ++i) mask.pixels[i] = std::min(mask.pixels[i], box_mask_.pixels[i]);
    }
  }
  ScopedTimer t(ledger, "blend");
  const int size = model_->info().size;
  const Rect region = paste_rect(frame.width, frame.height, size, size, frame_to_crop);
  if (region.empty()) return Status::ok();
  // paste_back and the blend touch only `region`: the scratch needs the frame's pixels there alone.
  if (pasted_.width != frame.width || pasted_.height != frame.height) pasted_ = Image(frame.width, frame.height, 3);
  for (int y = region.y; y < region.y + region.height; ++y)
    std::copy_n(frame.row(y) + static_cast<std::size_t>(region.x) * 3, static_cast<std::size_t>(region.width) * 3,
                pasted_.row(y) + static_cast<std::size_t>(region.x) * 3);
  paste_back(pasted_, restored, occluder_ ? mask : box_mask_, frame_to_crop);
  face_enhancer_blend(frame, pasted_, options_.blend, region);
  return Status::ok();
}

Status FaceEnhancerModel::run_on_device(const DeviceFrame& frame, const Affine& frame_to_crop, float weight,
                                        const DeviceBuffer& restored) {
  const int size = info_.size;
  // face_enhancer_input_tensor and face_enhancer_output_to_crop on the GPU.
  const PlanarInput in{.pre_scale = 1, .offset = {127.5f, 127.5f, 127.5f}, .scale = {1 / 127.5f, 1 / 127.5f, 1 / 127.5f}};
  const PlanarOutput out{.low = -1, .high = 1, .round = true};
  FSWAP_ASSIGN_OR_RETURN(DeviceBuffer input, crop_to_planar(frame, frame_to_crop, size, in));
  std::vector<DeviceTensor> inputs(session_->inputs().size());
  inputs[input_index_] = {input.data(), DType::kFloat32, {1, 3, size, size}};
  DeviceBuffer weight_on_gpu;
  if (weight_index_ >= 0) {
    Shape shape = session_->inputs()[weight_index_].shape;
    for (auto& d : shape) d = 1;
    const double as_double = weight;
    const float as_float = weight;
    const bool f64 = weight_dtype_ == DType::kFloat64;
    FSWAP_ASSIGN_OR_RETURN(weight_on_gpu, upload_buffer(frame.gpu(), f64 ? static_cast<const void*>(&as_double) : &as_float,
                                                        f64 ? sizeof as_double : sizeof as_float));
    inputs[weight_index_] = {weight_on_gpu.data(), weight_dtype_, shape};
  }
  return session_->run_on_device(inputs, [&](std::span<const DeviceTensor> outputs) -> Status {
    const Shape& o = outputs[0].shape;
    if (o.size() != 4 || o[0] != 1 || o[1] != 3 || o[2] != size || o[3] != size)
      return invalid_input(info_.name + ": the model returned " + shape_to_string(o) + ", expected [1,3," +
                           std::to_string(size) + "," + std::to_string(size) + "]");
    return planar_to_crop(frame.gpu(), outputs[0], out, restored);
  });
}

DeviceWork* FaceEnhancer::device_work() const {
  DeviceWork* gpu = model_->device_work();
  return occluder_ && occluder_->device_work() != gpu ? nullptr : gpu;
}

Rect FaceEnhancer::device_region(const Face& target, int frame_width, int frame_height) const {
  if (!target.has_landmarks) return {0, 0, frame_width, frame_height};
  const int size = model_->info().size;
  return crop_step_rect(frame_width, frame_height, size, size, face_enhancer_affine(target.landmarks5, model_->info()));
}

Status FaceEnhancer::enhance_on_device(const DeviceFrame& frame, const Face& target, TimeLedger* ledger) {
  const FaceEnhancerModelInfo& info = model_->info();
  if (!target.has_landmarks) return invalid_input(info.name + ": the target face has no landmarks");
  DeviceWork* gpu = device_work();
  if (gpu == nullptr) return unsupported(info.name + ": this model or these options need the frame on the host");
  const int size = info.size;
  if (box_mask_on_gpu_.empty()) {
    FSWAP_ASSIGN_OR_RETURN(DeviceBuffer m,
                           upload_buffer(*gpu, box_mask_.pixels.data(), box_mask_.pixels.size() * sizeof(float)));
    box_mask_on_gpu_ = KeptBuffer(*gpu, std::move(m));
  }
  const Affine frame_to_crop = face_enhancer_affine(target.landmarks5, info);
  FSWAP_ASSIGN_OR_RETURN(DeviceBuffer restored, gpu->allocate(static_cast<std::size_t>(size) * size * 3 * sizeof(float)));
  DeviceBuffer mask;  // min(occlusion, box) of this face, with an occluder
  {
    ScopedTimer t(ledger, "enhance");
    FSWAP_RETURN_IF_ERROR(model_->run_on_device(frame, frame_to_crop, options_.weight, restored));
    if (occluder_) {
      FSWAP_ASSIGN_OR_RETURN(mask, gpu->allocate(static_cast<std::size_t>(size) * size * sizeof(float)));
      FSWAP_RETURN_IF_ERROR(occluder_->mask_on_device(frame, frame_to_crop, size, mask));
      FSWAP_RETURN_IF_ERROR(mask_minimum(*gpu, mask, static_cast<const float*>(box_mask_on_gpu_.get().data()), size));
    }
  }
  ScopedTimer t(ledger, "blend");
  return paste_back(frame, restored, occluder_ ? mask : box_mask_on_gpu_.get(), size, frame_to_crop,
                    std::clamp(options_.blend, 0.f, 100.f) / 100.f);
}

}  // namespace fswap
