#include "video/ffmpeg_util.h"

extern "C" {
#include <libavutil/display.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
}

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <system_error>

#include "core/log.h"
#include "core/parallel.h"

namespace fswap::ffmpeg {
namespace fs = std::filesystem;

void OutputFormatDeleter::operator()(AVFormatContext* c) const {
  if (c == nullptr) return;
  if (c->pb != nullptr && !(c->oformat->flags & AVFMT_NOFILE)) avio_closep(&c->pb);
  avformat_free_context(c);
}

FramePtr make_frame() { return FramePtr(av_frame_alloc()); }
PacketPtr make_packet() { return PacketPtr(av_packet_alloc()); }

std::string error_text(int errnum) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  if (av_strerror(errnum, buf, sizeof(buf)) < 0) return "FFmpeg error " + std::to_string(errnum);
  return buf;
}

Status error_status(StatusCode code, const std::string& path, const std::string& what, int errnum) {
  return {code, path + ": " + what + " (" + error_text(errnum) + ")"};
}

namespace {

// FFmpeg logs in fragments; each call is formatted with its own prefix state per thread.
void log_callback(void* avcl, int level, const char* fmt, va_list args) {
  if (level > AV_LOG_WARNING) return;
  if (log_level() > LogLevel::kDebug) return;  // formatting costs; skip when nobody listens
  thread_local int print_prefix = 1;
  char line[1024];
  av_log_format_line2(avcl, level, fmt, args, line, sizeof(line), &print_prefix);
  std::string text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (!text.empty()) log_debug("ffmpeg: " + text);
}

}  // namespace

void init_logging() {
  static std::once_flag once;
  std::call_once(once, [] {
    av_log_set_level(AV_LOG_WARNING);
    av_log_set_callback(log_callback);
  });
}

Result<InputFormatPtr> open_input(const std::string& path) {
  init_logging();
  std::error_code ec;
  if (!fs::exists(path, ec)) return not_found(path + ": no such file");
  if (fs::is_directory(path, ec)) return invalid_input(path + ": is a directory, not a media file");
  AVFormatContext* raw = nullptr;
  int err = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);
  if (err < 0) {
    if (err == AVERROR(EACCES)) return error_status(StatusCode::kInvalidInput, path, "cannot be read", err);
    return error_status(StatusCode::kInvalidInput, path, "not a media file FFmpeg can read", err);
  }
  InputFormatPtr fmt(raw);
  // FFmpeg's tty demuxer "plays" text files (by extension): never what a user means.
  if (std::strcmp(fmt->iformat->name, "tty") == 0) {
    return invalid_input(path + ": a text file, not a video or image");
  }
  err = avformat_find_stream_info(fmt.get(), nullptr);
  if (err < 0) return error_status(StatusCode::kInvalidInput, path, "cannot read stream information", err);
  return fmt;
}

namespace {
// get_format for a decoder given a CUDA device: the CUDA surfaces when offered, else the first
// software format (FFmpeg falls back to software decoding when the hwaccel refuses the stream).
AVPixelFormat prefer_cuda(AVCodecContext*, const AVPixelFormat* formats) {
  for (const AVPixelFormat* f = formats; *f != AV_PIX_FMT_NONE; ++f) {
    if (*f == AV_PIX_FMT_CUDA) return *f;
  }
  for (const AVPixelFormat* f = formats; *f != AV_PIX_FMT_NONE; ++f) {
    const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(*f);
    if (d && !(d->flags & AV_PIX_FMT_FLAG_HWACCEL)) return *f;
  }
  return AV_PIX_FMT_NONE;
}
}  // namespace

Result<CodecContextPtr> open_decoder(const std::string& path, const AVStream* stream, int threads,
                                     AVBufferRef* hw_device) {
  const AVCodec* codec = avcodec_find_decoder(stream->codecpar->codec_id);
  if (codec == nullptr) {
    return unsupported(path + ": no decoder for codec " + avcodec_get_name(stream->codecpar->codec_id) +
                       " in this FFmpeg build");
  }
  CodecContextPtr ctx(avcodec_alloc_context3(codec));
  if (!ctx) return out_of_memory(path + ": cannot allocate a decoder context");
  int err = avcodec_parameters_to_context(ctx.get(), stream->codecpar);
  if (err < 0) return error_status(StatusCode::kInvalidInput, path, "bad codec parameters", err);
  ctx->pkt_timebase = stream->time_base;
  ctx->thread_count = threads;
  ctx->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
  if (hw_device) {
    ctx->hw_device_ctx = av_buffer_ref(hw_device);
    if (!ctx->hw_device_ctx) return out_of_memory(path + ": cannot reference the CUDA device");
    ctx->get_format = prefer_cuda;
    ctx->thread_count = 1;  // NVDEC decodes asynchronously itself; frame threads only add copies
  }
  err = avcodec_open2(ctx.get(), codec, nullptr);
  if (err < 0) {
    return error_status(StatusCode::kInvalidInput, path,
                        std::string("cannot open the ") + codec->name + " decoder", err);
  }
  return ctx;
}

