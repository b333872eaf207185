// Tensor: an owned, dense, row-major buffer with a dtype and a shape; what engines take and give.
//
//   Tensor t = Tensor::zeros(DType::kFloat32, {1, 3, 240, 320});
//   float* p = t.data<float>();
//
// Host memory only (device tensors belong to the memory layer). Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace fswap {

enum class DType { kFloat32, kFloat16, kInt64, kInt32, kUInt8, kInt8, kBool, kFloat64 };

std::size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

using Shape = std::vector<std::int64_t>;

std::int64_t shape_elements(const Shape& shape);
std::string shape_to_string(const Shape& shape);  // "[1,3,240,320]"

// A non-owning view of dense row-major data: what kernels read and write. The memory belongs
// to a Tensor or to an arena of the executor's plan. Copyable, no ownership.
struct TensorView {
  DType dtype = DType::kFloat32;
  Shape shape;
  void* data = nullptr;  // nullptr: an absent optional input
  std::int64_t elements() const { return shape_elements(shape); }
  std::size_t bytes() const { return static_cast<std::size_t>(elements()) * dtype_size(dtype); }
  template <class T>
  T* as() const { return static_cast<T*>(data); }
};

class Tensor {
 public:
  Tensor() = default;
  static Tensor zeros(DType dtype, Shape shape);

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  std::int64_t elements() const { return shape_elements(shape_); }
  std::size_t bytes() const { return bytes_.size(); }

  // Typed access; T must match dtype (checked).
  template <class T>
  T* data() {
    check_type(sizeof(T));
    return reinterpret_cast<T*>(bytes_.data());
  }
  template <class T>
  const T* data() const {
    check_type(sizeof(T));
    return reinterpret_cast<const T*>(bytes_.data());
  }
  TensorView view() { return {dtype_, shape_, bytes_.data()}; }
  // Read-only by contract: kernels never write their inputs.
  TensorView view() const { return {dtype_, shape_, const_cast<std::byte*>(bytes_.data())}; }
  // A copy of the viewed data.
  static Tensor copy_of(const TensorView& v);
  void* raw() { return bytes_.data(); }
  const void* raw() const { return bytes_.data(); }

 private:
  void check_type(std::size_t element_size) const;

  DType dtype_ = DType::kFloat32;
  Shape shape_;
  std::vector<std::byte> bytes_;
};

// Batches along dim 0 (copies): items [begin, begin + count) of t; the parts joined in order
// (their dtype and other dims equal).
Tensor batch_slice(const Tensor& t, std::int64_t begin, std::int64_t count);
Tensor batch_concat(const std::vector<const Tensor*>& parts);

}  // namespace fswap
