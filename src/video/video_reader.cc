// VideoReader on libavformat/libavcodec: best video stream, threaded decode (or NVDEC), RGB24 via
// swscale, display-matrix rotation applied, pts kept in the stream's time base.
extern "C" {
#include <libavutil/hwcontext.h>
}

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/log.h"
#include "core/parallel.h"
#include "video/ffmpeg_util.h"
#include "video/media.h"

namespace fswap {
namespace {

using namespace ffmpeg;

struct BufferRefDeleter {
  void operator()(AVBufferRef* b) const { av_buffer_unref(&b); }
};
using BufferRefPtr = std::unique_ptr<AVBufferRef, BufferRefDeleter>;

// A CUDA device for NVDEC on the device's primary context (the one the CUDA runtime and so the
// native engine use); null, with the reason logged, where FFmpeg or the machine has none.
BufferRefPtr open_cuda_device(const std::string& path, int device) {
  AVDictionary* options = nullptr;
  av_dict_set(&options, "primary_ctx", "1", 0);
  AVBufferRef* ctx = nullptr;
  const int err = av_hwdevice_ctx_create(&ctx, AV_HWDEVICE_TYPE_CUDA, std::to_string(device).c_str(), options, 0);
  av_dict_free(&options);
  if (err < 0) {
    log_debug(path + ": no NVDEC on CUDA device " + std::to_string(device) + " (" + error_text(err) +
              "); decoding on the CPU");
    return nullptr;
  }
  return BufferRefPtr(ctx);
}

// NV12 (NVDEC's 8-bit output) → yuv420p with the same samples, and the frame's colour properties:
// the CPU decoders' format, so an NVDEC frame converts to RGB exactly as theirs (swscale's NV12
// path filters chroma differently) and in parallel bands (BandedScaler).
Status deinterleave_nv12(const AVFrame* nv12, AVFrame* yuv, const std::string& path) {
  if (yuv->width != nv12->width || yuv->height != nv12->height || yuv->format != AV_PIX_FMT_YUV420P) {
    av_frame_unref(yuv);
    yuv->format = AV_PIX_FMT_YUV420P;
    yuv->width = nv12->width;
    yuv->height = nv12->height;
    if (av_frame_get_buffer(yuv, 0) < 0) return out_of_memory(path + ": cannot allocate a yuv420p frame");
  }
  const int w = nv12->width, h = nv12->height, cw = (w + 1) / 2, ch = (h + 1) / 2;
  parallel_for(h, [&](int y0, int y1) {
    for (int y = y0; y < y1; ++y)
      std::memcpy(yuv->data[0] + static_cast<std::ptrdiff_t>(y) * yuv->linesize[0],
                  nv12->data[0] + static_cast<std::ptrdiff_t>(y) * nv12->linesize[0], static_cast<std::size_t>(w));
  }, 64);
  parallel_for(ch, [&](int y0, int y1) {
    for (int y = y0; y < y1; ++y) {
      const std::uint8_t* uv = nv12->data[1] + static_cast<std::ptrdiff_t>(y) * nv12->linesize[1];
      std::uint8_t* u = yuv->data[1] + static_cast<std::ptrdiff_t>(y) * yuv->linesize[1];
      std::uint8_t* v = yuv->data[2] + static_cast<std::ptrdiff_t>(y) * yuv->linesize[2];
      for (int x = 0; x < cw; ++x) u[x] = uv[2 * x], v[x] = uv[2 * x + 1];
    }
  }, 32);
  av_frame_copy_props(yuv, nv12);
  yuv->color_range = nv12->color_range;
  yuv->colorspace = nv12->colorspace;
  yuv->color_trc = nv12->color_trc;
  yuv->color_primaries = nv12->color_primaries;
  return Status::ok();
}

// Whether the decoder for `codec_id` in this FFmpeg build has a CUDA hwaccel (NVDEC).
bool has_cuda_hwaccel(AVCodecID codec_id) {
  const AVCodec* codec = avcodec_find_decoder(codec_id);
  for (int i = 0; codec; ++i) {
    const AVCodecHWConfig* config = avcodec_get_hw_config(codec, i);
    if (!config) return false;
    if (config->device_type == AV_HWDEVICE_TYPE_CUDA && (config->methods & AV_CODEC_HW_CONFIG_METHOD_HW_DEVICE_CTX))
      return true;
  }
  return false;
}

class FfmpegVideoReader final : public VideoReader {
 public:
  FfmpegVideoReader(std::string path, InputFormatPtr fmt, CodecContextPtr dec, int stream_index, VideoInfo info)
      : path_(std::move(path)),
        fmt_(std::move(fmt)),
        dec_(std::move(dec)),
        stream_index_(stream_index),
        info_(std::move(info)),
        packet_(make_packet()),
        frame_(make_frame()) {}

