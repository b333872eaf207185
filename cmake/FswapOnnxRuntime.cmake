# ONNX Runtime 1.29 comes from npm packages unpacked by scripts/setup.sh into
# ${FSWAP_THIRD_PARTY_DIR}/onnxruntime/{include,lib}.
set(_ort_root ${FSWAP_THIRD_PARTY_DIR}/onnxruntime)
find_path(ORT_INCLUDE_DIR onnxruntime_cxx_api.h PATHS ${_ort_root}/include NO_DEFAULT_PATH)
find_library(ORT_LIBRARY NAMES onnxruntime libonnxruntime.so.1 PATHS ${_ort_root}/lib NO_DEFAULT_PATH)
if(NOT ORT_INCLUDE_DIR OR NOT ORT_LIBRARY)
  message(FATAL_ERROR "ONNX Runtime not found under ${_ort_root}: run scripts/setup.sh first")
endif()
add_library(onnxruntime::onnxruntime SHARED IMPORTED GLOBAL)
set_target_properties(onnxruntime::onnxruntime PROPERTIES
  IMPORTED_LOCATION ${ORT_LIBRARY}
  IMPORTED_NO_SONAME OFF
  INTERFACE_INCLUDE_DIRECTORIES ${ORT_INCLUDE_DIR})
