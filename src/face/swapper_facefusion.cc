#include "face/swapper_facefusion.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/half.h"
#include "face/model_table.h"
#include "face/recognizer.h"
#include "face/recognizer_arcface.h"
#include "imaging/transform.h"
#include "onnx/onnx_loader.h"

namespace fswap {
namespace {

using Kind = FaceSwapperSourceKind;

constexpr std::array<float, 3> kZero = {0, 0, 0}, kOne = {1, 1, 1}, kHalf = {0.5f, 0.5f, 0.5f};
constexpr std::array<float, 3> kImagenetMean = {0.485f, 0.456f, 0.406f}, kImagenetStd = {0.229f, 0.224f, 0.225f};

FaceSwapperModelSpec embedding_spec(std::string name, std::string type, const FaceTemplate* t, int size,
                                    std::array<float, 3> mean, std::array<float, 3> std, Kind source,
                                    std::string converter = "") {
  FaceSwapperModelSpec s;
  s.name = std::move(name);
  s.type = std::move(type);
  s.face_template = t;
  s.size = size;
  s.mean = mean;
  s.std = std;
  // normalize_crop_frame de-normalises these types only.
  s.denormalize_output = s.type == "ghost" || s.type == "hififace" || s.type == "hyperswap" || s.type == "uniface";
  s.source = source;
  s.converter = std::move(converter);
  return s;
}

FaceSwapperModelSpec image_spec(std::string name, std::string type, std::array<float, 3> mean, std::array<float, 3> std,
                                const FaceTemplate* source_template, int source_size) {
  FaceSwapperModelSpec s =
      embedding_spec(std::move(name), std::move(type), &kFaceFusionFfhq512, 256, mean, std, Kind::kImage);
  s.source_template = source_template;
  s.source_size = source_size;
  return s;
}

// FaceFusion 3.8.1's processors/modules/face_swapper create_static_model_set.
const std::vector<FaceSwapperModelSpec>& model_table() {
  static const std::vector<FaceSwapperModelSpec> table = {
      embedding_spec("inswapper_128", "inswapper", &kFaceFusionArcface128, 128, kZero, kOne, Kind::kEmap),
      embedding_spec("inswapper_128_fp16", "inswapper", &kFaceFusionArcface128, 128, kZero, kOne, Kind::kEmap),
      embedding_spec("hyperswap_1a_256", "hyperswap", &kFaceFusionArcface128, 256, kHalf, kHalf, Kind::kNormedEmbedding),
      embedding_spec("hyperswap_1b_256", "hyperswap", &kFaceFusionArcface128, 256, kHalf, kHalf, Kind::kNormedEmbedding),
      embedding_spec("hyperswap_1c_256", "hyperswap", &kFaceFusionArcface128, 256, kHalf, kHalf, Kind::kNormedEmbedding),
      embedding_spec("simswap_256", "simswap", &kFaceFusionArcface112V1, 256, kImagenetMean, kImagenetStd,
                     Kind::kConvertedNormedEmbedding, "crossface_simswap"),
      embedding_spec("simswap_unofficial_512", "simswap", &kFaceFusionArcface112V1, 512, kZero, kOne,
                     Kind::kConvertedNormedEmbedding, "crossface_simswap"),
      embedding_spec("ghost_1_256", "ghost", &kFaceFusionArcface112V1, 256, kHalf, kHalf, Kind::kConvertedEmbedding,
                     "crossface_ghost"),
      embedding_spec("ghost_2_256", "ghost", &kFaceFusionArcface112V1, 256, kHalf, kHalf, Kind::kConvertedEmbedding,
                     "crossface_ghost"),
      embedding_spec("ghost_3_256", "ghost", &kFaceFusionArcface112V1, 256, kHalf, kHalf, Kind::kConvertedEmbedding,
                     "crossface_ghost"),
      embedding_spec("hififace_unofficial_256", "hififace", &kFaceFusionMtcnn512, 256, kHalf, kHalf,
                     Kind::kConvertedNormedEmbedding, "crossface_hififace"),
      image_spec("blendswap_256", "blendswap", kZero, kOne, &kFaceFusionArcface112V2, 112),
      image_spec("uniface_256", "uniface", kHalf, kHalf, &kFaceFusionFfhq512, 256),
  };
  return table;
}

// The most sub-images pixel boost makes: 8 × 8 at 8 × the model size.
constexpr int kMaxSubImages = 64;

bool dim_fits(std::int64_t have, std::int64_t want) { return have == want || have < 0; }

std::int64_t elements_of(const Shape& s) {
  std::int64_t n = 1;
  for (auto d : s) n *= d < 0 ? 1 : d;
  return n;
}

Tensor vector_tensor(const std::vector<float>& v) {
  Tensor t = Tensor::zeros(DType::kFloat32, {1, static_cast<std::int64_t>(v.size())});
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

// `source` repeated n times along the batch.
Tensor repeat_batch(const Tensor& source, int n) {
  Shape shape = source.shape();
  shape[0] = n;
  Tensor t = Tensor::zeros(DType::kFloat32, shape);
  const std::size_t bytes = static_cast<std::size_t>(source.elements()) * sizeof(float);
  for (int i = 0; i < n; ++i) std::memcpy(t.data<float>() + i * source.elements(), source.data<float>(), bytes);
  return t;
}

}  // namespace

const std::vector<std::string>& face_swapper_model_names() {
  static const std::vector<std::string> names = model_table_names(model_table());
  return names;
}

Result<FaceSwapperModelSpec> face_swapper_model_spec(const std::string& name) {
  return find_in_model_table(model_table(), name, "face swapper");
}

Result<int> parse_pixel_boost(const std::string& text, const FaceSwapperModelSpec& spec) {
  if (text.empty()) return spec.size;
  const std::size_t x = text.find('x');
  int w = 0, h = 0;
  try {
    if (x != std::string::npos) w = std::stoi(text.substr(0, x)), h = std::stoi(text.substr(x + 1));
  } catch (const std::exception&) {
    w = h = 0;
  }
  if (w != h || w < spec.size || w % spec.size != 0 || w > 8 * spec.size) {
    const std::string m = std::to_string(spec.size);
    return invalid_input("--face-swapper-pixel-boost '" + text + "': " + spec.name + " takes NxN with N a multiple of " +
                         m + " from " + m + " to " + std::to_string(8 * spec.size) + " (e.g. " + m + "x" + m + ", " +
                         std::to_string(2 * spec.size) + "x" + std::to_string(2 * spec.size) + ")");
  }
  return w;
}

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

std::vector<float> l2_normalized(const std::vector<float>& v) {
  double norm = 0;
  for (float x : v) norm += double(x) * x;
  norm = std::sqrt(norm);
  std::vector<float> out(v);
  if (norm > 0)
    for (float& x : out) x = static_cast<float>(x / norm);
  return out;
}

Image face_swapper_crop(const Image& rgb, const std::array<Point2f, 5>& landmarks5, const FaceSwapperModelSpec& spec,
                        int crop_size, Affine* frame_to_crop) {
  // RANSAC with threshold 100 keeps all five points (least squares), and cv2.warpAffine treats
  // INTER_AREA as bilinear.
  const Affine m = align_to_template(landmarks5, *spec.face_template, static_cast<float>(crop_size));
  if (frame_to_crop) *frame_to_crop = m;
  return warp_affine(rgb, m, crop_size, crop_size, Border::kReplicate);
}

Tensor face_swapper_target_tensor(const std::vector<Image>& rgb_crops, const FaceSwapperModelSpec& spec) {
  FSWAP_CHECK(!rgb_crops.empty(), "face_swapper_target_tensor: no crops");
  const int w = rgb_crops[0].width, h = rgb_crops[0].height;
  const std::size_t plane = static_cast<std::size_t>(w) * h;
  Tensor t = Tensor::zeros(DType::kFloat32, {static_cast<std::int64_t>(rgb_crops.size()), 3, h, w});
  float* out = t.data<float>();
  for (const Image& crop : rgb_crops) {
    FSWAP_CHECK(crop.width == w && crop.height == h && crop.channels == 3, "face_swapper_target_tensor: crops differ");
    for (int c = 0; c < 3; ++c) {
      const float mean = spec.mean[c], inv_std = 1.f / spec.std[c];
      for (std::size_t i = 0; i < plane; ++i) out[c * plane + i] = (crop.pixels[i * 3 + c] / 255.f - mean) * inv_std;
    }
    out += 3 * plane;
  }
  return t;
}

ImageF face_swapper_output_to_crop(const Tensor& output, int index, const FaceSwapperModelSpec& spec) {
  const Shape& s = output.shape();
  FSWAP_CHECK(s.size() == 4 && s[1] == 3 && index < s[0], "face_swapper_output_to_crop: expected [N,3,H,W]");
  const int h = static_cast<int>(s[2]), w = static_cast<int>(s[3]);
  const std::size_t plane = static_cast<std::size_t>(w) * h;
  const float* v = output.data<float>() + static_cast<std::size_t>(index) * 3 * plane;
  ImageF crop(w, h, 3);
  for (int c = 0; c < 3; ++c) {
    const float scale = spec.denormalize_output ? spec.std[c] : 1.f;
    const float shift = spec.denormalize_output ? spec.mean[c] : 0.f;
    for (std::size_t i = 0; i < plane; ++i) crop.pixels[i * 3 + c] = std::clamp(v[c * plane + i] * scale + shift, 0.f, 1.f) * 255.f;
  }
  return crop;
}

template <class T>
std::vector<ImageT<T>> implode_pixel_boost(const ImageT<T>& crop, int model_size) {
  FSWAP_CHECK(model_size > 0 && crop.width == crop.height && crop.width % model_size == 0,
              "implode_pixel_boost: the crop must be square, a multiple of the model size");
  const int t = crop.width / model_size, c = crop.channels;
  std::vector<ImageT<T>> parts;
  parts.reserve(static_cast<std::size_t>(t) * t);
  for (int i = 0; i < t; ++i)
    for (int j = 0; j < t; ++j) {
      ImageT<T> part(model_size, model_size, c);
      for (int y = 0; y < model_size; ++y)
        for (int x = 0; x < model_size; ++x)
          std::memcpy(&part.at(x, y, 0), &crop.at(x * t + j, y * t + i, 0), sizeof(T) * c);
      parts.push_back(std::move(part));
    }
  return parts;
}

template <class T>
ImageT<T> explode_pixel_boost(const std::vector<ImageT<T>>& parts, int crop_size) {
  FSWAP_CHECK(!parts.empty(), "explode_pixel_boost: no sub-images");
  const int m = parts[0].width, c = parts[0].channels;
  const int t = crop_size / m;
  FSWAP_CHECK(t * m == crop_size && parts.size() == static_cast<std::size_t>(t) * t,
              "explode_pixel_boost: (crop size / model size)² sub-images expected");
  ImageT<T> crop(crop_size, crop_size, c);
  for (int i = 0; i < t; ++i)
    for (int j = 0; j < t; ++j) {
      const ImageT<T>& part = parts[static_cast<std::size_t>(i) * t + j];
      FSWAP_CHECK(part.width == m && part.height == m && part.channels == c, "explode_pixel_boost: sub-images differ");
      for (int y = 0; y < m; ++y)
        for (int x = 0; x < m; ++x) std::memcpy(&crop.at(x * t + j, y * t + i, 0), &part.at(x, y, 0), sizeof(T) * c);
    }
  return crop;
}

template std::vector<Image> implode_pixel_boost(const Image&, int);
template std::vector<ImageF> implode_pixel_boost(const ImageF&, int);
template Image explode_pixel_boost(const std::vector<Image>&, int);
template ImageF explode_pixel_boost(const std::vector<ImageF>&, int);

Result<FaceSwapperSource> average_face_swapper_sources(const std::vector<FaceSwapperSource>& sources) {
  if (sources.empty()) return invalid_input("no source face to average");
  FaceSwapperSource average = sources.front();
  const std::size_t n = average.embedding.size();
  std::vector<double> raw(n, 0.0), normed(n, 0.0);
  for (const auto& s : sources) {
    if (s.embedding.size() != n) return invalid_input("the source faces' embeddings differ in size");
    const std::vector<float> unit = s.normed_embedding.empty() ? l2_normalized(s.embedding) : s.normed_embedding;
    for (std::size_t i = 0; i < n; ++i) raw[i] += s.embedding[i], normed[i] += unit[i];
  }
  average.normed_embedding.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    average.embedding[i] = static_cast<float>(raw[i] / sources.size());
    average.normed_embedding[i] = static_cast<float>(normed[i] / sources.size());
  }
  return average;
}

std::vector<float> balance_source_embedding(const std::vector<float>& source, const std::vector<float>& target_raw,
                                            const FaceSwapperModelSpec& spec, float weight) {
  FSWAP_CHECK(source.size() == target_raw.size(), "balance_source_embedding: sizes differ");
  const float w = 0.35f - 0.7f * std::clamp(weight, 0.f, 1.f);  // numpy.interp(weight, [0, 1], [0.35, −0.35])
  const bool normalise = spec.type == "hififace" || spec.type == "hyperswap" || spec.type == "inswapper" ||
                         spec.type == "simswap";
  const std::vector<float> target = normalise ? l2_normalized(target_raw) : target_raw;
  std::vector<float> out(source.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = source[i] * (1 - w) + target[i] * w;
  return out;
}

Result<std::unique_ptr<FaceSwapperModel>> FaceSwapperModel::load(Engine& engine, const std::string& models_dir,
                                                                 const FaceSwapperModelSpec& spec,
                                                                 const SessionOptions& options) {
  FSWAP_CHECK(spec.face_template && spec.size > 0, "FaceSwapperModel::load: incomplete spec");
  const std::string path = models_dir + "/" + spec.name + ".onnx";
  const std::string converter_path = models_dir + "/" + spec.converter + ".onnx";
  FSWAP_RETURN_IF_ERROR(require_model_file(path, "--face-swapper-model " + spec.name));
  if (!spec.converter.empty())
    FSWAP_RETURN_IF_ERROR(require_model_file(converter_path, "--face-swapper-model " + spec.name));

  std::unique_ptr<FaceSwapperModel> model(new FaceSwapperModel());
  model->spec_ = spec;
  FSWAP_ASSIGN_OR_RETURN(model->session_, engine.load(path, options));
  const auto& in = model->session_->inputs();
  const auto& out = model->session_->outputs();
  int target = -1, source = -1;
  for (int i = 0; i < static_cast<int>(in.size()); ++i) {
    if (in[i].name == "target") target = i;
    if (in[i].name == "source") source = i;
  }
  const std::string s = std::to_string(spec.size);
  const bool image_source = spec.source == Kind::kImage;
  const std::string ss = std::to_string(spec.source_size);
  const std::string want_source = image_source ? "[1,3," + ss + "," + ss + "]" : "[1,512]";
  bool ok = in.size() == 2 && target >= 0 && source >= 0 && !out.empty();
  if (ok) {
    const Shape& t = in[target].shape;
    const Shape& src = in[source].shape;
    const Shape& o = out[0].shape;
    ok = in[target].dtype == DType::kFloat32 && in[source].dtype == DType::kFloat32 && out[0].dtype == DType::kFloat32 &&
         t.size() == 4 && dim_fits(t[1], 3) && dim_fits(t[2], spec.size) && dim_fits(t[3], spec.size) &&
         o.size() == 4 && dim_fits(o[1], 3) && dim_fits(o[2], spec.size) && dim_fits(o[3], spec.size) &&
         (image_source ? src.size() == 4 && dim_fits(src[1], 3) && dim_fits(src[2], spec.source_size) &&
                             dim_fits(src[3], spec.source_size)
                       : src.size() == 2 && dim_fits(src[1], kArcfaceEmbeddingSize));
    // The batch: dynamic everywhere (any number of sub-images per run), or one fixed size N
    // wherever it is static (runs of exactly N, the last one padded).
    std::int64_t fixed = 0;
    for (std::int64_t d : {t[0], src[0], o[0]})
      if (d >= 0) ok = ok && d >= 1 && (fixed == 0 || d == fixed), fixed = d;
    if (ok) {
      model->max_batch_ = fixed == 0 ? kMaxSubImages : static_cast<int>(std::min<std::int64_t>(fixed, kMaxSubImages));
      model->fixed_batch_ = fixed > 1;
      ok = fixed <= kMaxSubImages;
    }
  }
  if (!ok)
    return invalid_input(path + ": not a " + spec.name + " face swapper model: expected float32 inputs target [1,3," + s +
                         "," + s + "] and source " + want_source + " and a first output [1,3," + s + "," + s + "]");
  model->target_index_ = target;
  model->source_index_ = source;

  if (spec.source == Kind::kEmap) {
    FSWAP_ASSIGN_OR_RETURN(Tensor emap, read_last_initializer(path));
    if (emap.shape() != Shape{kArcfaceEmbeddingSize, kArcfaceEmbeddingSize})
      return invalid_input(path + ": the last initializer (emap) is " + shape_to_string(emap.shape()) +
                           ", expected [512,512]");
    model->emap_.assign(emap.data<float>(), emap.data<float>() + emap.elements());
  }
  if (!spec.converter.empty()) {
    FSWAP_ASSIGN_OR_RETURN(model->converter_, engine.load(converter_path, options));
    const auto& ci = model->converter_->inputs();
    const auto& co = model->converter_->outputs();
    if (ci.size() != 1 || ci[0].name != "input" || ci[0].shape.size() != 2 || !dim_fits(ci[0].shape[0], 1) ||
        !dim_fits(ci[0].shape[1], kArcfaceEmbeddingSize) || co.empty() || elements_of(co[0].shape) != kArcfaceEmbeddingSize)
      return invalid_input(converter_path + ": not an embedding converter: expected input [1,512] and an output of 512 values");
  }
  return model;
}

Result<std::vector<float>> FaceSwapperModel::convert_embedding(const std::vector<float>& raw_embedding) {
  if (!converter_) return invalid_input(spec_.name + ": the model has no embedding converter");
  if (raw_embedding.size() != static_cast<std::size_t>(kArcfaceEmbeddingSize))
    return invalid_input(spec_.converter + ": the embedding has " + std::to_string(raw_embedding.size()) + " values, expected 512");
  FSWAP_ASSIGN_OR_RETURN(auto outputs, converter_->run({vector_tensor(raw_embedding)}));
  const Tensor& o = outputs.at(0);
  if (o.elements() != kArcfaceEmbeddingSize)
    return invalid_input(spec_.converter + ": returned " + shape_to_string(o.shape()) + ", expected 512 values");
  return std::vector<float>(o.data<float>(), o.data<float>() + o.elements());
}

Result<Tensor> FaceSwapperModel::source_tensor(const FaceSwapperSource& source) {
  if (spec_.source == Kind::kImage) {
    if (!source.image || source.image->channels != 3) return invalid_input(spec_.name + ": needs the source image (RGB)");
    const Affine m = align_to_template(source.landmarks5, *spec_.source_template, static_cast<float>(spec_.source_size));
    const Image crop = warp_affine(*source.image, m, spec_.source_size, spec_.source_size, Border::kReplicate);
    FaceSwapperModelSpec plain = spec_;  // prepare_source_frame: v/255, no mean/std
    plain.mean = kZero;
    plain.std = kOne;
    return face_swapper_target_tensor({crop}, plain);
  }
  if (source.embedding.size() != static_cast<std::size_t>(kArcfaceEmbeddingSize))
    return invalid_input(spec_.name + ": the source embedding has " + std::to_string(source.embedding.size()) +
                         " values, expected 512 (arcface_w600k_r50's raw output)");
  switch (spec_.source) {
    case Kind::kEmap: return vector_tensor(inswapper_source_latent(source.embedding, emap_));
    case Kind::kNormedEmbedding:
      return vector_tensor(source.normed_embedding.empty() ? l2_normalized(source.embedding) : source.normed_embedding);
    case Kind::kConvertedEmbedding: {
      FSWAP_ASSIGN_OR_RETURN(auto converted, convert_embedding(source.embedding));
      return vector_tensor(converted);
    }
    case Kind::kConvertedNormedEmbedding: {
      FSWAP_ASSIGN_OR_RETURN(auto converted, convert_embedding(source.embedding));
      return vector_tensor(l2_normalized(converted));
    }
    case Kind::kImage: break;
  }
  return invalid_input(spec_.name + ": unknown source kind");
}

Result<std::vector<ImageF>> FaceSwapperModel::run(const std::vector<Image>& rgb_crops, const Tensor& source) {
  const Shape& want = session_->inputs()[source_index_].shape;
  if (source.shape().size() != want.size() || source.shape()[0] != 1)
    return invalid_input(spec_.name + ": the source tensor is " + shape_to_string(source.shape()) + ", expected " +
                         shape_to_string(want));
  for (const Image& crop : rgb_crops)
    if (crop.width != spec_.size || crop.height != spec_.size || crop.channels != 3)
      return invalid_input(spec_.name + ": the target crops must be " + std::to_string(spec_.size) + "×" +
                           std::to_string(spec_.size) + " RGB");
  std::vector<ImageF> swapped;
  swapped.reserve(rgb_crops.size());
  for (std::size_t first = 0; first < rgb_crops.size(); first += max_batch_) {
    const std::size_t n = std::min<std::size_t>(max_batch_, rgb_crops.size() - first);
    std::vector<Image> batch(rgb_crops.begin() + first, rgb_crops.begin() + first + n);
    if (fixed_batch_) batch.resize(max_batch_, batch.back());  // a fixed batch: pad, drop those outputs
    const std::size_t runs = batch.size();
    std::vector<Tensor> inputs(2);
    inputs[target_index_] = face_swapper_target_tensor(batch, spec_);
    inputs[source_index_] = runs == 1 ? Tensor::copy_of(source.view()) : repeat_batch(source, static_cast<int>(runs));
    FSWAP_ASSIGN_OR_RETURN(auto outputs, session_->run(inputs));
    const Shape& o = outputs.at(0).shape();
    if (o.size() != 4 || o[0] != static_cast<std::int64_t>(runs) || o[1] != 3 || o[2] != spec_.size || o[3] != spec_.size)
      return invalid_input(spec_.name + ": the model returned " + shape_to_string(o) + " for " + std::to_string(runs) +
                           " crops of " + std::to_string(spec_.size));
    for (std::size_t i = 0; i < n; ++i) swapped.push_back(face_swapper_output_to_crop(outputs[0], static_cast<int>(i), spec_));
  }
  return swapped;
}

DeviceWork* FaceSwapperModel::device_work() const {
  if (!device_face_built() || (fixed_batch_ && max_batch_ > 1)) return nullptr;
  return session_->device_work();
}

Status FaceSwapperModel::run_on_device(const DeviceFrame& frame, const Affine& frame_to_crop, const DeviceTensor& source,
                                       const DeviceBuffer& swapped) {
  const int size = spec_.size;
  PlanarInput in{.pre_scale = 1 / 255.f};
  PlanarOutput out;
  for (int c = 0; c < 3; ++c) {
    in.offset[c] = spec_.mean[c];
    in.scale[c] = 1 / spec_.std[c];
    out.gain[c] = spec_.denormalize_output ? spec_.std[c] : 1.f;
    out.bias[c] = spec_.denormalize_output ? spec_.mean[c] : 0.f;
  }
  FSWAP_ASSIGN_OR_RETURN(DeviceBuffer target, crop_to_planar(frame, frame_to_crop, size, in));
  std::vector<DeviceTensor> inputs(2);
  inputs[target_index_] = {target.data(), DType::kFloat32, {1, 3, size, size}};
  inputs[source_index_] = source;
  return session_->run_on_device(inputs, [&](std::span<const DeviceTensor> outputs) -> Status {
    const Shape& o = outputs[0].shape;
    if (o.size() != 4 || o[0] != 1 || o[1] != 3 || o[2] != size || o[3] != size)
      return invalid_input(spec_.name + ": the model returned " + shape_to_string(o) + " for one crop of " +
                           std::to_string(size));
    return planar_to_crop(frame.gpu(), outputs[0], out, swapped);
  });
}

Result<ImageF> FaceSwapperModel::swap(const Image& rgb_crop, const Tensor& source) {
  if (rgb_crop.width != rgb_crop.height || rgb_crop.width % spec_.size != 0)
    return invalid_input(spec_.name + ": the crop must be square, a multiple of " + std::to_string(spec_.size));
  if (rgb_crop.width == spec_.size) {
    FSWAP_ASSIGN_OR_RETURN(auto one, run({rgb_crop}, source));
    return std::move(one[0]);
  }
  FSWAP_ASSIGN_OR_RETURN(auto parts, run(implode_pixel_boost(rgb_crop, spec_.size), source));
  return explode_pixel_boost(parts, rgb_crop.width);
}

}  // namespace fswap