  bool allocated() const { return packet_ && frame_; }
  const VideoInfo& info() const override { return info_; }
  Result<bool> read(VideoFrame& frame) override { return next(frame, /*convert=*/true); }
  Result<bool> skip(VideoFrame& frame) override { return next(frame, /*convert=*/false); }
  Status seek(std::int64_t frame) override;

 private:
  Result<bool> next(VideoFrame& frame, bool convert);
  // Fills frame_ with the next decoded frame (or hands back the one seek() held); false at the end.
  Result<bool> decode_next();
  // The pts of frame `frame`: the frame-th smallest pts among the stream's packets.
  Result<std::int64_t> frame_timestamp(std::int64_t frame) const;
  // Feeds the decoder one packet of our stream; false once the input is exhausted (or broken).
  bool feed_decoder();
  Status convert(VideoFrame& out);
  void stamp(VideoFrame& out);  // pts and index

  std::string path_;
  InputFormatPtr fmt_;
  CodecContextPtr dec_;
  int stream_index_;
  VideoInfo info_;
  PacketPtr packet_;
  FramePtr frame_;
  FrameToRgb to_rgb_;
  FramePtr host_;              // an NVDEC frame copied to host memory (NV12)
  FramePtr planar_;            // host_ as yuv420p
  Image rgb_;                  // pre-rotation scratch
  bool draining_ = false;
  bool ended_ = false;
  bool held_ = false;  // frame_ holds the frame seek() landed on, not yet returned
  std::int64_t next_index_ = 0;
  std::int64_t last_pts_ = AV_NOPTS_VALUE;
  int decode_errors_ = 0;
};

bool FfmpegVideoReader::feed_decoder() {
  while (true) {
    int err = av_read_frame(fmt_.get(), packet_.get());
    if (err < 0) {
      if (err != AVERROR_EOF) {
        log_warn(path_ + ": stopped reading at a damaged or truncated part (" + error_text(err) +
                 "); keeping the frames decoded so far");
      }
      return false;
    }
    if (packet_->stream_index != stream_index_) {
      av_packet_unref(packet_.get());
      continue;
    }
    err = avcodec_send_packet(dec_.get(), packet_.get());
    av_packet_unref(packet_.get());
    if (err < 0 && err != AVERROR(EAGAIN)) {
      // A corrupt packet: skip it, the decoder resynchronises on the next keyframe.
      if (decode_errors_++ == 0) log_warn(path_ + ": skipping a corrupt packet (" + error_text(err) + ")");
    }
    return true;
  }
}

Result<bool> FfmpegVideoReader::next(VideoFrame& frame, bool convert_image) {
  FSWAP_ASSIGN_OR_RETURN(bool got, decode_next());
  if (!got) return false;
  Status s = convert_image ? convert(frame) : Status::ok();
  stamp(frame);
  av_frame_unref(frame_.get());
  if (!s.is_ok()) return s;
  return true;
}

Result<bool> FfmpegVideoReader::decode_next() {
  if (held_) {
    held_ = false;
    return true;
  }
  if (ended_) return false;
  while (true) {
    int err = avcodec_receive_frame(dec_.get(), frame_.get());
    if (err == 0) return true;
    if (err == AVERROR_EOF) {
      ended_ = true;
      if (info_.frame_count > 0 && next_index_ < info_.frame_count * 9 / 10) {
        log_warn(path_ + ": ended after " + std::to_string(next_index_) + " of " +
                 std::to_string(info_.frame_count) + " frames (truncated file?)");
      }
      return false;
    }
    if (err != AVERROR(EAGAIN)) {
      if (decode_errors_++ == 0) log_warn(path_ + ": decoder error (" + error_text(err) + "); skipping");
      if (draining_) {  // nothing more to come
        ended_ = true;
        return false;
      }
    }
    if (draining_) continue;
    if (!feed_decoder()) {
      draining_ = true;
      avcodec_send_packet(dec_.get(), nullptr);  // enter draining mode: flush buffered frames
    }
  }
}

Status FfmpegVideoReader::convert(VideoFrame& out) {
  const AVFrame* decoded = frame_.get();
  if (decoded->format == AV_PIX_FMT_CUDA) {
    if (!host_ && !(host_ = make_frame())) return out_of_memory(path_ + ": cannot allocate a frame");
    av_frame_unref(host_.get());
    const int err = av_hwframe_transfer_data(host_.get(), decoded, 0);
    if (err < 0) return error_status(StatusCode::kInternal, path_, "cannot copy an NVDEC frame to the host", err);
    av_frame_copy_props(host_.get(), decoded);
    decoded = host_.get();
    if (decoded->format == AV_PIX_FMT_NV12) {
      if (!planar_ && !(planar_ = make_frame())) return out_of_memory(path_ + ": cannot allocate a frame");
      FSWAP_RETURN_IF_ERROR(deinterleave_nv12(decoded, planar_.get(), path_));
      decoded = planar_.get();
    }
  }
  Image& target = info_.rotation_degrees == 0 ? out.image : rgb_;
  FSWAP_RETURN_IF_ERROR(to_rgb_.convert(decoded, target, path_));
  if (info_.rotation_degrees != 0) rotate_image(rgb_, info_.rotation_degrees, out.image);
  return Status::ok();
}

Result<std::int64_t> FfmpegVideoReader::frame_timestamp(std::int64_t frame) const {
  FSWAP_ASSIGN_OR_RETURN(InputFormatPtr scan, open_input(path_));
  for (unsigned i = 0; i < scan->nb_streams; ++i) {
    if (static_cast<int>(i) != stream_index_) scan->streams[i]->discard = AVDISCARD_ALL;
  }
  PacketPtr packet = make_packet();
  if (!packet) return out_of_memory(path_ + ": cannot allocate a packet");
  std::vector<std::int64_t> pts;
  while (av_read_frame(scan.get(), packet.get()) >= 0) {
    const bool ours = packet->stream_index == stream_index_;
    const std::int64_t ts = packet->pts;
    av_packet_unref(packet.get());
    if (!ours) continue;
    if (ts == AV_NOPTS_VALUE) return unsupported(path_ + ": a video packet has no timestamp; cannot seek by frame");
    pts.push_back(ts);
  }
  std::sort(pts.begin(), pts.end());
  if (std::adjacent_find(pts.begin(), pts.end()) != pts.end())
    return unsupported(path_ + ": two video packets share a timestamp; cannot seek by frame");
  if (frame < 0 || frame >= static_cast<std::int64_t>(pts.size()))
    return invalid_input(path_ + ": no frame " + std::to_string(frame) + " (" + std::to_string(pts.size()) +
                         " frames)");
  return pts[static_cast<std::size_t>(frame)];
}

Status FfmpegVideoReader::seek(std::int64_t frame) {
  if (next_index_ != 0 || held_ || ended_) return internal_error(path_ + ": seek() after reading");
  if (frame == 0) return Status::ok();
  FSWAP_ASSIGN_OR_RETURN(std::int64_t target, frame_timestamp(frame));
  int err = av_seek_frame(fmt_.get(), stream_index_, target, AVSEEK_FLAG_BACKWARD);
  if (err < 0) {
    return error_status(StatusCode::kUnsupported, path_, "cannot seek to frame " + std::to_string(frame), err);
  }
  avcodec_flush_buffers(dec_.get());
  while (true) {
    FSWAP_ASSIGN_OR_RETURN(bool got, decode_next());
    const std::int64_t pts = got ? frame_->best_effort_timestamp : AV_NOPTS_VALUE;
    if (got && pts != AV_NOPTS_VALUE && pts < target) {
      av_frame_unref(frame_.get());
      continue;
    }
    if (pts != target) {
      return unsupported(path_ + ": seeking to frame " + std::to_string(frame) + " did not land on its timestamp");
    }
    held_ = true;
    next_index_ = frame;
    return Status::ok();
  }
}

void FfmpegVideoReader::stamp(VideoFrame& out) {
  std::int64_t pts = frame_->best_effort_timestamp;
  if (pts == AV_NOPTS_VALUE) {
    // No timestamp at all: continue from the last one by the nominal frame duration.
    std::int64_t step = 1;
    if (info_.frame_rate.num > 0 && info_.time_base.num > 0) {
      step = std::max<std::int64_t>(1, av_rescale_q(1, AVRational{info_.frame_rate.den, info_.frame_rate.num},
                                                    AVRational{info_.time_base.num, info_.time_base.den}));
    }
    pts = last_pts_ == AV_NOPTS_VALUE ? 0 : last_pts_ + step;
  }
  last_pts_ = pts;
  out.pts = pts;
  out.index = next_index_++;
}

}  // namespace

Result<std::unique_ptr<VideoReader>> VideoReader::open(const std::string& path, const DecodeOptions& options) {
  FSWAP_ASSIGN_OR_RETURN(InputFormatPtr fmt, open_input(path));
  int index = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (index < 0) {
    if (index == AVERROR_DECODER_NOT_FOUND) return unsupported(path + ": no decoder for its video stream");
    return invalid_input(path + ": no video stream (format " + fmt->iformat->name + ")");
  }
  AVStream* st = fmt->streams[index];
  int audio = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_AUDIO, -1, index, nullptr, 0);
  if (audio < 0) audio = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
  // Everything else is skipped by the demuxer rather than read and dropped.
  for (unsigned i = 0; i < fmt->nb_streams; ++i) {
    if (static_cast<int>(i) != index) fmt->streams[i]->discard = AVDISCARD_ALL;
  }
  BufferRefPtr cuda;
  if (options.hw == DecodeOptions::Hw::kCuda) {
    if (has_cuda_hwaccel(st->codecpar->codec_id)) {
      cuda = open_cuda_device(path, options.cuda_device);
    } else {
      log_debug(path + ": this FFmpeg has no NVDEC for " + avcodec_get_name(st->codecpar->codec_id) +
                "; decoding on the CPU");
    }
  }
  FSWAP_ASSIGN_OR_RETURN(CodecContextPtr dec, open_decoder(path, st, 0, cuda.get()));

