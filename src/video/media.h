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
// FFmpeg's own log output is routed to log_debug (warnings and errors only).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
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
  std::int64_t frame_count = 0;    // from the container when known, else duration × frame_rate (estimate)
  double duration_s = 0;           // video stream duration
  int rotation_degrees = 0;        // 0, 90, 180, 270 (clockwise display rotation applied on decode;
                                   // flips in the display matrix are ignored)
  bool has_audio = false;
  std::string video_codec;         // e.g. "h264"
  std::string audio_codec;         // empty when there is no audio
  bool gpu_decoding = false;       // frames come from NVDEC (DecodeOptions::kCuda took effect)
};

struct VideoFrame {
  Image image;             // RGB
  std::int64_t pts = 0;    // presentation time in VideoInfo::time_base (best-effort; need not start at 0)
  std::int64_t index = 0;  // 0-based decode order index
  // --output-video-fps: the writer will not show this frame (OutputTicks::shown), so the face
  // work skips it, as FaceFusion processes only the frames at the output rate.
  bool dropped = false;
};

// How VideoReader decodes. kCuda: NVDEC, through FFmpeg's CUDA hardware decoding on GPU
// `cuda_device` (the decoded NV12 surfaces are copied to host memory and converted as on the CPU
// path, so frames are identical); where this FFmpeg build, the machine or the codec lacks it, the
// CPU decoder instead, said once in the debug log and in VideoInfo::gpu_decoding.
struct DecodeOptions {
  enum class Hw { kNone, kCuda };
  Hw hw = Hw::kNone;
  int cuda_device = 0;
};

class VideoReader {
 public:
  // Anything FFmpeg demuxes; the best video stream is decoded (threaded). A still image opens as a
  // one-frame video. Errors name the path: missing file (kNotFound, "<path>: no such file"),
  // not a media file / no video stream (kInvalidInput), no decoder in this build (kUnsupported).
  static Result<std::unique_ptr<VideoReader>> open(const std::string& path, const DecodeOptions& options = {});
  virtual ~VideoReader() = default;
  virtual const VideoInfo& info() const = 0;
  // Decodes the next frame into `frame` (its image buffer is reused when the size matches);
  // false at the end of the stream, and on every call after that. A truncated or corrupt stream
  // ends early (a warning is logged) rather than failing; corrupt packets are skipped.
  virtual Result<bool> read(VideoFrame& frame) = 0;
  // Decodes the next frame like read() but does not convert it: sets frame.pts and frame.index
  // and leaves frame.image alone. For passing over frames cheaply (a resumed job's finished
  // segments); the frames after it read exactly as without the skip.
  virtual Result<bool> skip(VideoFrame& frame) = 0;
  // Positions a reader that has read nothing yet so that the next read() or skip() returns frame
  // `frame` (0-based, as read() counts) with the pixels, pts and index a read from the start
  // gives. The frame's pts is found by demuxing the stream's packets once (no decoding: the
  // frame-th smallest packet pts); then the reader seeks to the key frame at or before it and
  // decodes (without converting) up to it. Errors leave the reader unusable: kUnsupported when
  // a packet has no timestamp, two share one, the seek fails or lands elsewhere; kInvalidInput
  // when the stream has no such frame. The caller then opens a new reader and skips instead.
  virtual Status seek(std::int64_t frame) = 0;
};

struct EncodeOptions {
  std::string codec = "libx264";   // libx264 (H.264, yuv420p)
  int crf = 18;                    // 0..51
  std::string preset = "veryfast"; // x264 preset
  int threads = 0;                 // 0 = FFmpeg's choice
  // --output-video-scale (0.25..8): the output is scaled_video_size(frame size, scale), the
  // frames resized (swscale bicubic) in the writer's one RGB → YUV conversion. 1: the frames'
  // own size, odd sizes padded as VideoWriter::write says.
  double scale = 1.0;
  // --output-video-fps: the output's frame rate; {0, 1} keeps the frames' timestamps. Otherwise
  // frames are dropped or repeated as FFmpeg's fps filter does: each frame's time from the first
  // frame, rounded to the nearest output tick (halves away from zero), and a tick shows the last
  // frame at or before it; the video ends at the last frame's time plus one input frame
  // (1 / VideoInfo::frame_rate), rounded alike. Audio keeps its timing.
  Rational frame_rate;
  // With frame_rate, for a writer making one piece of a longer video (a segment of a segmented
  // run): the pts of the whole video's first frame, in the frames' clock (≤ the piece's first
  // frame's; −(the piece's start) when its frames' pts start at 0). Output ticks count from it,
  // so the pieces show the frames one writer of the whole video shows; the piece's first frame
  // fills the ticks from its own tick on, and VideoWriter::finish_at says where the piece ends.
  // The file's first frame keeps its own pts in ticks (0 for pieces whose pts start at 0), the
  // next ones one tick apart. Unset: ticks count from the first frame written. Ignored without
  // frame_rate.
  std::optional<std::int64_t> tick_origin;
};

