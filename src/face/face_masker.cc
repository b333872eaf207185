#include "face/face_masker.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <span>
#include <utility>

#include "face/device_masks.h"
#include "face/model_input.h"
#include "face/model_table.h"
#include "imaging/transform.h"

namespace fswap {
namespace {

constexpr int kOccluderSize = 256;
constexpr int kParserSize = 512;
// The parser's input normalisation (ImageNet's).
constexpr std::array<float, 3> kParserMean = {0.485f, 0.456f, 0.406f}, kParserStd = {0.229f, 0.224f, 0.225f};

// FaceFusion's choices.py face_mask_area_set.
const std::vector<std::pair<std::string, std::vector<int>>>& area_table() {
  static const std::vector<std::pair<std::string, std::vector<int>>> table = {
      {"upper-face", {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17}},
      {"lower-face", {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 35, 34, 33, 32, 31}},
      {"mouth", {48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67}},
  };
  return table;
}

// FaceFusion's choices.py face_mask_region_set (the parser's CelebAMask-HQ class ids).
const std::vector<std::pair<std::string, int>>& region_table() {
  static const std::vector<std::pair<std::string, int>> table = {
      {"skin", 1}, {"left-eyebrow", 2}, {"right-eyebrow", 3}, {"left-eye", 4}, {"right-eye", 5},
      {"glasses", 6}, {"nose", 10}, {"mouth", 11}, {"upper-lip", 12}, {"lower-lip", 13},
  };
  return table;
}

template <class Table>
std::string names_of(const Table& table) {
  std::string s;
  for (const auto& [name, _] : table) s += (s.empty() ? "" : ", ") + name;
  return s;
}

bool one_of(const std::string& v, std::initializer_list<const char*> choices) {
  for (const char* c : choices)
    if (v == c) return true;
  return false;
}

using IntPoint = std::array<std::int64_t, 2>;

// Cohen–Sutherland clipping of the segment a–b to [0, w−1] × [0, h−1], intersections truncated to
// integers (OpenCV's clipLine, which cv2.line and cv2.fillConvexPoly's outline go through).
// False when nothing of the segment is inside.
bool clip_segment(std::int64_t w, std::int64_t h, IntPoint& a, IntPoint& b) {
  const std::int64_t right = w - 1, bottom = h - 1;
  const auto code = [&](const IntPoint& p) {
    return (p[0] < 0) + (p[0] > right) * 2 + (p[1] < 0) * 4 + (p[1] > bottom) * 8;
  };
  int ca = code(a), cb = code(b);
  if ((ca & cb) != 0 || (ca | cb) == 0) return (ca | cb) == 0;
  // First onto the horizontal borders (keeping the x extent), then the vertical ones.
  const auto to_row = [&](IntPoint& p, int c) {
    const std::int64_t y = c < 8 ? 0 : bottom;
    p[0] += static_cast<std::int64_t>(double(y - p[1]) * double(b[0] - a[0]) / double(b[1] - a[1]));
    p[1] = y;
    return int((p[0] < 0) + (p[0] > right) * 2);
  };
  if (ca & 12) ca = to_row(a, ca);
  if (cb & 12) cb = to_row(b, cb);
  if ((ca & cb) == 0 && (ca | cb) != 0) {
    const auto to_column = [&](IntPoint& p, int c) {
      const std::int64_t x = c == 1 ? 0 : right;
      p[1] += static_cast<std::int64_t>(double(x - p[0]) * double(b[1] - a[1]) / double(b[0] - a[0]));
      p[0] = x;
      return 0;
    };
    if (ca) ca = to_column(a, ca);
    if (cb) cb = to_column(b, cb);
  }
  return (ca | cb) == 0;
}

// An 8-connected Bresenham line as cv2.line(LINE_8) draws it: clipped to the image, drawn left to
// right, the minor axis stepping when the error term 2·major·k − ... turns negative (initial
// error major − 2·minor).
void draw_line(ImageF& m, IntPoint a, IntPoint b) {
  if (!clip_segment(m.width, m.height, a, b)) return;
  if (b[0] < a[0]) std::swap(a, b);
  std::int64_t dx = b[0] - a[0], dy = b[1] - a[1];
  const int sy = dy < 0 ? -1 : 1;
  dy = std::abs(dy);
  const bool x_major = dx >= dy;
  const std::int64_t major = x_major ? dx : dy, minor = x_major ? dy : dx;
  std::int64_t err = major - 2 * minor;
  std::int64_t x = a[0], y = a[1];
  for (std::int64_t i = 0; i <= major; ++i) {
    m.at(static_cast<int>(x), static_cast<int>(y)) = 1.f;
    const bool step_minor = err < 0;
    err += step_minor ? 2 * major - 2 * minor : -2 * minor;
    if (x_major) {
      ++x;
      if (step_minor) y += sy;
    } else {
      y += sy;
      if (step_minor) ++x;
    }
  }
}

// cv2.fillConvexPoly(m, polygon, 1) with integer vertices (LINE_8, shift 0): the outline, then
// each row between the two edge chains, whose x advances by a 16.16 fixed-point slope from the
// edge's upper vertex and is rounded half up.
void fill_convex_polygon(ImageF& m, const std::vector<IntPoint>& poly) {
  const std::size_t n = poly.size();
  if (n == 0) return;
  for (std::size_t i = 0; i < n; ++i) draw_line(m, poly[(i + n - 1) % n], poly[i]);
  if (n < 3) return;
  constexpr int kShift = 16;
  constexpr std::int64_t kHalf = std::int64_t{1} << (kShift - 1);
  std::int64_t y_min = poly[0][1], y_max = poly[0][1];
  for (const auto& p : poly) y_min = std::min(y_min, p[1]), y_max = std::max(y_max, p[1]);
  for (std::int64_t y = std::max<std::int64_t>(y_min, 0); y < std::min<std::int64_t>(y_max, m.height); ++y) {
    // The two edges crossing row y that continue below it (the bottom row is the outline's).
    std::int64_t xs[2];
    int found = 0;
    for (std::size_t i = 0; i < n && found < 2; ++i) {
      IntPoint top = poly[i], bottom = poly[(i + 1) % n];
      if (top[1] > bottom[1]) std::swap(top, bottom);
      if (!(top[1] <= y && y < bottom[1])) continue;
      const std::int64_t rows = bottom[1] - top[1];
      const std::int64_t slope = ((bottom[0] - top[0]) * (std::int64_t{2} << kShift) + rows) / (2 * rows);
      xs[found++] = (top[0] << kShift) + (y - top[1]) * slope;
    }
    if (found < 2) continue;
    const std::int64_t left = std::min(xs[0], xs[1]), right = std::max(xs[0], xs[1]);
    const std::int64_t x1 = std::max<std::int64_t>((left + kHalf) >> kShift, 0);
    const std::int64_t x2 = std::min<std::int64_t>((right + kHalf) >> kShift, m.width - 1);
    for (std::int64_t x = x1; x <= x2; ++x) m.at(static_cast<int>(x), static_cast<int>(y)) = 1.f;
  }
}

// One axis of cv2.resize's INTER_LINEAR: half-pixel centres, clamped at the borders, weights in
// 11-bit fixed point (2048 = 1).
struct LinearTaps {
  std::vector<int> first, second, w_first, w_second;
};

LinearTaps linear_taps(int src, int dst) {
  LinearTaps t;
  const double scale = double(src) / dst;
  for (int d = 0; d < dst; ++d) {
    float f = static_cast<float>((d + 0.5) * scale - 0.5);
    int s = static_cast<int>(std::floor(f));
    f -= static_cast<float>(s);
    if (s < 0) f = 0, s = 0;
    if (s >= src - 1) f = 0, s = src - 1;
    const int w0 = static_cast<int>(std::lround((1.f - f) * 2048));
    t.first.push_back(s);
    t.second.push_back(std::min(s + 1, src - 1));
    t.w_first.push_back(w0);
    t.w_second.push_back(2048 - w0);
  }
  return t;
}

bool image_dims_fit(const Shape& s, std::initializer_list<std::int64_t> want) {
  if (s.size() != want.size()) return false;
  std::size_t i = 0;
  for (auto w : want) {
    if (s[i] != w && s[i] >= 0 && w >= 0) return false;
    ++i;
  }
  return true;
}

}  // namespace

Image resize_linear_opencv(const Image& src, int w, int h) {
  const LinearTaps tx = linear_taps(src.width, w), ty = linear_taps(src.height, h);
  const int c = src.channels;
  Image dst(w, h, c);
  std::vector<int> row0(static_cast<std::size_t>(w) * c), row1(row0.size());
  const auto horizontal = [&](int y, std::vector<int>& out) {
    const std::uint8_t* r = src.row(y);
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k)
        out[x * c + k] = r[tx.first[x] * c + k] * tx.w_first[x] + r[tx.second[x] * c + k] * tx.w_second[x];
  };
  for (int y = 0; y < h; ++y) {
    horizontal(ty.first[y], row0);
    horizontal(ty.second[y], row1);
    const int b0 = ty.w_first[y], b1 = ty.w_second[y];
    std::uint8_t* out = dst.row(y);
    for (std::size_t i = 0; i < row0.size(); ++i) {
      const int v = (((b0 * (row0[i] >> 4)) >> 16) + ((b1 * (row1[i] >> 4)) >> 16) + 2) >> 2;
      out[i] = static_cast<std::uint8_t>(std::clamp(v, 0, 255));
    }
  }
  return dst;
}

