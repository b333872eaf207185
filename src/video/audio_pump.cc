// Audio for VideoWriter: packets of the source's best audio stream within [start_s, end_s),
// shifted so start_s is 0. Read lazily (one packet of look-ahead) so memory stays flat.
// A volume below 100 or a codec the container refuses goes through decode → resample (and gain)
// → AAC; otherwise packets are copied.
#include "video/audio_pump.h"

extern "C" {
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
}

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/log.h"

namespace fswap::ffmpeg {
namespace {

struct AudioFifoDeleter {
  void operator()(AVAudioFifo* f) const { av_audio_fifo_free(f); }
};
using AudioFifoPtr = std::unique_ptr<AVAudioFifo, AudioFifoDeleter>;

constexpr double kNoEnd = std::numeric_limits<double>::infinity();

class AudioPumpImpl final : public AudioPump {
 public:
  AudioPumpImpl(std::string path, InputFormatPtr in, int index, AVFormatContext* out, std::string out_path,
                double start_s, double end_s, int volume, int quality)
      : path_(std::move(path)),
        out_path_(std::move(out_path)),
        in_(std::move(in)),
        in_st_(in_->streams[index]),
        out_(out),
        start_s_(start_s),
        end_s_(end_s),
        gain_(static_cast<float>(volume) / 100.0f),
        quality_(quality),
        pending_(make_packet()) {}
  ~AudioPumpImpl() override { av_freep(&conv_buffer_); }

  Status init();
  Status write_until(double t_s) override;
  Status finish() override;

 private:
  Status init_transcoder();
  // Reads the next packet of the audio stream into pending_; sets eof_ at the end (or at end_s).
  void read_pending();
  double packet_time(const AVPacket* p) const;  // source seconds (absolute)
  Status emit(AVPacket* p);
  Status write_out(AVPacket* p, AVRational from_tb);
  Status decode(AVPacket* p);  // nullptr flushes
  Status queue_samples(const uint8_t** data, int count, double t_out);
  Status encode_from_fifo(bool final);
  Status encode_frame(AVFrame* f);  // nullptr flushes

  std::string path_, out_path_;
  InputFormatPtr in_;
  AVStream* in_st_;
  AVFormatContext* out_;
  AVStream* out_st_ = nullptr;
  double start_s_, end_s_;
  float gain_;   // AudioSource::volume / 100
  int quality_;  // AudioSource::quality
  bool copy_ = true;
  PacketPtr pending_;
  bool has_pending_ = false;
  bool eof_ = false;
  std::int64_t next_ts_ = AV_NOPTS_VALUE;  // extrapolated timestamp for packets without one

