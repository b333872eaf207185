// ONNX loader tests: the four shipped models load and fully specialise, and tiny models built
// here with the generated protobuf classes cover external data, errors and every attribute type.
#include <gtest/gtest.h>

#include "support/scratch_dir.h"
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>

#include "onnx/mapped_model.h"
#include "onnx/onnx.pb.h"
#include "onnx/onnx_loader.h"
#include "runtime/memory_plan.h"
#include "runtime/engines/model_report.h"
#include "runtime/passes.h"

namespace fs = std::filesystem;
using namespace fswap;

namespace {

// This process's scratch folder, removed at exit (support/scratch_dir.h).
fs::path scratch() { return fs::path(fswap::test::scratch_path("onnx-loader", "x")).parent_path(); }

std::string model_path(const char* name) { return std::string(FSWAP_THIRD_PARTY_DIR) + "/models/" + name; }

// A tiny graph: builders for the protobuf messages the tests need.
struct ModelBuilder {
  onnx::ModelProto model;
  onnx::GraphProto* graph;

  explicit ModelBuilder(std::int64_t opset = 13) {
    model.set_ir_version(8);
    auto* op = model.add_opset_import();
    op->set_domain("");
    op->set_version(opset);
    graph = model.mutable_graph();
    graph->set_name("test");
  }
  static void set_type(onnx::ValueInfoProto* v, int elem, std::vector<std::int64_t> dims) {
    auto* tt = v->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(elem);
    auto* shape = tt->mutable_shape();
    for (auto d : dims) {
      auto* dim = shape->add_dim();
      if (d >= 0) dim->set_dim_value(d);
      else dim->set_dim_param("N");
    }
  }
  void input(const std::string& name, std::vector<std::int64_t> dims, int elem = onnx::TensorProto::FLOAT) {
    auto* v = graph->add_input();
    v->set_name(name);
    set_type(v, elem, std::move(dims));
  }
  void output(const std::string& name, std::vector<std::int64_t> dims = {}, int elem = onnx::TensorProto::FLOAT) {
    auto* v = graph->add_output();
    v->set_name(name);
    set_type(v, elem, std::move(dims));
  }
  onnx::TensorProto* floats(const std::string& name, std::vector<std::int64_t> dims, const std::vector<float>& data,
                            bool raw = true) {
    auto* t = graph->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (auto d : dims) t->add_dims(d);
    if (raw) t->set_raw_data(std::string(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float)));
    else
      for (float f : data) t->add_float_data(f);
    return t;
  }
  onnx::TensorProto* ints(const std::string& name, const std::vector<std::int64_t>& data) {
    auto* t = graph->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    t->add_dims(static_cast<std::int64_t>(data.size()));
    for (auto v : data) t->add_int64_data(v);
    return t;
  }
  onnx::NodeProto* node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out,
                        const std::string& name = "") {
    auto* n = graph->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (auto& s : in) n->add_input(s);
    for (auto& s : out) n->add_output(s);
    return n;
  }
  std::string save(const std::string& file) const {
    const std::string path = (scratch() / file).string();
    std::ofstream out(path, std::ios::binary);
    model.SerializeToOstream(&out);
    return path;
  }
};

void attr_int(onnx::NodeProto* n, const std::string& name, std::int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

struct ModelCase {
  const char* file;
  std::vector<std::pair<std::string, Shape>> inputs, outputs;
};

const std::vector<ModelCase>& model_cases() {
  static const std::vector<ModelCase> cases = {
      {"fr_detect.onnx", {{"input", {1, 3, 240, 320}}}, {{"scores", {1, 4420, 2}}, {"boxes", {1, 4420, 4}}}},
      {"fr_landmark.onnx", {{"input", {1, 1, 64, 64}}}, {{"output", {1, 136}}}},
      {"fr_feature.onnx", {{"input", {1, 3, 112, 112}}}, {{"output", {1, 512}}}},
      {"blazeface_back_256.onnx",
       {{"input:0", {1, 256, 256, 3}}},
       {{"Identity:0", {1, 512, 1}}, {"Identity_1:0", {1, 384, 1}}, {"Identity_2:0", {1, 512, 16}}, {"Identity_3:0", {1, 384, 16}}}},
  };
  return cases;
}

}  // namespace

