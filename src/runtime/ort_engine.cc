#include "runtime/ort_engine.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <new>
#include <system_error>
#include <utility>

#include <onnxruntime_cxx_api.h>

#include "core/log.h"

namespace fswap {
namespace {

namespace fs = std::filesystem;

// The CUDA EP lives in its own library, loaded through the shared provider bridge.
constexpr const char* kCudaProviderLibrary = "libonnxruntime_providers_cuda.so";
constexpr const char* kSharedProviderLibrary = "libonnxruntime_providers_shared.so";
constexpr const char* kCudaProviderName = "CUDAExecutionProvider";

// ORT messages often end in a newline; ours go inside parentheses.
std::string ort_message(const Ort::Exception& e) {
  std::string m = e.what();
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

// ORT's own log lines go through fswap's logger, so --log-level governs them too. ORT's
// warnings are about model hygiene (unused initializers…), not actionable by a user: info.
void ORT_API_CALL forward_ort_log(void* /*param*/, OrtLoggingLevel severity, const char* /*category*/,
                                  const char* /*logid*/, const char* code_location, const char* message) {
  LogLevel level = LogLevel::kDebug;
  if (severity >= ORT_LOGGING_LEVEL_ERROR) {
    level = LogLevel::kError;
  } else if (severity == ORT_LOGGING_LEVEL_WARNING || severity == ORT_LOGGING_LEVEL_INFO) {
    level = LogLevel::kInfo;
  }
  log_message(level, std::string("onnxruntime: ") + (message ? message : "") +
                         (code_location ? std::string(" [") + code_location + "]" : std::string()));
}

// The process-wide Env. Sessions hold a reference, so the Env outlives every session even
// when the static is destroyed first at exit.
Result<std::shared_ptr<Ort::Env>> shared_env() {
  static std::mutex mutex;
  static std::shared_ptr<Ort::Env> env;
  std::lock_guard<std::mutex> lock(mutex);
  if (env) return env;
  // Ort::GetApi() dereferences this pointer on every call: check it before any Ort:: call.
  if (OrtGetApiBase()->GetApi(ORT_API_VERSION) == nullptr) {
    return unsupported(std::string("ONNX Runtime in ") + ort_library_dir() + " is version " +
                       OrtGetApiBase()->GetVersionString() + ", which lacks API version " +
                       std::to_string(ORT_API_VERSION) +
                       " that fswap was built against (ONNX Runtime 1.29): rerun scripts/setup.sh");
  }
  try {
    env = std::make_shared<Ort::Env>(ORT_LOGGING_LEVEL_WARNING, "fswap", forward_ort_log, nullptr);
  } catch (const Ort::Exception& e) {
    return internal_error(std::string("could not create the ONNX Runtime environment: ") + ort_message(e));
  } catch (const std::bad_alloc&) {
    return out_of_memory("could not create the ONNX Runtime environment: out of memory");
  }
  return env;
}

std::string cuda_provider_path() { return (fs::path(ort_library_dir()) / kCudaProviderLibrary).string(); }

bool file_exists(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

bool cuda_provider_files_exist() {
  return file_exists(cuda_provider_path()) &&
         file_exists((fs::path(ort_library_dir()) / kSharedProviderLibrary).string());
}

Status cuda_missing(const Device& device, const std::string& detail) {
  return unsupported("--device " + device.to_string() +
                     ": the CUDA provider libraries for ONNX Runtime are missing (looked for " +
                     cuda_provider_path() + " and " + kSharedProviderLibrary +
                     " in that directory, and the CUDA 13 / cuDNN 9 libraries and the NVIDIA driver they load" +
                     (detail.empty() ? std::string() : "; " + detail) +
                     "). Install them with `scripts/setup.sh --with-cuda`, or use --device cpu");
}

Result<DType> dtype_from_onnx(ONNXTensorElementDataType type) {
  switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return DType::kFloat32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return DType::kFloat16;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return DType::kInt64;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return DType::kInt32;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return DType::kUInt8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return DType::kInt8;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return DType::kBool;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return DType::kFloat64;
    default: break;
  }
  return unsupported("ONNX element type " + std::to_string(static_cast<int>(type)) +
                     " (fswap tensors are float32/64, float16, int64/32/8, uint8 or bool)");
}

ONNXTensorElementDataType dtype_to_onnx(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
    case DType::kFloat16: return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
    case DType::kInt64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
    case DType::kInt32: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
    case DType::kUInt8: return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8;
    case DType::kInt8: return ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8;
    case DType::kBool: return ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL;
    case DType::kFloat64: return ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE;
  }
  return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
}

Result<TensorInfo> tensor_info(const std::string& model_path, const char* role, std::string name,
                               const Ort::TypeInfo& type_info) {
  if (type_info.GetONNXType() != ONNX_TYPE_TENSOR) {
    return unsupported(model_path + ": " + role + " '" + name +
                       "' is not a tensor (sequences, maps and optionals are not supported)");
  }
  auto shape_info = type_info.GetTensorTypeAndShapeInfo();
  Result<DType> dtype = dtype_from_onnx(shape_info.GetElementType());
  if (!dtype) return unsupported(model_path + ": " + role + " '" + name + "' has " + dtype.status().message());
  TensorInfo info;
  info.name = std::move(name);
  info.dtype = *dtype;
  info.shape = shape_info.GetShape();
  for (auto& d : info.shape) d = d < 0 ? -1 : d;  // symbolic and unknown dimensions
  return info;
}

// Static dimensions must match; -1 (dynamic) accepts any size.
bool shape_fits(const Shape& model, const Shape& given) {
  if (model.size() != given.size()) return false;
  for (std::size_t i = 0; i < model.size(); ++i) {
    if (model[i] >= 0 && model[i] != given[i]) return false;
  }
  return true;
}

class OrtSession final : public InferenceSession {
 public:
  OrtSession(std::shared_ptr<Ort::Env> env, Ort::Session session, std::string model_path,
             std::vector<TensorInfo> inputs, std::vector<TensorInfo> outputs)
      : env_(std::move(env)),
        session_(std::move(session)),
        model_path_(std::move(model_path)),
        inputs_(std::move(inputs)),
        outputs_(std::move(outputs)),
        memory_info_(Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault)) {
    for (const auto& t : inputs_) input_names_.push_back(t.name.c_str());
    for (const auto& t : outputs_) output_names_.push_back(t.name.c_str());
  }

