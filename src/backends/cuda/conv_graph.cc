#include "backends/cuda/conv_graph.h"

#include <cudnn.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "backends/cuda/libraries.h"

namespace fswap::cuda {

namespace {

constexpr const char* kOp = "Conv (cuDNN graph)";
// Unique ids of the operands in the graph and the variant pack.
constexpr std::int64_t kX = 'x', kW = 'w', kY = 'y', kBias = 'b', kResidual = 'r';
// Virtual tensors between the graph's operations.
constexpr std::int64_t kConvOut = 1001, kBiased = 1002, kAdded = 1003;

// An owned backend descriptor.
class Descriptor {
 public:
  Descriptor() = default;
  Descriptor(Descriptor&& other) noexcept : d_(std::exchange(other.d_, nullptr)) {}
  Descriptor& operator=(Descriptor&& other) noexcept {
    std::swap(d_, other.d_);
    return *this;
  }
  ~Descriptor() {
    if (d_ != nullptr) cudnnBackendDestroyDescriptor(d_);
  }
  static Result<Descriptor> create(cudnnBackendDescriptorType_t type) {
    Descriptor d;
    FSWAP_CUDNN_CHECK(kOp, cudnnBackendCreateDescriptor(type, &d.d_));
    return d;
  }
  cudnnBackendDescriptor_t get() const { return d_; }
  template <class T>
  Status set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, const T* values,
             std::int64_t count = 1) {
    FSWAP_CUDNN_CHECK(kOp, cudnnBackendSetAttribute(d_, name, type, count, values));
    return Status::ok();
  }
  Status set_descriptor(cudnnBackendAttributeName_t name, const Descriptor& value) {
    cudnnBackendDescriptor_t v = value.get();
    return set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, &v);
  }
  Status finalize() {
    FSWAP_CUDNN_CHECK(kOp, cudnnBackendFinalize(d_));
    return Status::ok();
  }

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
};

// `count` new descriptors of one type, for an attribute that returns an array of them:
// cudnnBackendGetAttribute fills their handles in `raw`, `owned` destroys them.
struct DescriptorArray {
  std::vector<Descriptor> owned;
  std::vector<cudnnBackendDescriptor_t> raw;
};

Result<DescriptorArray> descriptor_array(cudnnBackendDescriptorType_t type, std::int64_t count) {
  DescriptorArray a;
  for (std::int64_t i = 0; i < count; ++i) {
    FSWAP_ASSIGN_OR_RETURN(Descriptor d, Descriptor::create(type));
    a.raw.push_back(d.get());
    a.owned.push_back(std::move(d));
  }
  return a;
}

// [n, c, spatial...] in NCHW order with the strides of `layout`'s memory order.
struct TensorGeometry {
  std::vector<std::int64_t> dims, strides;
};

TensorGeometry geometry(ConvLayout layout, std::int64_t n, std::int64_t c, const std::array<std::int64_t, 3>& spatial,
                        int rank) {
  TensorGeometry g;
  g.dims = {n, c};
  for (int d = 0; d < rank; ++d) g.dims.push_back(spatial[static_cast<std::size_t>(d)]);
  g.strides.assign(g.dims.size(), 1);
  if (layout == ConvLayout::kNhwc) {  // memory order n, spatial..., c
    std::int64_t stride = c;
    for (int d = rank - 1; d >= 0; --d) g.strides[static_cast<std::size_t>(2 + d)] = stride, stride *= g.dims[2 + d];
    g.strides[1] = 1;
    g.strides[0] = stride;
  } else {
    std::int64_t stride = 1;
    for (int d = static_cast<int>(g.dims.size()) - 1; d >= 0; --d)
      g.strides[static_cast<std::size_t>(d)] = stride, stride *= g.dims[static_cast<std::size_t>(d)];
  }
  return g;
}