TEST(OnnxLoader, RealModelsLoadWithDocumentedInputsAndOutputs) {
  for (const auto& mc : model_cases()) {
    SCOPED_TRACE(mc.file);
    auto g = load_onnx(model_path(mc.file));
    ASSERT_TRUE(g.is_ok()) << g.status().to_string();
    ASSERT_EQ(g->inputs.size(), mc.inputs.size());
    for (std::size_t i = 0; i < mc.inputs.size(); ++i) {
      const Value& v = g->values[g->inputs[i]];
      EXPECT_EQ(v.name, mc.inputs[i].first);
      EXPECT_EQ(v.shape, mc.inputs[i].second);
      EXPECT_EQ(v.dtype, DType::kFloat32);
      EXPECT_LT(v.weight, 0);
    }
    ASSERT_EQ(g->outputs.size(), mc.outputs.size());
    for (std::size_t i = 0; i < mc.outputs.size(); ++i) EXPECT_EQ(g->values[g->outputs[i]].name, mc.outputs[i].first);
    EXPECT_GT(g->weights.size(), 10u);
    EXPECT_GE(g->opset, 9);
    for (const Node& n : g->nodes) EXPECT_FALSE(n.name.empty());
  }
}

TEST(OnnxLoader, RealModelsFullySpecialise) {
  for (const auto& mc : model_cases()) {
    SCOPED_TRACE(mc.file);
    auto loaded = load_onnx(model_path(mc.file));
    ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
    Graph g = std::move(loaded).value();
    ASSERT_TRUE(optimize(g).is_ok());
    std::vector<Shape> shapes;
    for (const auto& in : mc.inputs) shapes.push_back(in.second);
    Status s = specialize(g, shapes);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    for (const Value& v : g.values) EXPECT_TRUE(v.known_shape) << v.name;
    for (std::size_t i = 0; i < mc.outputs.size(); ++i) {
      const Value& v = g.values[g.outputs[i]];
      EXPECT_EQ(v.name, mc.outputs[i].first);
      EXPECT_EQ(v.shape, mc.outputs[i].second) << v.name;
      EXPECT_EQ(v.dtype, DType::kFloat32);
    }
    // Shape arithmetic (Shape → Gather → Unsqueeze → Concat → Reshape) is gone once shapes are known.
    for (const Node& n : g.nodes) {
      EXPECT_NE(n.op, OpType::kShape) << n.name;
      EXPECT_NE(n.op, OpType::kConstant) << n.name;
    }
    auto plan = plan_memory(g);
    ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
    EXPECT_GT(plan->arena_bytes, 0u);
    EXPECT_GT(plan->flops, 0);
  }
}

TEST(OnnxLoader, ConstantNodesStayNodesUntilFolded) {
  auto g = load_onnx(model_path("fr_detect.onnx"));
  ASSERT_TRUE(g.is_ok());
  int constants = 0;
  for (const Node& n : g->nodes) constants += n.op == OpType::kConstant;
  EXPECT_EQ(constants, 14);
  EXPECT_TRUE(g->constants.empty());
}

TEST(OnnxLoader, DescribeModelReportsCosts) {
  auto text = describe_model(model_path("fr_detect.onnx"));
  ASSERT_TRUE(text.is_ok()) << text.status().to_string();
  EXPECT_NE(text->find("input  float32 [1,3,240,320]"), std::string::npos) << *text;
  EXPECT_NE(text->find("FLOPs per item"), std::string::npos) << *text;
  EXPECT_NE(text->find("the model fixes the batch at 1"), std::string::npos) << *text;
  std::printf("%s", text->c_str());
  auto feature = describe_model(model_path("fr_feature.onnx"));
  ASSERT_TRUE(feature.is_ok()) << feature.status().to_string();
  std::printf("%s", feature->c_str());
}

