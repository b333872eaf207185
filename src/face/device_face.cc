#include "face/device_face.h"

#include <utility>

#include "face/paste_back.h"

namespace fswap {

KeptBuffer::~KeptBuffer() {
  if (gpu_ == nullptr) return;
  auto held = gpu_->hold();
  buffer_ = DeviceBuffer();
}

KeptBuffer& KeptBuffer::operator=(KeptBuffer&& other) noexcept {
  if (this != &other) {
    KeptBuffer gone(std::move(*this));
    gpu_ = std::exchange(other.gpu_, nullptr);
    buffer_ = std::move(other.buffer_);
  }
  return *this;
}

Result<FrameDownload> FrameDownload::begin(const Image& frame, std::optional<DeviceFrame>& on_gpu) {
  FrameDownload d;
  if (!on_gpu) return d;
  auto copy = [&] {
    auto held = on_gpu->gpu().hold();
    return on_gpu->start_download(frame);
  }();
  d.offset_ = on_gpu->offset_in(frame);
  d.layout_ = on_gpu->layout_in(frame);
  on_gpu.reset();  // not under the hold: a DeviceFrame frees itself under it, after the copy
  FSWAP_ASSIGN_OR_RETURN(d.copy_, std::move(copy));
  return d;
}

Status FrameDownload::finish(Image& frame, TimeLedger* ledger) {
  if (!copy_) return Status::ok();
  ScopedTimer t(ledger, "download");
  const Status s = copy_->wait(frame.pixels.data() + offset_, layout_);
  copy_.reset();
  return s;
}

Status frame_to_host(Image& frame, std::optional<DeviceFrame>& on_gpu, TimeLedger* ledger) {
  FSWAP_ASSIGN_OR_RETURN(FrameDownload download, FrameDownload::begin(frame, on_gpu));
  return download.finish(frame, ledger);
}

Result<DeviceBuffer> upload_buffer(DeviceWork& gpu, const void* data, std::size_t bytes) {
  FSWAP_ASSIGN_OR_RETURN(DeviceBuffer buffer, gpu.allocate(bytes));
  FSWAP_RETURN_IF_ERROR(gpu.upload(buffer.data(), data, HostRows::contiguous(bytes)));
  return buffer;
}

Result<DeviceFrame> DeviceFrame::upload(DeviceWork& gpu, const Image& rgb) {
  return upload(gpu, rgb, Rect{0, 0, rgb.width, rgb.height});
}

Result<DeviceFrame> DeviceFrame::upload(DeviceWork& gpu, const Image& rgb, const Rect& part) {
  if (rgb.channels != 3 || rgb.empty()) return invalid_input("a device frame must be a non-empty RGB image");
  if (part.empty() || intersect(part, Rect{0, 0, rgb.width, rgb.height}) != part)
    return invalid_input("a device frame's part must be a non-empty rectangle inside the host frame");
  DeviceFrame frame;
  frame.gpu_ = &gpu;
  frame.part_ = part;
  frame.frame_width_ = rgb.width;
  frame.frame_height_ = rgb.height;
  const HostRows layout = frame.layout_in(rgb);
  FSWAP_ASSIGN_OR_RETURN(DeviceBuffer buffer, gpu.allocate(layout.bytes()));
  FSWAP_RETURN_IF_ERROR(gpu.upload(buffer.data(), rgb.pixels.data() + frame.offset_in(rgb), layout));
  frame.buffer_ = KeptBuffer(gpu, std::move(buffer));
  return frame;
}

std::size_t DeviceFrame::offset_in(const Image& rgb) const {
  return (static_cast<std::size_t>(part_.y) * rgb.width + part_.x) * 3;
}

HostRows DeviceFrame::layout_in(const Image& rgb) const {
  return {static_cast<std::uint64_t>(part_.width) * 3, static_cast<std::uint64_t>(rgb.width) * 3,
          static_cast<std::uint64_t>(part_.height)};
}

Result<std::unique_ptr<DeviceWork::PendingDownload>> DeviceFrame::start_download(const Image& rgb) const {
  if (rgb.width != frame_width_ || rgb.height != frame_height_ || rgb.channels != 3)
    return invalid_input("the host frame differs in size from the device frame's");
  return gpu_->download_later(data(), layout_in(rgb).bytes());
}

#if FSWAP_HAS_CUDA

namespace {

cuda_imaging::DeviceImage view(const DeviceFrame& frame) {
  return {static_cast<std::uint8_t*>(frame.data()), frame.width(), frame.height(), 3,
          static_cast<std::size_t>(frame.width()) * 3};
}

cuda_imaging::DeviceImageF crop_view(const DeviceBuffer& buffer, int size, int channels) {
  return {static_cast<float*>(buffer.data()), size, size, channels,
          static_cast<std::size_t>(size) * channels * sizeof(float)};
}

}  // namespace

bool device_face_built() { return true; }

Result<DeviceBuffer> crop_to_planar(const DeviceFrame& frame, const Affine& frame_to_crop, int size,
                                    const PlanarInput& map) {
  DeviceWork& gpu = frame.gpu();
  const std::size_t pixels = static_cast<std::size_t>(size) * size;
  FSWAP_ASSIGN_OR_RETURN(DeviceBuffer crop, gpu.allocate(pixels * 3));
  FSWAP_ASSIGN_OR_RETURN(DeviceBuffer planar, gpu.allocate(pixels * 3 * sizeof(float)));
  const cuda_imaging::DeviceImage crop_image{static_cast<std::uint8_t*>(crop.data()), size, size, 3,
                                             static_cast<std::size_t>(size) * 3};
  FSWAP_RETURN_IF_ERROR(cuda_imaging::warp_affine(view(frame), frame_to_crop, crop_image, Border::kReplicate, gpu.stream()));
  FSWAP_RETURN_IF_ERROR(cuda_imaging::planar_from_image(crop_image, map, static_cast<float*>(planar.data()), gpu.stream()));
  return planar;
}

Status planar_to_crop(DeviceWork& gpu, const DeviceTensor& output, const PlanarOutput& map, const DeviceBuffer& crop) {
  const Shape& s = output.shape;
  if (output.dtype != DType::kFloat32 || s.size() != 4 || s[0] != 1 || s[1] != 3 || s[2] != s[3])
    return invalid_input("a model's output " + shape_to_string(s) + " is not one square float32 RGB crop [1,3,S,S]");
  const int size = static_cast<int>(s[2]);
  if (crop.bytes() < static_cast<std::uint64_t>(size) * size * 3 * sizeof(float))
    return invalid_input("the crop buffer is smaller than the model's output");
  return cuda_imaging::image_from_planar(static_cast<const float*>(output.data), map, crop_view(crop, size, 3),
                                         gpu.stream());
}

Status paste_back(const DeviceFrame& frame, const DeviceBuffer& crop, const DeviceBuffer& mask, int size,
                  const Affine& frame_to_crop, float blend) {
  const Rect region = paste_rect(frame.width(), frame.height(), size, size, frame_to_crop);
  if (region.empty()) return Status::ok();
  return cuda_imaging::paste_back(view(frame), crop_view(crop, size, 3), crop_view(mask, size, 1), frame_to_crop, region,
                                  blend, frame.gpu().stream());
}

#else

namespace {
Status not_built() { return unsupported("this build of fswap has no CUDA kernels for face work"); }
}  // namespace

bool device_face_built() { return false; }
Result<DeviceBuffer> crop_to_planar(const DeviceFrame&, const Affine&, int, const PlanarInput&) { return not_built(); }
Status planar_to_crop(DeviceWork&, const DeviceTensor&, const PlanarOutput&, const DeviceBuffer&) { return not_built(); }
Status paste_back(const DeviceFrame&, const DeviceBuffer&, const DeviceBuffer&, int, const Affine&, float) {
  return not_built();
}

#endif

}  // namespace fswap