// A float16 operand, or (is_virtual) a float32 value between two operations of the graph.
Result<Descriptor> tensor(std::int64_t uid, const TensorGeometry& g, bool is_virtual = false) {
  FSWAP_ASSIGN_OR_RETURN(Descriptor t, Descriptor::create(CUDNN_BACKEND_TENSOR_DESCRIPTOR));
  const cudnnDataType_t type = is_virtual ? CUDNN_DATA_FLOAT : CUDNN_DATA_HALF;
  const std::int64_t alignment = kGraphAlignment;
  const auto rank = static_cast<std::int64_t>(g.dims.size());
  if (is_virtual) {
    const bool yes = true;
    FSWAP_RETURN_IF_ERROR(t.set(CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, &yes));
  }
  FSWAP_RETURN_IF_ERROR(t.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, &type));
  FSWAP_RETURN_IF_ERROR(t.set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, g.dims.data(), rank));
  FSWAP_RETURN_IF_ERROR(t.set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, g.strides.data(), rank));
  FSWAP_RETURN_IF_ERROR(t.set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, &uid));
  FSWAP_RETURN_IF_ERROR(t.set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, &alignment));
  FSWAP_RETURN_IF_ERROR(t.finalize());
  return t;
}

std::array<std::int64_t, 3> output_dims(const ConvProblem& p) {
  std::array<std::int64_t, 3> out{};
  for (int d = 0; d < p.spatial_rank; ++d)
    out[static_cast<std::size_t>(d)] = (p.input[d] + 2 * p.pad[d] - ((p.kernel[d] - 1) * p.dilation[d] + 1)) /
                                           p.stride[d] + 1;
  return out;
}

}  // namespace

// The operation graph of one forward convolution and, once built, its engine configuration and plan.
struct ConvGraphPlan::Descriptors {
  Descriptor x, w, y, conv, op, graph;
  std::deque<Descriptor> epilogue;  // its tensors, pointwise descriptors and operations (stable addresses)
  Descriptor engine;
  std::vector<Descriptor> knobs;
  Descriptor config, plan;
};

namespace {

// One pointwise operation of the epilogue: out = mode(in, second), second absent for unary modes.
Result<Descriptor> pointwise(ConvGraphPlan::Descriptors& d, cudnnPointwiseMode_t mode, const Descriptor& in,
                             const Descriptor* second, const Descriptor& out, float slope = 0) {
  FSWAP_ASSIGN_OR_RETURN(Descriptor pw, Descriptor::create(CUDNN_BACKEND_POINTWISE_DESCRIPTOR));
  const cudnnDataType_t precision = CUDNN_DATA_FLOAT;
  FSWAP_RETURN_IF_ERROR(pw.set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, &mode));
  FSWAP_RETURN_IF_ERROR(pw.set(CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, &precision));
  if (slope != 0) {
    const double s = slope;
    FSWAP_RETURN_IF_ERROR(pw.set(CUDNN_ATTR_POINTWISE_RELU_LOWER_CLIP_SLOPE, CUDNN_TYPE_DOUBLE, &s));
  }
  FSWAP_RETURN_IF_ERROR(pw.finalize());
  FSWAP_ASSIGN_OR_RETURN(Descriptor op, Descriptor::create(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR));
  FSWAP_RETURN_IF_ERROR(op.set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw));
  FSWAP_RETURN_IF_ERROR(op.set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, in));
  if (second != nullptr) FSWAP_RETURN_IF_ERROR(op.set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, *second));
  FSWAP_RETURN_IF_ERROR(op.set_descriptor(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, out));
  FSWAP_RETURN_IF_ERROR(op.finalize());
  d.epilogue.push_back(std::move(pw));
  return op;
}

