// SegmentStore (manifest.json beside the segment files) and join_segments (packet copy + audio).
#include "video/segments.h"

extern "C" {
#include <libavutil/sha.h>
}

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <system_error>

#include "core/log.h"
#include "video/audio_pump.h"
#include "video/ffmpeg_util.h"

namespace fswap {
namespace {

using namespace ffmpeg;
namespace fs = std::filesystem;

constexpr int kManifestVersion = 1;
constexpr const char* kManifestName = "manifest.json";
constexpr const char* kSegmentPrefix = "segment-";

struct ShaDeleter {
  void operator()(AVSHA* s) const { av_free(s); }
};

class Sha256 {
 public:
  Sha256() : ctx_(av_sha_alloc()) {
    if (ctx_) av_sha_init(ctx_.get(), 256);
  }
  bool ok() const { return ctx_ != nullptr; }
  void update(const void* data, std::size_t size) {
    av_sha_update(ctx_.get(), static_cast<const std::uint8_t*>(data), size);
  }
  std::string hex() {
    std::uint8_t digest[32];
    av_sha_final(ctx_.get(), digest);
    static const char* kDigits = "0123456789abcdef";
    std::string out;
    for (std::uint8_t b : digest) out += {kDigits[b >> 4], kDigits[b & 15]};
    return out;
  }

 private:
  std::unique_ptr<AVSHA, ShaDeleter> ctx_;
};

// SHA-256 of a file's bytes; empty when it cannot be read.
std::string file_sha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  Sha256 sha;
  if (!in || !sha.ok()) return {};
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    sha.update(buffer.data(), static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) return {};
  return sha.hex();
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

}  // namespace

std::string sha256_hex(const std::string& bytes) {
  Sha256 sha;
  if (!sha.ok()) return {};
  sha.update(bytes.data(), bytes.size());
  return sha.hex();
}

SegmentStore::SegmentStore(std::string dir, SegmentLayout layout, std::string fingerprint_hash)
    : dir_(std::move(dir)), layout_(std::move(layout)), fingerprint_hash_(std::move(fingerprint_hash)) {}

Result<std::unique_ptr<SegmentStore>> SegmentStore::open(const std::string& dir, const SegmentLayout& layout) {
  if (layout.segment_frames < 1) return invalid_input("segment length must be at least one frame");
  if (layout.time_base.num <= 0 || layout.time_base.den <= 0) return invalid_input("segment time base must be positive");
  if (dir.empty()) return invalid_input("no segment directory given");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir, ec)) return invalid_input("segment directory " + dir + ": cannot be created");
  std::unique_ptr<SegmentStore> store(new SegmentStore(dir, layout, sha256_hex(layout.fingerprint)));
  FSWAP_RETURN_IF_ERROR(store->load());
  return store;
}

std::string SegmentStore::file_name(std::int64_t k) const {
  char name[32];
  std::snprintf(name, sizeof name, "%s%05lld.mp4", kSegmentPrefix, static_cast<long long>(k));
  return name;
}

std::string SegmentStore::path_for(std::int64_t k) const { return (fs::path(dir_) / file_name(k)).string(); }

bool SegmentStore::fits_layout(const Record& r) const {
  const std::int64_t L = layout_.segment_frames;
  if (r.index < 0 || r.frames < 1 || r.frames > L) return false;
  const std::int64_t begin = layout_.first_frame + r.index * L;
  if (end_frame_ < 0) return r.frames == L;  // a short segment is the last: the end must be known
  return begin + r.frames == std::min(begin + L, end_frame_);
}

Status SegmentStore::load() {
  const std::string manifest = (fs::path(dir_) / kManifestName).string();
  std::ifstream in(manifest);
  if (in) {
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    auto read = [&]() -> bool {  // false: not a manifest this code wrote
      if (!j.is_object() || j.value("version", 0) != kManifestVersion) return false;
      end_frame_ = j.value("end_frame", std::int64_t{-1});
      const auto& segments = j.value("segments", nlohmann::json::array());
      if (!segments.is_array()) return false;
      for (const auto& s : segments) {
        if (!s.is_object()) return false;
        const std::int64_t frames = s.value("frames", std::int64_t{0});
        // Manifests written before --output-video-fps could be segmented lack output_frames: as many.
        records_.push_back({s.value("index", std::int64_t{-1}), frames, s.value("output_frames", frames),
                            s.value("pts_offset", std::int64_t{0}), s.value("size", std::uint64_t{0}),
                            s.value("sha256", std::string())});
      }
      return true;
    };
    bool readable = false;
    try {
      readable = read();
    } catch (const nlohmann::json::exception&) {  // a field of the wrong type
    }
    if (!readable) {
      log_warn(manifest + ": unreadable; its segments will be made again");
      records_.clear();
      end_frame_ = -1;
    } else if (j.value("fingerprint", std::string()) != fingerprint_hash_ ||
               j.value("first_frame", std::int64_t{-1}) != layout_.first_frame ||
               j.value("segment_frames", std::int64_t{-1}) != layout_.segment_frames ||
               j.value("time_base", std::vector<int>()) != std::vector<int>{layout_.time_base.num, layout_.time_base.den}) {
      log_info(manifest + ": written for other job options; its segments will be made again");
      records_.clear();
      end_frame_ = -1;
    }
  }
  std::sort(records_.begin(), records_.end(), [](const Record& a, const Record& b) { return a.index < b.index; });
  std::vector<Record> kept;
  for (const Record& r : records_) {
    if (!kept.empty() && kept.back().index == r.index) continue;
    if (!fits_layout(r)) continue;
    const std::string path = path_for(r.index);
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (ec || size != r.size || file_sha256(path) != r.sha256) {
      log_warn(path + ": missing, truncated or altered since it was finished; it will be made again");
      continue;
    }
    kept.push_back(r);
  }
  records_ = std::move(kept);
  remove_unlisted_files();
  std::lock_guard lock(mutex_);
  return save();
}

