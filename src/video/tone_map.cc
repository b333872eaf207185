#include "video/tone_map.h"

#include <algorithm>
#include <cmath>

namespace fswap {
namespace {

// BT.2020 → BT.709 for linear RGB (ITU-R BT.2087).
constexpr float kToBt709[3][3] = {
    {1.660491f, -0.587641f, -0.072850f}, {-0.124550f, 1.132900f, -0.008349f}, {-0.018151f, -0.100579f, 1.118730f}};
// Where reference white lands in linear SDR: below 1, leaving headroom for the highlights.
constexpr float kWhiteLevel = 0.7f;
// BT.2020 luminance weights, for the HLG OOTF.
constexpr float kLuma2020[3] = {0.2627f, 0.6780f, 0.0593f};
constexpr float kLuma709[3] = {0.2126f, 0.7152f, 0.0722f};

// Extended Reinhard: 0 → 0, lm → 1, slope 1 at 0, smooth roll-off toward lm.
float reinhard(float l, float lm) { return l * (1.f + l / (lm * lm)) / (1.f + l); }

float bt709_oetf(float linear) {
  return linear < 0.018f ? 4.5f * linear : 1.099f * std::pow(linear, 0.45f) - 0.099f;
}

}  // namespace

float HdrToSdr::pq_to_nits(float signal) {
  constexpr float m1 = 2610.f / 16384.f, m2 = 2523.f / 4096.f * 128.f;
  constexpr float c1 = 3424.f / 4096.f, c2 = 2413.f / 4096.f * 32.f, c3 = 2392.f / 4096.f * 32.f;
  const float p = std::pow(std::clamp(signal, 0.f, 1.f), 1.f / m2);
  return 10000.f * std::pow(std::max(p - c1, 0.f) / (c2 - c3 * p), 1.f / m1);
}

float HdrToSdr::hlg_to_scene(float signal) {
  constexpr float a = 0.17883277f, b = 0.28466892f, c = 0.55991073f;
  const float e = std::clamp(signal, 0.f, 1.f);
  return e <= 0.5f ? e * e / 3.f : (std::exp((e - c) / a) + b) / 12.f;
}

HdrToSdr::HdrToSdr(HdrTransfer transfer, float peak_nits) : eotf_(65536), transfer_(transfer), peak_(peak_nits) {
  for (std::size_t i = 0; i < eotf_.size(); ++i) {
    const float signal = static_cast<float>(i) / 65535.f;
    eotf_[i] = transfer == HdrTransfer::kPq ? pq_to_nits(signal) : hlg_to_scene(signal);
  }
  // The exposure that puts reference white at kWhiteLevel with the peak at 1 (bisection: the
  // curve at white grows with the exposure).
  float lo = 0.1f, hi = 50.f;
  for (int i = 0; i < 60; ++i) {
    const float mid = 0.5f * (lo + hi);
    (reinhard(mid, mid * peak_ / white_) < kWhiteLevel ? lo : hi) = mid;
  }
  exposure_ = 0.5f * (lo + hi);
  for (std::size_t i = 0; i < oetf_.size(); ++i) {
    const float v = bt709_oetf(static_cast<float>(i) / static_cast<float>(oetf_.size() - 1));
    oetf_[i] = static_cast<std::uint8_t>(std::lround(std::clamp(v, 0.f, 1.f) * 255.f));
  }
}

void HdrToSdr::convert(const std::uint16_t* rgb48, int width, std::uint8_t* rgb8) const {
  const float exposure = exposure_, lm = exposure_ * peak_ / white_;
  for (int x = 0; x < width; ++x) {
    const std::uint16_t* in = rgb48 + 3 * x;
    float lin[3] = {eotf_[in[0]], eotf_[in[1]], eotf_[in[2]]};
    if (transfer_ == HdrTransfer::kHlg) {
      // BT.2100 OOTF for a 1000-nit display: Fd = 1000 · Ys^(γ−1) · Es, γ = 1.2.
      const float ys = kLuma2020[0] * lin[0] + kLuma2020[1] * lin[1] + kLuma2020[2] * lin[2];
      const float gain = 1000.f * (ys > 0 ? std::pow(ys, 0.2f) : 0.f);
      for (float& c : lin) c *= gain;
    }
    float rgb[3];
    for (int r = 0; r < 3; ++r)
      rgb[r] = std::max(0.f, (kToBt709[r][0] * lin[0] + kToBt709[r][1] * lin[1] + kToBt709[r][2] * lin[2]) / white_);
    const float l = exposure * (kLuma709[0] * rgb[0] + kLuma709[1] * rgb[1] + kLuma709[2] * rgb[2]);
    const float scale = l > 0 ? exposure * reinhard(l, lm) / l : 0.f;
    for (int c = 0; c < 3; ++c) {
      const float v = std::clamp(rgb[c] * scale, 0.f, 1.f);
      rgb8[3 * x + c] = oetf_[static_cast<std::size_t>(std::lround(v * static_cast<float>(oetf_.size() - 1)))];
    }
  }
}

}  // namespace fswap
