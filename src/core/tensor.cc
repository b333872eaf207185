#include "core/tensor.h"

#include <cstring>

namespace fswap {

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return 4;
    case DType::kFloat16: return 2;
    case DType::kInt64: return 8;
    case DType::kInt32: return 4;
    case DType::kUInt8: return 1;
    case DType::kInt8: return 1;
    case DType::kBool: return 1;
    case DType::kFloat64: return 8;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kFloat16: return "float16";
    case DType::kInt64: return "int64";
    case DType::kInt32: return "int32";
    case DType::kUInt8: return "uint8";
    case DType::kInt8: return "int8";
    case DType::kBool: return "bool";
    case DType::kFloat64: return "float64";
  }
  return "unknown";
}

std::int64_t shape_elements(const Shape& shape) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::string shape_to_string(const Shape& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

Tensor Tensor::zeros(DType dtype, Shape shape) {
  FSWAP_CHECK(shape_elements(shape) >= 0, "negative dimension in " + shape_to_string(shape));
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.bytes_.assign(static_cast<std::size_t>(t.elements()) * dtype_size(dtype), std::byte{0});
  return t;
}

Tensor Tensor::copy_of(const TensorView& v) {
  Tensor t = zeros(v.dtype, v.shape);
  if (t.bytes() && v.data) std::memcpy(t.bytes_.data(), v.data, t.bytes());
  return t;
}

void Tensor::check_type(std::size_t element_size) const {
  FSWAP_CHECK(element_size == dtype_size(dtype_), std::string("tensor of ") + dtype_name(dtype_) +
                                                      " accessed with an element of another size");
}

}  // namespace fswap
