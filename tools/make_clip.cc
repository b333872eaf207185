// fswap-make-clip: a target test clip from a still photo, with a smooth camera move.
//
//   fswap-make-clip --image astronaut.png --width 1280 --height 720 --seconds 6 --fps 30
//                   --audio-from Megamind.avi --out clip_720p.mp4
//
// Per frame the camera zooms between 1.0 and 1.25 (relative to covering the frame), rotates
// within ±4° and pans across whatever margin the zoom leaves; the photo is rendered with
// fswap::warp_affine and encoded with fswap::VideoWriter. Audio (optional) is the first
// --seconds of --audio-from. The view stays near --focus-x/--focus-y (default: upper middle,
// where a portrait's face is) and never leaves the photo.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <string>

#include "core/status.h"
#include "imaging/geometry.h"
#include "imaging/image.h"
#include "imaging/transform.h"
#include "video/media.h"

namespace {

using namespace fswap;

struct Camera {
  double zoom = 1;     // ≥ 1: relative to the scale that just covers the output
  double angle = 0;    // radians
  double pan_x = 0;    // offset of the view centre from the focus point, in view widths
  double pan_y = 0;    // offset of the view centre from the focus point, in view heights
};

constexpr double kMaxZoom = 1.25;
constexpr double kMaxAngleDeg = 4.0;

// u in [0, 1] over the clip: zoom in and back out, one slow roll, a left-to-right pan with a bob.
Camera camera_at(double u) {
  constexpr double pi = std::numbers::pi;
  Camera c;
  c.zoom = 1.0 + (kMaxZoom - 1.0) * 0.5 * (1.0 - std::cos(2 * pi * u));
  c.angle = kMaxAngleDeg * pi / 180.0 * std::sin(2 * pi * u);
  c.pan_x = -0.12 * std::cos(pi * u);
  c.pan_y = 0.06 * std::sin(2 * pi * u);
  return c;
}

// Scale at which a w×h photo, rotated by `angle`, covers a W×H frame.
double cover_scale(int w, int h, int W, int H, double angle) {
  const double cs = std::abs(std::cos(angle)), sn = std::abs(std::sin(angle));
  return std::max((W * cs + H * sn) / w, (W * sn + H * cs) / h);
}

// Maps photo coordinates to frame coordinates for camera `c`. The view is centred near the
// focus point (fractions of the photo) and clamped so that it never leaves the photo.
Affine camera_transform(int w, int h, int W, int H, const Camera& c, double focus_x, double focus_y) {
  const double s = cover_scale(w, h, W, H, c.angle) * c.zoom;
  const double cs = std::cos(c.angle), sn = std::sin(c.angle);
  // The view's bounding box in photo pixels.
  const double ex = (W * std::abs(cs) + H * std::abs(sn)) / s;
  const double ey = (W * std::abs(sn) + H * std::abs(cs)) / s;
  const double cx = std::clamp(focus_x * w + c.pan_x * ex, ex / 2, std::max(ex / 2, w - ex / 2)) - 0.5;
  const double cy = std::clamp(focus_y * h + c.pan_y * ey, ey / 2, std::max(ey / 2, h - ey / 2)) - 0.5;
  Affine m;
  m.a = s * cs;
  m.b = s * sn;
  m.d = -s * sn;
  m.e = s * cs;
  m.c = (W - 1) / 2.0 - (m.a * cx + m.b * cy);
  m.f = (H - 1) / 2.0 - (m.d * cx + m.e * cy);
  return m;
}

Rational frame_rate_of(double fps) {
  if (std::abs(fps - std::round(fps)) < 1e-6) return {static_cast<int>(std::lround(fps)), 1};
  return {static_cast<int>(std::lround(fps * 1001)), 1001};  // 29.97 → 30000/1001
}

struct ClipOptions {
  std::string image, audio_from, out;
  int width = 1280, height = 720;
  double seconds = 6, fps = 30;
  double focus_x = 0.5, focus_y = 0.3;  // portraits: faces sit in the upper part
  EncodeOptions encode;
};

Status make_clip(const ClipOptions& o) {
  const int width = o.width, height = o.height;
  if (width < 2 || height < 2) return invalid_input("--width/--height must be at least 2");
  if (o.seconds <= 0 || o.fps <= 0) return invalid_input("--seconds and --fps must be positive");
  if (o.focus_x < 0 || o.focus_x > 1 || o.focus_y < 0 || o.focus_y > 1) {
    return invalid_input("--focus-x/--focus-y are fractions of the photo, 0..1");
  }
  FSWAP_ASSIGN_OR_RETURN(Image photo, read_image(o.image));

  // A photo much larger than the frame is shrunk once (area filter) so per-frame bilinear
  // sampling never minifies by more than 1×.
  const double max_scale =
      cover_scale(photo.width, photo.height, width, height, kMaxAngleDeg * std::numbers::pi / 180) * kMaxZoom;
  if (max_scale < 1.0) {
    const int w = std::max(2, static_cast<int>(std::ceil(photo.width * max_scale)));
    const int h = std::max(2, static_cast<int>(std::ceil(photo.height * max_scale)));
    photo = resize(photo, w, h, Interp::kArea);
  }

  VideoInfo info;
  info.width = width;
  info.height = height;
  info.frame_rate = frame_rate_of(o.fps);
  info.time_base = {info.frame_rate.den, info.frame_rate.num};
  info.frame_count = std::max<std::int64_t>(1, std::llround(o.seconds * info.frame_rate.value()));
  info.duration_s = o.seconds;
  AudioSource audio;
  if (!o.audio_from.empty()) audio = AudioSource{o.audio_from, 0.0, o.seconds};
  FSWAP_ASSIGN_OR_RETURN(auto writer, VideoWriter::open(o.out, info, o.encode, audio));

  const auto start = std::chrono::steady_clock::now();
  VideoFrame frame;
  for (std::int64_t i = 0; i < info.frame_count; ++i) {
    const double u = info.frame_count > 1 ? static_cast<double>(i) / static_cast<double>(info.frame_count - 1) : 0.0;
    const Affine m = camera_transform(photo.width, photo.height, width, height, camera_at(u), o.focus_x, o.focus_y);
    frame.image = warp_affine(photo, m, width, height, Border::kReplicate);
    frame.pts = i;
    frame.index = i;
    FSWAP_RETURN_IF_ERROR(writer->write(frame));
  }
  FSWAP_RETURN_IF_ERROR(writer->finish());
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s: %lld frames %dx%d at %.3f fps in %.2f s (%.1f frames/s)\n", o.out.c_str(),
              static_cast<long long>(info.frame_count), width, height, info.frame_rate.value(), elapsed,
              static_cast<double>(info.frame_count) / std::max(elapsed, 1e-9));
  return Status::ok();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Make a target test clip from a still photo with a smooth camera move"};
  ClipOptions o;
  app.add_option("--image", o.image, "Source photo (PNG, JPEG, WebP, BMP)")->required();
  app.add_option("--width", o.width, "Output width in pixels")->capture_default_str();
  app.add_option("--height", o.height, "Output height in pixels")->capture_default_str();
  app.add_option("--seconds", o.seconds, "Clip duration")->capture_default_str();
  app.add_option("--fps", o.fps, "Frame rate (29.97 becomes 30000/1001)")->capture_default_str();
  app.add_option("--audio-from", o.audio_from, "Take the clip's audio from this file's audio stream");
  app.add_option("--out", o.out, "Output video (.mp4, .mkv, .mov)")->required();
  app.add_option("--focus-x", o.focus_x, "Horizontal point of interest the camera stays near (0..1)")
      ->capture_default_str();
  app.add_option("--focus-y", o.focus_y, "Vertical point of interest the camera stays near (0..1)")
      ->capture_default_str();
  app.add_option("--crf", o.encode.crf, "x264 constant rate factor (0..51)")->capture_default_str();
  app.add_option("--preset", o.encode.preset, "x264 preset")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  fswap::Status s = make_clip(o);
  if (!s.is_ok()) {
    std::fprintf(stderr, "fswap-make-clip: %s\n", s.to_string().c_str());
    return s.is_user_error() ? 2 : 1;
  }
  return 0;
}