void SegmentStore::remove_unlisted_files() const {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    // Ours: segment files, and the temporaries of writers and manifests a killed run left.
    const bool ours = starts_with(name, kSegmentPrefix) || starts_with(name, std::string(".") + kSegmentPrefix) ||
                      starts_with(name, std::string(".") + kManifestName);
    if (!ours) continue;
    const bool listed = std::any_of(records_.begin(), records_.end(),
                                    [&](const Record& r) { return file_name(r.index) == name; });
    if (!listed) fs::remove(entry.path(), ec);
  }
}

Status SegmentStore::save() const {
  nlohmann::json segments = nlohmann::json::array();
  for (const Record& r : records_) {
    segments.push_back({{"index", r.index},
                        {"first_frame", layout_.first_frame + r.index * layout_.segment_frames},
                        {"frames", r.frames},
                        {"output_frames", r.output_frames},
                        {"pts_offset", r.pts_offset},
                        {"file", file_name(r.index)},
                        {"size", r.size},
                        {"sha256", r.sha256}});
  }
  const nlohmann::json j = {{"version", kManifestVersion},       {"fingerprint", fingerprint_hash_},
                            {"first_frame", layout_.first_frame}, {"segment_frames", layout_.segment_frames},
                            {"time_base", {layout_.time_base.num, layout_.time_base.den}},
                            {"end_frame", end_frame_},
                            {"segments", segments}};
  const fs::path manifest = fs::path(dir_) / kManifestName;
  std::string tmp_name(".");
  tmp_name.append(kManifestName).append(".part-").append(std::to_string(::getpid()));
  const fs::path tmp = fs::path(dir_) / tmp_name;
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump(1) << '\n';
    out.flush();
    if (!out) return internal_error(tmp.string() + ": cannot write the segment manifest");
  }
  std::error_code ec;
  fs::rename(tmp, manifest, ec);
  if (ec) return internal_error("cannot rename " + tmp.string() + " to " + manifest.string() + ": " + ec.message());
  return Status::ok();
}

bool SegmentStore::finished(std::int64_t k) const {
  std::lock_guard lock(mutex_);
  return std::any_of(records_.begin(), records_.end(), [&](const Record& r) { return r.index == k; });
}

std::int64_t SegmentStore::finished_frames() const {
  std::lock_guard lock(mutex_);
  std::int64_t n = 0;
  for (const Record& r : records_) n += r.frames;
  return n;
}

std::int64_t SegmentStore::end_frame() const {
  std::lock_guard lock(mutex_);
  return end_frame_;
}

Status SegmentStore::add(std::int64_t k, std::int64_t frames, std::int64_t output_frames, std::int64_t pts_offset) {
  const std::string path = path_for(k);
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return internal_error(path + ": finished segment file is missing (" + ec.message() + ")");
  if (output_frames < 0) {
    return internal_error(path + ": segment " + std::to_string(k) + " holds a negative frame count");
  }
  Record record{k, frames, output_frames, pts_offset, size, file_sha256(path)};
  if (record.sha256.empty()) return internal_error(path + ": cannot read the finished segment back");
  std::lock_guard lock(mutex_);
  if (!fits_layout(record)) {
    return internal_error(path + ": segment " + std::to_string(k) + " holds " + std::to_string(frames) +
                          " frames, which does not fit the segment length or the end of the video");
  }
  std::erase_if(records_, [&](const Record& r) { return r.index == k; });
  records_.insert(std::upper_bound(records_.begin(), records_.end(), record,
                                   [](const Record& a, const Record& b) { return a.index < b.index; }),
                  record);
  return save();
}