TEST(OnnxLoader, DynamicBatchAndTypedFields) {
  ModelBuilder b(13);
  b.input("x", {-1, 4});
  b.floats("w", {4, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, /*raw=*/false);
  b.floats("bias", {3}, {0.5f, 0.25f, 0.125f});
  b.node("MatMul", {"x", "w"}, {"y"});
  b.node("Add", {"y", "bias"}, {"z"});
  b.node("Relu", {"z"}, {"out"});
  b.output("out", {-1, 3});
  const std::string path = b.save("dynamic.onnx");
  auto g = load_onnx(path);
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  ASSERT_EQ(g->inputs.size(), 1u);  // initializers are not inputs
  auto text = describe_model(path);
  ASSERT_TRUE(text.is_ok()) << text.status().to_string();
  EXPECT_NE(text->find("x  float32 [?,4]"), std::string::npos) << *text;
  EXPECT_NE(text->find("batch 8: "), std::string::npos) << *text;
  EXPECT_EQ(text->find("n/a"), std::string::npos) << *text;
  EXPECT_NE(text->find("1 activation"), std::string::npos) << *text;
  std::printf("%s", text->c_str());
  const Value& x = g->values[g->inputs[0]];
  EXPECT_EQ(x.shape, (Shape{-1, 4}));
  EXPECT_FALSE(x.known_shape);
  const Tensor* w = g->constant_data(g->find_value("w"));
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->shape(), (Shape{4, 3}));
  EXPECT_FLOAT_EQ(w->data<float>()[11], 12.0f);
  EXPECT_EQ(g->nodes[0].name, "MatMul_0");  // synthesised

  Graph opt = g.value();
  ASSERT_TRUE(optimize(opt).is_ok());
  ASSERT_EQ(opt.nodes.size(), 1u);  // MatMul + bias + Relu
  EXPECT_EQ(opt.nodes[0].inputs.size(), 3u);
  EXPECT_EQ(opt.nodes[0].attrs.activation.kind, Activation::kRelu);
  Graph b8 = opt;
  ASSERT_TRUE(specialize(b8, {{8, 4}}).is_ok());
  EXPECT_EQ(b8.values[b8.outputs[0]].shape, (Shape{8, 3}));
  Status bad = specialize(opt, {{8, 5}});
  EXPECT_EQ(bad.code(), StatusCode::kInvalidInput);
  EXPECT_NE(bad.message().find("[-1,4]"), std::string::npos) << bad.message();
}

TEST(OnnxLoader, UnsortedNodesAreSorted) {
  ModelBuilder b(13);
  b.input("x", {1, 4});
  b.node("Relu", {"a"}, {"out"}, "second");
  b.node("Neg", {"x"}, {"a"}, "first");
  b.output("out", {1, 4});
  auto g = load_onnx(b.save("unsorted.onnx"));
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  ASSERT_EQ(g->nodes.size(), 2u);
  EXPECT_EQ(g->nodes[0].name, "first");
  EXPECT_EQ(g->nodes[1].name, "second");
}

TEST(OnnxLoader, AttributesOfEveryType) {
  ModelBuilder b(13);
  b.input("x", {1, 4});
  auto* n = b.node("Constant", {}, {"c"});
  auto* a = n->add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  a->mutable_t()->set_data_type(onnx::TensorProto::INT32);
  a->mutable_t()->add_dims(2);
  a->mutable_t()->add_int32_data(7);
  a->mutable_t()->add_int32_data(-3);
  auto* lr = b.node("LeakyRelu", {"x"}, {"y"});
  auto* f = lr->add_attribute();
  f->set_name("alpha");
  f->set_type(onnx::AttributeProto::FLOAT);
  f->set_f(0.3f);
  auto* s = lr->add_attribute();
  s->set_name("note");
  s->set_type(onnx::AttributeProto::STRING);
  s->set_s("hello");
  auto* fl = lr->add_attribute();
  fl->set_name("fs");
  fl->set_type(onnx::AttributeProto::FLOATS);
  fl->add_floats(1.5f);
  auto* il = lr->add_attribute();
  il->set_name("is");
  il->set_type(onnx::AttributeProto::INTS);
  il->add_ints(4);
  il->add_ints(5);
  attr_int(lr, "k", 9);
  b.output("y", {1, 4});
  b.output("c", {2}, onnx::TensorProto::INT32);
  auto g = load_onnx(b.save("attrs.onnx"));
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  const OpAttributes& at = g->nodes[1].attrs;
  EXPECT_FLOAT_EQ(at.f("alpha", 0), 0.3f);
  EXPECT_EQ(at.s("note", ""), "hello");
  EXPECT_EQ(at.floats("fs", {}), std::vector<float>{1.5f});
  EXPECT_EQ(at.ints("is", {}), (std::vector<std::int64_t>{4, 5}));
  EXPECT_EQ(at.i("k", 0), 9);
  const Tensor* t = g->nodes[0].attrs.tensor("value");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype(), DType::kInt32);
  EXPECT_EQ(t->data<std::int32_t>()[1], -3);
  Graph opt = g.value();
  ASSERT_TRUE(optimize(opt).is_ok());
  const Tensor* folded = opt.constant_data(opt.outputs[1]);
  ASSERT_NE(folded, nullptr);
  EXPECT_EQ(folded->data<std::int32_t>()[0], 7);
}