// --output-video-fps's choice of frames, as the VideoWriter makes it: a frame's output tick is its
// time from the first frame (pts_from_first, in the frames' time base) rounded to the nearest tick
// of out_rate (halves away from zero); a tick shows the last frame at or before it, and the video
// ends one input frame after the last (at least one tick). So a frame is shown when the next
// frame's tick, or the end for the last frame, comes after its own.
class OutputTicks {
 public:
  // The frames' time base and rate from `video` (1/30 s when unset, as the writer takes them).
  OutputTicks(const VideoInfo& video, Rational out_rate);
  std::int64_t tick(std::int64_t pts_from_first) const;
  std::int64_t end_tick(std::int64_t last_pts_from_first) const;
  bool shown(std::int64_t pts_from_first, std::int64_t next_pts_from_first) const {
    return tick(next_pts_from_first) > tick(pts_from_first);
  }
  bool last_shown(std::int64_t pts_from_first) const { return end_tick(pts_from_first) > tick(pts_from_first); }

 private:
  Rational in_time_base_, in_frame_rate_, out_rate_;
};

// The output size along one side for --output-video-scale: size × scale rounded to the nearest
// even number (halves up), at least 2 (yuv420p needs even sizes). 255 × 1 → 256, 256 × 0.5 → 128,
// 100 × 0.25 → 26 (25 is halfway between 24 and 26), 3 × 0.25 → 2.
int scaled_video_size(int size, double scale);
// A frame rate given as a decimal (--output-video-fps 29.97) as a Rational to 1/1000 s
// (29.97 → 29970/1000); {0, 1} (keep the frames' rate) when fps <= 0.
Rational frame_rate_from_fps(double fps);

// Where the output's audio comes from: the best audio stream of `path` (the target), limited to
// [start_s, end_s) of its timeline (the stream's own timestamps, in seconds) and shifted so
// start_s becomes 0. Empty path = no audio; a file without an audio stream gives a silent output.
// A stream copy cuts at packet boundaries (one codec frame, ~20-40 ms); a re-encode cuts at samples.
struct AudioSource {
  std::string path;
  double start_s = 0;
  double end_s = -1;  // < 0: to the end
  // --output-audio-volume 0..100: 0 = no audio (a silent output); below 100 the samples are
  // multiplied by volume / 100 (FFmpeg's volume filter, linear gain), which re-encodes the audio
  // to AAC instead of copying the stream.
  int volume = 100;
  // --output-audio-quality 0..100, used only when the audio is re-encoded: AAC's variable-rate
  // quality q:a = 0.1 + quality × 0.019, rounded to 0.1 (FaceFusion's mapping, 0.1..2.0).
  // -1: a constant 96 kb/s per channel (at most 512 kb/s).
  int quality = -1;
};

class VideoWriter {
 public:
  // Container from the extension (.mp4, .mkv, .mov; else kInvalidInput). The output directory
  // must exist (else kInvalidInput naming it). Frames are written to a temporary file
  // "<dir>/.<stem>.part-<pid>.<ext>"; finish() renames it onto `path`. Destroying an unfinished
  // writer removes the temporary file, so a failed run leaves nothing at `path`.
  // Video: options.codec (libx264: yuv420p, crf/preset), tagged BT.709 for height >= 720, else
  // BT.601; encoder time base = video.time_base, avg_frame_rate = video.frame_rate.
  // Timestamps are exact in seconds; the container may store them in a finer time base (MP4/MOV
  // raise time bases coarser than 1/10000, e.g. 1/30 → 1/15360) or in milliseconds (MKV).
  // Audio is stream-copied when the container accepts the codec and its volume is 100, else
  // re-encoded to AAC, and is interleaved as frames arrive (memory does not grow with the clip's length).
  // options.scale sets the encoded size and options.frame_rate the output's rate (then the
  // encoder's time base is 1 / frame_rate); frames are still written at video's size and time base.
  static Result<std::unique_ptr<VideoWriter>> open(const std::string& path, const VideoInfo& video,
                                                   const EncodeOptions& options, const AudioSource& audio);
  virtual ~VideoWriter() = default;
  // Frames in presentation order with strictly increasing pts (in video.time_base); size must
  // match video.width × video.height (else kInvalidInput). yuv420p needs even sizes: odd ones are
  // padded by one repeated row/column, so the file is one pixel wider/taller.
  virtual Status write(const VideoFrame& frame) = 0;
  // Flushes the encoder, writes the remaining audio, closes the file and renames it into place.
  virtual Status finish() = 0;
  // finish() for a piece of a longer video at EncodeOptions::frame_rate (EncodeOptions::tick_origin):
  // the video ends at end_pts (the frames' clock: the next piece's first frame) instead of one
  // input frame after the last, so the last frame fills the ticks before end_pts's. A piece may
  // show no frame: its file then has a video stream without frames (VideoReader refuses it; the
  // segment join passes over it). end_pts must come after the last frame's pts (else
  // kInvalidInput). Without frame_rate, the same as finish().
  virtual Status finish_at(std::int64_t end_pts) = 0;
};

// Still images (PNG, JPEG, WebP, BMP… anything FFmpeg decodes), returned as upright RGB (EXIF
// orientation applied; alpha dropped). A video gives its first frame.
Result<Image> read_image(const std::string& path);
// Format from the extension: .png, .jpg/.jpeg, .webp, .bmp (else kInvalidInput). quality 0..100
// (JPEG: 4:4:4 from 90 up, WebP: lossless at 100). Written to a temporary file and renamed.
Status write_image(const std::string& path, const Image& image, int quality = 90);

enum class MediaKind { kImage, kVideo };
// Probes the file's content (not its name): image (image2/*_pipe demuxers, or a single frame of a
// still-image codec) or video; errors name the file and reason, like VideoReader::open.
Result<MediaKind> probe_media(const std::string& path);

}  // namespace fswap