  const std::vector<TensorInfo>& inputs() const override { return inputs_; }
  const std::vector<TensorInfo>& outputs() const override { return outputs_; }

  Result<std::vector<Tensor>> run(const std::vector<Tensor>& inputs) override {
    FSWAP_RETURN_IF_ERROR(check_inputs(inputs));
    try {
      std::vector<Ort::Value> values;
      values.reserve(inputs.size());
      for (const auto& t : inputs) {
        // ORT only reads inputs; the const_cast lets it borrow the caller's buffer without a copy.
        values.push_back(Ort::Value::CreateTensor(memory_info_, const_cast<void*>(t.raw()), t.bytes(),
                                                  t.shape().data(), t.shape().size(), dtype_to_onnx(t.dtype())));
      }
      std::vector<Ort::Value> results =
          session_.Run(Ort::RunOptions{nullptr}, input_names_.data(), values.data(), values.size(),
                       output_names_.data(), output_names_.size());
      std::vector<Tensor> outputs;
      outputs.reserve(results.size());
      for (std::size_t i = 0; i < results.size(); ++i) {
        FSWAP_ASSIGN_OR_RETURN(Tensor out, copy_output(outputs_[i].name, results[i]));
        outputs.push_back(std::move(out));
      }
      return outputs;
    } catch (const Ort::Exception& e) {
      if (e.GetOrtErrorCode() == ORT_INVALID_ARGUMENT) {
        return invalid_input(model_path_ + ": ONNX Runtime rejected the inputs (" + ort_message(e) + ")");
      }
      return internal_error(model_path_ + ": inference failed (" + ort_message(e) + ")");
    } catch (const std::bad_alloc&) {
      return out_of_memory(model_path_ + ": out of memory while running the model");
    }
  }