TEST(OnnxLoader, ExternalDataRoundTrip) {
  const fs::path dir = scratch() / "external";
  fs::create_directories(dir);
  std::vector<float> weights(1000);
  for (std::size_t i = 0; i < weights.size(); ++i) weights[i] = static_cast<float>(i) * 0.5f;
  {
    std::ofstream data(dir / "weights.bin", std::ios::binary);
    const std::string pad(128, '\0');  // the tensor starts at offset 128
    data.write(pad.data(), static_cast<std::streamsize>(pad.size()));
    data.write(reinterpret_cast<const char*>(weights.data()), static_cast<std::streamsize>(weights.size() * sizeof(float)));
  }
  ModelBuilder b(17);
  b.input("x", {10, 100});
  auto* t = b.graph->add_initializer();
  t->set_name("w");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(10);
  t->add_dims(100);
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto add_kv = [&](const char* k, const std::string& v) {
    auto* e = t->add_external_data();
    e->set_key(k);
    e->set_value(v);
  };
  add_kv("location", "weights.bin");
  add_kv("offset", "128");
  add_kv("length", std::to_string(weights.size() * sizeof(float)));
  b.node("Add", {"x", "w"}, {"y"});
  b.output("y", {10, 100});
  const std::string path = (dir / "model.onnx").string();
  {
    std::ofstream out(path, std::ios::binary);
    ASSERT_TRUE(b.model.SerializeToOstream(&out));
  }
  auto g = load_onnx(path);
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  const Tensor* w = g->constant_data(g->find_value("w"));
  ASSERT_NE(w, nullptr);
  ASSERT_EQ(w->elements(), 1000);
  EXPECT_EQ(std::memcmp(w->data<float>(), weights.data(), weights.size() * sizeof(float)), 0);

  // A location outside the model's folder is refused; a wrong length is reported.
  t->mutable_external_data(0)->set_value("../weights.bin");
  {
    std::ofstream out(path, std::ios::binary);
    ASSERT_TRUE(b.model.SerializeToOstream(&out));
  }
  EXPECT_EQ(load_onnx(path).status().code(), StatusCode::kInvalidInput);
  t->mutable_external_data(0)->set_value("weights.bin");
  t->mutable_external_data(2)->set_value("12");
  {
    std::ofstream out(path, std::ios::binary);
    ASSERT_TRUE(b.model.SerializeToOstream(&out));
  }
  EXPECT_EQ(load_onnx(path).status().code(), StatusCode::kInvalidInput);
}

