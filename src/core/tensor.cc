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

Tensor batch_slice(const Tensor& t, std::int64_t begin, std::int64_t count) {
  Shape shape = t.shape();
  const std::size_t item = t.bytes() / static_cast<std::size_t>(shape[0]);
  shape[0] = count;
  Tensor out = Tensor::zeros(t.dtype(), shape);
  std::memcpy(out.raw(), static_cast<const std::byte*>(t.raw()) + static_cast<std::size_t>(begin) * item, out.bytes());
  return out;
}

Tensor batch_concat(const std::vector<const Tensor*>& parts) {
  Shape shape = parts.front()->shape();
  shape[0] = 0;
  for (const Tensor* p : parts) shape[0] += p->shape()[0];
  Tensor out = Tensor::zeros(parts.front()->dtype(), shape);
  auto* dst = static_cast<std::byte*>(out.raw());
  for (const Tensor* p : parts) {
    std::memcpy(dst, p->raw(), p->bytes());
    dst += p->bytes();
  }
  return out;
}

void Tensor::check_type(std::size_t element_size) const {
  FSWAP_CHECK(element_size == dtype_size(dtype_), std::string("tensor of ") + dtype_name(dtype_) +
                                                      " accessed with an element of another size");
}

}  // namespace fswap