Result<std::unique_ptr<ConvGraphPlan::Descriptors>> operation_graph(cudnnHandle_t handle, const ConvProblem& p) {
  const ConvEpilogue& e = p.epilogue;
  auto d = std::make_unique<ConvGraphPlan::Descriptors>();
  const int r = p.spatial_rank;
  const TensorGeometry out = geometry(p.layout, p.batch, p.out_channels, output_dims(p), r);
  FSWAP_ASSIGN_OR_RETURN(d->x, tensor(kX, geometry(p.layout, p.batch, p.channels, p.input, r)));
  FSWAP_ASSIGN_OR_RETURN(d->w, tensor(kW, geometry(p.layout, p.out_channels, p.channels / p.groups, p.kernel, r)));
  // The convolution writes Y itself, or a virtual float32 tensor the epilogue's operations read.
  FSWAP_ASSIGN_OR_RETURN(d->y, tensor(!e.empty() ? kConvOut : kY, out, !e.empty()));

  FSWAP_ASSIGN_OR_RETURN(d->conv, Descriptor::create(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR));
  const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  const std::int64_t dims = r;
  const std::vector<std::int64_t> pad(p.pad.begin(), p.pad.begin() + r), stride(p.stride.begin(), p.stride.begin() + r),
      dilation(p.dilation.begin(), p.dilation.begin() + r);
  FSWAP_RETURN_IF_ERROR(d->conv.set(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, &compute));
  FSWAP_RETURN_IF_ERROR(d->conv.set(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, &mode));
  FSWAP_RETURN_IF_ERROR(d->conv.set(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, &dims));
  FSWAP_RETURN_IF_ERROR(d->conv.set(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, pad.data(), dims));
  FSWAP_RETURN_IF_ERROR(d->conv.set(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, pad.data(), dims));
  FSWAP_RETURN_IF_ERROR(d->conv.set(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, stride.data(), dims));
  FSWAP_RETURN_IF_ERROR(d->conv.set(CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, dilation.data(), dims));
  FSWAP_RETURN_IF_ERROR(d->conv.finalize());

  FSWAP_ASSIGN_OR_RETURN(d->op, Descriptor::create(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR));
  const float alpha = 1.0f, beta = 0.0f;
  FSWAP_RETURN_IF_ERROR(d->op.set_descriptor(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, d->x));
  FSWAP_RETURN_IF_ERROR(d->op.set_descriptor(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, d->w));
  FSWAP_RETURN_IF_ERROR(d->op.set_descriptor(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, d->y));
  FSWAP_RETURN_IF_ERROR(d->op.set_descriptor(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, d->conv));
  FSWAP_RETURN_IF_ERROR(d->op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, &alpha));
  FSWAP_RETURN_IF_ERROR(d->op.set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, &beta));
  FSWAP_RETURN_IF_ERROR(d->op.finalize());

  std::vector<cudnnBackendDescriptor_t> ops{d->op.get()};
  if (!e.empty()) {
    // Each step reads the last one's tensor; the last step writes Y.
    struct Step {
      cudnnPointwiseMode_t mode;
      std::int64_t input_uid;  // the second operand's uid; 0 for a unary step
      float slope;
    };
    std::vector<Step> steps;
    if (e.bias) steps.push_back({CUDNN_POINTWISE_ADD, kBias, 0});
    if (e.residual) steps.push_back({CUDNN_POINTWISE_ADD, kResidual, 0});
    if (e.act != ConvEpilogue::Act::kNone)
      steps.push_back({CUDNN_POINTWISE_RELU_FWD, 0, e.act == ConvEpilogue::Act::kLeakyRelu ? e.slope : 0});
    const std::int64_t virtual_uids[] = {kBiased, kAdded};
    const Descriptor* last = &d->y;
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const bool final_step = i + 1 == steps.size();
      FSWAP_ASSIGN_OR_RETURN(Descriptor next, tensor(final_step ? kY : virtual_uids[i], out, !final_step));
      d->epilogue.push_back(std::move(next));
      const Descriptor& result = d->epilogue.back();
      const Descriptor* second = nullptr;
      if (steps[i].input_uid == kBias) {
        FSWAP_ASSIGN_OR_RETURN(Descriptor b, tensor(kBias, geometry(p.layout, 1, p.out_channels, {1, 1, 1}, r)));
        d->epilogue.push_back(std::move(b));
        second = &d->epilogue.back();
      } else if (steps[i].input_uid == kResidual) {
        FSWAP_ASSIGN_OR_RETURN(Descriptor residual, tensor(kResidual, out));
        d->epilogue.push_back(std::move(residual));
        second = &d->epilogue.back();
      }
      FSWAP_ASSIGN_OR_RETURN(Descriptor op, pointwise(*d, steps[i].mode, *last, second, result, steps[i].slope));
      ops.push_back(op.get());
      d->epilogue.push_back(std::move(op));
      last = &result;
    }
  }
  FSWAP_ASSIGN_OR_RETURN(d->graph, Descriptor::create(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR));
  FSWAP_RETURN_IF_ERROR(d->graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, ops.data(),
                                     static_cast<std::int64_t>(ops.size())));
  FSWAP_RETURN_IF_ERROR(d->graph.set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, &handle));
  FSWAP_RETURN_IF_ERROR(d->graph.finalize());
  return d;
}