// A model with raw and typed initializers and a raw tensor inside a node attribute.
ModelBuilder mixed_weights_model() {
  ModelBuilder b(13);
  b.input("x", {1, 4});
  b.floats("w", {4, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  b.floats("typed", {3}, {0.5f, 0.25f, 0.125f}, /*raw=*/false);
  b.floats("bias", {3}, {-1, -2, -3});
  auto* a = b.node("Constant", {}, {"c"})->add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  a->mutable_t()->set_data_type(onnx::TensorProto::FLOAT);
  a->mutable_t()->add_dims(3);
  const float c[3] = {4, 5, 6};
  a->mutable_t()->set_raw_data(std::string(reinterpret_cast<const char*>(c), sizeof c));
  b.node("MatMul", {"x", "w"}, {"y"});
  b.node("Add", {"y", "bias"}, {"z"});
  b.node("Add", {"z", "typed"}, {"u"});
  b.node("Add", {"u", "c"}, {"out"});
  b.output("out", {1, 3});
  return b;
}

TEST(OnnxLoader, MappedModelLeavesOnlyTheInitializersRawDataInTheFile) {
  const ModelBuilder b = mixed_weights_model();
  auto mapped = MappedModel::open(b.save("mapped.onnx"));
  ASSERT_TRUE(mapped.is_ok()) << mapped.status().to_string();
  // The rest parses as protobuf parses the whole file, less the initializers' raw_data.
  onnx::ModelProto expected = b.model;
  for (auto& init : *expected.mutable_graph()->mutable_initializer()) init.clear_raw_data();
  EXPECT_EQ(mapped->proto().SerializeAsString(), expected.SerializeAsString());
  EXPECT_EQ(mapped->proto().graph().node(0).attribute(0).t().raw_data().size(), 3 * sizeof(float));
  for (int i = 0; i < b.model.graph().initializer_size(); ++i) {
    const auto& init = b.model.graph().initializer(i);
    const auto raw = mapped->raw_data(i);
    ASSERT_EQ(raw.has_value(), init.has_raw_data()) << init.name();
    if (raw) {
      const auto want = std::as_bytes(std::span(init.raw_data()));
      EXPECT_TRUE(std::equal(raw->begin(), raw->end(), want.begin(), want.end())) << init.name();
    }
  }
  auto g = load_onnx(b.save("mapped.onnx"));
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  EXPECT_FLOAT_EQ(g->constant_data(g->find_value("w"))->data<float>()[11], 12.0f);
  EXPECT_FLOAT_EQ(g->constant_data(g->find_value("typed"))->data<float>()[2], 0.125f);
  EXPECT_FLOAT_EQ(g->constant_data(g->find_value("bias"))->data<float>()[1], -2.0f);
}

TEST(OnnxLoader, EveryTruncationIsRefusedNamingTheFile) {
  const ModelBuilder b = mixed_weights_model();
  const std::string bytes = b.model.SerializeAsString();
  // ModelProto's fields go out in number order: ir_version (1), graph (7), opset_import (8). A
  // prefix that cuts a field is not wire data; the one that ends with the graph lacks the opset
  // (read as opset 1, unsupported).
  onnx::ModelProto opset_only;
  *opset_only.mutable_opset_import() = b.model.opset_import();
  const std::size_t graph_end = bytes.size() - opset_only.ByteSizeLong();
  const std::string path = (scratch() / "truncated.onnx").string();
  for (std::size_t size = 0; size < bytes.size(); ++size) {
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out.write(bytes.data(), static_cast<std::streamsize>(size));
    }
    auto g = load_onnx(path);
    ASSERT_FALSE(g.is_ok()) << "a prefix of " << size << " of " << bytes.size() << " bytes loaded";
    EXPECT_EQ(g.status().code(), size == graph_end ? StatusCode::kUnsupported : StatusCode::kInvalidInput)
        << size << ": " << g.status().message();
    EXPECT_EQ(g.status().message().rfind(path, 0), 0u) << g.status().message();
  }
}

TEST(OnnxLoader, MissingFileIsNotFound) {
  auto g = load_onnx((scratch() / "no-such-model.onnx").string());
  EXPECT_EQ(g.status().code(), StatusCode::kNotFound);
  EXPECT_NE(g.status().message().find("no-such-model.onnx"), std::string::npos);
}

TEST(OnnxLoader, GarbageFileIsInvalidInput) {
  const std::string path = (scratch() / "garbage.onnx").string();
  {
    std::ofstream out(path, std::ios::binary);
    out << "this is not a protobuf \xff\xff\xff\xff\x01\x02 at all";
  }
  auto g = load_onnx(path);
  EXPECT_EQ(g.status().code(), StatusCode::kInvalidInput);
  EXPECT_EQ(g.status().message(), path + ": not a valid ONNX model");
}

TEST(OnnxLoader, UnsupportedOpNamesNodeAndOp) {
  ModelBuilder b(13);
  b.input("x", {1, 4});
  b.node("NonMaxSuppression", {"x"}, {"y"}, "nms");
  b.output("y");
  const std::string path = b.save("unsupported.onnx");
  auto g = load_onnx(path);
  EXPECT_EQ(g.status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(g.status().message(), path + ": node nms: operator NonMaxSuppression is not supported by the native engine");

  ModelBuilder d(13);
  d.input("x", {1, 4});
  d.node("FusedConv", {"x"}, {"y"}, "fc")->set_domain("com.microsoft");
  d.output("y");
  auto g2 = load_onnx(d.save("domain.onnx"));
  EXPECT_EQ(g2.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(g2.status().message().find("com.microsoft"), std::string::npos);
  EXPECT_NE(g2.status().message().find("FusedConv"), std::string::npos);
}

TEST(OnnxLoader, OpsetOutsideRangeIsUnsupported) {
  ModelBuilder b(7);
  b.input("x", {1, 4});
  b.node("Relu", {"x"}, {"y"});
  b.output("y");
  EXPECT_EQ(load_onnx(b.save("opset7.onnx")).status().code(), StatusCode::kUnsupported);
}

TEST(OnnxLoader, DanglingInputIsInvalid) {
  ModelBuilder b(13);
  b.input("x", {1, 4});
  b.node("Add", {"x", "nowhere"}, {"y"}, "add");
  b.output("y");
  auto g = load_onnx(b.save("dangling.onnx"));
  EXPECT_EQ(g.status().code(), StatusCode::kInvalidInput);
  EXPECT_NE(g.status().message().find("nowhere"), std::string::npos);
}
