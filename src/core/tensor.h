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

enum class DType { kFloat32, kFloat16, kInt64, kInt32, kUInt8 };

std::size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);

using Shape = std::vector<std::int64_t>;

std::int64_t shape_elements(const Shape& shape);
std::string shape_to_string(const Shape& shape);  // "[1,3,240,320]"

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
  void* raw() { return bytes_.data(); }
  const void* raw() const { return bytes_.data(); }

 private:
  void check_type(std::size_t element_size) const;

  DType dtype_ = DType::kFloat32;
  Shape shape_;
  std::vector<std::byte> bytes_;
};

}  // namespace fswap
