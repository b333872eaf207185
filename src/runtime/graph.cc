#include "runtime/graph.h"

namespace fswap {

int Graph::find_value(std::string_view name) const {
  for (std::size_t i = 0; i < values.size(); ++i)
    if (values[i].name == name) return static_cast<int>(i);
  return -1;
}

int Graph::add_value(std::string name, DType dtype) {
  Value v;
  v.name = std::move(name);
  v.dtype = dtype;
  values.push_back(std::move(v));
  return static_cast<int>(values.size()) - 1;
}

int Graph::add_value(std::string name, DType dtype, Shape shape) {
  const int id = add_value(std::move(name), dtype);
  values.back().shape = std::move(shape);
  values.back().known_shape = true;
  return id;
}

const Tensor* Graph::constant_data(int value) const {
  if (value < 0 || value >= static_cast<int>(values.size())) return nullptr;
  const Value& v = values[value];
  if (v.weight >= 0) return weights[v.weight].data.get();
  if (v.constant >= 0) return &constants[v.constant];
  return nullptr;
}

std::size_t Graph::weight_bytes() const {
  std::size_t total = 0;
  for (const auto& w : weights) total += w.data->bytes();
  return total;
}

}  // namespace fswap