Status validate_face_mask_options(const FaceMaskOptions& o) {
  if (o.types.empty()) return invalid_input("--face-mask-types: no mask type given (box, occlusion, area, region)");
  for (const auto& t : o.types)
    if (!one_of(t, {"box", "occlusion", "area", "region"}))
      return invalid_input("--face-mask-types: unknown type '" + t + "' (box, occlusion, area, region)");
  for (const auto& a : o.areas) FSWAP_RETURN_IF_ERROR(face_mask_area_points(a).status());
  for (const auto& r : o.regions) FSWAP_RETURN_IF_ERROR(face_mask_region_id(r).status());
  if (!one_of(o.occluder_model, {"xseg_1", "xseg_2", "xseg_3", "many"}))
    return invalid_input("--face-occluder-model: unknown model '" + o.occluder_model + "' (xseg_1, xseg_2, xseg_3, many)");
  if (!one_of(o.parser_model, {"bisenet_resnet_18", "bisenet_resnet_34"}))
    return invalid_input("--face-parser-model: unknown model '" + o.parser_model +
                         "' (bisenet_resnet_18, bisenet_resnet_34)");
  if (o.blur < 0 || o.blur > 1) return invalid_input("--face-mask-blur must be within 0..1");
  for (float p : o.padding)
    if (p < 0 || p > 100) return invalid_input("--face-mask-padding values must be within 0..100");
  return Status::ok();
}