  // Re-encode path.
  CodecContextPtr dec_, enc_;
  SwrPtr swr_;
  AudioFifoPtr fifo_;
  FramePtr dec_frame_, enc_frame_;
  PacketPtr enc_packet_;
  std::vector<uint8_t*> conv_planes_;
  uint8_t* conv_buffer_ = nullptr;
  int conv_capacity_ = 0;
  std::int64_t samples_queued_ = 0;   // samples put into the fifo so far (output rate)
  std::int64_t samples_encoded_ = 0;  // next encoder pts
  std::int64_t max_samples_ = -1;     // -1: no end

};

double AudioPumpImpl::packet_time(const AVPacket* p) const {
  std::int64_t ts = p->pts != AV_NOPTS_VALUE ? p->pts : p->dts;
  if (ts == AV_NOPTS_VALUE) ts = next_ts_ == AV_NOPTS_VALUE ? 0 : next_ts_;
  return static_cast<double>(ts) * av_q2d(in_st_->time_base);
}

Status AudioPumpImpl::init() {
  if (!pending_) return out_of_memory(out_path_ + ": cannot allocate an audio packet");
  const AVCodecParameters* par = in_st_->codecpar;
  copy_ = gain_ == 1.0f && avformat_query_codec(out_->oformat, par->codec_id, FF_COMPLIANCE_NORMAL) == 1;
  if (copy_) {
    out_st_ = avformat_new_stream(out_, nullptr);
    if (out_st_ == nullptr) return out_of_memory(out_path_ + ": cannot add an audio stream");
    int err = avcodec_parameters_copy(out_st_->codecpar, par);
    if (err < 0) return error_status(StatusCode::kInternal, out_path_, "cannot copy audio parameters", err);
    out_st_->codecpar->codec_tag = 0;  // let the muxer pick its own tag
    out_st_->time_base = in_st_->time_base;
    log_debug(out_path_ + ": copying " + avcodec_get_name(par->codec_id) + " audio from " + path_);
  } else {
    FSWAP_RETURN_IF_ERROR(init_transcoder());
    log_debug(out_path_ + ": re-encoding " + avcodec_get_name(par->codec_id) + " audio from " + path_ +
              " to AAC at volume " + std::to_string(gain_));
  }
  // Only the audio stream is demuxed; start near start_s.
  for (unsigned i = 0; i < in_->nb_streams; ++i) {
    if (in_->streams[i] != in_st_) in_->streams[i]->discard = AVDISCARD_ALL;
  }
  if (start_s_ > 0) {
    std::int64_t ts = static_cast<std::int64_t>(start_s_ / av_q2d(in_st_->time_base));
    if (av_seek_frame(in_.get(), in_st_->index, ts, AVSEEK_FLAG_BACKWARD) < 0) {
      av_seek_frame(in_.get(), -1, 0, AVSEEK_FLAG_BACKWARD);  // read from the start and drop instead
    }
  }
  return Status::ok();
}

Status AudioPumpImpl::init_transcoder() {
  FSWAP_ASSIGN_OR_RETURN(dec_, open_decoder(path_, in_st_, 1));
  const AVCodec* aac = avcodec_find_encoder(AV_CODEC_ID_AAC);
  if (aac == nullptr) return unsupported("no AAC encoder in this FFmpeg build (needed for the audio of " + path_ + ")");
  enc_.reset(avcodec_alloc_context3(aac));
  if (!enc_) return out_of_memory(out_path_ + ": cannot allocate an audio encoder");
  int channels = dec_->ch_layout.nb_channels;
  if (channels <= 0) return invalid_input(path_ + ": audio stream has no channels");
  if (channels > 8) channels = 2;  // downmix what AAC cannot carry
  av_channel_layout_default(&enc_->ch_layout, channels);
  int rate = dec_->sample_rate > 0 ? dec_->sample_rate : 48000;
  if (aac->supported_samplerates != nullptr) {
    bool ok = false;
    for (const int* r = aac->supported_samplerates; *r != 0; ++r) ok = ok || *r == rate;
    if (!ok) rate = 48000;
  }
  enc_->sample_rate = rate;
  enc_->sample_fmt = AV_SAMPLE_FMT_FLTP;
  if (quality_ < 0) {
    enc_->bit_rate = std::min<std::int64_t>(96000LL * channels, 512000);
  } else {  // FFmpeg's -q:a for the native AAC encoder: qscale with global_quality = q × FF_QP2LAMBDA
    const double q = std::round((0.1 + quality_ * 0.019) * 10) / 10;
    enc_->flags |= AV_CODEC_FLAG_QSCALE;
    enc_->global_quality = static_cast<int>(std::lround(q * FF_QP2LAMBDA));
  }
  enc_->time_base = AVRational{1, rate};
  if (out_->oformat->flags & AVFMT_GLOBALHEADER) enc_->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  int err = avcodec_open2(enc_.get(), aac, nullptr);
  if (err < 0) return error_status(StatusCode::kInternal, out_path_, "cannot open the AAC encoder", err);

  AVChannelLayout in_layout{};
  if (dec_->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC) {
    av_channel_layout_default(&in_layout, dec_->ch_layout.nb_channels);
  } else {
    av_channel_layout_copy(&in_layout, &dec_->ch_layout);
  }
  SwrContext* swr = nullptr;
  err = swr_alloc_set_opts2(&swr, &enc_->ch_layout, enc_->sample_fmt, enc_->sample_rate, &in_layout,
                            dec_->sample_fmt, dec_->sample_rate, 0, nullptr);
  av_channel_layout_uninit(&in_layout);
  swr_.reset(swr);
  if (err < 0 || (err = swr_init(swr)) < 0) {
    return error_status(StatusCode::kUnsupported, path_, "cannot resample its audio", err);
  }
  fifo_.reset(av_audio_fifo_alloc(enc_->sample_fmt, channels, 4096));
  dec_frame_ = make_frame();
  enc_frame_ = make_frame();
  enc_packet_ = make_packet();
  if (!fifo_ || !dec_frame_ || !enc_frame_ || !enc_packet_) return out_of_memory(out_path_ + ": audio buffers");
  if (end_s_ != kNoEnd) max_samples_ = std::llround((end_s_ - start_s_) * rate);

  out_st_ = avformat_new_stream(out_, nullptr);
  if (out_st_ == nullptr) return out_of_memory(out_path_ + ": cannot add an audio stream");
  err = avcodec_parameters_from_context(out_st_->codecpar, enc_.get());
  if (err < 0) return error_status(StatusCode::kInternal, out_path_, "cannot set audio parameters", err);
  out_st_->time_base = enc_->time_base;
  return Status::ok();
}

void AudioPumpImpl::read_pending() {
  while (!eof_) {
    int err = av_read_frame(in_.get(), pending_.get());
    if (err < 0) {
      if (err != AVERROR_EOF) log_warn(path_ + ": audio ends early (" + error_text(err) + ")");
      eof_ = true;
      return;
    }
    if (pending_->stream_index != in_st_->index) {
      av_packet_unref(pending_.get());
      continue;
    }
    const double t = packet_time(pending_.get()) - start_s_;
    std::int64_t ts = pending_->pts != AV_NOPTS_VALUE ? pending_->pts : pending_->dts;
    if (ts == AV_NOPTS_VALUE) {
      ts = next_ts_ == AV_NOPTS_VALUE ? 0 : next_ts_;
      pending_->pts = pending_->dts = ts;
    }
    if (pending_->duration > 0) next_ts_ = ts + pending_->duration;
    const double dur = static_cast<double>(pending_->duration) * av_q2d(in_st_->time_base);
    if (t >= end_s_ - start_s_) {  // past the end: done
      av_packet_unref(pending_.get());
      eof_ = true;
      return;
    }
    // Entirely before start_s: dropped. From the very start, everything is kept, so the
    // encoder priming packets with negative timestamps survive a stream copy.
    if (start_s_ > 0 && t + dur <= 0 && !(dur == 0 && t >= 0)) {
      av_packet_unref(pending_.get());
      continue;
    }
    has_pending_ = true;
    return;
  }
}

Status AudioPumpImpl::write_until(double t_s) {
  while (true) {
    if (!has_pending_) read_pending();
    if (!has_pending_) return Status::ok();
    if (packet_time(pending_.get()) - start_s_ > t_s) return Status::ok();
    has_pending_ = false;
    Status s = emit(pending_.get());
    av_packet_unref(pending_.get());
    FSWAP_RETURN_IF_ERROR(s);
  }
}

Status AudioPumpImpl::write_out(AVPacket* p, AVRational from_tb) {
  p->stream_index = out_st_->index;
  p->pos = -1;
  av_packet_rescale_ts(p, from_tb, out_st_->time_base);
  int err = av_interleaved_write_frame(out_, p);
  if (err < 0) return error_status(StatusCode::kInternal, out_path_, "cannot write audio", err);
  return Status::ok();
}

Status AudioPumpImpl::emit(AVPacket* p) {
  if (!copy_) return decode(p);
  const std::int64_t offset = std::llround(start_s_ / av_q2d(in_st_->time_base));
  if (p->pts != AV_NOPTS_VALUE) p->pts -= offset;
  if (p->dts != AV_NOPTS_VALUE) p->dts -= offset;
  return write_out(p, in_st_->time_base);
}

Status AudioPumpImpl::decode(AVPacket* p) {
  int err = avcodec_send_packet(dec_.get(), p);
  if (err < 0 && err != AVERROR_EOF) {
    log_warn(path_ + ": skipping a corrupt audio packet (" + error_text(err) + ")");
    return Status::ok();
  }
  while (true) {
    err = avcodec_receive_frame(dec_.get(), dec_frame_.get());
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return Status::ok();
    if (err < 0) return error_status(StatusCode::kInvalidInput, path_, "cannot decode its audio", err);
    std::int64_t ts = dec_frame_->best_effort_timestamp;
    double t_out = ts == AV_NOPTS_VALUE ? static_cast<double>(samples_queued_) / enc_->sample_rate
                                        : static_cast<double>(ts) * av_q2d(in_st_->time_base) - start_s_;
    Status s = queue_samples(const_cast<const uint8_t**>(dec_frame_->extended_data), dec_frame_->nb_samples, t_out);
    av_frame_unref(dec_frame_.get());
    FSWAP_RETURN_IF_ERROR(s);
  }
}

// Resamples `count` input samples (nullptr data flushes the resampler) starting at output time
// t_out, drops what lies before 0 or past end_s, and encodes whole frames from the fifo.
Status AudioPumpImpl::queue_samples(const uint8_t** data, int count, double t_out) {
  const int channels = enc_->ch_layout.nb_channels;
  int capacity = swr_get_out_samples(swr_.get(), count);
  if (capacity <= 0) return Status::ok();
  if (capacity > conv_capacity_) {
    av_freep(&conv_buffer_);
    conv_planes_.assign(static_cast<size_t>(channels), nullptr);
    if (av_samples_alloc(conv_planes_.data(), nullptr, channels, capacity, enc_->sample_fmt, 0) < 0) {
      return out_of_memory(out_path_ + ": audio conversion buffer");
    }
    conv_buffer_ = conv_planes_[0];
    conv_capacity_ = capacity;
  }
  int converted = swr_convert(swr_.get(), conv_planes_.data(), capacity, data, count);
  if (converted < 0) return error_status(StatusCode::kInternal, path_, "audio resampling failed", converted);
  int skip = 0;
  if (samples_queued_ == 0 && data != nullptr && t_out < 0) {
    skip = static_cast<int>(std::min<std::int64_t>(converted, std::llround(-t_out * enc_->sample_rate)));
  }
  int keep = converted - skip;
  if (max_samples_ >= 0) keep = static_cast<int>(std::min<std::int64_t>(keep, max_samples_ - samples_queued_));
  if (keep > 0) {
    const int bytes = av_get_bytes_per_sample(enc_->sample_fmt);
    if (gain_ != 1.0f) {  // planar float (enc_->sample_fmt is FLTP)
      for (int c = 0; c < channels; ++c) {
        float* samples = reinterpret_cast<float*>(conv_planes_[static_cast<size_t>(c)]) + skip;
        for (int i = 0; i < keep; ++i) samples[i] *= gain_;
      }
    }
    std::vector<void*> planes(static_cast<size_t>(channels));
    for (int c = 0; c < channels; ++c) planes[static_cast<size_t>(c)] = conv_planes_[static_cast<size_t>(c)] + skip * bytes;
    if (av_audio_fifo_write(fifo_.get(), planes.data(), keep) < keep) {
      return out_of_memory(out_path_ + ": audio fifo");
    }
    samples_queued_ += keep;
  }
  return encode_from_fifo(false);
}

Status AudioPumpImpl::encode_from_fifo(bool final) {
  const int frame_size = enc_->frame_size > 0 ? enc_->frame_size : 1024;
  while (av_audio_fifo_size(fifo_.get()) >= frame_size || (final && av_audio_fifo_size(fifo_.get()) > 0)) {
    const int n = std::min(frame_size, av_audio_fifo_size(fifo_.get()));
    av_frame_unref(enc_frame_.get());
    enc_frame_->nb_samples = n;
    enc_frame_->format = enc_->sample_fmt;
    enc_frame_->sample_rate = enc_->sample_rate;
    int err = av_channel_layout_copy(&enc_frame_->ch_layout, &enc_->ch_layout);
    if (err >= 0) err = av_frame_get_buffer(enc_frame_.get(), 0);
    if (err < 0) return out_of_memory(out_path_ + ": audio frame");
    if (av_audio_fifo_read(fifo_.get(), reinterpret_cast<void**>(enc_frame_->data), n) < n) {
      return internal_error(out_path_ + ": audio fifo underrun");
    }
    enc_frame_->pts = samples_encoded_;
    samples_encoded_ += n;
    FSWAP_RETURN_IF_ERROR(encode_frame(enc_frame_.get()));
  }
  return Status::ok();
}

Status AudioPumpImpl::encode_frame(AVFrame* f) {
  int err = avcodec_send_frame(enc_.get(), f);
  if (err < 0) return error_status(StatusCode::kInternal, out_path_, "AAC encoding failed", err);
  while (true) {
    err = avcodec_receive_packet(enc_.get(), enc_packet_.get());
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return Status::ok();
    if (err < 0) return error_status(StatusCode::kInternal, out_path_, "AAC encoding failed", err);
    Status s = write_out(enc_packet_.get(), enc_->time_base);
    av_packet_unref(enc_packet_.get());
    FSWAP_RETURN_IF_ERROR(s);
  }
}

Status AudioPumpImpl::finish() {
  FSWAP_RETURN_IF_ERROR(write_until(kNoEnd));
  if (copy_) return Status::ok();
  FSWAP_RETURN_IF_ERROR(decode(nullptr));
  FSWAP_RETURN_IF_ERROR(queue_samples(nullptr, 0, 0));
  FSWAP_RETURN_IF_ERROR(encode_from_fifo(true));
  return encode_frame(nullptr);
}

}  // namespace

Result<std::unique_ptr<AudioPump>> AudioPump::open(const AudioSource& source, AVFormatContext* out,
                                                   const std::string& out_path) {
  if (source.path.empty() || source.volume == 0) return std::unique_ptr<AudioPump>();
  if (source.volume < 0 || source.volume > 100) {
    return invalid_input(out_path + ": output audio volume " + std::to_string(source.volume) + " is outside 0..100");
  }
  if (source.quality < -1 || source.quality > 100) {
    return invalid_input(out_path + ": output audio quality " + std::to_string(source.quality) + " is outside 0..100");
  }
  if (source.end_s >= 0 && source.end_s <= source.start_s) {
    return invalid_input(source.path + ": empty audio range [" + std::to_string(source.start_s) + ", " +
                         std::to_string(source.end_s) + ")");
  }
  FSWAP_ASSIGN_OR_RETURN(InputFormatPtr in, open_input(source.path));
  int index = av_find_best_stream(in.get(), AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
  if (index < 0) {
    log_debug(source.path + ": no audio stream; the output will be silent");
    return std::unique_ptr<AudioPump>();
  }
  const double end = source.end_s < 0 ? kNoEnd : source.end_s;
  auto pump = std::make_unique<AudioPumpImpl>(source.path, std::move(in), index, out, out_path,
                                              std::max(0.0, source.start_s), end, source.volume, source.quality);
  FSWAP_RETURN_IF_ERROR(pump->init());
  return std::unique_ptr<AudioPump>(std::move(pump));
}

}  // namespace fswap::ffmpeg