// Finalizes the plan of d->config; its workspace size.
Result<std::size_t> finalize_plan(cudnnHandle_t handle, ConvGraphPlan::Descriptors& d) {
  FSWAP_ASSIGN_OR_RETURN(d.plan, Descriptor::create(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR));
  FSWAP_RETURN_IF_ERROR(d.plan.set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, &handle));
  FSWAP_RETURN_IF_ERROR(d.plan.set_descriptor(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, d.config));
  FSWAP_RETURN_IF_ERROR(d.plan.finalize());
  std::int64_t bytes = 0, count = 0;
  FSWAP_CUDNN_CHECK(kOp, cudnnBackendGetAttribute(d.plan.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                                  CUDNN_TYPE_INT64, 1, &count, &bytes));
  return static_cast<std::size_t>(bytes);
}

// The values one knob of an engine takes: min, min + stride, ... max.
struct KnobRange {
  int type = 0;
  std::int64_t min = 0, max = 0, stride = 1;
};

// A heuristics result's engine: its global index, knob choices, the ranges of its knobs and whether
// it compiles at run time.
struct EngineIdentity {
  GraphEngine engine;
  std::vector<KnobRange> ranges;
  bool runtime_compiled = false;
};

// The knob ranges of an engine (CUDNN_ATTR_ENGINE_KNOB_INFO).
Result<std::vector<KnobRange>> knob_ranges(const Descriptor& engine) {
  FSWAP_ASSIGN_OR_RETURN(DescriptorArray infos, descriptor_array(CUDNN_BACKEND_KNOB_INFO_DESCRIPTOR, CUDNN_KNOB_TYPE_COUNTS));
  std::int64_t count = 0;
  FSWAP_CUDNN_CHECK(kOp, cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_KNOB_INFO,
                                                  CUDNN_TYPE_BACKEND_DESCRIPTOR, CUDNN_KNOB_TYPE_COUNTS, &count,
                                                  infos.raw.data()));
  std::vector<KnobRange> ranges;
  for (std::int64_t i = 0; i < count; ++i) {
    cudnnBackendDescriptor_t info = infos.raw[static_cast<std::size_t>(i)];
    cudnnBackendKnobType_t type{};
    KnobRange r;
    std::int64_t n = 0;
    FSWAP_CUDNN_CHECK(kOp, cudnnBackendGetAttribute(info, CUDNN_ATTR_KNOB_INFO_TYPE, CUDNN_TYPE_KNOB_TYPE, 1, &n, &type));
    FSWAP_CUDNN_CHECK(kOp, cudnnBackendGetAttribute(info, CUDNN_ATTR_KNOB_INFO_MINIMUM_VALUE, CUDNN_TYPE_INT64, 1, &n, &r.min));
    FSWAP_CUDNN_CHECK(kOp, cudnnBackendGetAttribute(info, CUDNN_ATTR_KNOB_INFO_MAXIMUM_VALUE, CUDNN_TYPE_INT64, 1, &n, &r.max));
    FSWAP_CUDNN_CHECK(kOp, cudnnBackendGetAttribute(info, CUDNN_ATTR_KNOB_INFO_STRIDE, CUDNN_TYPE_INT64, 1, &n, &r.stride));
    r.type = static_cast<int>(type);
    r.stride = std::max<std::int64_t>(1, r.stride);
    ranges.push_back(r);
  }
  return ranges;
}

