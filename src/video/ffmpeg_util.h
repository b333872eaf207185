// Internal to the video layer: RAII owners for FFmpeg handles and error helpers.
// Not part of the public contract (media.h); include only from src/video/*.cc.
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/frame.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "imaging/image.h"
#include "video/tone_map.h"

namespace fswap::ffmpeg {

// Input contexts are closed with avformat_close_input; output contexts (which own their AVIOContext
// only after avio_open) are freed with avformat_free_context after closing the AVIOContext.
struct InputFormatDeleter {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
struct OutputFormatDeleter {
  void operator()(AVFormatContext* c) const;
};
struct CodecContextDeleter {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameDeleter {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsDeleter {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
struct SwrDeleter {
  void operator()(SwrContext* s) const { swr_free(&s); }
};

using InputFormatPtr = std::unique_ptr<AVFormatContext, InputFormatDeleter>;
using OutputFormatPtr = std::unique_ptr<AVFormatContext, OutputFormatDeleter>;
using CodecContextPtr = std::unique_ptr<AVCodecContext, CodecContextDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using SwsPtr = std::unique_ptr<SwsContext, SwsDeleter>;
using SwrPtr = std::unique_ptr<SwrContext, SwrDeleter>;

// swscale flags for every same-size colour conversion. Plain bicubic selects swscale's unscaled
// converters (box-filtered chroma down, replicated chroma up): measured on testsrc2, one
// RGB→yuv420p→RGB generation keeps 40.5 dB where ACCURATE_RND/FULL_CHR_H_* give 25–33 dB,
// and it decodes like the ffmpeg CLI. Colour matrix and range are still set explicitly.
constexpr int kSwsFlags = SWS_BICUBIC;

// A new frame/packet; null when allocation fails (callers return out_of_memory).
FramePtr make_frame();
PacketPtr make_packet();

// av_strerror text for an FFmpeg error code.
std::string error_text(int errnum);
// "<path>: <what> (<av_strerror>)" as a Status with `code`.
Status error_status(StatusCode code, const std::string& path, const std::string& what, int errnum);

// Routes FFmpeg's own log output to fswap's log_debug (once per process). Call before using FFmpeg.
void init_logging();

// Opens `path` for demuxing and reads stream info. Missing file → kNotFound "<path>: no such file";
// anything FFmpeg cannot open or parse → kInvalidInput naming the path and FFmpeg's reason.
Result<InputFormatPtr> open_input(const std::string& path);

// Opens a decoder for `stream` (thread count chosen by FFmpeg when `threads` is 0). With
// `hw_device` (an AV_HWDEVICE_TYPE_CUDA device), the decoder outputs AV_PIX_FMT_CUDA frames where
// its hwaccel takes the stream, else software frames.
Result<CodecContextPtr> open_decoder(const std::string& path, const AVStream* stream, int threads,
                                     AVBufferRef* hw_device = nullptr);

// The clockwise display rotation of a stream (0, 90, 180, 270) from its display matrix side data.
int stream_rotation_degrees(const AVStream* stream);

// Same-size colour conversion split into horizontal bands converted in parallel (parallel_for),
// one swscale context per band, where the result equals a single sws_scale of the whole frame
// byte for byte: yuv420p (and yuvj420p) → rgb24 at even heights, what decoding most video needs,
// and rgb24 → yuv420p at even sizes, what encoding needs (each ~10 ms a 4K frame on one core).
// Any other conversion runs as one band. Not thread-safe.
class BandedScaler {
 public:
  // Prepares w × h `from` → `to` with swscale's colourspace details (sws_setColorspaceDetails);
  // keeps the contexts when nothing changed. kUnsupported when swscale cannot convert the pair.
  Status configure(int w, int h, AVPixelFormat from, AVPixelFormat to, const int* from_coeffs, int from_full,
                   const int* to_coeffs, int to_full);
  // Converts the whole frame: planes and strides as sws_scale takes them.
  void scale(const uint8_t* const src[], const int src_stride[], uint8_t* const dst[], const int dst_stride[]) const;

 private:
  struct Band {
    int y0 = 0, rows = 0;  // the frame rows it gives
    int from_y = 0;        // the first row it converts (y0 less its context rows)
    SwsPtr sws;
    FramePtr scratch;      // its converted rows, context included; null when it has none
  };
  struct Key {
    int w = 0, h = 0;
    AVPixelFormat from = AV_PIX_FMT_NONE, to = AV_PIX_FMT_NONE;
    const int* from_coeffs = nullptr;
    int from_full = 0;
    const int* to_coeffs = nullptr;
    int to_full = 0;
    bool operator==(const Key&) const = default;
  };
  Key key_;
  std::vector<Band> bands_;
};

// Converts decoded frames of any pixel format into tightly packed RGB24 Images, honouring each
// frame's colour matrix and range. swscale converts into an aligned frame first (its SIMD
// converters mishandle tight, unaligned rows), then rows are copied out. HDR frames (PQ or HLG
// transfer) are tone-mapped to BT.709 SDR (video/tone_map.h) on the way. Not thread-safe.
class FrameToRgb {
 public:
  Status convert(const AVFrame* frame, Image& dst, const std::string& path);

 private:
  BandedScaler scaler_;
  FramePtr rgb_;
  std::unique_ptr<HdrToSdr> tone_;  // built on the first HDR frame
  HdrTransfer tone_transfer_ = HdrTransfer::kPq;
};

// Copies `img` (RGB) into `rgb`, an allocated RGB24 frame at least as large, repeating the last
// column and row into any extra width/height (how odd sizes are padded to even).
void copy_into_frame(const Image& img, AVFrame* rgb);

// Rotates `src` clockwise by 0/90/180/270 degrees into `dst` (resized as needed).
void rotate_image(const Image& src, int clockwise_degrees, Image& dst);

// Lower-case extension of `path` without the dot ("mp4"); empty when there is none.
std::string lower_extension(const std::string& path);

// The muxer for a video output's extension (mp4/m4v, mkv, mov); nullptr for any other.
const char* muxer_for_extension(const std::string& ext);

// "<dir>/.<stem>.part-<pid>.<ext>": a temporary sibling of `path` with the same extension.
std::string temporary_path_for(const std::string& path);

// The directory that will hold `path`; kInvalidInput naming it when it does not exist.
Status check_output_directory(const std::string& path);

}  // namespace fswap::ffmpeg
