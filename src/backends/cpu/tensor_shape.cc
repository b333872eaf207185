#include <algorithm>
#include <cmath>
#include <cstring>

#include "backends/cpu/tensor_kernels.h"

namespace fswap::tensor_ops {

Status shape_kernel(const KernelArgs& args) {
  const TensorView& x = args.inputs.at(0);
  const TensorView& y = args.outputs.at(0);
  const auto rank = static_cast<std::int64_t>(x.shape.size());
  auto clamp_index = [rank](std::int64_t i) { return std::clamp<std::int64_t>(i < 0 ? i + rank : i, 0, rank); };
  const std::int64_t start = clamp_index(args.attrs.i("start", 0));
  const std::int64_t end = clamp_index(args.attrs.i("end", rank));
  const std::int64_t n = std::max<std::int64_t>(0, end - start);
  if (y.dtype != DType::kInt64 || y.elements() != n) return op_error(args, "output must be int64 with " + std::to_string(n) + " values");
  for (std::int64_t i = 0; i < n; ++i) y.as<std::int64_t>()[i] = x.shape[static_cast<std::size_t>(start + i)];
  return Status::ok();
}

Status size_kernel(const KernelArgs& args) {
  const TensorView& y = args.outputs.at(0);
  if (y.dtype != DType::kInt64 || y.elements() != 1) return op_error(args, "output must be one int64");
  *y.as<std::int64_t>() = args.inputs.at(0).elements();
  return Status::ok();
}

Status constant_of_shape_kernel(const KernelArgs& args) {
  const TensorView& y = args.outputs.at(0);
  const std::size_t esize = dtype_size(y.dtype);
  std::byte value[8] = {};  // the default: float32 zero, which is all-zero bytes like every zero
  if (const Tensor* v = args.attrs.tensor("value")) {
    if (v->elements() != 1) return op_error(args, "value must hold one element");
    if (v->dtype() != y.dtype)
      return op_error(args, "value dtype " + std::string(dtype_name(v->dtype())) + " differs from the output's " + dtype_name(y.dtype));
    std::memcpy(value, v->raw(), esize);
  } else if (y.dtype != DType::kFloat32) {
    return op_error(args, "without a value attribute the output must be float32");
  }
  auto* out = static_cast<std::byte*>(y.data);
  const std::int64_t n = y.elements();
  bool zero = true;
  for (std::size_t b = 0; b < esize; ++b) zero = zero && value[b] == std::byte{0};
  if (zero) {
    std::memset(out, 0, y.bytes());
  } else {
    parallel_range(n, kElementGrain, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) std::memcpy(out + static_cast<std::size_t>(i) * esize, value, esize);
    });
  }
  return Status::ok();
}

Status constant_kernel(const KernelArgs& args) {
  const TensorView& y = args.outputs.at(0);
  const OpAttributes& a = args.attrs;
  auto write = [&](DType dtype, const void* data, std::size_t count) -> Status {
    if (y.dtype != dtype || static_cast<std::size_t>(y.elements()) != count)
      return op_error(args, "output " + std::string(dtype_name(y.dtype)) + shape_to_string(y.shape) +
                                " does not hold " + std::to_string(count) + " " + dtype_name(dtype) + " values");
    if (count > 0) std::memcpy(y.data, data, y.bytes());
    return Status::ok();
  };
  if (const Tensor* v = a.tensor("value")) return write(v->dtype(), v->raw(), static_cast<std::size_t>(v->elements()));
  if (a.has("value_float")) {
    const float f = a.f("value_float", 0);
    return write(DType::kFloat32, &f, 1);
  }
  if (a.has("value_floats")) {
    const std::vector<float> f = a.floats("value_floats", {});
    return write(DType::kFloat32, f.data(), f.size());
  }
  if (a.has("value_int")) {
    const std::int64_t i = a.i("value_int", 0);
    return write(DType::kInt64, &i, 1);
  }
  if (a.has("value_ints")) {
    const std::vector<std::int64_t> i = a.ints("value_ints", {});
    return write(DType::kInt64, i.data(), i.size());
  }
  return unsupported("Constant: only value, value_float(s) and value_int(s) are supported (not sparse or string values)");
}

namespace {

template <class T>
Status range_typed(const KernelArgs& args, const TensorView& y) {
  for (std::size_t i = 0; i < 3; ++i)
    if (args.inputs.at(i).dtype != y.dtype || args.inputs[i].elements() != 1 || args.inputs[i].data == nullptr)
      return op_error(args, "start, limit and delta must be single values of the output's dtype");
  const T start = *args.inputs[0].as<const T>();
  const T limit = *args.inputs[1].as<const T>();
  const T delta = *args.inputs[2].as<const T>();
  if (delta == 0) return op_error(args, "delta is 0");
  const double count = std::ceil((static_cast<double>(limit) - static_cast<double>(start)) / static_cast<double>(delta));
  if (static_cast<std::int64_t>(std::max(count, 0.0)) != y.elements())
    return op_error(args, "output " + shape_to_string(y.shape) + " does not hold the range's " +
                              std::to_string(static_cast<std::int64_t>(std::max(count, 0.0))) + " values");
  T* out = y.as<T>();
  for (std::int64_t i = 0; i < y.elements(); ++i) out[i] = static_cast<T>(start + static_cast<T>(i) * delta);
  return Status::ok();
}

}  // namespace

Status range_kernel(const KernelArgs& args) {
  const TensorView& y = args.outputs.at(0);
  switch (y.dtype) {
    case DType::kFloat32: return range_typed<float>(args, y);
    case DType::kFloat64: return range_typed<double>(args, y);
    case DType::kInt64: return range_typed<std::int64_t>(args, y);
    case DType::kInt32: return range_typed<std::int32_t>(args, y);
    default: return unsupported_dtype(args, y.dtype);
  }
}

}  // namespace fswap::tensor_ops
