// A short test clip: the astronaut photo (512×512) scaled to size × size and drifting right by
// `step` pixels a frame; `frames` frames at `fps` (time base 1/fps, pts = index), with `audio`'s
// audio when given. Written by VideoWriter (libx264 defaults), so tests need no ffmpeg CLI.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "imaging/transform.h"
#include "video/media.h"

namespace fswap::test {

// The same clip of any photo, scaled by size / its width.
inline void write_drift_clip(const std::string& path, const Image& photo, int size, int frames, int fps, double step,
                             const AudioSource& audio = {}) {
  VideoInfo info;
  info.width = info.height = size;
  info.time_base = {1, fps};
  info.frame_rate = {fps, 1};
  auto writer = VideoWriter::open(path, info, {}, audio).value();
  const double scale = size / static_cast<double>(photo.width);
  for (int i = 0; i < frames; ++i) {
    VideoFrame f;
    f.image = warp_affine(photo, Affine{scale, 0, step * i, 0, scale, 0}, size, size);
    f.pts = i;
    f.index = i;
    EXPECT_TRUE(writer->write(f).is_ok());
  }
  EXPECT_TRUE(writer->finish().is_ok());
}

// The GPU tests run away from the source tree, without third_party/, and pass a photo of their own.
#ifdef FSWAP_THIRD_PARTY_DIR
inline void write_drift_clip(const std::string& path, int size, int frames, int fps, double step,
                             const AudioSource& audio = {}) {
  write_drift_clip(path, read_image(std::string(FSWAP_THIRD_PARTY_DIR) + "/media/astronaut.png").value(), size, frames,
                   fps, step, audio);
}
#endif

}  // namespace fswap::test
