// Face work on a frame kept on the GPU: the FaceFusion processors' crop, model input and output,
// and paste-back as imaging/cuda kernels on the stream of a session's GPU (runtime/device_work.h).
// A frame goes up once and down once however many faces and processors touch it, and a model's
// input and output never visit the host.
//
//   auto held = gpu.hold();
//   FSWAP_ASSIGN_OR_RETURN(DeviceFrame frame, DeviceFrame::upload(gpu, image));
//   FSWAP_ASSIGN_OR_RETURN(DeviceBuffer input, crop_to_planar(frame, frame_to_crop, 512, {.offset = {127.5f, 127.5f, 127.5f},
//                                                                                       .scale = {1 / 127.5f, ...}}));
//   ... session.run_on_device(input) → planar_to_crop(gpu, output, {...}, restored) ...
//   FSWAP_RETURN_IF_ERROR(paste_back(frame, restored, mask, 512, frame_to_crop, /*blend=*/0.8f));
//   FSWAP_ASSIGN_OR_RETURN(auto copy, frame.start_download(image));
//   held.unlock();
//   FSWAP_RETURN_IF_ERROR(copy->wait(image.pixels.data()));
//
// Each step is the GPU twin of a host one and agrees with it to float rounding (the paste-back's
// uint8 result within one level): warp_affine (kReplicate) + image_to_nchw (face/model_input.h),
// nchw_to_image / face_swapper_output_to_crop, paste_back + face_enhancer_blend (face/paste_back.h,
// face/enhancer.h). Every call needs the GPU's hold(). Builds without CUDA have no device path:
// device_face_built() is false and every call is kUnsupported.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <optional>

#include "core/status.h"
#include "core/time_ledger.h"
#include "imaging/geometry.h"
#include "imaging/cuda/cuda_imaging.h"
#include "imaging/image.h"
#include "runtime/device_work.h"

namespace fswap {

// Whether this build has the CUDA kernels behind these functions.
bool device_face_built();

// A DeviceBuffer kept from one hold() to the next (a processor's source tensor or mask): freed
// under its GPU's hold when it goes, so never destroy one while this thread holds that GPU.
class KeptBuffer {
 public:
  KeptBuffer() = default;
  KeptBuffer(DeviceWork& gpu, DeviceBuffer buffer) : gpu_(&gpu), buffer_(std::move(buffer)) {}
  ~KeptBuffer();
  KeptBuffer(KeptBuffer&& other) noexcept : gpu_(other.gpu_), buffer_(std::move(other.buffer_)) { other.gpu_ = nullptr; }
  KeptBuffer& operator=(KeptBuffer&& other) noexcept;
  KeptBuffer(const KeptBuffer&) = delete;
  KeptBuffer& operator=(const KeptBuffer&) = delete;

  bool empty() const { return gpu_ == nullptr; }
  const DeviceBuffer& get() const { return buffer_; }

 private:
  DeviceWork* gpu_ = nullptr;
  DeviceBuffer buffer_;
};

// An RGB frame, or a rectangle of one (a face's region), in device memory (rows packed: pitch =
// width · 3), kept from one hold() to the next while processors work on it: like KeptBuffer,
// never destroy one while holding its GPU.
class DeviceFrame {
 public:
  // The whole of `rgb`, under the GPU's hold.
  static Result<DeviceFrame> upload(DeviceWork& gpu, const Image& rgb);
  // The rectangle `part` of `rgb` (non-empty, inside it), copied from the frame's rows as they are.
  static Result<DeviceFrame> upload(DeviceWork& gpu, const Image& rgb, const Rect& part);
  // Starts copying the device rows back after the work issued on the stream (under the hold); its
  // wait(rgb.pixels.data() + offset_in(rgb), layout_in(rgb)) needs no hold. kInvalidInput unless
  // `rgb` has the size of the frame it came from.
  Result<std::unique_ptr<DeviceWork::PendingDownload>> start_download(const Image& rgb) const;
  // Where its rows lie in the host frame it came from: the first byte's index in rgb.pixels, and
  // the rows from there.
  std::size_t offset_in(const Image& rgb) const;
  HostRows layout_in(const Image& rgb) const;

  DeviceWork& gpu() const { return *gpu_; }
  void* data() const { return buffer_.get().data(); }
  int width() const { return part_.width; }
  int height() const { return part_.height; }
  const Rect& part() const { return part_; }  // of the host frame

 private:
  DeviceWork* gpu_ = nullptr;
  KeptBuffer buffer_;
  Rect part_;                          // of the host frame
  int frame_width_ = 0, frame_height_ = 0;  // the host frame's
};

// A frame's way back from the GPU in two halves, so that the thread that issued the frame's work
// need not wait for it: begin() starts the copy after the work issued so far and frees the
// device copy (after the copy); finish(), on any thread, waits for it and writes the rows into the
// frame, which may have moved in between (only its pixels are written, where begin found them).
// Neither half may be called holding the GPU.
class FrameDownload {
 public:
  FrameDownload() = default;  // none: finish() does nothing
  // The frame's part on the GPU back into `frame`, when it is there (on_gpu set; reset here).
  static Result<FrameDownload> begin(const Image& frame, std::optional<DeviceFrame>& on_gpu);
  // Records "download" in the ledger (null: none). `frame` must be the one begin() was given.
  Status finish(Image& frame, TimeLedger* ledger);

 private:
  std::unique_ptr<DeviceWork::PendingDownload> copy_;
  std::size_t offset_ = 0;
  HostRows layout_;
};

// Both halves of FrameDownload in turn: brings a frame (or the part of it on the GPU) back into
// `frame`, when it is there (on_gpu set), and frees its device copy. The caller must not hold the
// GPU: the wait for the GPU's work on the frame holds nothing, so other threads issue work
// meanwhile. Records "download" in the ledger (null: none).
Status frame_to_host(Image& frame, std::optional<DeviceFrame>& on_gpu, TimeLedger* ledger);

// Host data copied into a new device buffer.
Result<DeviceBuffer> upload_buffer(DeviceWork& gpu, const void* data, std::size_t bytes);

// A model input [1, 3, size, size] float32, planar, from an RGB crop: (v · pre_scale − offset[c]) ·
// scale[c] (image_to_nchw: pre_scale 1; the swappers': 1/255, mean, 1/std). A model output back
// to an RGB crop in 0..255 (float, HWC): (clamp(v · gain[c] + bias[c], low, high) − low) /
// (high − low) · 255, rounded half to even when `round` (nchw_to_image: gain 1, bias 0; the
// swappers': std, mean, 0..1). Both from imaging/cuda.
using PlanarInput = cuda_imaging::ToPlanar;
using PlanarOutput = cuda_imaging::FromPlanar;

// The size × size crop of `frame` through frame_to_crop (bilinear, replicated borders), as a
// model input.
Result<DeviceBuffer> crop_to_planar(const DeviceFrame& frame, const Affine& frame_to_crop, int size,
                                    const PlanarInput& map);
// A model output of `size` (its device tensor) into `crop`: size² · 3 floats.
Status planar_to_crop(DeviceWork& gpu, const DeviceTensor& output, const PlanarOutput& map, const DeviceBuffer& crop);

// paste_back(frame, crop, mask, frame_to_crop) then face_enhancer_blend with blend (0..1) over
// the pasted rectangle; blend 1 is paste_back alone. crop: size² · 3 floats 0..255, mask: size²
// floats, both HWC.
Status paste_back(const DeviceFrame& frame, const DeviceBuffer& crop, const DeviceBuffer& mask, int size,
                  const Affine& frame_to_crop, float blend);

}  // namespace fswap
