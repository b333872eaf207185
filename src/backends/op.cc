#include "backends/op.h"

#include <array>

namespace fswap {
namespace {

constexpr std::array<const char*, kOpCount> kOpNames = {
#define FSWAP_OP_NAME(name) #name,
    FSWAP_OP_LIST(FSWAP_OP_NAME)
#undef FSWAP_OP_NAME
};

template <class T>
const T* attribute(const OpAttributes& a, std::string_view name) {
  auto it = a.values.find(name);
  return it == a.values.end() ? nullptr : std::get_if<T>(&it->second);
}

}  // namespace

bool is_elementwise_unary(OpType op) {
  switch (op) {
    case OpType::kAbs: case OpType::kNeg: case OpType::kReciprocal: case OpType::kSqrt: case OpType::kExp:
    case OpType::kLog: case OpType::kFloor: case OpType::kCeil: case OpType::kRound: case OpType::kSin:
    case OpType::kCos: case OpType::kErf: case OpType::kNot: case OpType::kIdentity: case OpType::kCast:
    case OpType::kRelu: case OpType::kLeakyRelu: case OpType::kElu: case OpType::kSelu: case OpType::kSigmoid:
    case OpType::kHardSigmoid: case OpType::kHardSwish: case OpType::kTanh: case OpType::kSoftplus:
    case OpType::kSoftsign: case OpType::kGelu: case OpType::kMish:
      return true;
    default: return false;
  }
}

bool is_broadcasting(OpType op) {
  switch (op) {
    case OpType::kAdd: case OpType::kSub: case OpType::kMul: case OpType::kDiv: case OpType::kPow:
    case OpType::kMod: case OpType::kMin: case OpType::kMax: case OpType::kSum: case OpType::kMean:
    case OpType::kAnd: case OpType::kOr: case OpType::kXor: case OpType::kPRelu:
      return true;
    default: return is_comparison(op);
  }
}

bool is_comparison(OpType op) {
  switch (op) {
    case OpType::kEqual: case OpType::kLess: case OpType::kLessOrEqual: case OpType::kGreater:
    case OpType::kGreaterOrEqual: case OpType::kWhere:
      return true;
    default: return false;
  }
}

const char* op_name(OpType op) {
  const int i = static_cast<int>(op);
  return i >= 0 && i < kOpCount ? kOpNames[i] : "?";
}

Result<OpType> op_from_name(std::string_view onnx_name) {
  for (int i = 0; i < static_cast<int>(kFirstInternalOp); ++i)
    if (onnx_name == kOpNames[i]) return static_cast<OpType>(i);
  return unsupported("operator " + std::string(onnx_name) + " is not supported by the native engine");
}

std::int64_t OpAttributes::i(std::string_view name, std::int64_t fallback) const {
  const auto* v = attribute<std::int64_t>(*this, name);
  return v ? *v : fallback;
}
float OpAttributes::f(std::string_view name, float fallback) const {
  const auto* v = attribute<float>(*this, name);
  return v ? *v : fallback;
}
std::string OpAttributes::s(std::string_view name, std::string fallback) const {
  const auto* v = attribute<std::string>(*this, name);
  return v ? *v : fallback;
}
std::vector<std::int64_t> OpAttributes::ints(std::string_view name, std::vector<std::int64_t> fallback) const {
  const auto* v = attribute<std::vector<std::int64_t>>(*this, name);
  return v ? *v : fallback;
}
std::vector<float> OpAttributes::floats(std::string_view name, std::vector<float> fallback) const {
  const auto* v = attribute<std::vector<float>>(*this, name);
  return v ? *v : fallback;
}
const Tensor* OpAttributes::tensor(std::string_view name) const { return attribute<Tensor>(*this, name); }
bool OpAttributes::has(std::string_view name) const { return values.find(name) != values.end(); }

}  // namespace fswap