Result<std::vector<int>> face_mask_area_points(const std::string& area) {
  for (const auto& [name, points] : area_table())
    if (name == area) return points;
  return invalid_input("--face-mask-areas: unknown area '" + area + "' (" + names_of(area_table()) + ")");
}

Result<int> face_mask_region_id(const std::string& region) {
  for (const auto& [name, id] : region_table())
    if (name == region) return id;
  return invalid_input("--face-mask-regions: unknown region '" + region + "' (" + names_of(region_table()) + ")");
}

void soft_threshold_mask(ImageF& mask) {
  for (float& v : mask.pixels) v = std::clamp(v, 0.f, 1.f);
  gaussian_blur_opencv(mask, 5.0);
  for (float& v : mask.pixels) v = (std::clamp(v, 0.5f, 1.f) - 0.5f) * 2.f;
}

ImageF create_area_mask(int width, int height, const std::vector<Point2f>& points) {
  std::vector<Point2f> truncated;
  truncated.reserve(points.size());
  for (const Point2f& p : points) truncated.push_back({std::trunc(p.x), std::trunc(p.y)});
  std::vector<IntPoint> hull;
  for (const Point2f& p : convex_hull(truncated)) hull.push_back({static_cast<std::int64_t>(p.x), static_cast<std::int64_t>(p.y)});
  ImageF mask(width, height, 1, 0.f);
  fill_convex_polygon(mask, hull);
  soft_threshold_mask(mask);
  return mask;
}

