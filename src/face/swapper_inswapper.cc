#include "face/swapper_inswapper.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/half.h"
#include "face/model_input.h"
#include "face/recognizer.h"
#include "imaging/transform.h"
#include "onnx/onnx_loader.h"

namespace fswap {

const std::array<Point2f, 5> kFaceFusionArcface128 = {{{0.36167656f, 0.40387734f},
                                                      {0.63696719f, 0.40235469f},
                                                      {0.50019687f, 0.56044219f},
                                                      {0.38710391f, 0.72160547f},
                                                      {0.61507734f, 0.72034453f}}};

Result<Tensor> read_last_initializer(const std::string& model_path) {
  FSWAP_ASSIGN_OR_RETURN(Graph graph, load_onnx(model_path));
  if (graph.weights.empty()) return invalid_input(model_path + ": the model has no initializers");
  const Tensor& last = *graph.weights.back().data;
  if (last.dtype() == DType::kFloat32) return Tensor::copy_of(last.view());
  if (last.dtype() == DType::kFloat16) {
    Tensor out = Tensor::zeros(DType::kFloat32, last.shape());
    const auto* src = static_cast<const std::uint16_t*>(last.raw());
    float* dst = out.data<float>();
    for (std::int64_t i = 0; i < last.elements(); ++i) dst[i] = half_to_float(src[i]);
    return out;
  }
  return invalid_input(model_path + ": the last initializer (" + graph.values[graph.weights.back().value].name +
                       ") is not float32 or float16");
}

std::vector<float> inswapper_source_latent(const std::vector<float>& raw_embedding, const std::vector<float>& emap) {
  const std::size_t n = raw_embedding.size();
  FSWAP_CHECK(emap.size() == n * n, "inswapper_source_latent: emap must be n×n for an n-d embedding");
  std::vector<double> acc(n, 0.0);
  double norm = 0;
  for (std::size_t j = 0; j < n; ++j) {
    const double e = raw_embedding[j];
    norm += e * e;
    const float* row = emap.data() + j * n;
    for (std::size_t i = 0; i < n; ++i) acc[i] += e * row[i];
  }
  norm = std::sqrt(norm);
  std::vector<float> latent(n);
  for (std::size_t i = 0; i < n; ++i) latent[i] = static_cast<float>(norm > 0 ? acc[i] / norm : acc[i]);
  return latent;
}

Image inswapper_crop(const Image& rgb, const std::array<Point2f, 5>& landmarks5, Affine* frame_to_crop) {
  // As arcface_crop: RANSAC with threshold 100 keeps all five points (least squares), and
  // cv2.warpAffine treats INTER_AREA as bilinear.
  const Affine m = align_to_template(landmarks5, kFaceFusionArcface128, static_cast<float>(kInswapperCropSize));
  if (frame_to_crop) *frame_to_crop = m;
  return warp_affine(rgb, m, kInswapperCropSize, kInswapperCropSize, Border::kReplicate);
}

Tensor inswapper_target_tensor(const Image& rgb_crop) { return image_to_nchw(rgb_crop, 0.f, 1.f / 255.f); }

ImageF inswapper_output_to_crop(const Tensor& output) { return nchw_to_image(output, 0.f, 1.f, /*round=*/false); }

Result<std::unique_ptr<InswapperModel>> InswapperModel::load(Engine& engine, const std::string& model_path,
                                                             const SessionOptions& options) {
  std::unique_ptr<InswapperModel> model(new InswapperModel());
  FSWAP_ASSIGN_OR_RETURN(model->session_, engine.load(model_path, options));
  const auto& in = model->session_->inputs();
  int target = -1, source = -1;
  for (int i = 0; i < static_cast<int>(in.size()); ++i) {
    if (in[i].name == "target") target = i;
    if (in[i].name == "source") source = i;
  }
  const Shape want_target = {1, 3, kInswapperCropSize, kInswapperCropSize}, want_source = {1, kInswapperEmbeddingSize};
  if (in.size() != 2 || target < 0 || source < 0 || in[target].shape != want_target || in[source].shape != want_source)
    return invalid_input(model_path + ": not an inswapper_128 model: expected inputs target [1,3,128,128] and source [1,512]");
  model->target_index_ = target;
  model->source_index_ = source;
  FSWAP_ASSIGN_OR_RETURN(Tensor emap, read_last_initializer(model_path));
  if (emap.shape() != Shape{kInswapperEmbeddingSize, kInswapperEmbeddingSize})
    return invalid_input(model_path + ": the last initializer (emap) is " + shape_to_string(emap.shape()) +
                         ", expected [512,512]");
  model->emap_.assign(emap.data<float>(), emap.data<float>() + emap.elements());
  return model;
}

Result<ImageF> InswapperModel::run(const Image& rgb_crop, const std::vector<float>& source_latent) {
  if (rgb_crop.width != kInswapperCropSize || rgb_crop.height != kInswapperCropSize || rgb_crop.channels != 3)
    return invalid_input("inswapper_128: the target crop must be 128×128 RGB");
  if (source_latent.size() != static_cast<std::size_t>(kInswapperEmbeddingSize))
    return invalid_input("inswapper_128: the source latent must have 512 values");
  std::vector<Tensor> inputs(2);
  inputs[target_index_] = inswapper_target_tensor(rgb_crop);
  Tensor source = Tensor::zeros(DType::kFloat32, {1, kInswapperEmbeddingSize});
  std::copy(source_latent.begin(), source_latent.end(), source.data<float>());
  inputs[source_index_] = std::move(source);
  FSWAP_ASSIGN_OR_RETURN(auto outputs, session_->run(inputs));
  return inswapper_output_to_crop(outputs.at(0));
}

}  // namespace fswap
