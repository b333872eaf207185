#include "onnx/onnx_loader.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <queue>
#include <span>
#include <unordered_map>
#include <unordered_set>

#include "core/parallel.h"
#include "onnx/mapped_model.h"
#include "onnx/onnx.pb.h"
#include "runtime/shape_inference.h"

namespace fswap {
namespace {

namespace fs = std::filesystem;

Status read_external(const onnx::TensorProto& t, const fs::path& model_dir, const std::string& where,
                     Tensor& out) {
  std::string location;
  std::int64_t offset = 0, length = -1;
  for (const auto& kv : t.external_data()) {
    if (kv.key() == "location") location = kv.value();
    else if (kv.key() == "offset") offset = std::stoll(kv.value());
    else if (kv.key() == "length") length = std::stoll(kv.value());
  }
  if (location.empty()) return invalid_input(where + ": external data without a location");
  const fs::path rel(location);
  // The ONNX spec keeps external files inside the model's folder; refuse anything else.
  if (rel.is_absolute()) return invalid_input(where + ": external data location '" + location + "' must be relative");
  for (const auto& part : rel)
    if (part == "..") return invalid_input(where + ": external data location '" + location + "' leaves the model's folder");
  const fs::path file = model_dir / rel;
  std::error_code ec;
  const auto file_size = static_cast<std::int64_t>(fs::file_size(file, ec));
  if (ec) return not_found(where + ": external data file " + file.string() + " is missing");
  const auto want = static_cast<std::int64_t>(out.bytes());
  if (length < 0) length = file_size - offset;
  if (length != want)
    return invalid_input(where + ": external data holds " + std::to_string(length) + " bytes, the tensor needs " +
                         std::to_string(want));
  if (offset < 0 || offset + length > file_size)
    return invalid_input(where + ": external data range [" + std::to_string(offset) + ", " +
                         std::to_string(offset + length) + ") lies outside " + file.string());
  std::ifstream in(file, std::ios::binary);
  in.seekg(offset);
  in.read(static_cast<char*>(out.raw()), length);
  if (!in) return invalid_input(where + ": cannot read external data from " + file.string());
  return Status::ok();
}

template <class Dst, class Field>
Status copy_typed(const Field& field, Tensor& out, const std::string& where) {
  if (static_cast<std::int64_t>(field.size()) != out.elements())
    return invalid_input(where + ": holds " + std::to_string(field.size()) + " values, its shape needs " +
                         std::to_string(out.elements()));
  auto* dst = static_cast<Dst*>(out.raw());
  for (int i = 0; i < field.size(); ++i) dst[i] = static_cast<Dst>(field.Get(i));
  return Status::ok();
}

// raw: the tensor's raw_data when the caller holds it apart from the message (MappedModel), else
// nullopt and t's own raw_data, if any, is read.
Result<Tensor> tensor_from_proto(const onnx::TensorProto& t, const fs::path& model_dir, const std::string& where,
                                 std::optional<std::span<const std::byte>> raw = std::nullopt) {
  auto dtype = dtype_from_onnx(t.data_type());
  if (!dtype) return unsupported(where + ": " + dtype.status().message());
  if (t.has_segment()) return unsupported(where + ": segmented tensors are not supported");
  Shape shape(t.dims().begin(), t.dims().end());
  for (auto d : shape)
    if (d < 0) return invalid_input(where + ": negative dimension in " + shape_to_string(shape));
  Tensor out = Tensor::zeros(*dtype, shape);
  if (t.data_location() == onnx::TensorProto::EXTERNAL) {
    FSWAP_RETURN_IF_ERROR(read_external(t, model_dir, where, out));
    return out;
  }
  if (!raw && t.has_raw_data()) raw = std::as_bytes(std::span(t.raw_data()));
  if (raw) {
    if (raw->size() != out.bytes())
      return invalid_input(where + ": raw_data holds " + std::to_string(raw->size()) + " bytes, " +
                           dtype_name(*dtype) + shape_to_string(shape) + " needs " + std::to_string(out.bytes()));
    if (out.bytes() > 0) std::memcpy(out.raw(), raw->data(), out.bytes());
    return out;
  }
  if (out.elements() == 0) return out;
  Status s;
  switch (*dtype) {
    case DType::kFloat32: s = copy_typed<float>(t.float_data(), out, where); break;
    case DType::kFloat64: s = copy_typed<double>(t.double_data(), out, where); break;
    case DType::kInt64: s = copy_typed<std::int64_t>(t.int64_data(), out, where); break;
    case DType::kInt32: s = copy_typed<std::int32_t>(t.int32_data(), out, where); break;
    case DType::kInt8: s = copy_typed<std::int8_t>(t.int32_data(), out, where); break;
    case DType::kUInt8: s = copy_typed<std::uint8_t>(t.int32_data(), out, where); break;
    case DType::kBool: s = copy_typed<std::uint8_t>(t.int32_data(), out, where); break;
    // float16 travels as its bit pattern in the low 16 bits of int32_data.
    case DType::kFloat16: s = copy_typed<std::uint16_t>(t.int32_data(), out, where); break;
  }
  FSWAP_RETURN_IF_ERROR(s);
  return out;
}

Result<AttributeValue> attribute_from_proto(const onnx::AttributeProto& a, const fs::path& model_dir,
                                            const std::string& where) {
  using A = onnx::AttributeProto;
  auto type = a.type();
  if (type == A::UNDEFINED) {  // files from before IR version 0.0.2 leave the type out
    if (a.has_f()) type = A::FLOAT;
    else if (a.has_i()) type = A::INT;
    else if (a.has_s()) type = A::STRING;
    else if (a.has_t()) type = A::TENSOR;
    else if (a.floats_size() > 0) type = A::FLOATS;
    else if (a.ints_size() > 0) type = A::INTS;
    else if (a.strings_size() > 0) type = A::STRINGS;
    else if (a.has_g() || a.graphs_size() > 0) type = A::GRAPH;
  }
  switch (type) {
    case A::FLOAT: return AttributeValue(a.f());
    case A::INT: return AttributeValue(static_cast<std::int64_t>(a.i()));
    case A::STRING: return AttributeValue(a.s());
    case A::FLOATS: return AttributeValue(std::vector<float>(a.floats().begin(), a.floats().end()));
    case A::INTS: return AttributeValue(std::vector<std::int64_t>(a.ints().begin(), a.ints().end()));
    case A::TENSOR: {
      FSWAP_ASSIGN_OR_RETURN(Tensor t, tensor_from_proto(a.t(), model_dir, where + " attribute " + a.name()));
      return AttributeValue(std::move(t));
    }
    default:
      return unsupported(where + ": attribute " + a.name() + " has type " + A::AttributeType_Name(type) +
                         ", which the native engine does not support");
  }
}

// dim_value → size; dim_param or missing → -1.
void apply_type(const onnx::TypeProto& type, Value& v) {
  if (!type.has_tensor_type()) return;
  const auto& tt = type.tensor_type();
  if (auto d = dtype_from_onnx(tt.elem_type())) v.dtype = *d;
  if (!tt.has_shape()) return;
  v.shape.clear();
  bool all_static = true;
  for (const auto& dim : tt.shape().dim()) {
    if (dim.has_dim_value() && dim.dim_value() >= 0) {
      v.shape.push_back(dim.dim_value());
    } else {
      v.shape.push_back(-1);
      all_static = false;
    }
  }
  v.known_shape = all_static;
}

// Kahn's algorithm, taking the earliest node in file order whenever several are ready, so a
// sorted file keeps its order.
Status sort_topologically(Graph& g, const std::vector<int>& producer) {
  const int n = static_cast<int>(g.nodes.size());
  std::vector<int> pending(n, 0);
  std::vector<std::vector<int>> consumers(n);
  for (int i = 0; i < n; ++i) {
    for (int v : g.nodes[i].inputs) {
      if (v < 0 || producer[v] < 0) continue;
      ++pending[i];
      consumers[producer[v]].push_back(i);
    }
  }
  std::priority_queue<int, std::vector<int>, std::greater<>> ready;
  for (int i = 0; i < n; ++i)
    if (pending[i] == 0) ready.push(i);
  std::vector<int> order;
  order.reserve(n);
  while (!ready.empty()) {
    int i = ready.top();
    ready.pop();
    order.push_back(i);
    for (int c : consumers[i])
      if (--pending[c] == 0) ready.push(c);
  }
  if (static_cast<int>(order.size()) != n) {
    for (int i = 0; i < n; ++i)
      if (pending[i] > 0)
        return invalid_input(g.path + ": node " + g.nodes[i].name + " is part of a cycle; not a valid ONNX model");
  }
  bool sorted = true;
  for (int i = 0; i < n; ++i) sorted = sorted && order[i] == i;
  if (sorted) return Status::ok();
  std::vector<Node> nodes;
  nodes.reserve(n);
  for (int i : order) nodes.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(nodes);
  return Status::ok();
}

}  // namespace

Result<Graph> load_onnx(const std::string& path) {
  FSWAP_ASSIGN_OR_RETURN(MappedModel mapped, MappedModel::open(path));
  const onnx::ModelProto& model = mapped.proto();
  const fs::path model_dir = fs::path(path).parent_path();

  Graph g;
  g.path = path;
  for (const auto& op : model.opset_import())
    if (op.domain().empty() || op.domain() == "ai.onnx") g.opset = op.version();
  if (g.opset == 0 && model.opset_import_size() == 0) g.opset = 1;  // IR version 1 files
  if (g.opset < 9 || g.opset > 21)
    return unsupported(path + ": ai.onnx opset " + std::to_string(g.opset) +
                       " is not supported by the native engine (it reads opsets 9 to 21; --engine ort reads more)");

  const auto& graph = model.graph();
  std::unordered_map<std::string, int> ids;
  auto add_value = [&](const std::string& name) {
    auto [it, inserted] = ids.emplace(name, static_cast<int>(g.values.size()));
    if (inserted) {
      Value v;
      v.name = name;
      g.values.push_back(std::move(v));
    }
    return it->second;
  };

  // The initializers' bytes are copied out of the parsed message on the worker threads (most of a
  // large model's load time); the first error in file order is the one reported.
  const int initializers = graph.initializer_size();
  std::vector<std::optional<Result<Tensor>>> tensors(static_cast<std::size_t>(initializers));
  parallel_for(initializers, [&](int begin, int end) {
    for (int i = begin; i < end; ++i) {
      const auto& init = graph.initializer(i);
      tensors[static_cast<std::size_t>(i)] =
          tensor_from_proto(init, model_dir, path + ": initializer " + init.name(), mapped.raw_data(i));
    }
  });
  for (int i = 0; i < initializers; ++i) {
    const auto& init = graph.initializer(i);
    if (ids.count(init.name())) return invalid_input(path + ": initializer " + init.name() + " is defined twice");
    Result<Tensor>& t = *tensors[static_cast<std::size_t>(i)];
    if (!t) return t.status();
    const int id = add_value(init.name());
    Value& v = g.values[id];
    v.dtype = t->dtype();
    v.shape = t->shape();
    v.known_shape = true;
    v.weight = static_cast<int>(g.weights.size());
    g.weights.push_back(WeightBlock{id, std::make_shared<const Tensor>(std::move(*t))});
  }
  for (const auto& in : graph.input()) {
    if (ids.count(in.name())) continue;  // an initializer listed as an input (IR < 4): a weight
    const int id = add_value(in.name());
    apply_type(in.type(), g.values[id]);
    g.inputs.push_back(id);
  }

  // Outputs first, so that inputs may name values produced later in an unsorted file.
  std::vector<int> producer;
  g.nodes.reserve(graph.node_size());
  for (int i = 0; i < graph.node_size(); ++i) {
    const auto& pn = graph.node(i);
    Node node;
    node.name = pn.name().empty() ? pn.op_type() + "_" + std::to_string(i) : pn.name();
    const std::string where = path + ": node " + node.name;
    if (!pn.domain().empty() && pn.domain() != "ai.onnx")
      return unsupported(where + ": operator " + pn.op_type() + " of domain " + pn.domain() +
                         " is not supported by the native engine (it reads domain ai.onnx only)");
    auto op = op_from_name(pn.op_type());
    if (!op) return unsupported(where + ": " + op.status().message());
    node.op = *op;
    for (const auto& a : pn.attribute()) {
      if (a.type() == onnx::AttributeProto::STRINGS) continue;  // no op in our list reads one
      FSWAP_ASSIGN_OR_RETURN(AttributeValue value, attribute_from_proto(a, model_dir, where));
      node.attrs.values.emplace(a.name(), std::move(value));
    }
    for (const auto& out : pn.output()) {
      if (out.empty()) {
        node.outputs.push_back(-1);
        continue;
      }
      const bool existed = ids.count(out) > 0;
      const int id = add_value(out);
      if (existed && (g.values[id].weight >= 0 || static_cast<std::size_t>(id) < producer.size() ||
                      std::find(g.inputs.begin(), g.inputs.end(), id) != g.inputs.end()))
        return invalid_input(where + ": output " + out + " is defined twice; not a valid ONNX model");
      producer.resize(g.values.size(), -1);
      producer[id] = i;
      node.outputs.push_back(id);
    }
    g.nodes.push_back(std::move(node));
  }
  for (int i = 0; i < graph.node_size(); ++i) {
    for (const auto& in : graph.node(i).input()) {
      if (in.empty()) {
        g.nodes[i].inputs.push_back(-1);
        continue;
      }
      auto it = ids.find(in);
      if (it == ids.end())
        return invalid_input(path + ": node " + g.nodes[i].name + ": input " + in +
                             " is produced by no node, initializer or graph input; not a valid ONNX model");
      g.nodes[i].inputs.push_back(it->second);
    }
  }
  for (const auto& out : graph.output()) {
    auto it = ids.find(out.name());
    if (it == ids.end())
      return invalid_input(path + ": graph output " + out.name() + " is produced by nothing; not a valid ONNX model");
    Value& v = g.values[it->second];
    if (v.weight < 0 && std::find(g.inputs.begin(), g.inputs.end(), it->second) == g.inputs.end()) {
      apply_type(out.type(), v);
      v.known_shape = false;  // declared, not inferred: specialize() decides
    }
    g.outputs.push_back(it->second);
  }
  // Declared dtypes of intermediate values, a hint until shape inference runs.
  for (const auto& info : graph.value_info()) {
    auto it = ids.find(info.name());
    if (it == ids.end() || g.values[it->second].weight >= 0) continue;
    if (!info.type().has_tensor_type()) continue;
    if (auto d = dtype_from_onnx(info.type().tensor_type().elem_type())) g.values[it->second].dtype = *d;
  }

  producer.resize(g.values.size(), -1);
  FSWAP_RETURN_IF_ERROR(sort_topologically(g, producer));
  return g;
}

}  // namespace fswap