Result<std::unique_ptr<FaceOccluder>> FaceOccluder::load(Engine& engine, const std::string& models_dir,
                                                         const std::string& name, const SessionOptions& options) {
  std::vector<std::string> names = {name};
  if (name == "many") names = {"xseg_1", "xseg_2", "xseg_3"};
  else if (!one_of(name, {"xseg_1", "xseg_2", "xseg_3"}))
    return invalid_input("--face-occluder-model: unknown model '" + name + "' (xseg_1, xseg_2, xseg_3, many)");
  std::unique_ptr<FaceOccluder> occluder(new FaceOccluder());
  for (const auto& n : names) {
    const std::string path = models_dir + "/" + n + ".onnx";
    FSWAP_RETURN_IF_ERROR(require_model_file(path, "--face-mask-types occlusion with --face-occluder-model " + name));
    FSWAP_ASSIGN_OR_RETURN(auto session, engine.load(path, options));
    const auto& in = session->inputs();
    const auto& out = session->outputs();
    std::int64_t out_values = out.empty() ? 0 : 1;
    if (!out.empty())
      for (std::size_t i = 1; i < out[0].shape.size(); ++i) out_values *= std::max<std::int64_t>(out[0].shape[i], 1);
    if (in.size() != 1 || in[0].name != "input" || in[0].dtype != DType::kFloat32 ||
        !image_dims_fit(in[0].shape, {1, kOccluderSize, kOccluderSize, 3}) || out.empty() ||
        out[0].dtype != DType::kFloat32 || out_values != kOccluderSize * kOccluderSize)
      return invalid_input(path + ": not a face occluder model: expected input [1,256,256,3] (NHWC float32) and an " +
                           "output of 256×256 values");
    occluder->sessions_.push_back(std::move(session));
  }
  return occluder;
}

Result<ImageF> FaceOccluder::mask(const Image& rgb_crop) {
  // xseg takes BGR.
  Image bgr = resize_linear_opencv(rgb_crop, kOccluderSize, kOccluderSize);
  for (std::size_t i = 0; i + 2 < bgr.pixels.size(); i += 3) std::swap(bgr.pixels[i], bgr.pixels[i + 2]);
  const Tensor input = image_to_nhwc(bgr, 0.f, 1.f / 255.f);
  ImageF occlusion(kOccluderSize, kOccluderSize, 1, 1.f);  // many: the minimum over the models
  for (auto& session : sessions_) {
    FSWAP_ASSIGN_OR_RETURN(auto outputs, session->run({input}));
    const Tensor& o = outputs.at(0);
    if (o.elements() != kOccluderSize * kOccluderSize)
      return invalid_input("face occluder: returned " + shape_to_string(o.shape()) + ", expected 256×256 values");
    const float* v = o.data<float>();
    for (std::size_t i = 0; i < occlusion.pixels.size(); ++i) occlusion.pixels[i] = std::min(occlusion.pixels[i], v[i]);
  }
  for (float& v : occlusion.pixels) v = std::clamp(v, 0.f, 1.f);
  ImageF mask = resize(occlusion, rgb_crop.width, rgb_crop.height, Interp::kBilinear);
  soft_threshold_mask(mask);
  return mask;
}

DeviceWork* FaceOccluder::device_work() const {
  DeviceWork* gpu = device_face_built() && !sessions_.empty() ? sessions_[0]->device_work() : nullptr;
  for (const auto& session : sessions_)
    if (session->device_work() != gpu) return nullptr;
  return gpu;
}

