// Internal to the video layer: moves the audio of an AudioSource into an output being muxed,
// a little at a time (stream copy when the container accepts the codec, else AAC re-encode).
#pragma once

#include <memory>
#include <string>

#include "video/ffmpeg_util.h"
#include "video/media.h"

namespace fswap::ffmpeg {

class AudioPump {
 public:
  // Opens source.path and adds an audio stream to `out` (before its header is written).
  // Returns nullptr (no audio) when the source has no audio stream.
  static Result<std::unique_ptr<AudioPump>> open(const AudioSource& source, AVFormatContext* out,
                                                 const std::string& out_path);
  virtual ~AudioPump() = default;
  // Writes the source's audio whose output time (seconds from start_s) is <= t_s.
  virtual Status write_until(double t_s) = 0;
  // Writes everything left (up to end_s) and flushes the encoder, if any.
  virtual Status finish() = 0;
};

}  // namespace fswap::ffmpeg