 private:
  Status check_inputs(const std::vector<Tensor>& inputs) const {
    if (inputs.size() != inputs_.size()) {
      std::string names;
      for (const auto& t : inputs_) names += (names.empty() ? "" : ", ") + t.name;
      return invalid_input(model_path_ + ": expects " + std::to_string(inputs_.size()) + " input(s) (" + names +
                           "), got " + std::to_string(inputs.size()));
    }
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const TensorInfo& want = inputs_[i];
      const Tensor& got = inputs[i];
      if (got.dtype() != want.dtype) {
        return invalid_input(model_path_ + ": input '" + want.name + "' is " + dtype_name(got.dtype()) +
                             " but the model expects " + dtype_name(want.dtype));
      }
      if (!shape_fits(want.shape, got.shape())) {
        return invalid_input(model_path_ + ": input '" + want.name + "' has shape " + shape_to_string(got.shape()) +
                             " but the model expects " + shape_to_string(want.shape) + " (-1 = any size)");
      }
    }
    return Status::ok();
  }

  Result<Tensor> copy_output(const std::string& name, const Ort::Value& value) const {
    if (!value.IsTensor()) return unsupported(model_path_ + ": output '" + name + "' is not a tensor");
    auto info = value.GetTensorTypeAndShapeInfo();
    Result<DType> dtype = dtype_from_onnx(info.GetElementType());
    if (!dtype) return unsupported(model_path_ + ": output '" + name + "' has " + dtype.status().message());
    Tensor out = Tensor::zeros(*dtype, info.GetShape());
    if (out.bytes() > 0) std::memcpy(out.raw(), value.GetTensorRawData(), out.bytes());
    return out;
  }

  // Declared first so it is destroyed last: ORT requires the Env to outlive its sessions.
  std::shared_ptr<Ort::Env> env_;
  Ort::Session session_;
  std::string model_path_;
  std::vector<TensorInfo> inputs_;
  std::vector<TensorInfo> outputs_;
  std::vector<const char*> input_names_;   // point into inputs_
  std::vector<const char*> output_names_;  // point into outputs_
  Ort::MemoryInfo memory_info_;
};

Status append_cuda(Ort::SessionOptions& so, const Device& device) {
  if (!cuda_provider_files_exist()) return cuda_missing(device, "");
  try {
    Ort::CUDAProviderOptions cuda;
    cuda.Update({{"device_id", std::to_string(device.index)}});
    so.AppendExecutionProvider_CUDA_V2(*cuda);
  } catch (const Ort::Exception& e) {
    return cuda_missing(device, "ONNX Runtime: " + ort_message(e));
  }
  return Status::ok();
}