Status FaceOccluder::mask_on_device(const DeviceFrame& frame, const Affine& frame_to_crop, int size,
                                    const DeviceBuffer& mask) {
  DeviceWork& gpu = frame.gpu();
  if (device_work() != &gpu) return unsupported("face occluder: its models do not run on the frame's GPU");
  FSWAP_ASSIGN_OR_RETURN(DeviceBuffer input, occluder_input(frame, frame_to_crop, size, kOccluderSize));
  FSWAP_ASSIGN_OR_RETURN(DeviceBuffer occlusion, mask_filled(gpu, kOccluderSize, 1.f));  // many: the minimum
  const DeviceTensor in{input.data(), DType::kFloat32, {1, kOccluderSize, kOccluderSize, 3}};
  for (auto& session : sessions_) {
    FSWAP_RETURN_IF_ERROR(session->run_on_device({&in, 1}, [&](std::span<const DeviceTensor> outputs) -> Status {
      const DeviceTensor& o = outputs[0];
      std::int64_t elements = 1;
      for (auto d : o.shape) elements *= d;
      if (o.dtype != DType::kFloat32 || elements != kOccluderSize * kOccluderSize)
        return invalid_input("face occluder: returned " + shape_to_string(o.shape) + ", expected 256×256 float32 values");
      return mask_minimum(gpu, occlusion, static_cast<const float*>(o.data), kOccluderSize);
    }));
  }
  return model_mask_to_crop(gpu, occlusion, kOccluderSize, mask, size);
}

Result<std::unique_ptr<FaceParser>> FaceParser::load(Engine& engine, const std::string& models_dir,
                                                     const std::string& name, const SessionOptions& options) {
  if (!one_of(name, {"bisenet_resnet_18", "bisenet_resnet_34"}))
    return invalid_input("--face-parser-model: unknown model '" + name + "' (bisenet_resnet_18, bisenet_resnet_34)");
  const std::string path = models_dir + "/" + name + ".onnx";
  FSWAP_RETURN_IF_ERROR(require_model_file(path, "--face-mask-types region with --face-parser-model " + name));
  std::unique_ptr<FaceParser> parser(new FaceParser());
  parser->name_ = name;
  FSWAP_ASSIGN_OR_RETURN(parser->session_, engine.load(path, options));
  const auto& in = parser->session_->inputs();
  const auto& out = parser->session_->outputs();
  if (in.size() != 1 || in[0].name != "input" || in[0].dtype != DType::kFloat32 ||
      !image_dims_fit(in[0].shape, {1, 3, kParserSize, kParserSize}) || out.empty() || out[0].dtype != DType::kFloat32 ||
      !image_dims_fit(out[0].shape, {1, -1, kParserSize, kParserSize}))
    return invalid_input(path + ": not a face parser model: expected input [1,3,512,512] (float32) and an output " +
                         "[1,C,512,512] of class scores");
  return parser;
}

Result<ImageF> FaceParser::region_mask(const ImageF& rgb_crop, const std::vector<int>& region_ids) {
  const ImageF resized = resize(rgb_crop, kParserSize, kParserSize, Interp::kBilinear);
  const std::size_t plane = static_cast<std::size_t>(kParserSize) * kParserSize;
  Tensor input = Tensor::zeros(DType::kFloat32, {1, 3, kParserSize, kParserSize});
  float* in = input.data<float>();
  for (int c = 0; c < 3; ++c)
    for (std::size_t i = 0; i < plane; ++i) in[c * plane + i] = (resized.pixels[i * 3 + c] / 255.f - kParserMean[c]) / kParserStd[c];
  FSWAP_ASSIGN_OR_RETURN(auto outputs, session_->run({input}));
  const Tensor& o = outputs.at(0);
  const Shape& s = o.shape();
  if (s.size() != 4 || s[0] != 1 || s[1] < 1 || s[2] != kParserSize || s[3] != kParserSize)
    return invalid_input(name_ + ": returned " + shape_to_string(s) + ", expected [1,C,512,512]");
  const int classes = static_cast<int>(s[1]);
  const float* v = o.data<float>();
  ImageF chosen(kParserSize, kParserSize, 1, 0.f);
  for (std::size_t i = 0; i < plane; ++i) {
    int best = 0;  // numpy's argmax: the first of equal maxima
    for (int c = 1; c < classes; ++c)
      if (v[c * plane + i] > v[best * plane + i]) best = c;
    if (std::find(region_ids.begin(), region_ids.end(), best) != region_ids.end()) chosen.pixels[i] = 1.f;
  }
  ImageF mask = resize(chosen, rgb_crop.width, rgb_crop.height, Interp::kBilinear);
  soft_threshold_mask(mask);
  return mask;
}

