// FaceFusion's face swapper models (reference/facefusion.md §2.4), driven by one table of model
// specs with FaceFusion's exact processing:
//   target: the frame warped onto the model's template at the crop size (the pixel-boost size),
//           RGB (v/255 − mean)/std, NCHW, fed as (crop/model size)² sub-images (pixel boost);
//   source: what the model takes for the identity (FaceSwapperSourceKind);
//   output: the first output [N,3,S,S]; x·std + mean for ghost, hififace, hyperswap and uniface
//           (the others are not de-normalised), clip(0, 1) · 255, kept as float.
// Our frames are RGB, so FaceFusion's BGR flips cancel out.
//
//   FSWAP_ASSIGN_OR_RETURN(FaceSwapperModelSpec spec, face_swapper_model_spec("hyperswap_1a_256"));
//   FSWAP_ASSIGN_OR_RETURN(auto model, FaceSwapperModel::load(engine, models_dir, spec, {}));
//   FSWAP_ASSIGN_OR_RETURN(Tensor source, model->source_tensor({arcface.embedding, source_image, lmk5}));
//   Affine frame_to_crop;
//   Image crop = face_swapper_crop(frame, face.landmarks5, spec, 512, &frame_to_crop);
//   FSWAP_ASSIGN_OR_RETURN(ImageF swapped, model->swap(crop, source));   // 4 sub-images, one batch
//
// FaceSwapperModel is used from one thread at a time (one InferenceSession, plus the converter's).
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/tensor.h"
#include "face/device_face.h"
#include "face/face_templates.h"
#include "imaging/geometry.h"
#include "imaging/image.h"
#include "runtime/engine.h"

namespace fswap {

inline constexpr int kArcfaceEmbeddingSize = 512;

// What a swapper's `source` input is, from the source face (prepare_source_embedding,
// prepare_source_frame):
enum class FaceSwapperSourceKind {
  kEmap,                     // inswapper: raw embedding · emap / ‖raw embedding‖ (no re-normalisation)
  kNormedEmbedding,          // hyperswap: the L2-normalised arcface embedding
  kConvertedEmbedding,       // ghost: the converter's output for the raw embedding, as it is
  kConvertedNormedEmbedding, // simswap, hififace: the converter's output, L2-normalised
  kImage,                    // blendswap, uniface: the source face warped onto source_template
                             // at source_size, RGB v/255, NCHW
};

struct FaceSwapperModelSpec {
  std::string name;                            // FaceFusion's name; the file is <name>.onnx
  std::string type;                            // inswapper, hyperswap, simswap, ghost, hififace, blendswap, uniface
  const FaceTemplate* face_template = nullptr; // the target crop's template
  int size = 0;                                // the model's crop size (square)
  std::array<float, 3> mean{}, std{1, 1, 1};   // per RGB channel, on v/255
  bool denormalize_output = false;             // output · std + mean before the clip
  FaceSwapperSourceKind source = FaceSwapperSourceKind::kNormedEmbedding;
  std::string converter;                       // kConverted*: the embedding converter <converter>.onnx
  const FaceTemplate* source_template = nullptr;  // kImage only
  int source_size = 0;                            // kImage only
};

// inswapper_128, inswapper_128_fp16, hyperswap_1a_256, hyperswap_1b_256, hyperswap_1c_256,
// simswap_256, simswap_unofficial_512, ghost_1_256, ghost_2_256, ghost_3_256,
// hififace_unofficial_256, blendswap_256, uniface_256.
const std::vector<std::string>& face_swapper_model_names();
// kInvalidInput naming the known models for an unknown name.
Result<FaceSwapperModelSpec> face_swapper_model_spec(const std::string& name);
// The pixel-boost size for --face-swapper-pixel-boost "NxN" (N ≥ the model size and a multiple of
// it); "" gives the model's size. kInvalidInput otherwise, naming the model's choices.
Result<int> parse_pixel_boost(const std::string& text, const FaceSwapperModelSpec& spec);

// The last initializer of an ONNX file, in file order (GraphProto.initializer[-1], what
// FaceFusion's get_static_model_initializer reads), as float32 row-major. float16 is widened.
// Errors: load_onnx's; no initializers or another dtype kInvalidInput.
Result<Tensor> read_last_initializer(const std::string& model_path);

// FaceFusion's inswapper source: latent[i] = Σ_j embedding[j] · emap[j·n + i] / ‖embedding‖₂.
std::vector<float> inswapper_source_latent(const std::vector<float>& raw_embedding, const std::vector<float>& emap);

// v / ‖v‖₂ (v itself when its norm is 0).
std::vector<float> l2_normalized(const std::vector<float>& v);

// The crop_size × crop_size target crop: least-squares similarity of the landmarks onto the
// spec's template × crop_size, bilinear warp, replicated borders. frame_to_crop (optional)
// receives the transform.
Image face_swapper_crop(const Image& rgb, const std::array<Point2f, 5>& landmarks5, const FaceSwapperModelSpec& spec,
                        int crop_size, Affine* frame_to_crop = nullptr);

// The target tensor [N,3,S,S] of N equal-sized RGB crops: (v/255 − mean[c]) / std[c].
Tensor face_swapper_target_tensor(const std::vector<Image>& rgb_crops, const FaceSwapperModelSpec& spec);

// Item `index` of a model output [N,3,S,S] → S×S×3 RGB crop: (x·std + mean when the spec
// de-normalises), clip(0, 1) · 255, float.
ImageF face_swapper_output_to_crop(const Tensor& output, int index, const FaceSwapperModelSpec& spec);

// FaceFusion's pixel boost (processors/pixel_boost.py), a space-to-depth: a crop of N×N with N =
// T·M becomes T² sub-images of M×M, sub-image i·T + j holding pixels (y·T + i, x·T + j).
// explode_pixel_boost is its exact inverse. Crop size a multiple of model_size (checked).
template <class T>
std::vector<ImageT<T>> implode_pixel_boost(const ImageT<T>& crop, int model_size);
template <class T>
ImageT<T> explode_pixel_boost(const std::vector<ImageT<T>>& parts, int crop_size);

// The source face, as the swappers need it: its raw arcface_w600k_r50 embedding (all kinds but
// kImage), and the source image with the face's five landmarks (kImage).
struct FaceSwapperSource {
  std::vector<float> embedding;         // raw (ArcfaceEmbedding::embedding), 512 values
  // FaceFusion's embedding_norm: empty means embedding / ‖embedding‖; several sources average
  // their normed embeddings, which is then not unit length (average_face_identity).
  std::vector<float> normed_embedding;
  const Image* image = nullptr;         // RGB
  std::array<Point2f, 5> landmarks5{};
};

// FaceFusion's identity of several source faces (face_creator.average_face_identity): the mean
// of their raw embeddings and the mean of their normed embeddings; the image and landmarks of
// the first. kInvalidInput when empty or the embeddings differ in size.
Result<FaceSwapperSource> average_face_swapper_sources(const std::vector<FaceSwapperSource>& sources);

// FaceFusion's --face-swapper-weight (balance_source_embedding): with w = interp(weight, [0, 1],
// [0.35, −0.35]), source·(1 − w) + target·w, the target's raw embedding L2-normalised first for
// the hififace, hyperswap, inswapper and simswap types. weight 0.5 leaves the source as it is.
std::vector<float> balance_source_embedding(const std::vector<float>& source, const std::vector<float>& target_raw,
                                            const FaceSwapperModelSpec& spec, float weight);

class FaceSwapperModel {
 public:
  // Loads models_dir/<spec.name>.onnx (+ models_dir/<spec.converter>.onnx). A missing file is
  // kNotFound naming it and what needs it; a model whose inputs are not `source` and `target`
  // [N|1,3,S,S] float32 with `source` sized as the spec says (512 values, or [1,3,s,s] for image
  // sources), or whose first output is not [N|1,3,S,S], is kInvalidInput naming the file; an
  // inswapper's last initializer must be [512,512]; a converter must map `input` [1,512] to 512
  // values.
  static Result<std::unique_ptr<FaceSwapperModel>> load(Engine& engine, const std::string& models_dir,
                                                        const FaceSwapperModelSpec& spec, const SessionOptions& options);