int stream_rotation_degrees(const AVStream* stream) {
  size_t size = 0;
  const uint8_t* data = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, &size);
  if (data == nullptr || size < 9 * sizeof(int32_t)) return 0;
  double ccw = av_display_rotation_get(reinterpret_cast<const int32_t*>(data));
  if (std::isnan(ccw)) return 0;
  // The matrix gives the counter-clockwise rotation that makes the picture upright;
  // we report (and apply) the clockwise one, snapped to quarter turns.
  int cw = static_cast<int>(std::lround(-ccw / 90.0)) * 90;
  cw %= 360;
  if (cw < 0) cw += 360;
  return cw;
}

namespace {

// Deprecated "J" formats are full-range aliases: swscale wants the plain format plus a range flag.
AVPixelFormat plain_format(AVPixelFormat f, bool& full_range) {
  switch (f) {
    case AV_PIX_FMT_YUVJ420P: full_range = true; return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P: full_range = true; return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P: full_range = true; return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P: full_range = true; return AV_PIX_FMT_YUV440P;
    case AV_PIX_FMT_YUVJ411P: full_range = true; return AV_PIX_FMT_YUV411P;
    default: return f;
  }
}

// swscale's coefficient tables are indexed by AVColorSpace values (0..10).
int sws_colorspace(AVColorSpace cs, int height) {
  switch (cs) {
    case AVCOL_SPC_BT709:
    case AVCOL_SPC_FCC:
    case AVCOL_SPC_BT470BG:
    case AVCOL_SPC_SMPTE170M:
    case AVCOL_SPC_SMPTE240M:
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL:
      return static_cast<int>(cs);
    default:
      // Untagged: what players assume — BT.709 for HD, BT.601 below.
      return height >= 720 ? SWS_CS_ITU709 : SWS_CS_ITU601;
  }
}

}  // namespace

namespace {

// How BandedScaler splits a conversion: the rows of context each band converts beyond its own
// (into a scratch frame, keeping only its rows), or −1 for one band. swscale's unscaled
// yuv420p → rgb24 converter works on whole row pairs: no context, at even heights (odd ones take
// another path). rgb24 → yuv420p filters chroma over neighbouring rows: 16 rows of context give
// each band the whole frame's bytes (tests/unit/test_video.cc, BandedScaler); at even sizes only
// (the writer pads to them). Anything else (nv12 → rgb24 among them) would differ: one band.
int band_context_rows(int w, int h, AVPixelFormat from, AVPixelFormat to) {
  if (h % 2 != 0) return -1;
  if (from == AV_PIX_FMT_YUV420P && to == AV_PIX_FMT_RGB24) return 0;
  if (from == AV_PIX_FMT_RGB24 && to == AV_PIX_FMT_YUV420P && w % 2 == 0) return 16;
  return -1;
}

// The first row of plane `plane` for frame row y (chroma planes are subsampled).
int plane_row(const AVPixFmtDescriptor* d, int plane, int y) {
  const bool rgb = (d->flags & AV_PIX_FMT_FLAG_RGB) != 0;
  return plane > 0 && !rgb ? y >> d->log2_chroma_h : y;
}

}  // namespace