Result<std::unique_ptr<InferenceSession>> load_session(const std::shared_ptr<Ort::Env>& env,
                                                       const std::string& model_path,
                                                       const SessionOptions& options) {
  Ort::SessionOptions so;
  so.SetIntraOpNumThreads(options.threads);  // 0 lets ORT use one thread per physical core
  so.SetInterOpNumThreads(1);
  so.SetExecutionMode(ORT_SEQUENTIAL);
  so.SetGraphOptimizationLevel(ORT_ENABLE_ALL);
  // Idle ORT workers must sleep, not spin: decode, imaging and the encoder share these cores.
  so.AddConfigEntry("session.intra_op.allow_spinning", "0");
  if (options.device.kind == DeviceKind::kCuda) FSWAP_RETURN_IF_ERROR(append_cuda(so, options.device));

  Ort::Session session{nullptr};
  try {
    session = Ort::Session(*env, model_path.c_str(), so);
  } catch (const Ort::Exception& e) {
    const std::string what = ort_message(e);
    switch (e.GetOrtErrorCode()) {
      case ORT_NO_SUCHFILE: return not_found(model_path + ": no such file");
      case ORT_NOT_IMPLEMENTED:
        return unsupported(model_path + ": ONNX Runtime " + Ort::GetVersionString() + " cannot run this model (" +
                           what + ")");
      default: break;
    }
    if (options.device.kind == DeviceKind::kCuda &&
        (what.find("CUDA") != std::string::npos || what.find("cuda") != std::string::npos)) {
      return unsupported(model_path + ": could not start the CUDA provider on " + options.device.to_string() +
                         " (" + what + ")");
    }
    return invalid_input(model_path + ": not a valid ONNX model (" + what + ")");
  }

  Ort::AllocatorWithDefaultOptions allocator;
  std::vector<TensorInfo> inputs;
  for (std::size_t i = 0; i < session.GetInputCount(); ++i) {
    FSWAP_ASSIGN_OR_RETURN(TensorInfo info, tensor_info(model_path, "input",
                                                        session.GetInputNameAllocated(i, allocator).get(),
                                                        session.GetInputTypeInfo(i)));
    inputs.push_back(std::move(info));
  }
  std::vector<TensorInfo> outputs;
  for (std::size_t i = 0; i < session.GetOutputCount(); ++i) {
    FSWAP_ASSIGN_OR_RETURN(TensorInfo info, tensor_info(model_path, "output",
                                                        session.GetOutputNameAllocated(i, allocator).get(),
                                                        session.GetOutputTypeInfo(i)));
    outputs.push_back(std::move(info));
  }
  return std::unique_ptr<InferenceSession>(
      std::make_unique<OrtSession>(env, std::move(session), model_path, std::move(inputs), std::move(outputs)));
}

}  // namespace

std::string ort_library_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&OrtGetApiBase), &info) == 0 || info.dli_fname == nullptr) return ".";
  std::error_code ec;
  fs::path lib = fs::canonical(info.dli_fname, ec);
  if (ec) lib = info.dli_fname;
  return lib.parent_path().string();
}

Result<std::unique_ptr<InferenceSession>> OrtEngine::load(const std::string& model_path,
                                                          const SessionOptions& options) {
  std::error_code ec;
  if (!fs::exists(model_path, ec)) return not_found(model_path + ": no such file");
  if (fs::is_directory(model_path, ec)) return invalid_input(model_path + ": is a directory, not an ONNX model");
  if (options.threads < 0) {
    return invalid_input(model_path + ": threads must be 0 (default) or more, got " + std::to_string(options.threads));
  }
  if (options.precision == Precision::kFloat16)
    return invalid_input(model_path + ": --precision fp16 is the native engine's (--engine native --device cuda); "
                         "the ort engine runs a model in the precision it was exported in");
  FSWAP_ASSIGN_OR_RETURN(std::shared_ptr<Ort::Env> env, shared_env());
  try {
    return load_session(env, model_path, options);
  } catch (const Ort::Exception& e) {
    return internal_error(model_path + ": ONNX Runtime failed while preparing the session (" + ort_message(e) + ")");
  } catch (const std::bad_alloc&) {
    return out_of_memory(model_path + ": out of memory while loading the model");
  }
}

namespace {
// The CUDA provider needs the driver library; without it (no GPU) CUDA is not available.
bool nvidia_driver_present() {
  void* driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (driver == nullptr) return false;
  dlclose(driver);
  return true;
}
}  // namespace

std::vector<std::string> OrtEngine::available_devices() const {
  std::vector<std::string> devices = {"cpu"};
  if (!shared_env()) return devices;
  try {
    const auto providers = Ort::GetAvailableProviders();
    if (std::find(providers.begin(), providers.end(), kCudaProviderName) != providers.end() &&
        cuda_provider_files_exist() && nvidia_driver_present()) {
      devices.emplace_back("cuda");
    }
  } catch (const Ort::Exception& e) {
    log_warn(std::string("could not list the ONNX Runtime execution providers: ") + ort_message(e));
  }
  return devices;
}

}  // namespace fswap