  VideoInfo info;
  info.rotation_degrees = stream_rotation_degrees(st);
  const bool swap = info.rotation_degrees == 90 || info.rotation_degrees == 270;
  info.width = swap ? dec->height : dec->width;
  info.height = swap ? dec->width : dec->height;
  if (info.width <= 0 || info.height <= 0) return invalid_input(path + ": the video stream has no frame size");
  info.time_base = {st->time_base.num, st->time_base.den};
  AVRational rate = st->avg_frame_rate;
  if (rate.num <= 0 || rate.den <= 0) rate = av_guess_frame_rate(fmt.get(), st, nullptr);
  if (rate.num > 0 && rate.den > 0) info.frame_rate = {rate.num, rate.den};
  if (st->duration != AV_NOPTS_VALUE && st->duration > 0) {
    info.duration_s = static_cast<double>(st->duration) * av_q2d(st->time_base);
  } else if (fmt->duration != AV_NOPTS_VALUE && fmt->duration > 0) {
    info.duration_s = static_cast<double>(fmt->duration) / AV_TIME_BASE;
  }
  if (st->nb_frames > 0) {
    info.frame_count = st->nb_frames;
  } else if (info.duration_s > 0 && info.frame_rate.num > 0) {
    info.frame_count = std::llround(info.duration_s * info.frame_rate.value());
  }
  info.video_codec = avcodec_get_name(st->codecpar->codec_id);
  info.gpu_decoding = cuda != nullptr;
  if (audio >= 0) {
    info.has_audio = true;
    info.audio_codec = avcodec_get_name(fmt->streams[audio]->codecpar->codec_id);
  }

  auto reader = std::make_unique<FfmpegVideoReader>(path, std::move(fmt), std::move(dec), index, std::move(info));
  if (!reader->allocated()) return out_of_memory(path + ": cannot allocate decoder buffers");
  return std::unique_ptr<VideoReader>(std::move(reader));
}

}  // namespace fswap