Status BandedScaler::configure(int w, int h, AVPixelFormat from, AVPixelFormat to, const int* from_coeffs,
                               int from_full, const int* to_coeffs, int to_full) {
  const Key key{w, h, from, to, from_coeffs, from_full, to_coeffs, to_full};
  if (key == key_ && !bands_.empty()) return Status::ok();
  bands_.clear();
  key_ = {};
  // Bands of at least 64 rows, an even number each, one per worker thread at most.
  const int context = band_context_rows(w, h, from, to);
  const int count = context >= 0 ? std::max(1, std::min(worker_threads(), h / 64)) : 1;
  const int step = (h / count) & ~1;
  for (int i = 0, y0 = 0; i < count; ++i) {
    Band band;
    band.y0 = y0;
    band.rows = i + 1 == count ? h - y0 : step;
    band.from_y = count > 1 ? std::max(0, y0 - context) : 0;
    const int to_y = count > 1 ? std::min(h, y0 + band.rows + context) : h;
    const int rows = to_y - band.from_y;
    band.sws.reset(sws_getContext(w, rows, from, w, rows, to, kSwsFlags, nullptr, nullptr, nullptr));
    if (!band.sws) return unsupported("swscale cannot convert " + std::string(av_get_pix_fmt_name(from)) + " to " +
                                      av_get_pix_fmt_name(to));
    sws_setColorspaceDetails(band.sws.get(), from_coeffs, from_full, to_coeffs, to_full, 0, 1 << 16, 1 << 16);
    if (rows != band.rows) {
      band.scratch = make_frame();
      if (!band.scratch) return out_of_memory("colour conversion scratch frame");
      band.scratch->format = to;
      band.scratch->width = w;
      band.scratch->height = rows;
      if (av_frame_get_buffer(band.scratch.get(), 0) < 0) return out_of_memory("colour conversion scratch frame");
    }
    bands_.push_back(std::move(band));
    y0 += bands_.back().rows;
  }
  key_ = key;
  return Status::ok();
}

void BandedScaler::scale(const uint8_t* const src[], const int src_stride[], uint8_t* const dst[],
                         const int dst_stride[]) const {
  const AVPixFmtDescriptor* from = av_pix_fmt_desc_get(key_.from);
  const AVPixFmtDescriptor* to = av_pix_fmt_desc_get(key_.to);
  const int src_planes = av_pix_fmt_count_planes(key_.from), dst_planes = av_pix_fmt_count_planes(key_.to);
  parallel_for(static_cast<int>(bands_.size()), [&](int b0, int b1) {
    for (int b = b0; b < b1; ++b) {
      const Band& band = bands_[static_cast<std::size_t>(b)];
      const uint8_t* in[4] = {};
      uint8_t* out[4] = {};
      int out_stride[4] = {};
      for (int p = 0; p < src_planes; ++p)
        in[p] = src[p] + static_cast<std::ptrdiff_t>(plane_row(from, p, band.from_y)) * src_stride[p];
      for (int p = 0; p < dst_planes; ++p) {
        out[p] = band.scratch ? band.scratch->data[p]
                              : dst[p] + static_cast<std::ptrdiff_t>(plane_row(to, p, band.y0)) * dst_stride[p];
        out_stride[p] = band.scratch ? band.scratch->linesize[p] : dst_stride[p];
      }
      const int rows = band.scratch ? band.scratch->height : band.rows;
      sws_scale(band.sws.get(), in, src_stride, 0, rows, out, out_stride);
      if (!band.scratch) continue;
      // Keep the band's own rows of each plane.
      for (int p = 0; p < dst_planes; ++p) {
        const int skip = plane_row(to, p, band.y0) - plane_row(to, p, band.from_y);
        const int first = plane_row(to, p, band.y0), end = plane_row(to, p, band.y0 + band.rows);
        const int bytes = av_image_get_linesize(key_.to, key_.w, p);
        for (int y = first; y < end; ++y)
          std::memcpy(dst[p] + static_cast<std::ptrdiff_t>(y) * dst_stride[p],
                      out[p] + static_cast<std::ptrdiff_t>(y - first + skip) * out_stride[p], static_cast<std::size_t>(bytes));
      }
    }
  });
}

