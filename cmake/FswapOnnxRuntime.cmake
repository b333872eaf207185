# ONNX Runtime 1.29 comes from npm packages unpacked by scripts/setup.sh into
# ${FSWAP_THIRD_PARTY_DIR}/onnxruntime/{include,lib}.
# The package ships only libonnxruntime.so.1 (no unversioned .so link), so the imported
# location names that file directly. Every target that links it gets an RPATH to its
# directory: fswap binaries run without LD_LIBRARY_PATH, and ORT finds its provider
# libraries (libonnxruntime_providers_*.so) in that same directory.
set(_ort_root ${FSWAP_THIRD_PARTY_DIR}/onnxruntime)
find_path(ORT_INCLUDE_DIR onnxruntime_cxx_api.h PATHS ${_ort_root}/include NO_DEFAULT_PATH)
if(EXISTS ${_ort_root}/lib/libonnxruntime.so.1)
  set(ORT_LIBRARY ${_ort_root}/lib/libonnxruntime.so.1)
else()
  find_library(ORT_LIBRARY NAMES onnxruntime PATHS ${_ort_root}/lib NO_DEFAULT_PATH)
endif()
if(NOT ORT_INCLUDE_DIR OR NOT ORT_LIBRARY)
  message(FATAL_ERROR "ONNX Runtime not found under ${_ort_root}: run scripts/setup.sh first")
endif()
get_filename_component(ORT_LIBRARY_DIR ${ORT_LIBRARY} DIRECTORY)
add_library(onnxruntime::onnxruntime SHARED IMPORTED GLOBAL)
set_target_properties(onnxruntime::onnxruntime PROPERTIES
  IMPORTED_LOCATION ${ORT_LIBRARY}
  IMPORTED_SONAME libonnxruntime.so.1
  INTERFACE_INCLUDE_DIRECTORIES ${ORT_INCLUDE_DIR}
  INTERFACE_LINK_OPTIONS "LINKER:-rpath,${ORT_LIBRARY_DIR}")
