// VideoWriter on libavformat/libavcodec: RGB frames → yuv420p → libx264 (or another encoder),
// pts passed through in the input's time base (or resampled to EncodeOptions::frame_rate), audio
// interleaved from an AudioSource, written to a temporary sibling file that finish() renames onto
// the output path.
extern "C" {
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
}

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>
#include <system_error>

#include "core/log.h"
#include "video/audio_pump.h"
#include "video/ffmpeg_util.h"
#include "video/media.h"

namespace fswap {
namespace {

using namespace ffmpeg;
namespace fs = std::filesystem;

// The frames' rate and time base as the writer takes them: 30 fps when unset, 1 / rate.
AVRational frames_rate(const VideoInfo& video) {
  const AVRational rate{video.frame_rate.num, video.frame_rate.den};
  return rate.num > 0 && rate.den > 0 ? rate : AVRational{30, 1};
}
AVRational frames_time_base(const VideoInfo& video) {
  const AVRational tb{video.time_base.num, video.time_base.den};
  return tb.num > 0 && tb.den > 0 ? tb : av_inv_q(frames_rate(video));
}

class FfmpegVideoWriter final : public VideoWriter {
 public:
  FfmpegVideoWriter(std::string path, std::string tmp_path, const VideoInfo& info)
      : path_(std::move(path)), tmp_path_(std::move(tmp_path)), info_(info) {}
  ~FfmpegVideoWriter() override;

  Status init(const EncodeOptions& options, const AudioSource& audio);
  Status write(const VideoFrame& frame) override;
  Status finish() override { return finish_until(std::nullopt); }
  Status finish_at(std::int64_t end_pts) override { return finish_until(end_pts); }

 private:
  // Converts frame.image into yuv_ (padded, or resized to the output size).
  Status convert(const VideoFrame& frame);
  // Sends yuv_ to the encoder at `pts` (encoder time base) and writes the packets it gives.
  Status encode(std::int64_t pts);
  // --output-video-fps: sends the held frame for each output tick before `tick`.
  Status encode_held_until(std::int64_t tick);
  Status drain_encoder();
  // Both finishes; end_pts: where the video ends at the output rate (nullopt: one frame after the last).
  Status finish_until(std::optional<std::int64_t> end_pts);

