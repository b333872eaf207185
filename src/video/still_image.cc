// Still images through FFmpeg's image demuxers and codecs (PNG, JPEG, WebP, BMP…), and probing.
extern "C" {
#include <libavutil/dict.h>
#include <libavutil/opt.h>
}

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include "core/log.h"
#include "video/ffmpeg_util.h"
#include "video/media.h"

namespace fswap {
namespace {

using namespace ffmpeg;
namespace fs = std::filesystem;

void flip_horizontal(Image& img) {
  const int c = img.channels;
  for (int y = 0; y < img.height; ++y) {
    uint8_t* row = img.row(y);
    for (int l = 0, r = img.width - 1; l < r; ++l, --r) {
      for (int k = 0; k < c; ++k) std::swap(row[l * c + k], row[r * c + k]);
    }
  }
}

// Applies an EXIF orientation (1..8) so the picture is upright.
Image apply_exif_orientation(Image img, int orientation) {
  if (orientation == 2 || orientation == 4 || orientation == 5 || orientation == 7) flip_horizontal(img);
  int cw = 0;
  switch (orientation) {
    case 3: case 4: cw = 180; break;  // 4 = flip-h + 180 = flip-v
    case 5: case 8: cw = 270; break;
    case 6: case 7: cw = 90; break;
    default: break;
  }
  if (cw == 0) return img;
  Image out;
  rotate_image(img, cw, out);
  return out;
}

bool is_still_codec(AVCodecID id) {
  switch (id) {
    case AV_CODEC_ID_PNG: case AV_CODEC_ID_MJPEG: case AV_CODEC_ID_WEBP: case AV_CODEC_ID_BMP:
    case AV_CODEC_ID_TIFF: case AV_CODEC_ID_JPEG2000: case AV_CODEC_ID_JPEGLS: case AV_CODEC_ID_PPM:
    case AV_CODEC_ID_PGM: case AV_CODEC_ID_PAM: case AV_CODEC_ID_PBM: case AV_CODEC_ID_TARGA:
    case AV_CODEC_ID_QOI: case AV_CODEC_ID_JPEGXL: case AV_CODEC_ID_SGI: case AV_CODEC_ID_PCX:
      return true;
    default:
      return false;
  }
}

struct ImageCodec {
  AVCodecID id = AV_CODEC_ID_NONE;
  const char* encoder = nullptr;  // by name when a specific one is wanted
};

ImageCodec image_codec_for(const std::string& ext) {
  if (ext == "png") return {AV_CODEC_ID_PNG, nullptr};
  if (ext == "jpg" || ext == "jpeg") return {AV_CODEC_ID_MJPEG, "mjpeg"};
  if (ext == "webp") return {AV_CODEC_ID_WEBP, "libwebp"};
  if (ext == "bmp") return {AV_CODEC_ID_BMP, nullptr};
  return {};
}

Status write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  const std::string tmp = temporary_path_for(path);
  AVIOContext* io = nullptr;
  int err = avio_open(&io, tmp.c_str(), AVIO_FLAG_WRITE);
  if (err < 0) return error_status(StatusCode::kInvalidInput, tmp, "cannot create the output file", err);
  avio_write(io, bytes.data(), static_cast<int>(bytes.size()));
  avio_flush(io);
  err = io->error;
  int close_err = avio_closep(&io);
  std::error_code ec;
  if (err < 0 || close_err < 0) {
    fs::remove(tmp, ec);
    return error_status(StatusCode::kInternal, tmp, "cannot write the image", err < 0 ? err : close_err);
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    return internal_error("cannot rename " + tmp + " to " + path + ": " + ec.message());
  }
  return Status::ok();
}

}  // namespace