Status SegmentStore::set_end(std::int64_t end_frame) {
  std::lock_guard lock(mutex_);
  if (end_frame_ == end_frame) return Status::ok();
  end_frame_ = end_frame;
  std::erase_if(records_, [&](const Record& r) { return !fits_layout(r); });
  return save();
}

Result<std::vector<SegmentFile>> SegmentStore::complete_files() const {
  std::lock_guard lock(mutex_);
  if (end_frame_ < 0) return internal_error(dir_ + ": the segments never reached the end of the video");
  const std::int64_t L = layout_.segment_frames;
  const std::int64_t count = (end_frame_ - layout_.first_frame + L - 1) / L;
  std::vector<SegmentFile> files;
  for (std::int64_t k = 0; k < count; ++k) {
    const auto r = std::find_if(records_.begin(), records_.end(), [&](const Record& x) { return x.index == k; });
    if (r == records_.end()) {
      return internal_error(path_for(k) + ": segment " + std::to_string(k) + " of " + std::to_string(count) +
                            " is not finished; cannot join");
    }
    files.push_back({path_for(k), r->pts_offset, r->output_frames});
  }
  return files;
}

Status SegmentStore::remove_all() {
  std::lock_guard lock(mutex_);
  std::error_code ec;
  for (const Record& r : records_) fs::remove(path_for(r.index), ec);
  records_.clear();
  fs::remove(fs::path(dir_) / kManifestName, ec);
  if (ec) return internal_error(dir_ + ": cannot remove the segment manifest (" + ec.message() + ")");
  fs::remove(dir_, ec);  // only when empty; the caller's other files stay
  return Status::ok();
}

namespace {

// Writes one output from segment packets; the temporary file goes unless commit() succeeded.
class SegmentJoiner {
 public:
  explicit SegmentJoiner(std::string output) : output_(std::move(output)), tmp_(temporary_path_for(output_)) {}
  ~SegmentJoiner() {
    if (committed_) return;
    audio_.reset();
    out_.reset();
    std::error_code ec;
    if (file_opened_) fs::remove(tmp_, ec);
  }

  Status begin(const AVStream* video, const AudioSource& audio);
  // Appends one segment's packets, shifted by its pts_offset (in offset_time_base); kInternal
  // unless they are segment.frames.
  Status copy(const SegmentFile& segment, AVRational offset_time_base);
  Status commit();