Result<EngineIdentity> identify(const Descriptor& config) {
  EngineIdentity id;
  std::int64_t count = 0;
  FSWAP_ASSIGN_OR_RETURN(Descriptor engine, Descriptor::create(CUDNN_BACKEND_ENGINE_DESCRIPTOR));
  cudnnBackendDescriptor_t e = engine.get();
  FSWAP_CUDNN_CHECK(kOp, cudnnBackendGetAttribute(config.get(), CUDNN_ATTR_ENGINECFG_ENGINE,
                                                  CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &count, &e));
  FSWAP_CUDNN_CHECK(kOp, cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1,
                                                  &count, &id.engine.index));
  std::array<cudnnBackendBehaviorNote_t, CUDNN_BEHAVIOR_NOTE_TYPE_COUNT> notes{};
  FSWAP_CUDNN_CHECK(kOp, cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE,
                                                  CUDNN_TYPE_BEHAVIOR_NOTE, static_cast<std::int64_t>(notes.size()),
                                                  &count, notes.data()));
  for (std::int64_t i = 0; i < count; ++i)
    if (notes[static_cast<std::size_t>(i)] == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION) id.runtime_compiled = true;
  if (Result<std::vector<KnobRange>> ranges = knob_ranges(engine); ranges) id.ranges = std::move(*ranges);

  FSWAP_ASSIGN_OR_RETURN(DescriptorArray knobs,
                         descriptor_array(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR, CUDNN_KNOB_TYPE_COUNTS));
  FSWAP_CUDNN_CHECK(kOp, cudnnBackendGetAttribute(config.get(), CUDNN_ATTR_ENGINECFG_KNOB_CHOICES,
                                                  CUDNN_TYPE_BACKEND_DESCRIPTOR, CUDNN_KNOB_TYPE_COUNTS, &count,
                                                  knobs.raw.data()));
  for (std::int64_t i = 0; i < count; ++i) {
    cudnnBackendDescriptor_t choice = knobs.raw[static_cast<std::size_t>(i)];
    cudnnBackendKnobType_t type{};
    std::int64_t value = 0, n = 0;
    FSWAP_CUDNN_CHECK(kOp, cudnnBackendGetAttribute(choice, CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE, 1,
                                                    &n, &type));
    FSWAP_CUDNN_CHECK(kOp, cudnnBackendGetAttribute(choice, CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, CUDNN_TYPE_INT64, 1, &n,
                                                    &value));
    id.engine.knobs.emplace_back(static_cast<int>(type), value);
  }
  return id;
}

// The heuristics' first engines whose knobs are varied, and how many variants each gives at most.
constexpr std::size_t kVariedEngines = 4;
constexpr std::size_t kVariantsPerEngine = 12;

// The engine with one knob changed to another value of its range, knob by knob, value by value, up
// to kVariantsPerEngine (the heuristics pick one configuration per engine; on the small spatial
// sizes of ArcFace's late layers another tile or split of the reduction may fill more of the GPU).
std::vector<GraphEngine> knob_variants(const EngineIdentity& id) {
  std::vector<GraphEngine> variants;
  for (std::size_t k = 0; k < id.engine.knobs.size(); ++k) {
    const auto& [type, value] = id.engine.knobs[k];
    const auto range = std::find_if(id.ranges.begin(), id.ranges.end(), [&](const KnobRange& r) { return r.type == type; });
    if (range == id.ranges.end()) continue;
    for (std::int64_t v = range->min; v <= range->max; v += range->stride) {
      if (v == value) continue;
      if (variants.size() == kVariantsPerEngine) return variants;
      GraphEngine variant = id.engine;
      variant.knobs[k].second = v;
      variants.push_back(std::move(variant));
    }
  }
  return variants;
}

}  // namespace

