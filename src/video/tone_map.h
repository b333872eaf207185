// HDR → SDR for decoding: frames coded with the PQ (SMPTE ST 2084) or HLG (ARIB STD-B67) transfer
// on BT.2020 primaries become BT.709 SDR RGB, so the face models see what they were trained on
// and the output (written as 8-bit BT.709) looks right on ordinary players.
//
//   HdrToSdr tone(HdrTransfer::kPq);
//   tone.convert(rgb48_row, width, rgb8_row);   // 16-bit BT.2020 code values in, 8-bit BT.709 out
//
// Steps per pixel: the transfer's EOTF to linear light in nits (HLG: inverse OETF and the BT.2100
// OOTF for a 1000-nit display); BT.2020 → BT.709 primaries; a luminance tone curve (extended
// Reinhard) that puts reference white (203 nits, BT.2408) at 70% linear SDR and `peak_nits` at
// 100%, keeping hue by scaling R, G and B alike; out-of-gamut negatives clipped; the BT.709 OETF. Deterministic, no allocation per call; thread-safe after construction.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace fswap {

enum class HdrTransfer { kPq, kHlg };

class HdrToSdr {
 public:
  explicit HdrToSdr(HdrTransfer transfer, float peak_nits = 1000.f);
  // `rgb48`: width × 3 code values in [0, 65535] (full range, BT.2020 RGB, the transfer's
  // non-linear signal); `rgb8`: width × 3 BT.709 SDR values.
  void convert(const std::uint16_t* rgb48, int width, std::uint8_t* rgb8) const;

  // Linear light in nits for a normalised signal value in [0, 1] (exposed for tests).
  static float pq_to_nits(float signal);
  static float hlg_to_scene(float signal);  // HLG inverse OETF: scene light in [0, 1]

 private:
  std::vector<float> eotf_;  // 65536 entries: code value → linear (nits for PQ, scene light for HLG)
  std::array<std::uint8_t, 4096> oetf_{};  // linear SDR [0, 1] in 4096 steps → 8-bit BT.709
  HdrTransfer transfer_;
  float white_ = 203.f, peak_ = 1000.f;
  float exposure_ = 1.f;  // scales luminance (in units of reference white) before the curve
};

}  // namespace fswap