DeviceWork* FaceParser::device_work() const { return device_face_built() ? session_->device_work() : nullptr; }

Status FaceParser::region_mask_on_device(DeviceWork& gpu, const DeviceBuffer& rgb_crop, int size,
                                         const std::vector<int>& region_ids, const DeviceBuffer& mask) {
  if (device_work() != &gpu) return unsupported(name_ + ": the face parser does not run on this GPU");
  FSWAP_ASSIGN_OR_RETURN(std::uint64_t chosen, chosen_classes(region_ids));
  FSWAP_ASSIGN_OR_RETURN(DeviceBuffer input, parser_input(gpu, rgb_crop, size, kParserSize, kParserMean, kParserStd));
  FSWAP_ASSIGN_OR_RETURN(DeviceBuffer classes,
                         gpu.allocate(static_cast<std::size_t>(kParserSize) * kParserSize * sizeof(float)));
  const DeviceTensor in{input.data(), DType::kFloat32, {1, 3, kParserSize, kParserSize}};
  FSWAP_RETURN_IF_ERROR(session_->run_on_device({&in, 1}, [&](std::span<const DeviceTensor> outputs) -> Status {
    return chosen_class_mask(gpu, outputs[0], chosen, classes, kParserSize);
  }));
  return model_mask_to_crop(gpu, classes, kParserSize, mask, size);
}

Result<FaceMasker> FaceMasker::load(Engine& engine, const std::string& models_dir, const FaceMaskOptions& options,
                                    const SessionOptions& session_options) {
  FSWAP_RETURN_IF_ERROR(validate_face_mask_options(options));
  FaceMasker masker;
  masker.options_ = options;
  for (const auto& a : options.areas) {
    FSWAP_ASSIGN_OR_RETURN(auto points, face_mask_area_points(a));
    masker.area_points_.insert(masker.area_points_.end(), points.begin(), points.end());
  }
  for (const auto& r : options.regions) {
    FSWAP_ASSIGN_OR_RETURN(int id, face_mask_region_id(r));
    masker.region_ids_.push_back(id);
  }
  if (masker.uses("occlusion")) {
    FSWAP_ASSIGN_OR_RETURN(masker.occluder_, FaceOccluder::load(engine, models_dir, options.occluder_model, session_options));
  }
  if (masker.uses("region")) {
    FSWAP_ASSIGN_OR_RETURN(masker.parser_, FaceParser::load(engine, models_dir, options.parser_model, session_options));
  }
  return masker;
}

bool FaceMasker::uses(const std::string& type) const {
  return std::find(options_.types.begin(), options_.types.end(), type) != options_.types.end();
}

ImageF FaceMasker::box_or_ones(int width, int height) {
  if (!uses("box")) return ImageF(width, height, 1, 1.f);
  if (box_mask_.width != width || box_mask_.height != height)
    box_mask_ = create_box_mask(width, height, options_.blur, options_.padding);
  return box_mask_;
}

std::optional<ImageF> FaceMasker::fixed_mask(int size) {
  if (!mask_is_fixed()) return std::nullopt;
  return box_or_ones(size, size);
}

Result<ImageF> FaceMasker::before_swap(const Image& target_crop) {
  ImageF mask = box_or_ones(target_crop.width, target_crop.height);
  if (occluder_) {
    FSWAP_ASSIGN_OR_RETURN(ImageF occlusion, occluder_->mask(target_crop));
    for (std::size_t i = 0; i < mask.pixels.size(); ++i) mask.pixels[i] = std::min(mask.pixels[i], occlusion.pixels[i]);
  }
  return mask;
}