bool graph_aligned(const ConvGraphOperands& o) {
  for (const void* p : {o.x, o.w, static_cast<const void*>(o.y), static_cast<const void*>(o.workspace), o.bias,
                        o.residual})
    if (reinterpret_cast<std::uintptr_t>(p) % kGraphAlignment != 0) return false;
  return true;
}

bool graph_serves(const ConvProblem& p) { return p.direction == ConvDirection::kForward && p.dtype == DType::kFloat16; }

ConvGraphPlan::ConvGraphPlan(std::unique_ptr<Descriptors> descriptors, GraphEngine engine, ConvEpilogue epilogue,
                             std::size_t workspace_bytes)
    : descriptors_(std::move(descriptors)), engine_(std::move(engine)), epilogue_(epilogue),
      workspace_bytes_(workspace_bytes) {}
ConvGraphPlan::ConvGraphPlan(ConvGraphPlan&&) noexcept = default;
ConvGraphPlan& ConvGraphPlan::operator=(ConvGraphPlan&&) noexcept = default;
ConvGraphPlan::~ConvGraphPlan() = default;

Status ConvGraphPlan::execute(cudnnContext* handle, const ConvGraphOperands& o) const {
  FSWAP_ASSIGN_OR_RETURN(Descriptor pack, Descriptor::create(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR));
  std::vector<std::int64_t> uids{kX, kW, kY};
  std::vector<void*> pointers{const_cast<void*>(o.x), const_cast<void*>(o.w), o.y};
  if (epilogue_.bias) uids.push_back(kBias), pointers.push_back(const_cast<void*>(o.bias));
  if (epilogue_.residual) uids.push_back(kResidual), pointers.push_back(const_cast<void*>(o.residual));
  void* workspace = o.workspace;
  const auto count = static_cast<std::int64_t>(uids.size());
  FSWAP_RETURN_IF_ERROR(pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, uids.data(), count));
  FSWAP_RETURN_IF_ERROR(pack.set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, pointers.data(), count));
  FSWAP_RETURN_IF_ERROR(pack.set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, &workspace));
  FSWAP_RETURN_IF_ERROR(pack.finalize());
  FSWAP_CUDNN_CHECK(kOp, cudnnBackendExecute(handle, descriptors_->plan.get(), pack.get()));
  return Status::ok();
}

Result<std::vector<ConvGraphPlan>> graph_candidates(cudnnContext* handle, const ConvProblem& problem, int most) {
  if (!graph_serves(problem)) return unsupported(std::string(kOp) + ": not for " + to_string(problem));
  FSWAP_ASSIGN_OR_RETURN(auto graph, operation_graph(handle, problem));
  FSWAP_ASSIGN_OR_RETURN(Descriptor heuristics, Descriptor::create(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR));
  const cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
  FSWAP_RETURN_IF_ERROR(heuristics.set_descriptor(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph->graph));
  FSWAP_RETURN_IF_ERROR(heuristics.set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, &mode));
  FSWAP_RETURN_IF_ERROR(heuristics.finalize());
  std::int64_t count = 0;
  FSWAP_CUDNN_CHECK(kOp, cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                                  CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr));
  FSWAP_ASSIGN_OR_RETURN(DescriptorArray configs, descriptor_array(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, count));
  FSWAP_CUDNN_CHECK(kOp, cudnnBackendGetAttribute(heuristics.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                                  CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &count, configs.raw.data()));

  std::vector<ConvGraphPlan> plans;
  std::vector<EngineIdentity> listed;
  for (std::int64_t i = 0; i < count && static_cast<int>(plans.size()) < most; ++i) {
    Result<EngineIdentity> id = identify(configs.owned[static_cast<std::size_t>(i)]);
    if (!id || id->runtime_compiled) continue;
    // Built again from the identity, as a stored choice is: each plan owns its descriptors.
    Result<ConvGraphPlan> plan = build_graph_plan(handle, problem, id->engine);
    if (!plan) continue;
    plans.push_back(std::move(*plan));
    listed.push_back(std::move(*id));
  }
  if (plans.empty()) return unsupported(std::string(kOp) + ": no engine for " + to_string(problem));
  for (std::size_t e = 0; e < listed.size() && e < kVariedEngines; ++e)
    for (GraphEngine& variant : knob_variants(listed[e]))
      if (Result<ConvGraphPlan> plan = build_graph_plan(handle, problem, variant); plan) plans.push_back(std::move(*plan));
  return plans;
}

