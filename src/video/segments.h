// Segmented video output: a directory of finished segment files with a manifest, and the join
// that copies their packets into one output (no re-encode) with the target's audio.
// run_swap uses it for resumable jobs and for splitting a video over several devices.
//
//   FSWAP_ASSIGN_OR_RETURN(auto store, SegmentStore::open(dir, {fingerprint, first, 300, {1, 30}}));
//   for each segment k not store->finished(k):
//     write its frames with VideoWriter::open(store->path_for(k), ...), pts from 0, and finish();
//     FSWAP_RETURN_IF_ERROR(store->add(k, frames, output_frames, pts_offset));  // manifest rewritten atomically
//   at the end of the input: FSWAP_RETURN_IF_ERROR(store->set_end(end_frame));
//   FSWAP_ASSIGN_OR_RETURN(auto files, store->complete_files());
//   FSWAP_RETURN_IF_ERROR(join_segments(files, store->layout().time_base, "out.mkv", audio));
//   FSWAP_RETURN_IF_ERROR(store->remove_all());
//
// Segment files are MP4 whatever the output's container: MP4 keeps every packet's pts and dts
// exactly, while Matroska rounds to milliseconds and drops dts, and a file whose first pts is
// not 0 gets its start rounded to the movie's 1/1000 s time scale by MP4/MOV edit lists. So each
// segment's timestamps start at 0 and its place in the output (pts_offset, in the layout's
// time base) is kept in the manifest. With --output-video-fps a segment's file holds the frames
// the output shows at that rate (output_frames, maybe 0) and the layout's time base is one tick
// of the output rate.
// Layout of the directory: segment-00000.mp4, segment-00001.mp4, ... and manifest.json:
//   {"version":1, "fingerprint":"<sha256 of the job's description>", "first_frame":F,
//    "segment_frames":L, "time_base":[num,den], "end_frame":E or -1 (not reached yet),
//    "segments":[{"index":k, "first_frame":F+k*L, "frames":n, "output_frames":m, "pts_offset":t,
//                 "file":"segment-0000k.mp4", "size":bytes, "sha256":"<hex>"}, ...]}
// Segment k holds frames [F + k·L, F + k·L + n) of the target, n = L except for the last.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"
#include "video/media.h"

namespace fswap {

// What a segment directory is for; a manifest that disagrees on any of these is stale.
struct SegmentLayout {
  std::string fingerprint;            // any text describing the job (stored as its SHA-256)
  std::int64_t first_frame = 0;       // the first frame of segment 0, in the target
  std::int64_t segment_frames = 0;    // L, ≥ 1
  Rational time_base;                 // unit of the segments' pts_offset (the target's stream, or
                                      // one tick of --output-video-fps)
};

// A finished segment to join: its file, where its timestamps (from 0) go in the output and how
// many video frames it holds.
struct SegmentFile {
  std::string path;
  std::int64_t pts_offset = 0;  // in SegmentLayout::time_base
  std::int64_t frames = 0;      // video frames (packets) in the file; 0: the output shows none of its frames
};

// Thread-safe: parts running on several threads may add segments at once.
class SegmentStore {
 public:
  // Opens `dir` (created when missing) and reads its manifest. Kept: each recorded segment whose
  // layout fits (index, first frame, a full length unless it ends at end_frame) and whose file
  // still has the recorded size and SHA-256. Everything else is dropped and its file removed:
  // a manifest of another fingerprint or layout (logged at info), an unreadable manifest or a
  // corrupt segment (logged as a warning), and leftovers of a killed run (segment files the
  // manifest does not list, temporary files). Errors: the directory cannot be created or
  // written (kInvalidInput naming it).
  static Result<std::unique_ptr<SegmentStore>> open(const std::string& dir, const SegmentLayout& layout);

  const std::string& dir() const { return dir_; }
  const SegmentLayout& layout() const { return layout_; }
  // "<dir>/segment-<k, 5 digits>.mp4": where segment k is written.
  std::string path_for(std::int64_t k) const;
  // Segment k is recorded as finished.
  bool finished(std::int64_t k) const;
  // Frames in finished segments.
  std::int64_t finished_frames() const;
  // One past the target's last frame of the job, once a run has reached it; -1 before.
  std::int64_t end_frame() const;

  // Records segment k, whose file is complete at path_for(k): made from `frames` frames of the
  // target, holding output_frames video frames (as many without --output-video-fps) whose pts
  // start at 0 and belong at pts_offset (layout time base) in the output. Hashes the file and
  // rewrites the manifest (a temporary file renamed over manifest.json, so a crash leaves the old
  // or the new one). kInternal when the file is missing, the frame count does not fit the layout
  // or the manifest cannot be written.
  Status add(std::int64_t k, std::int64_t frames, std::int64_t output_frames, std::int64_t pts_offset);
  // Records where the job's frames end (the input's end or the trim end) and rewrites the manifest.
  Status set_end(std::int64_t end_frame);
  // Segments 0..K in order, when they cover [first_frame, end_frame) without a gap; kInternal
  // naming the first missing segment otherwise (or that the end was never reached).
  Result<std::vector<SegmentFile>> complete_files() const;
  // Removes the segment files and the manifest, and the directory when that leaves it empty.
  Status remove_all();

 private:
  struct Record {
    std::int64_t index = 0;
    std::int64_t frames = 0;
    std::int64_t output_frames = 0;
    std::int64_t pts_offset = 0;
    std::uint64_t size = 0;
    std::string sha256;
  };
  SegmentStore(std::string dir, SegmentLayout layout, std::string fingerprint_hash);
  Status load();
  Status save() const;  // with mutex_ held
  std::string file_name(std::int64_t k) const;
  bool fits_layout(const Record& r) const;
  void remove_unlisted_files() const;

  std::string dir_;
  SegmentLayout layout_;
  std::string fingerprint_hash_;
  mutable std::mutex mutex_;
  std::vector<Record> records_;  // sorted by index
  std::int64_t end_frame_ = -1;
};

// Copies the video packets of `segments` (in order; each a video-only file as VideoWriter writes
// it, its timestamps shifted by its pts_offset in `time_base`) into `output` and adds the audio of
// `audio` over the whole range, interleaved as VideoWriter does; the container comes from the
// output's extension (.mp4, .mkv, .mov). Segments of 0 frames add nothing and are not opened; the
// output's stream takes its parameters from the first segment with frames.
// Written to a temporary sibling and renamed onto `output`: on any error nothing is left there.
// Errors: no segment with frames (kInvalidInput), a segment that cannot be read (kInvalidInput
// naming it), one whose codec, size or codec headers differ from the first's ("encoded with other
// settings", kInvalidInput), or whose timestamps do not follow the previous segment's
// (kInvalidInput), or a segment holding other than its `frames` frames (kInternal: it disagrees
// with its manifest).
Status join_segments(const std::vector<SegmentFile>& segments, Rational time_base, const std::string& output,
                     const AudioSource& audio);

// Lower-case hex SHA-256 of `bytes` (FFmpeg's implementation).
std::string sha256_hex(const std::string& bytes);

}  // namespace fswap