Result<Image> read_image(const std::string& path) {
  FSWAP_ASSIGN_OR_RETURN(InputFormatPtr fmt, open_input(path));
  int index = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (index < 0) return invalid_input(path + ": not an image (no picture stream in format " + fmt->iformat->name + ")");
  FSWAP_ASSIGN_OR_RETURN(CodecContextPtr dec, open_decoder(path, fmt->streams[index], 1));
  PacketPtr packet = make_packet();
  FramePtr frame = make_frame();
  if (!packet || !frame) return out_of_memory(path + ": decoder buffers");

  bool got = false, flushing = false;
  while (!got) {
    int err = avcodec_receive_frame(dec.get(), frame.get());
    if (err == 0) {
      got = true;
      break;
    }
    if (err == AVERROR_EOF) break;
    if (err != AVERROR(EAGAIN)) return error_status(StatusCode::kInvalidInput, path, "cannot decode the image", err);
    if (flushing) break;
    err = av_read_frame(fmt.get(), packet.get());
    if (err < 0) {
      flushing = true;
      avcodec_send_packet(dec.get(), nullptr);
      continue;
    }
    if (packet->stream_index == index) {
      err = avcodec_send_packet(dec.get(), packet.get());
      if (err < 0 && err != AVERROR(EAGAIN)) {
        av_packet_unref(packet.get());
        return error_status(StatusCode::kInvalidInput, path, "cannot decode the image", err);
      }
    }
    av_packet_unref(packet.get());
  }
  if (!got) return invalid_input(path + ": contains no decodable picture (truncated or corrupt?)");

  Image rgb;
  FrameToRgb to_rgb;
  FSWAP_RETURN_IF_ERROR(to_rgb.convert(frame.get(), rgb, path));
  int rotation = stream_rotation_degrees(fmt->streams[index]);
  if (rotation != 0) {
    Image upright;
    rotate_image(rgb, rotation, upright);
    rgb = std::move(upright);
  }
  if (const AVDictionaryEntry* e = av_dict_get(frame->metadata, "Orientation", nullptr, 0)) {
    int orientation = std::atoi(e->value);
    if (orientation >= 2 && orientation <= 8) rgb = apply_exif_orientation(std::move(rgb), orientation);
  }
  return rgb;
}