Result<ConvGraphPlan> build_graph_plan(cudnnContext* handle, const ConvProblem& problem, const GraphEngine& engine) {
  if (!graph_serves(problem) || engine.index < 0)
    return unsupported(std::string(kOp) + ": not for " + to_string(problem));
  FSWAP_ASSIGN_OR_RETURN(auto d, operation_graph(handle, problem));
  FSWAP_ASSIGN_OR_RETURN(d->engine, Descriptor::create(CUDNN_BACKEND_ENGINE_DESCRIPTOR));
  FSWAP_RETURN_IF_ERROR(d->engine.set_descriptor(CUDNN_ATTR_ENGINE_OPERATION_GRAPH, d->graph));
  FSWAP_RETURN_IF_ERROR(d->engine.set(CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, &engine.index));
  FSWAP_RETURN_IF_ERROR(d->engine.finalize());
  std::vector<cudnnBackendDescriptor_t> raw;
  for (const auto& [type, value] : engine.knobs) {
    FSWAP_ASSIGN_OR_RETURN(Descriptor k, Descriptor::create(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR));
    const auto t = static_cast<cudnnBackendKnobType_t>(type);
    FSWAP_RETURN_IF_ERROR(k.set(CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE, &t));
    FSWAP_RETURN_IF_ERROR(k.set(CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, CUDNN_TYPE_INT64, &value));
    FSWAP_RETURN_IF_ERROR(k.finalize());
    raw.push_back(k.get());
    d->knobs.push_back(std::move(k));
  }
  FSWAP_ASSIGN_OR_RETURN(d->config, Descriptor::create(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR));
  FSWAP_RETURN_IF_ERROR(d->config.set_descriptor(CUDNN_ATTR_ENGINECFG_ENGINE, d->engine));
  if (!raw.empty())
    FSWAP_RETURN_IF_ERROR(d->config.set(CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, CUDNN_TYPE_BACKEND_DESCRIPTOR, raw.data(),
                                        static_cast<std::int64_t>(raw.size())));
  FSWAP_RETURN_IF_ERROR(d->config.finalize());
  FSWAP_ASSIGN_OR_RETURN(const std::size_t workspace, finalize_plan(handle, *d));
  return ConvGraphPlan(std::move(d), engine, problem.epilogue, workspace);
}

Result<const ConvGraphPlan*> ConvGraphPlans::find_or_build(cudnnContext* handle, const ConvProblem& problem,
                                                           const GraphEngine& engine) {
  const auto key = std::make_pair(problem, engine);
  if (auto it = plans_.find(key); it != plans_.end()) return &it->second;
  FSWAP_ASSIGN_OR_RETURN(ConvGraphPlan plan, build_graph_plan(handle, problem, engine));
  return &plans_.emplace(key, std::move(plan)).first->second;
}

}  // namespace fswap::cuda