  const FaceSwapperModelSpec& spec() const { return spec_; }
  const std::vector<float>& emap() const { return emap_; }  // inswapper only: [512,512] row-major
  // The largest number of sub-images one run takes: 64 (every pixel-boost split) when the
  // model's batch dimensions (target, source, output) are all dynamic, else their static size N
  // (runs of exactly N, the last one padded with copies). FaceFusion's files have batch 1, so
  // their sub-images run one after another.
  int max_batch() const { return max_batch_; }

  // The converter's output for a raw embedding (kConverted* specs only).
  Result<std::vector<float>> convert_embedding(const std::vector<float>& raw_embedding);
  // The `source` input for one sub-image ([1,512] or [1,3,s,s]), per spec().source.
  Result<Tensor> source_tensor(const FaceSwapperSource& source);

  // Swaps model-size crops: runs them in batches of up to max_batch() (exactly max_batch() for a
  // fixed batch, the last one padded), the source repeated along the batch. Returns the swapped crops, RGB, 0..255 float, in order.
  Result<std::vector<ImageF>> run(const std::vector<Image>& rgb_crops, const Tensor& source);
  // One crop of crop_size = T·size: implode to T² sub-images, run, explode.
  Result<ImageF> swap(const Image& rgb_crop, const Tensor& source);

  // The GPU the model runs on when a crop can stay there (the native engine on CUDA, runs of one
  // crop: face/device_face.h); null otherwise.
  DeviceWork* device_work() const;
  // run() of one model-size crop on the GPU: the crop of `frame` through frame_to_crop, the model
  // with `source` (source_tensor()'s values in device memory), the swapped crop (size² · 3 floats,
  // HWC, 0..255, as run() gives) into `swapped`. The caller holds the GPU.
  Status run_on_device(const DeviceFrame& frame, const Affine& frame_to_crop, const DeviceTensor& source,
                       const DeviceBuffer& swapped);

 private:
  FaceSwapperModel() = default;
  FaceSwapperModelSpec spec_;
  std::unique_ptr<InferenceSession> session_, converter_;
  int target_index_ = 0, source_index_ = 1;  // positions in session_->inputs()
  int max_batch_ = 1;
  bool fixed_batch_ = false;  // a static batch N > 1: every run takes exactly N
  std::vector<float> emap_;
};

}  // namespace fswap