Status write_image(const std::string& path, const Image& image, int quality) {
  init_logging();
  FSWAP_RETURN_IF_ERROR(check_output_directory(path));
  if (image.empty() || image.channels != 3) {
    return invalid_input(path + ": write_image needs a non-empty RGB image (got " + std::to_string(image.channels) +
                         " channels)");
  }
  const std::string ext = lower_extension(path);
  const ImageCodec ic = image_codec_for(ext);
  if (ic.id == AV_CODEC_ID_NONE) {
    return invalid_input(path + ": unsupported image extension '." + ext + "' (use .png, .jpg, .webp or .bmp)");
  }
  const AVCodec* codec = ic.encoder ? avcodec_find_encoder_by_name(ic.encoder) : avcodec_find_encoder(ic.id);
  if (codec == nullptr) return unsupported(path + ": no ." + ext + " encoder in this FFmpeg build");
  quality = std::clamp(quality, 0, 100);

  CodecContextPtr enc(avcodec_alloc_context3(codec));
  if (!enc) return out_of_memory(path + ": encoder context");
  enc->width = image.width;
  enc->height = image.height;
  enc->time_base = AVRational{1, 25};
  AVPixelFormat pix = AV_PIX_FMT_RGB24;
  bool yuv = false;
  switch (ic.id) {
    case AV_CODEC_ID_MJPEG:
      // JFIF: full-range BT.601; 4:4:4 keeps colour edges sharp at high quality.
      pix = quality >= 90 || (image.width | image.height) & 1 ? AV_PIX_FMT_YUV444P : AV_PIX_FMT_YUV420P;
      yuv = true;
      enc->color_range = AVCOL_RANGE_JPEG;
      enc->flags |= AV_CODEC_FLAG_QSCALE;
      enc->qmin = 1;
      enc->qmax = 31;
      enc->global_quality = FF_QP2LAMBDA * (1 + (100 - quality) * 30 / 100);
      break;
    case AV_CODEC_ID_WEBP:
      pix = AV_PIX_FMT_RGB32;  // libwebp converts from ARGB itself
      av_opt_set_double(enc->priv_data, "quality", quality, 0);
      if (quality >= 100) av_opt_set_int(enc->priv_data, "lossless", 1, 0);
      break;
    case AV_CODEC_ID_BMP: pix = AV_PIX_FMT_BGR24; break;
    default: break;
  }
  enc->pix_fmt = pix;
  int err = avcodec_open2(enc.get(), codec, nullptr);
  if (err < 0) return error_status(StatusCode::kInternal, path, std::string("cannot open the ") + codec->name + " encoder", err);

  FramePtr frame = make_frame();
  PacketPtr packet = make_packet();
  if (!frame || !packet) return out_of_memory(path + ": encoder buffers");
  frame->format = pix;
  frame->width = image.width;
  frame->height = image.height;
  frame->color_range = enc->color_range;
  err = av_frame_get_buffer(frame.get(), 0);
  if (err < 0) return out_of_memory(path + ": frame buffer");
  SwsPtr sws(sws_getContext(image.width, image.height, AV_PIX_FMT_RGB24, image.width, image.height, pix,
                            kSwsFlags, nullptr, nullptr, nullptr));
  if (!sws) return internal_error(path + ": cannot set up colour conversion");
  if (yuv) {
    sws_setColorspaceDetails(sws.get(), sws_getCoefficients(SWS_CS_DEFAULT), 1, sws_getCoefficients(SWS_CS_ITU601), 1,
                             0, 1 << 16, 1 << 16);
  }
  FramePtr rgb = make_frame();
  if (!rgb) return out_of_memory(path + ": RGB frame");
  rgb->format = AV_PIX_FMT_RGB24;
  rgb->width = image.width;
  rgb->height = image.height;
  if (av_frame_get_buffer(rgb.get(), 0) < 0) return out_of_memory(path + ": RGB frame");
  copy_into_frame(image, rgb.get());
  sws_scale(sws.get(), rgb->data, rgb->linesize, 0, image.height, frame->data, frame->linesize);
  frame->pts = 0;

  std::vector<uint8_t> bytes;
  for (AVFrame* f : {frame.get(), static_cast<AVFrame*>(nullptr)}) {
    err = avcodec_send_frame(enc.get(), f);
    if (err < 0) return error_status(StatusCode::kInternal, path, "image encoding failed", err);
    while ((err = avcodec_receive_packet(enc.get(), packet.get())) == 0) {
      bytes.insert(bytes.end(), packet->data, packet->data + packet->size);
      av_packet_unref(packet.get());
    }
    if (err != AVERROR(EAGAIN) && err != AVERROR_EOF) {
      return error_status(StatusCode::kInternal, path, "image encoding failed", err);
    }
  }
  if (bytes.empty()) return internal_error(path + ": the encoder produced no data");
  return write_bytes(path, bytes);
}

Result<MediaKind> probe_media(const std::string& path) {
  FSWAP_ASSIGN_OR_RETURN(InputFormatPtr fmt, open_input(path));
  int index = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (index < 0) {
    return invalid_input(path + ": neither an image nor a video (format " + fmt->iformat->name +
                         " has no picture stream)");
  }
  const std::string demuxer = fmt->iformat->name;
  const bool image_demuxer = demuxer == "image2" || demuxer == "image2pipe" ||
                             (demuxer.size() > 5 && demuxer.compare(demuxer.size() - 5, 5, "_pipe") == 0);
  if (image_demuxer) return MediaKind::kImage;
  const AVStream* st = fmt->streams[index];
  if (is_still_codec(st->codecpar->codec_id) && st->nb_frames <= 1) return MediaKind::kImage;
  return MediaKind::kVideo;
}

}  // namespace fswap
