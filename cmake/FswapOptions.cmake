# Interface targets every fswap target links: warnings and sanitizers live here, once.
add_library(fswap_warnings INTERFACE)
add_library(fswap::warnings ALIAS fswap_warnings)
target_compile_options(fswap_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align
    -Wunused -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough
    $<$<BOOL:${FSWAP_WARNINGS_AS_ERRORS}>:-Werror>>)

add_library(fswap_sanitizers INTERFACE)
add_library(fswap::sanitizers ALIAS fswap_sanitizers)
if(FSWAP_SANITIZER)
  list(JOIN FSWAP_SANITIZER "," _fswap_san)
  target_compile_options(fswap_sanitizers INTERFACE -fsanitize=${_fswap_san} -fno-omit-frame-pointer)
  target_link_options(fswap_sanitizers INTERFACE -fsanitize=${_fswap_san})
endif()

# fswap_add_layer(NAME SOURCES... DEPS ...): one static library per architecture layer,
# aliased fswap::NAME, with the project include paths, warnings and sanitizers.
function(fswap_add_layer name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(fswap_${name} STATIC ${ARG_SOURCES})
  add_library(fswap::${name} ALIAS fswap_${name})
  target_include_directories(fswap_${name} PUBLIC ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(fswap_${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS} fswap::warnings fswap::sanitizers)
endfunction()