  std::string path_, tmp_path_;
  VideoInfo info_;
  OutputFormatPtr out_;
  CodecContextPtr enc_;
  AVStream* stream_ = nullptr;
  BandedScaler to_yuv_;
  SwsPtr resize_to_yuv_;  // --output-video-scale: frame size RGB → output size YUV; null at scale 1
  FramePtr rgb_;  // aligned RGB copy of the frame, padded to the encoder's even size (at its own size to resize)
  FramePtr yuv_;
  PacketPtr packet_;
  std::unique_ptr<AudioPump> audio_;
  std::int64_t last_pts_ = 0;
  std::int64_t frames_ = 0;  // frames written (input frames)
  std::int64_t encoded_ = 0;  // frames sent to the encoder
  // --output-video-fps: ticks of the output rate (the encoder's time base) from the origin;
  // yuv_ holds the last frame written until the next one shows which ticks it covers.
  std::optional<OutputTicks> ticks_;
  std::optional<std::int64_t> tick_origin_;  // EncodeOptions::tick_origin
  std::int64_t origin_pts_ = 0;  // where ticks count from (input time base): tick_origin_, else the first frame
  std::int64_t pts_shift_ = 0;   // output pts − tick: the first frame's output pts is its own time in ticks
  std::int64_t next_tick_ = 0;   // the next output tick to fill
  bool file_opened_ = false;
  bool finished_ = false;
  bool failed_ = false;
};

FfmpegVideoWriter::~FfmpegVideoWriter() {
  if (finished_) return;
  audio_.reset();
  out_.reset();  // closes the temporary file before removing it
  if (file_opened_) {
    std::error_code ec;
    fs::remove(tmp_path_, ec);
  }
}

Status FfmpegVideoWriter::init(const EncodeOptions& options, const AudioSource& audio) {
  const std::string ext = lower_extension(path_);
  const char* muxer = muxer_for_extension(ext);
  if (muxer == nullptr) {
    return invalid_input(path_ + ": unsupported output extension '." + ext + "' (use .mp4, .mkv or .mov)");
  }
  if (info_.width <= 0 || info_.height <= 0) {
    return invalid_input(path_ + ": bad output size " + std::to_string(info_.width) + "x" + std::to_string(info_.height));
  }
  AVRational tb = frames_time_base(info_);
  AVRational rate = frames_rate(info_);
  if (!(options.scale >= 0.25 && options.scale <= 8.0)) {
    return invalid_input(path_ + ": output video scale " + std::to_string(options.scale) + " is outside 0.25..8");
  }
  if (options.frame_rate.num != 0) {
    if (options.frame_rate.num < 0 || options.frame_rate.den <= 0) {
      return invalid_input(path_ + ": output frame rate " + std::to_string(options.frame_rate.num) + "/" +
                           std::to_string(options.frame_rate.den) + " is not positive");
    }
    av_reduce(&rate.num, &rate.den, options.frame_rate.num, options.frame_rate.den, INT32_MAX);
    tb = av_inv_q(rate);
    ticks_.emplace(info_, Rational{rate.num, rate.den});
    tick_origin_ = options.tick_origin;
  }
  const bool resized = options.scale != 1.0;

  AVFormatContext* raw = nullptr;
  int err = avformat_alloc_output_context2(&raw, nullptr, muxer, tmp_path_.c_str());
  if (err < 0 || raw == nullptr) return error_status(StatusCode::kInternal, path_, "cannot create the muxer", err);
  out_.reset(raw);

  const AVCodec* codec = avcodec_find_encoder_by_name(options.codec.c_str());
  if (codec == nullptr || codec->type != AVMEDIA_TYPE_VIDEO) {
    return unsupported("video encoder '" + options.codec + "' is not in this FFmpeg build");
  }
  if (avformat_query_codec(out_->oformat, codec->id, FF_COMPLIANCE_NORMAL) != 1) {
    return invalid_input(path_ + ": the ." + ext + " container cannot hold " + avcodec_get_name(codec->id) + " video");
  }
  enc_.reset(avcodec_alloc_context3(codec));
  if (!enc_) return out_of_memory(path_ + ": cannot allocate the video encoder");
  enc_->width = resized ? scaled_video_size(info_.width, options.scale) : info_.width + (info_.width & 1);
  enc_->height = resized ? scaled_video_size(info_.height, options.scale) : info_.height + (info_.height & 1);
  enc_->pix_fmt = AV_PIX_FMT_YUV420P;
  if (codec->pix_fmts != nullptr) {
    bool ok = false;
    for (const AVPixelFormat* f = codec->pix_fmts; *f != AV_PIX_FMT_NONE; ++f) ok = ok || *f == AV_PIX_FMT_YUV420P;
    if (!ok) enc_->pix_fmt = codec->pix_fmts[0];
  }
  enc_->time_base = tb;
  enc_->framerate = rate;
  enc_->sample_aspect_ratio = AVRational{1, 1};
  enc_->thread_count = options.threads;
  const bool hd = (resized ? enc_->height : info_.height) >= 720;
  enc_->colorspace = hd ? AVCOL_SPC_BT709 : AVCOL_SPC_SMPTE170M;
  enc_->color_primaries = hd ? AVCOL_PRI_BT709 : AVCOL_PRI_SMPTE170M;
  enc_->color_trc = hd ? AVCOL_TRC_BT709 : AVCOL_TRC_SMPTE170M;
  enc_->color_range = AVCOL_RANGE_MPEG;
  if (out_->oformat->flags & AVFMT_GLOBALHEADER) enc_->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  if (options.crf < 0 || options.crf > 51) return invalid_input("crf " + std::to_string(options.crf) + " is outside 0..51");
  // crf/preset are private options of x264/x265/vpx; encoders without them ignore them.
  av_opt_set_int(enc_->priv_data, "crf", options.crf, 0);
  if (!options.preset.empty()) av_opt_set(enc_->priv_data, "preset", options.preset.c_str(), 0);
  err = avcodec_open2(enc_.get(), codec, nullptr);
  if (err < 0) {
    return error_status(StatusCode::kInvalidInput, path_,
                        "cannot open the " + options.codec + " encoder (preset '" + options.preset + "', " +
                            std::to_string(enc_->width) + "x" + std::to_string(enc_->height) + ")",
                        err);
  }
  stream_ = avformat_new_stream(out_.get(), nullptr);
  if (stream_ == nullptr) return out_of_memory(path_ + ": cannot add a video stream");
  err = avcodec_parameters_from_context(stream_->codecpar, enc_.get());
  if (err < 0) return error_status(StatusCode::kInternal, path_, "cannot set video parameters", err);
  stream_->time_base = tb;
  stream_->avg_frame_rate = rate;

  FSWAP_ASSIGN_OR_RETURN(audio_, AudioPump::open(audio, out_.get(), path_));

  yuv_ = make_frame();
  rgb_ = make_frame();
  packet_ = make_packet();
  if (!yuv_ || !rgb_ || !packet_) return out_of_memory(path_ + ": cannot allocate encoder buffers");
  yuv_->format = enc_->pix_fmt;
  rgb_->format = AV_PIX_FMT_RGB24;
  yuv_->width = enc_->width;
  yuv_->height = enc_->height;
  rgb_->width = resized ? info_.width : enc_->width;  // resized from the frame's size, else padded to the encoder's
  rgb_->height = resized ? info_.height : enc_->height;
  for (AVFrame* f : {yuv_.get(), rgb_.get()}) {
    if (av_frame_get_buffer(f, 0) < 0) return out_of_memory(path_ + ": cannot allocate a frame buffer");
  }
  const int* rgb_coeffs = sws_getCoefficients(SWS_CS_DEFAULT);
  const int* yuv_coeffs = sws_getCoefficients(hd ? SWS_CS_ITU709 : SWS_CS_ITU601);
  const std::string cannot_convert = path_ + ": cannot convert RGB to " + av_get_pix_fmt_name(enc_->pix_fmt);
  if (resized) {
    resize_to_yuv_.reset(sws_getContext(info_.width, info_.height, AV_PIX_FMT_RGB24, enc_->width, enc_->height,
                                        enc_->pix_fmt, kSwsFlags, nullptr, nullptr, nullptr));
    if (!resize_to_yuv_) return unsupported(cannot_convert + " at " + std::to_string(enc_->width) + "x" +
                                            std::to_string(enc_->height));
    sws_setColorspaceDetails(resize_to_yuv_.get(), rgb_coeffs, 1, yuv_coeffs, 0, 0, 1 << 16, 1 << 16);
  } else if (!to_yuv_.configure(enc_->width, enc_->height, AV_PIX_FMT_RGB24, enc_->pix_fmt, rgb_coeffs, 1, yuv_coeffs,
                                0).is_ok()) {
    return unsupported(cannot_convert);
  }

  err = avio_open(&out_->pb, tmp_path_.c_str(), AVIO_FLAG_WRITE);
  if (err < 0) return error_status(StatusCode::kInvalidInput, tmp_path_, "cannot create the output file", err);
  file_opened_ = true;
  err = avformat_write_header(out_.get(), nullptr);
  if (err < 0) return error_status(StatusCode::kInternal, path_, "cannot write the container header", err);
  return Status::ok();
}

Status FfmpegVideoWriter::write(const VideoFrame& frame) {
  if (finished_) return internal_error(path_ + ": write() after finish()");
  if (failed_) return internal_error(path_ + ": write() after an earlier failure");
  const Image& img = frame.image;
  if (img.width != info_.width || img.height != info_.height || img.channels != 3) {
    return invalid_input(path_ + ": frame " + std::to_string(frame.index) + " is " + std::to_string(img.width) + "x" +
                         std::to_string(img.height) + "x" + std::to_string(img.channels) + ", expected " +
                         std::to_string(info_.width) + "x" + std::to_string(info_.height) + " RGB");
  }
  if (frames_ > 0 && frame.pts <= last_pts_) {
    return invalid_input(path_ + ": frame pts " + std::to_string(frame.pts) + " does not increase (previous " +
                         std::to_string(last_pts_) + ")");
  }
  Status s;
  if (!ticks_) {
    s = convert(frame);
    if (s.is_ok()) s = encode(frame.pts);
  } else {
    if (frames_ == 0) {
      origin_pts_ = tick_origin_.value_or(frame.pts);
      next_tick_ = ticks_->tick(frame.pts - origin_pts_);  // 0 for a whole video
      pts_shift_ = ticks_->tick(frame.pts) - next_tick_;
    }
    // The held frame fills the ticks before this frame's; a frame whose tick is taken is dropped.
    s = encode_held_until(ticks_->tick(frame.pts - origin_pts_));
    if (s.is_ok()) s = convert(frame);
  }
  last_pts_ = frame.pts;
  ++frames_;
  if (s.is_ok() && audio_) s = audio_->write_until(static_cast<double>(frame.pts) * info_.time_base.value());
  if (!s.is_ok()) failed_ = true;
  return s;
}

Status FfmpegVideoWriter::convert(const VideoFrame& frame) {
  if (av_frame_make_writable(yuv_.get()) < 0) return out_of_memory(path_ + ": frame buffer");  // the encoder may hold it
  // yuv420p needs even sizes: odd ones get the last column/row repeated, in RGB, before conversion.
  copy_into_frame(frame.image, rgb_.get());
  if (resize_to_yuv_) {
    sws_scale(resize_to_yuv_.get(), rgb_->data, rgb_->linesize, 0, rgb_->height, yuv_->data, yuv_->linesize);
  } else {
    to_yuv_.scale(rgb_->data, rgb_->linesize, yuv_->data, yuv_->linesize);
  }
  return Status::ok();
}

Status FfmpegVideoWriter::encode(std::int64_t pts) {
  yuv_->pts = pts;
  yuv_->pict_type = AV_PICTURE_TYPE_NONE;
  const int err = avcodec_send_frame(enc_.get(), yuv_.get());
  if (err < 0) return error_status(StatusCode::kInternal, path_, "video encoding failed", err);
  ++encoded_;
  return drain_encoder();
}

Status FfmpegVideoWriter::encode_held_until(std::int64_t tick) {
  for (; frames_ > 0 && next_tick_ < tick; ++next_tick_) FSWAP_RETURN_IF_ERROR(encode(pts_shift_ + next_tick_));
  return Status::ok();
}

Status FfmpegVideoWriter::drain_encoder() {
  while (true) {
    int err = avcodec_receive_packet(enc_.get(), packet_.get());
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return Status::ok();
    if (err < 0) return error_status(StatusCode::kInternal, path_, "video encoding failed", err);
    packet_->stream_index = stream_->index;
    av_packet_rescale_ts(packet_.get(), enc_->time_base, stream_->time_base);
    err = av_interleaved_write_frame(out_.get(), packet_.get());
    if (err < 0) return error_status(StatusCode::kInternal, tmp_path_, "cannot write video", err);
  }
}

Status FfmpegVideoWriter::finish_until(std::optional<std::int64_t> end_pts) {
  if (finished_) return Status::ok();
  if (failed_) return internal_error(path_ + ": finish() after an earlier failure; nothing was written");
  if (end_pts && frames_ > 0 && *end_pts <= last_pts_) {
    return invalid_input(path_ + ": the video's end pts " + std::to_string(*end_pts) +
                         " is not after its last frame's (" + std::to_string(last_pts_) + ")");
  }
  failed_ = true;  // until proven otherwise
  if (ticks_ && frames_ > 0) {
    // The held frame fills the ticks up to the video's end.
    FSWAP_RETURN_IF_ERROR(encode_held_until(end_pts ? ticks_->tick(*end_pts - origin_pts_)
                                                    : ticks_->end_tick(last_pts_ - origin_pts_)));
  }
  int err = avcodec_send_frame(enc_.get(), nullptr);
  if (err < 0) return error_status(StatusCode::kInternal, path_, "cannot flush the video encoder", err);
  FSWAP_RETURN_IF_ERROR(drain_encoder());
  if (audio_) FSWAP_RETURN_IF_ERROR(audio_->finish());
  err = av_write_trailer(out_.get());
  if (err < 0) return error_status(StatusCode::kInternal, tmp_path_, "cannot finish the container", err);
  err = avio_closep(&out_->pb);
  if (err < 0) return error_status(StatusCode::kInternal, tmp_path_, "cannot close the output file", err);
  std::error_code ec;
  fs::rename(tmp_path_, path_, ec);
  if (ec) return internal_error("cannot rename " + tmp_path_ + " to " + path_ + ": " + ec.message());
  finished_ = true;
  failed_ = false;
  log_debug(path_ + ": wrote " + std::to_string(encoded_) + " frames (" + std::to_string(frames_) + " given)");
  return Status::ok();
}

}  // namespace

int scaled_video_size(int size, double scale) {
  const double half = std::floor(static_cast<double>(size) * scale / 2 + 0.5);
  return std::max(2, 2 * static_cast<int>(half));
}

OutputTicks::OutputTicks(const VideoInfo& video, Rational out_rate) : out_rate_(out_rate) {
  const AVRational tb = frames_time_base(video), rate = frames_rate(video);
  in_time_base_ = {tb.num, tb.den};
  in_frame_rate_ = {rate.num, rate.den};
}

std::int64_t OutputTicks::tick(std::int64_t pts_from_first) const {
  return av_rescale_q_rnd(pts_from_first, AVRational{in_time_base_.num, in_time_base_.den},
                          AVRational{out_rate_.den, out_rate_.num}, AV_ROUND_NEAR_INF);
}

std::int64_t OutputTicks::end_tick(std::int64_t last_pts_from_first) const {
  const AVRational tb{in_time_base_.num, in_time_base_.den};
  const std::int64_t frame_duration =
      std::max<std::int64_t>(1, av_rescale_q(1, AVRational{in_frame_rate_.den, in_frame_rate_.num}, tb));
  return std::max<std::int64_t>(tick(last_pts_from_first + frame_duration), 1);
}

Rational frame_rate_from_fps(double fps) {
  if (!(fps > 0)) return {};
  return {static_cast<int>(std::lround(std::min(fps, 1e6) * 1000)), 1000};
}

Result<std::unique_ptr<VideoWriter>> VideoWriter::open(const std::string& path, const VideoInfo& video,
                                                       const EncodeOptions& options, const AudioSource& audio) {
  init_logging();
  FSWAP_RETURN_IF_ERROR(check_output_directory(path));
  std::error_code ec;
  if (!audio.path.empty() && fs::exists(path, ec) && fs::equivalent(path, audio.path, ec)) {
    return invalid_input(path + ": the output would overwrite its input " + audio.path);
  }
  auto writer = std::make_unique<FfmpegVideoWriter>(path, temporary_path_for(path), video);
  FSWAP_RETURN_IF_ERROR(writer->init(options, audio));
  return std::unique_ptr<VideoWriter>(std::move(writer));
}

}  // namespace fswap