Status FrameToRgb::convert(const AVFrame* frame, Image& dst, const std::string& path) {
  const int w = frame->width, h = frame->height;
  if (w <= 0 || h <= 0) return invalid_input(path + ": decoded a frame with no size");
  bool full_range = frame->color_range == AVCOL_RANGE_JPEG;
  AVPixelFormat src_fmt = plain_format(static_cast<AVPixelFormat>(frame->format), full_range);
  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(src_fmt);
  if (desc == nullptr) return invalid_input(path + ": decoded a frame with an unknown pixel format");
  // HDR (PQ or HLG) goes through 16-bit RGB and the tone mapper; everything else straight to RGB24.
  std::optional<HdrTransfer> hdr;
  if (frame->color_trc == AVCOL_TRC_SMPTE2084) hdr = HdrTransfer::kPq;
  if (frame->color_trc == AVCOL_TRC_ARIB_STD_B67) hdr = HdrTransfer::kHlg;
  const AVPixelFormat out_fmt = hdr ? AV_PIX_FMT_RGB48 : AV_PIX_FMT_RGB24;
  const bool is_rgb = (desc->flags & AV_PIX_FMT_FLAG_RGB) != 0;
  const bool is_gray = desc->nb_components <= 2 && !is_rgb;
  // RGB and grey sources take swscale's defaults; YUV its tagged (or assumed) matrix and range.
  const int* coeffs = is_rgb || is_gray ? sws_getCoefficients(SWS_CS_DEFAULT)
                                        : sws_getCoefficients(sws_colorspace(frame->colorspace, h));
  const Status configured = scaler_.configure(w, h, src_fmt, out_fmt, coeffs, is_rgb || is_gray || full_range ? 1 : 0,
                                              sws_getCoefficients(SWS_CS_DEFAULT), 1);
  if (!configured.is_ok()) return unsupported(path + ": cannot convert pixel format " + desc->name + " to RGB");
  if (!rgb_ || rgb_->width != w || rgb_->height != h || rgb_->format != out_fmt) {
    rgb_ = make_frame();
    if (!rgb_) return out_of_memory(path + ": RGB frame");
    rgb_->format = out_fmt;
    rgb_->width = w;
    rgb_->height = h;
    if (av_frame_get_buffer(rgb_.get(), 0) < 0) {
      rgb_.reset();
      return out_of_memory(path + ": RGB frame");
    }
  }
  scaler_.scale(frame->data, frame->linesize, rgb_->data, rgb_->linesize);
  if (dst.width != w || dst.height != h || dst.channels != 3) dst = Image(w, h, 3);
  const auto src_row = [&](int y) { return rgb_->data[0] + static_cast<std::ptrdiff_t>(y) * rgb_->linesize[0]; };
  if (hdr) {
    if (!tone_ || tone_transfer_ != *hdr) {
      tone_ = std::make_unique<HdrToSdr>(*hdr);
      tone_transfer_ = *hdr;
    }
    parallel_for(h, [&](int y0, int y1) {
      for (int y = y0; y < y1; ++y) tone_->convert(reinterpret_cast<const std::uint16_t*>(src_row(y)), w, dst.row(y));
    });
    return Status::ok();
  }
  const size_t row_bytes = static_cast<size_t>(w) * 3;
  for (int y = 0; y < h; ++y) std::memcpy(dst.row(y), src_row(y), row_bytes);
  return Status::ok();
}

void copy_into_frame(const Image& img, AVFrame* rgb) {
  const size_t row_bytes = static_cast<size_t>(img.width) * 3;
  for (int y = 0; y < rgb->height; ++y) {
    const uint8_t* src = img.row(std::min(y, img.height - 1));
    uint8_t* dst = rgb->data[0] + static_cast<std::ptrdiff_t>(y) * rgb->linesize[0];
    std::memcpy(dst, src, row_bytes);
    for (int x = img.width; x < rgb->width; ++x) std::memcpy(dst + x * 3, src + row_bytes - 3, 3);
  }
}

void rotate_image(const Image& src, int clockwise_degrees, Image& dst) {
  const int w = src.width, h = src.height, c = src.channels;
  const int dw = (clockwise_degrees == 90 || clockwise_degrees == 270) ? h : w;
  const int dh = (clockwise_degrees == 90 || clockwise_degrees == 270) ? w : h;
  if (dst.width != dw || dst.height != dh || dst.channels != c) dst = Image(dw, dh, c);
  for (int y = 0; y < dh; ++y) {
    uint8_t* out = dst.row(y);
    for (int x = 0; x < dw; ++x) {
      int sx, sy;
      switch (clockwise_degrees) {
        case 90: sx = y; sy = h - 1 - x; break;
        case 180: sx = w - 1 - x; sy = h - 1 - y; break;
        case 270: sx = w - 1 - y; sy = x; break;
        default: sx = x; sy = y; break;
      }
      std::memcpy(out + static_cast<size_t>(x) * c, &src.at(sx, sy), static_cast<size_t>(c));
    }
  }
}

std::string lower_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  if (!ext.empty() && ext[0] == '.') ext.erase(0, 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return ext;
}

const char* muxer_for_extension(const std::string& ext) {
  if (ext == "mp4" || ext == "m4v") return "mp4";
  if (ext == "mkv") return "matroska";
  if (ext == "mov") return "mov";
  return nullptr;
}

std::string temporary_path_for(const std::string& path) {
  fs::path p(path);
  std::string name(".");
  name.append(p.stem().string()).append(".part-").append(std::to_string(::getpid())).append(p.extension().string());
  return (p.parent_path() / name).string();
}

Status check_output_directory(const std::string& path) {
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return invalid_input("output directory " + dir.string() + " does not exist (for " + path + "): create it first");
  }
  if (fs::path(path).filename().empty()) return invalid_input(path + ": the output path names no file");
  return Status::ok();
}

}  // namespace fswap::ffmpeg