Status FaceMasker::after_swap(const ImageF& swapped_crop, const std::array<Point2f, 68>& landmarks68, ImageF& mask) {
  FSWAP_CHECK(mask.width == swapped_crop.width && mask.height == swapped_crop.height && mask.channels == 1,
              "FaceMasker::after_swap: the mask must be 1 channel, crop-sized");
  if (uses("area")) {
    const ImageF area = area_mask(swapped_crop.width, swapped_crop.height, landmarks68);
    for (std::size_t i = 0; i < mask.pixels.size(); ++i) mask.pixels[i] = std::min(mask.pixels[i], area.pixels[i]);
  }
  if (parser_) {
    FSWAP_ASSIGN_OR_RETURN(ImageF region, parser_->region_mask(swapped_crop, region_ids_));
    for (std::size_t i = 0; i < mask.pixels.size(); ++i) mask.pixels[i] = std::min(mask.pixels[i], region.pixels[i]);
  }
  for (float& v : mask.pixels) v = std::clamp(v, 0.f, 1.f);
  return Status::ok();
}

ImageF FaceMasker::area_mask(int width, int height, const std::array<Point2f, 68>& landmarks68) const {
  std::vector<Point2f> points;
  for (int i : area_points_) points.push_back(landmarks68[i]);
  return create_area_mask(width, height, points);
}

bool FaceMasker::runs_on(const DeviceWork& gpu) const {
  return device_face_built() && (!occluder_ || occluder_->device_work() == &gpu) &&
         (!parser_ || parser_->device_work() == &gpu);
}

Result<DeviceBuffer> FaceMasker::before_swap_on_device(const DeviceFrame& frame, const Affine& frame_to_crop, int size) {
  DeviceWork& gpu = frame.gpu();
  if (!runs_on(gpu)) return unsupported("face masks: this build or the occluder and parser models need host frames");
  DeviceBuffer mask;
  if (occluder_) {
    FSWAP_ASSIGN_OR_RETURN(mask, gpu.allocate(static_cast<std::size_t>(size) * size * sizeof(float)));
    FSWAP_RETURN_IF_ERROR(occluder_->mask_on_device(frame, frame_to_crop, size, mask));
  } else {
    FSWAP_ASSIGN_OR_RETURN(mask, mask_filled(gpu, size, 1.f));
  }
  if (!uses("box")) return mask;
  // Kept for the first size; another size (not the processors' case) is uploaded per call, since
  // a KeptBuffer cannot be replaced under the hold.
  DeviceBuffer box_once;
  if (box_mask_on_gpu_.empty()) {
    FSWAP_ASSIGN_OR_RETURN(DeviceBuffer box, upload_mask(gpu, box_or_ones(size, size)));
    box_mask_on_gpu_ = KeptBuffer(gpu, std::move(box));
    box_mask_on_gpu_size_ = size;
  } else if (box_mask_on_gpu_size_ != size) {
    FSWAP_ASSIGN_OR_RETURN(box_once, upload_mask(gpu, box_or_ones(size, size)));
  }
  const DeviceBuffer& box = box_mask_on_gpu_size_ == size ? box_mask_on_gpu_.get() : box_once;
  FSWAP_RETURN_IF_ERROR(mask_minimum(gpu, mask, static_cast<const float*>(box.data()), size));
  return mask;
}

Status FaceMasker::after_swap_on_device(DeviceWork& gpu, const DeviceBuffer& swapped_crop, int size,
                                        const std::array<Point2f, 68>& landmarks68, const DeviceBuffer& mask) {
  if (!runs_on(gpu)) return unsupported("face masks: this build or the occluder and parser models need host frames");
  if (uses("area")) {
    FSWAP_ASSIGN_OR_RETURN(DeviceBuffer area, upload_mask(gpu, area_mask(size, size, landmarks68)));
    FSWAP_RETURN_IF_ERROR(mask_minimum(gpu, mask, static_cast<const float*>(area.data()), size));
  }
  if (parser_) {
    FSWAP_ASSIGN_OR_RETURN(DeviceBuffer region, gpu.allocate(static_cast<std::size_t>(size) * size * sizeof(float)));
    FSWAP_RETURN_IF_ERROR(parser_->region_mask_on_device(gpu, swapped_crop, size, region_ids_, region));
    FSWAP_RETURN_IF_ERROR(mask_minimum(gpu, mask, static_cast<const float*>(region.data()), size));
  }
  return mask_clip(gpu, mask, size);
}

}  // namespace fswap
