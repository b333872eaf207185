// DeviceWork: work of our own on the GPU a native CUDA session runs on, beside its model runs: device
// buffers charged to the session's VRAM budget, host⇄device copies, and the stream the models run
// on. With InferenceSession::run_on_device, a caller keeps frames, crops and model tensors on the
// GPU: its kernels (imaging/cuda) and the model runs are ordered on one stream, and nothing goes
// back to the host until it asks for it.
//
//   DeviceWork* gpu = session->device_work();        // null: the session runs host tensors only
//   auto held = gpu->hold();                          // the device's lock, its GPU current here
//   FSWAP_ASSIGN_OR_RETURN(DeviceBuffer crop, gpu->allocate(3 * 128 * 128 * sizeof(float)));
//   ... kernels on gpu->stream() write crop.data() ...
//   FSWAP_RETURN_IF_ERROR(session->run_on_device({{crop.data(), DType::kFloat32, {1, 3, 128, 128}}},
//       [&](std::span<const DeviceTensor> outputs) { ...kernels reading outputs[0].data...; return Status::ok(); }));
//   FSWAP_ASSIGN_OR_RETURN(auto copy, gpu->download_later(crop.data(), bytes));
//   held.unlock();
//   FSWAP_RETURN_IF_ERROR(copy->wait(host, HostRows::contiguous(bytes)));  // the stream's work, then the copy
//
// Every call here and every kernel a caller enqueues on stream() needs a live hold(): a device's
// sessions share its stream, its budget and its scratch, and hold() serialises them (one thread
// issues work to a device at a time). The header needs no CUDA headers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>

#include "core/status.h"
#include "core/tensor.h"

struct CUstream_st;

namespace fswap {

// A tensor in device memory, row-major like Tensor.
struct DeviceTensor {
  void* data = nullptr;
  DType dtype = DType::kFloat32;
  Shape shape;
};

// Host bytes as `rows` rows of `row_bytes`, `stride` bytes apart: a rectangle of a larger image
// (a face's region of a frame) copied to or from packed device rows without a host copy of its
// own. Contiguous bytes are one row.
struct HostRows {
  std::uint64_t row_bytes = 0, stride = 0, rows = 1;
  static HostRows contiguous(std::uint64_t bytes) { return {bytes, bytes, 1}; }
  std::uint64_t bytes() const { return row_bytes * rows; }
};

// Device memory charged to the budget, freed (after the work issued so far) when destroyed.
class DeviceBuffer {
 public:
  class Owner {
   public:
    virtual ~Owner() = default;
  };
  DeviceBuffer() = default;
  DeviceBuffer(void* data, std::uint64_t bytes, std::unique_ptr<Owner> owner)
      : data_(data), bytes_(bytes), owner_(std::move(owner)) {}
  void* data() const { return data_; }
  std::uint64_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  std::uint64_t bytes_ = 0;
  std::unique_ptr<Owner> owner_;  // frees on destruction; destroy it under the device's hold()
};

class DeviceWork {
 public:
  virtual ~DeviceWork() = default;
  // Locks the device for the caller and makes its GPU current on this thread, until released.
  virtual std::unique_lock<std::mutex> hold() = 0;
  // The stream the models run on: kernels enqueued on it are ordered with the runs.
  virtual CUstream_st* stream() = 0;
  // `bytes` of device memory from the budget (other models' weights are evicted for room);
  // kOutOfMemory when even that leaves too little. Usable at once by work on stream().
  virtual Result<DeviceBuffer> allocate(std::uint64_t bytes) = 0;
  // Copies the host rows → device (packed: rows.bytes()) on stream(), after the work issued so far
  // and before the work issued afterwards; the host does not wait for the stream (the bytes are
  // staged in pinned memory), and `host` may be reused when the call returns.
  virtual Status upload(void* device, const void* host, HostRows rows) = 0;
  // A device → host copy under way (download_later). wait() needs no hold, so other threads can
  // issue work to the device while this one waits for its copy.
  class PendingDownload {
   public:
    virtual ~PendingDownload() = default;
    // Waits for the copy and leaves its bytes in the host rows (rows.bytes() must be what
    // download_later was given: kInvalidInput otherwise, nothing written).
    virtual Status wait(void* host, HostRows rows) = 0;
  };
  // Starts copying device → host (into pinned staging) after the work issued on stream() so far.
  virtual Result<std::unique_ptr<PendingDownload>> download_later(const void* device, std::uint64_t bytes) = 0;
  // Gives back the device memory the runs keep between them beside the weights (the lanes'
  // activation buffers, weight rings and kernel workspaces, sized for the largest runs so far), for
  // an allocation of the caller's that finds no room: the next run allocates its own again.
  virtual Status release_scratch() = 0;
  // download_later, then wait.
  Status download(void* host, const void* device, std::uint64_t bytes) {
    FSWAP_ASSIGN_OR_RETURN(std::unique_ptr<PendingDownload> copy, download_later(device, bytes));
    return copy->wait(host, HostRows::contiguous(bytes));
  }
};

// Reads a run's outputs on the device (InferenceSession::run_on_device).
using DeviceOutputsFn = std::function<Status(std::span<const DeviceTensor> outputs)>;

}  // namespace fswap
