#include "face/swap_classical.h"

#include <algorithm>
#include <cmath>

#include "imaging/blend.h"
#include "imaging/filter.h"
#include "imaging/transform.h"

namespace fswap {
namespace {

constexpr float kBoundaryMargin = 0.25f;
// The smallest face size (px) the swap works at, even when the source face is smaller.
constexpr float kMinWorkFace = 160.f;

std::vector<Point2f> to_vector(const std::array<Point2f, 68>& p) { return {p.begin(), p.end()}; }

float landmark_size(const std::array<Point2f, 68>& p) {
  float x1 = p[0].x, x2 = p[0].x, y1 = p[0].y, y2 = p[0].y;
  for (const auto& q : p) {
    x1 = std::min(x1, q.x), x2 = std::max(x2, q.x), y1 = std::min(y1, q.y), y2 = std::max(y2, q.y);
  }
  return std::max(x2 - x1, y2 - y1);
}

Rect bounding_rect(const std::vector<Point2f>& points, int pad) {
  float x1 = points[0].x, x2 = x1, y1 = points[0].y, y2 = y1;
  for (const auto& q : points) {
    x1 = std::min(x1, q.x), x2 = std::max(x2, q.x), y1 = std::min(y1, q.y), y2 = std::max(y2, q.y);
  }
  const int ix1 = static_cast<int>(std::floor(x1)) - pad, iy1 = static_cast<int>(std::floor(y1)) - pad;
  return {ix1, iy1, static_cast<int>(std::ceil(x2)) + pad - ix1, static_cast<int>(std::ceil(y2)) + pad - iy1};
}

// Inner-lip opening relative to the mouth width: ~0 closed, > 0.1 clearly open.
float mouth_opening(const std::array<Point2f, 68>& p) {
  const float width = std::hypot(p[64].x - p[60].x, p[64].y - p[60].y);
  if (width <= 0) return 0;
  const float gap = (std::hypot(p[62].x - p[66].x, p[62].y - p[66].y) + std::hypot(p[61].x - p[67].x, p[61].y - p[67].y) +
                     std::hypot(p[63].x - p[65].x, p[63].y - p[65].y)) / 3;
  return gap / width;
}

// Gaussian blur of a feather mask. Wide blurs run on a 2× or 4× smaller copy: the result is
// smooth anyway, and the separable kernel's cost grows with σ.
void blur_mask(ImageF& mask, float sigma) {
  const int factor = sigma >= 8.f ? 4 : sigma >= 4.f ? 2 : 1;
  if (factor == 1) {
    gaussian_blur(mask, sigma);
    return;
  }
  ImageF small = resize(mask, (mask.width + factor - 1) / factor, (mask.height + factor - 1) / factor, Interp::kArea);
  gaussian_blur(small, sigma / static_cast<float>(factor));
  mask = resize(small, mask.width, mask.height, Interp::kBilinear);
}

}  // namespace

std::vector<Point2f> face_boundary_points(const std::array<Point2f, 68>& landmarks, float margin) {
  const Rect r = bounding_rect(to_vector(landmarks), 0);
  const float mx = r.width * margin, my = r.height * margin;
  const float x1 = r.x - mx, x2 = r.x + r.width + mx, y1 = r.y - my, y2 = r.y + r.height + my;
  const float xm = (x1 + x2) / 2, ym = (y1 + y2) / 2;
  return {{x1, y1}, {xm, y1}, {x2, y1}, {x2, ym}, {x2, y2}, {xm, y2}, {x1, y2}, {x1, ym}};
}

void transfer_colour(Image& image, const Image& reference, const ImageF& mask, float strength) {
  if (strength <= 0) return;
  ImageF lab = rgb_to_lab(image);
  const ImageF ref = rgb_to_lab(reference);
  double sum[2][3] = {}, sq[2][3] = {};
  long count = 0;
  for (std::size_t i = 0; i < mask.pixels.size(); ++i) {
    if (mask.pixels[i] <= 0.5f) continue;
    ++count;
    for (int c = 0; c < 3; ++c) {
      const double a = lab.pixels[i * 3 + c], b = ref.pixels[i * 3 + c];
      sum[0][c] += a, sq[0][c] += a * a, sum[1][c] += b, sq[1][c] += b * b;
    }
  }
  if (count < 16) return;
  float gain[3], shift[3];
  for (int c = 0; c < 3; ++c) {
    const double m0 = sum[0][c] / count, m1 = sum[1][c] / count;
    const double s0 = std::sqrt(std::max(1e-6, sq[0][c] / count - m0 * m0));
    const double s1 = std::sqrt(std::max(1e-6, sq[1][c] / count - m1 * m1));
    // Limit the contrast change so a shadowed or flat target cannot wash the face out.
    const double g = std::clamp(s1 / s0, 0.5, 2.0);
    gain[c] = static_cast<float>(1 + (g - 1) * strength);
    // v' = (v − m0)·gain + mean, where mean moves from m0 toward m1 with the strength.
    shift[c] = static_cast<float>(m0 + (m1 - m0) * strength - m0 * gain[c]);
  }
  for (std::size_t i = 0; i < mask.pixels.size(); ++i)
    for (int c = 0; c < 3; ++c) lab.pixels[i * 3 + c] = lab.pixels[i * 3 + c] * gain[c] + shift[c];
  image = lab_to_rgb(lab);
}

Result<ClassicalSwapper> ClassicalSwapper::create(const Image& source_image, const Face& source_face) {
  if (!source_face.has_landmarks) return internal_error("source face has no landmarks");
  ClassicalSwapper s;
  s.source_face_size_ = landmark_size(source_face.landmarks68);
  if (s.source_face_size_ < 16) return no_face("the source face is too small to swap (under 16 px)");
  s.source_points_ = to_vector(source_face.landmarks68);
  for (const auto& p : face_boundary_points(source_face.landmarks68, kBoundaryMargin)) s.source_points_.push_back(p);
  s.mesh_ = delaunay(s.source_points_);
  // Crop the source around the mesh, then keep halvings so large sources are sampled without aliasing.
  const Rect crop_rect = intersect(bounding_rect(s.source_points_, 4), {0, 0, source_image.width, source_image.height});
  if (crop_rect.empty()) return no_face("the source face lies outside its image");
  for (auto& p : s.source_points_) p.x -= static_cast<float>(crop_rect.x), p.y -= static_cast<float>(crop_rect.y);
  s.levels_.push_back({crop(source_image, crop_rect), 1.f, s.source_points_});
  while (s.levels_.back().image.width > 64 && s.levels_.back().image.height > 64) {
    const Image& prev = s.levels_.back().image;
    const int w = (prev.width + 1) / 2, h = (prev.height + 1) / 2;
    const float scale = s.levels_.back().scale * static_cast<float>(w) / prev.width;
    std::vector<Point2f> points = s.source_points_;
    for (Point2f& p : points) p = {p.x * scale, p.y * scale};
    s.levels_.push_back({resize(prev, w, h, Interp::kArea), scale, std::move(points)});
  }
  return s;
}

void ClassicalSwapper::swap(Image& frame, const Face& target, const SwapOptions& options, TimeLedger* ledger) const {
  const float target_size = landmark_size(target.landmarks68);
  if (target_size < 8) return;

  // Target mesh: the 68 landmarks plus the source boundary carried over by the best similarity.
  std::vector<Point2f> target_points = to_vector(target.landmarks68);
  const Affine source_to_target = estimate_similarity(
      std::vector<Point2f>(source_points_.begin(), source_points_.begin() + 68), target_points);
  for (std::size_t i = 68; i < source_points_.size(); ++i) target_points.push_back(source_to_target.apply(source_points_[i]));

  const int pad = static_cast<int>(target_size * 0.1f) + 8;
  const Rect roi = intersect(bounding_rect(target_points, pad), {0, 0, frame.width, frame.height});
  if (roi.empty()) return;

  // Work at no more resolution than the source face has: a target face larger than the source
  // gains no detail from full-resolution work, only cost (a 500 px face is ~10× the pixels).
  const float scale = std::min(1.f, std::max(kMinWorkFace, source_face_size_) / target_size);
  const int work_w = std::max(1, static_cast<int>(std::lround(roi.width * scale)));
  const int work_h = std::max(1, static_cast<int>(std::lround(roi.height * scale)));
  const float sx = static_cast<float>(work_w) / roi.width, sy = static_cast<float>(work_h) / roi.height;
  for (auto& p : target_points) p = {(p.x - roi.x + 0.5f) * sx - 0.5f, (p.y - roi.y + 0.5f) * sy - 0.5f};
  const float work_face = target_size * sx;
  const Image background_full = crop(frame, roi);
  const Image background = scale < 1.f ? resize(background_full, work_w, work_h, Interp::kArea) : background_full;

  // The source level whose face is closest to (but not smaller than) the working face.
  const SourceLevel* level = &levels_.front();
  for (const auto& l : levels_)
    if (source_face_size_ * l.scale >= work_face) level = &l;

  Image warped = background;
  ImageF mask(work_w, work_h, 1);
  {
    ScopedTimer t(ledger, "swap");
    warp_mesh(level->image, level->points, warped, target_points, mesh_);
    // Face mask: the hull of the 68 landmarks, the open mouth cut out.
    const std::vector<Point2f> inner(target_points.begin(), target_points.begin() + 68);
    fill_polygon(mask, convex_hull(inner), 1.f);
    if (options.keep_mouth && mouth_opening(target.landmarks68) > 0.08f) {
      std::vector<Point2f> mouth(target_points.begin() + lmk68::kMouthInnerFirst,
                                 target_points.begin() + lmk68::kMouthInnerLast + 1);
      fill_polygon(mask, mouth, 0.f);
    }
    // The colour transfer only over the hull's box: its statistics come from inside the hull,
    // and outside it the background replaces the warp below.
    const Rect hull_box = intersect(bounding_rect(inner, 1), {0, 0, work_w, work_h});
    if (!hull_box.empty()) {
      Image part = crop(warped, hull_box);
      transfer_colour(part, crop(background, hull_box), crop(mask, hull_box), options.colour_transfer);
      place(part, warped, hull_box.x, hull_box.y);
    }
    // Outside the hull the foreground is the background itself, so the pyramid blend can only
    // change pixels near the face.
    for (std::size_t i = 0; i < mask.pixels.size(); ++i)
      if (mask.pixels[i] <= 0.f)
        for (int c = 0; c < 3; ++c) warped.pixels[i * 3 + c] = background.pixels[i * 3 + c];
  }
  {
    ScopedTimer t(ledger, "blend");
    // Feather inside the hull: blur, then pull the edge in so the face border fades out
    // before the hull line (no hard edge where the jaw landmarks wobble).
    const float sigma = std::max(1.f, work_face * 0.08f * (options.mask_blur / 0.3f));
    blur_mask(mask, sigma);
    for (float& m : mask.pixels) m = std::clamp((m - 0.5f) * 2.f, 0.f, 1.f);
    blur_mask(mask, sigma * 0.5f);
    const Image blended = to_u8(multiband_blend(to_float(background), to_float(warped), mask, options.blend_levels));
    if (scale >= 1.f) {
      place(blended, frame, roi.x, roi.y);
    } else {
      // Upscale the blended face and its mask; the frame keeps its full-resolution pixels
      // wherever the mask is 0.
      const Image face = resize(blended, roi.width, roi.height, Interp::kBilinear);
      const ImageF alpha = resize(mask, roi.width, roi.height, Interp::kBilinear);
      alpha_blend(frame, face, alpha, roi.x, roi.y);
    }
  }
}

}  // namespace fswap
