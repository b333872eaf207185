// Media I/O through the FFmpeg libraries: video decode/encode with audio kept, still images.
//
//   FSWAP_ASSIGN_OR_RETURN(auto reader, VideoReader::open("in.mp4"));
//   FSWAP_ASSIGN_OR_RETURN(auto writer, VideoWriter::open("out.mp4", reader->info(), {}, audio));
//   VideoFrame frame;
//   while (true) { FSWAP_ASSIGN_OR_RETURN(bool got, reader->read(frame)); if (!got) break;
//                  FSWAP_RETURN_IF_ERROR(writer->write(frame)); }
//   FSWAP_RETURN_IF_ERROR(writer->finish());   // renames the temporary file onto out.mp4
//
// Frames are RGB uint8, upright (rotation metadata applied on decode). Timestamps are kept in
// the input stream's time base, so variable frame rate stays variable.
// Readers and writers are single-threaded objects; distinct objects may be used concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"
#include "imaging/image.h"

namespace fswap {

struct Rational {
  int num = 0, den = 1;
  double value() const { return den ? static_cast<double>(num) / den : 0.0; }
};

struct VideoInfo {
  int width = 0, height = 0;       // after rotation (what frames carry)
  Rational time_base;              // unit of VideoFrame::pts
  Rational frame_rate;             // average frame rate (nominal for VFR input)
  std::int64_t frame_count = 0;    // from the container when known, else estimated from duration
  double duration_s = 0;           // video stream duration
  int rotation_degrees = 0;        // 0, 90, 180, 270 (clockwise display rotation applied on decode)
  bool has_audio = false;
  std::string video_codec;         // e.g. "h264"
  std::string audio_codec;         // empty when there is no audio
};

struct VideoFrame {
  Image image;             // RGB
  std::int64_t pts = 0;    // presentation time in VideoInfo::time_base
  std::int64_t index = 0;  // 0-based decode order index
};

class VideoReader {
 public:
  // Errors name the path: missing file (kNotFound), not a video / corrupt (kInvalidInput).
  static Result<std::unique_ptr<VideoReader>> open(const std::string& path);
  virtual ~VideoReader() = default;
  virtual const VideoInfo& info() const = 0;
  // Decodes the next frame into `frame`; false at the end of the stream. A truncated or corrupt
  // stream after some frames ends the stream early (logged) rather than failing.
  virtual Result<bool> read(VideoFrame& frame) = 0;
};

struct EncodeOptions {
  std::string codec = "libx264";   // libx264 (H.264, yuv420p)
  int crf = 18;                    // 0..51
  std::string preset = "veryfast"; // x264 preset
  int threads = 0;                 // 0 = FFmpeg's choice
};

// Where the output's audio comes from: the audio stream of `path` (the target), limited to
// [start_s, end_s) of its timeline and shifted so start_s becomes 0. Empty path = no audio.
struct AudioSource {
  std::string path;
  double start_s = 0;
  double end_s = -1;  // < 0: to the end
};

class VideoWriter {
 public:
  // Container from the extension (.mp4, .mkv, .mov). Frames are written to a temporary file in
  // the output's directory; finish() renames it onto `path`. Destroying an unfinished writer
  // removes the temporary file, so a failed run leaves nothing at `path`.
  // Audio is stream-copied when the container accepts the codec, else re-encoded to AAC.
  static Result<std::unique_ptr<VideoWriter>> open(const std::string& path, const VideoInfo& video,
                                                   const EncodeOptions& options, const AudioSource& audio);
  virtual ~VideoWriter() = default;
  // Frames in presentation order with strictly increasing pts (in video.time_base); size must
  // match video.width × video.height. yuv420p needs even sizes: odd ones are padded by one
  // repeated row/column.
  virtual Status write(const VideoFrame& frame) = 0;
  virtual Status finish() = 0;
};

// Still images (PNG, JPEG, WebP, BMP… anything FFmpeg decodes), returned as upright RGB.
Result<Image> read_image(const std::string& path);
// Format from the extension: .png, .jpg/.jpeg, .webp. quality 0..100 (JPEG/WebP).
// Written to a temporary file and renamed, like videos.
Status write_image(const std::string& path, const Image& image, int quality = 90);

enum class MediaKind { kImage, kVideo };
// Probes the file's content (not its name): image or video; errors name the file and reason.
Result<MediaKind> probe_media(const std::string& path);

}  // namespace fswap