 private:
  std::string output_, tmp_;
  OutputFormatPtr out_;
  AVStream* stream_ = nullptr;
  AVCodecParameters* first_ = nullptr;  // owned by out_ (the output stream's copy)
  std::unique_ptr<AudioPump> audio_;
  std::int64_t last_dts_ = AV_NOPTS_VALUE;  // output time base
  bool file_opened_ = false;
  bool committed_ = false;
};

// The best video stream of a segment, or kInvalidInput naming it.
Result<AVStream*> video_stream_of(AVFormatContext* in, const std::string& path) {
  const int index = av_find_best_stream(in, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (index < 0) return invalid_input(path + ": segment has no video stream");
  return in->streams[index];
}

Status SegmentJoiner::begin(const AVStream* video, const AudioSource& audio) {
  const std::string ext = lower_extension(output_);
  const char* muxer = muxer_for_extension(ext);
  if (muxer == nullptr) {
    return invalid_input(output_ + ": unsupported output extension '." + ext + "' (use .mp4, .mkv or .mov)");
  }
  AVFormatContext* raw = nullptr;
  int err = avformat_alloc_output_context2(&raw, nullptr, muxer, tmp_.c_str());
  if (err < 0 || raw == nullptr) return error_status(StatusCode::kInternal, output_, "cannot create the muxer", err);
  out_.reset(raw);
  stream_ = avformat_new_stream(out_.get(), nullptr);
  if (stream_ == nullptr) return out_of_memory(output_ + ": cannot add a video stream");
  err = avcodec_parameters_copy(stream_->codecpar, video->codecpar);
  if (err < 0) return error_status(StatusCode::kInternal, output_, "cannot copy video parameters", err);
  stream_->codecpar->codec_tag = 0;  // the muxer picks its own
  stream_->time_base = video->time_base;
  stream_->avg_frame_rate = video->avg_frame_rate;
  first_ = stream_->codecpar;
  FSWAP_ASSIGN_OR_RETURN(audio_, AudioPump::open(audio, out_.get(), output_));
  err = avio_open(&out_->pb, tmp_.c_str(), AVIO_FLAG_WRITE);
  if (err < 0) return error_status(StatusCode::kInvalidInput, tmp_, "cannot create the output file", err);
  file_opened_ = true;
  err = avformat_write_header(out_.get(), nullptr);
  if (err < 0) return error_status(StatusCode::kInternal, output_, "cannot write the container header", err);
  return Status::ok();
}

Status SegmentJoiner::copy(const SegmentFile& file, AVRational offset_time_base) {
  const std::string& segment = file.path;
  FSWAP_ASSIGN_OR_RETURN(InputFormatPtr in, open_input(segment));
  FSWAP_ASSIGN_OR_RETURN(AVStream * video, video_stream_of(in.get(), segment));
  const AVCodecParameters* p = video->codecpar;
  const bool same = p->codec_id == first_->codec_id && p->width == first_->width && p->height == first_->height &&
                    p->extradata_size == first_->extradata_size &&
                    (p->extradata_size == 0 || std::memcmp(p->extradata, first_->extradata, p->extradata_size) == 0);
  if (!same) {
    return invalid_input(segment + ": encoded with other settings than the first segment; cannot join without " +
                         "re-encoding");
  }
  PacketPtr packet = make_packet();
  if (!packet) return out_of_memory(output_ + ": cannot allocate a packet");
  // Shifted in the segment's own (finer) time base, then rounded once into the output's.
  const std::int64_t offset = av_rescale_q(file.pts_offset, offset_time_base, video->time_base);
  std::int64_t frames = 0;
  while (true) {
    int err = av_read_frame(in.get(), packet.get());
    if (err == AVERROR_EOF) break;
    if (err < 0) return error_status(StatusCode::kInvalidInput, segment, "cannot read the segment", err);
    if (packet->stream_index != video->index) {
      av_packet_unref(packet.get());
      continue;
    }
    if (packet->pts != AV_NOPTS_VALUE) packet->pts += offset;
    if (packet->dts != AV_NOPTS_VALUE) packet->dts += offset;
    av_packet_rescale_ts(packet.get(), video->time_base, stream_->time_base);
    if (packet->dts != AV_NOPTS_VALUE && last_dts_ != AV_NOPTS_VALUE && packet->dts <= last_dts_) {
      av_packet_unref(packet.get());
      return invalid_input(segment + ": its timestamps do not follow the previous segment's");
    }
    if (packet->dts != AV_NOPTS_VALUE) last_dts_ = packet->dts;
    packet->stream_index = stream_->index;
    packet->pos = -1;
    if (audio_ && packet->pts != AV_NOPTS_VALUE) {
      Status s = audio_->write_until(static_cast<double>(packet->pts) * av_q2d(stream_->time_base));
      if (!s.is_ok()) {
        av_packet_unref(packet.get());
        return s;
      }
    }
    err = av_interleaved_write_frame(out_.get(), packet.get());  // takes the packet's reference
    if (err < 0) return error_status(StatusCode::kInternal, tmp_, "cannot write video", err);
    ++frames;
  }
  if (frames != file.frames) {
    return internal_error(segment + ": holds " + std::to_string(frames) + " frames where its manifest says " +
                          std::to_string(file.frames));
  }
  return Status::ok();
}

Status SegmentJoiner::commit() {
  if (audio_) FSWAP_RETURN_IF_ERROR(audio_->finish());
  int err = av_write_trailer(out_.get());
  if (err < 0) return error_status(StatusCode::kInternal, tmp_, "cannot finish the container", err);
  err = avio_closep(&out_->pb);
  if (err < 0) return error_status(StatusCode::kInternal, tmp_, "cannot close the output file", err);
  std::error_code ec;
  fs::rename(tmp_, output_, ec);
  if (ec) return internal_error("cannot rename " + tmp_ + " to " + output_ + ": " + ec.message());
  committed_ = true;
  return Status::ok();
}

}  // namespace

Status join_segments(const std::vector<SegmentFile>& segments, Rational time_base, const std::string& output,
                     const AudioSource& audio) {
  init_logging();
  const auto first = std::find_if(segments.begin(), segments.end(), [](const SegmentFile& s) { return s.frames > 0; });
  if (first == segments.end()) return invalid_input(output + ": no segment with frames to join");
  if (time_base.num <= 0 || time_base.den <= 0) return invalid_input(output + ": segment time base must be positive");
  FSWAP_RETURN_IF_ERROR(check_output_directory(output));
  SegmentJoiner joiner(output);
  {
    FSWAP_ASSIGN_OR_RETURN(InputFormatPtr in, open_input(first->path));
    FSWAP_ASSIGN_OR_RETURN(AVStream * video, video_stream_of(in.get(), first->path));
    FSWAP_RETURN_IF_ERROR(joiner.begin(video, audio));
  }
  std::int64_t frames = 0;
  for (const auto& segment : segments) {
    if (segment.frames == 0) continue;
    FSWAP_RETURN_IF_ERROR(joiner.copy(segment, {time_base.num, time_base.den}));
    frames += segment.frames;
  }
  FSWAP_RETURN_IF_ERROR(joiner.commit());
  log_debug(output + ": joined " + std::to_string(segments.size()) + " segments, " + std::to_string(frames) +
            " frames");
  return Status::ok();
}

}  // namespace fswap
