#include "face/device_masks.h"

#include <algorithm>
#include <string>

#include "face/paste_back.h"

namespace fswap {

Result<std::uint64_t> chosen_classes(const std::vector<int>& region_ids) {
  std::uint64_t bits = 0;
  for (int id : region_ids) {
    if (id < 0 || id > 63) return invalid_input("face parser: region class id " + std::to_string(id) + " is outside 0..63");
    bits |= std::uint64_t{1} << id;
  }
  return bits;
}

#if FSWAP_HAS_CUDA

namespace {

std::size_t values_of(int size) { return static_cast<std::size_t>(size) * size; }

float* values(const DeviceBuffer& buffer) { return static_cast<float*>(buffer.data()); }

cuda_imaging::DeviceImageF mask_view(const DeviceBuffer& buffer, int size) {
  return {values(buffer), size, size, 1, static_cast<std::size_t>(size) * sizeof(float)};
}

Status check_mask(const DeviceBuffer& mask, int size, const char* who) {
  if (size <= 0) return invalid_input(std::string(who) + ": mask size " + std::to_string(size) + " is not positive");
  if (mask.bytes() < values_of(size) * sizeof(float))
    return invalid_input(std::string(who) + ": the mask buffer holds fewer than " + std::to_string(size) + "² floats");
  return Status::ok();
}

}  // namespace

Result<DeviceBuffer> mask_filled(DeviceWork& gpu, int size, float value) {
  if (size <= 0) return invalid_input("mask_filled: size " + std::to_string(size) + " is not positive");
  FSWAP_ASSIGN_OR_RETURN(DeviceBuffer mask, gpu.allocate(values_of(size) * sizeof(float)));
  FSWAP_RETURN_IF_ERROR(cuda_imaging::fill(values(mask), values_of(size), value, gpu.stream()));
  return mask;
}

Result<DeviceBuffer> upload_mask(DeviceWork& gpu, const ImageF& mask) {
  if (mask.channels != 1 || mask.width != mask.height || mask.empty())
    return invalid_input("upload_mask: the mask must be square, 1 channel");
  return upload_buffer(gpu, mask.pixels.data(), mask.pixels.size() * sizeof(float));
}

Status mask_minimum(DeviceWork& gpu, const DeviceBuffer& mask, const float* other, int size) {
  FSWAP_RETURN_IF_ERROR(check_mask(mask, size, "mask_minimum"));
  return cuda_imaging::minimum_into(values(mask), other, values_of(size), gpu.stream());
}

Status mask_clip(DeviceWork& gpu, const DeviceBuffer& mask, int size) {
  FSWAP_RETURN_IF_ERROR(check_mask(mask, size, "mask_clip"));
  return cuda_imaging::clamp_map(values(mask), values_of(size), cuda_imaging::ClampMap{}, gpu.stream());
}

Status soft_threshold_on_device(DeviceWork& gpu, const DeviceBuffer& mask, int size) {
  FSWAP_RETURN_IF_ERROR(check_mask(mask, size, "soft_threshold_on_device"));
  // face_masker.cc's soft_threshold_mask: σ 5, OpenCV's 41 taps.
  static const cuda_imaging::BlurTaps taps = [] {
    const std::vector<double> weights = gaussian_taps_opencv(5.0);
    cuda_imaging::BlurTaps t;
    t.count = static_cast<int>(weights.size());
    std::copy(weights.begin(), weights.end(), t.weight);
    return t;
  }();
  FSWAP_ASSIGN_OR_RETURN(DeviceBuffer scratch, gpu.allocate(values_of(size) * sizeof(float)));
  FSWAP_RETURN_IF_ERROR(mask_clip(gpu, mask, size));
  FSWAP_RETURN_IF_ERROR(cuda_imaging::blur_with_taps(mask_view(mask, size), taps, mask_view(scratch, size), gpu.stream()));
  return cuda_imaging::clamp_map(values(mask), values_of(size), {.low = 0.5f, .high = 1.f, .offset = 0.5f, .scale = 2.f},
                                 gpu.stream());
}

Status model_mask_to_crop(DeviceWork& gpu, const DeviceBuffer& model_mask, int model_size, const DeviceBuffer& crop_mask,
                          int crop_size) {
  FSWAP_RETURN_IF_ERROR(check_mask(model_mask, model_size, "model_mask_to_crop"));
  FSWAP_RETURN_IF_ERROR(check_mask(crop_mask, crop_size, "model_mask_to_crop"));
  FSWAP_RETURN_IF_ERROR(mask_clip(gpu, model_mask, model_size));
  FSWAP_RETURN_IF_ERROR(cuda_imaging::resize(mask_view(model_mask, model_size), mask_view(crop_mask, crop_size),
                                             Interp::kBilinear, gpu.stream()));
  return soft_threshold_on_device(gpu, crop_mask, crop_size);
}

Result<DeviceBuffer> occluder_input(const DeviceFrame& frame, const Affine& frame_to_crop, int crop_size, int model_size) {
  if (crop_size <= 0 || model_size <= 0) return invalid_input("occluder_input: the crop and model sizes must be positive");
  DeviceWork& gpu = frame.gpu();
  FSWAP_ASSIGN_OR_RETURN(DeviceBuffer crop, gpu.allocate(values_of(crop_size) * 3));
  FSWAP_ASSIGN_OR_RETURN(DeviceBuffer resized, gpu.allocate(values_of(model_size) * 3));
  FSWAP_ASSIGN_OR_RETURN(DeviceBuffer input, gpu.allocate(values_of(model_size) * 3 * sizeof(float)));
  const cuda_imaging::DeviceImage frame_image{static_cast<std::uint8_t*>(frame.data()), frame.width(), frame.height(), 3,
                                              static_cast<std::size_t>(frame.width()) * 3};
  const cuda_imaging::DeviceImage crop_image{static_cast<std::uint8_t*>(crop.data()), crop_size, crop_size, 3,
                                             static_cast<std::size_t>(crop_size) * 3};
  const cuda_imaging::DeviceImage resized_image{static_cast<std::uint8_t*>(resized.data()), model_size, model_size, 3,
                                                static_cast<std::size_t>(model_size) * 3};
  FSWAP_RETURN_IF_ERROR(
      cuda_imaging::warp_affine(frame_image, frame_to_crop, crop_image, Border::kReplicate, gpu.stream()));
  FSWAP_RETURN_IF_ERROR(cuda_imaging::resize_linear_fixed(crop_image, resized_image, gpu.stream()));
  // xseg takes BGR, v/255.
  FSWAP_RETURN_IF_ERROR(
      cuda_imaging::interleaved_from_image(resized_image, 0.f, 1.f / 255.f, /*reverse_channels=*/true, values(input),
                                           gpu.stream()));
  return input;
}

Result<DeviceBuffer> parser_input(DeviceWork& gpu, const DeviceBuffer& rgb_crop, int crop_size, int model_size,
                                  const std::array<float, 3>& mean, const std::array<float, 3>& stddev) {
  if (crop_size <= 0 || model_size <= 0) return invalid_input("parser_input: the crop and model sizes must be positive");
  if (rgb_crop.bytes() < values_of(crop_size) * 3 * sizeof(float))
    return invalid_input("parser_input: the crop buffer holds fewer than " + std::to_string(crop_size) + "² RGB floats");
  FSWAP_ASSIGN_OR_RETURN(DeviceBuffer resized, gpu.allocate(values_of(model_size) * 3 * sizeof(float)));
  FSWAP_ASSIGN_OR_RETURN(DeviceBuffer input, gpu.allocate(values_of(model_size) * 3 * sizeof(float)));
  const cuda_imaging::DeviceImageF crop_image{values(rgb_crop), crop_size, crop_size, 3,
                                              static_cast<std::size_t>(crop_size) * 3 * sizeof(float)};
  const cuda_imaging::DeviceImageF resized_image{values(resized), model_size, model_size, 3,
                                                 static_cast<std::size_t>(model_size) * 3 * sizeof(float)};
  FSWAP_RETURN_IF_ERROR(cuda_imaging::resize(crop_image, resized_image, Interp::kBilinear, gpu.stream()));
  cuda_imaging::ToPlanar map{.pre_scale = 1.f / 255.f};
  for (int c = 0; c < 3; ++c) {
    map.offset[c] = mean[c];
    map.scale[c] = 1.f / stddev[c];
  }
  FSWAP_RETURN_IF_ERROR(cuda_imaging::planar_from_image(resized_image, map, values(input), gpu.stream()));
  return input;
}

Status chosen_class_mask(DeviceWork& gpu, const DeviceTensor& scores, std::uint64_t chosen, const DeviceBuffer& mask,
                         int size) {
  FSWAP_RETURN_IF_ERROR(check_mask(mask, size, "chosen_class_mask"));
  const Shape& s = scores.shape;
  if (scores.dtype != DType::kFloat32 || s.size() != 4 || s[0] != 1 || s[1] < 1 || s[2] != size || s[3] != size)
    return invalid_input("face parser: returned " + shape_to_string(s) + ", expected float32 [1,C," + std::to_string(size) +
                         "," + std::to_string(size) + "]");
  return cuda_imaging::chosen_class_mask(static_cast<const float*>(scores.data), static_cast<int>(s[1]), chosen,
                                         mask_view(mask, size), gpu.stream());
}

#else

namespace {
Status not_built() { return unsupported("this build of fswap has no CUDA kernels for face masks"); }
}  // namespace

Result<DeviceBuffer> mask_filled(DeviceWork&, int, float) { return not_built(); }
Result<DeviceBuffer> upload_mask(DeviceWork&, const ImageF&) { return not_built(); }
Status mask_minimum(DeviceWork&, const DeviceBuffer&, const float*, int) { return not_built(); }
Status mask_clip(DeviceWork&, const DeviceBuffer&, int) { return not_built(); }
Status soft_threshold_on_device(DeviceWork&, const DeviceBuffer&, int) { return not_built(); }
Status model_mask_to_crop(DeviceWork&, const DeviceBuffer&, int, const DeviceBuffer&, int) { return not_built(); }
Result<DeviceBuffer> occluder_input(const DeviceFrame&, const Affine&, int, int) { return not_built(); }
Result<DeviceBuffer> parser_input(DeviceWork&, const DeviceBuffer&, int, int, const std::array<float, 3>&,
                                  const std::array<float, 3>&) {
  return not_built();
}
Status chosen_class_mask(DeviceWork&, const DeviceTensor&, std::uint64_t, const DeviceBuffer&, int) { return not_built(); }

#endif

}  // namespace fswap
