# Shared compile settings and the dependency imports for every target.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

pkg_check_modules(CYAML   REQUIRED IMPORTED_TARGET libcyaml)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(HWLOC   REQUIRED IMPORTED_TARGET hwloc)
pkg_check_modules(URING   REQUIRED IMPORTED_TARGET liburing)
pkg_check_modules(ZSTD    REQUIRED IMPORTED_TARGET libzstd)
pkg_check_modules(XXHASH  REQUIRED IMPORTED_TARGET libxxhash)
pkg_check_modules(PCAP    REQUIRED IMPORTED_TARGET libpcap)
pkg_check_modules(CMOCKA  REQUIRED IMPORTED_TARGET cmocka)
find_library(NUMA_LIB numa REQUIRED)

if(WB_WITH_DPDK)
  pkg_check_modules(DPDK REQUIRED IMPORTED_TARGET libdpdk)
endif()

set(WB_WARNINGS -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers)

# The ITCH decoder's branch-free path shuffles bytes with SSSE3 (pshufb). Every x86-64
# server CPU since 2007 has it, and DPDK 22.11 already requires SSE4.2; elsewhere the
# decoder keeps its plain switch. Anything compiling parsers/itch.c uses these flags, so
# the fuzz targets test the path the appliance runs.
set(WB_PARSER_ARCH_FLAGS "")
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(WB_PARSER_ARCH_FLAGS -mssse3)
endif()

if(WB_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# wb_library(NAME SOURCES... ) : a static library with the project's warnings.
function(wb_library name)
  add_library(${name} STATIC ${ARGN})
  target_compile_options(${name} PRIVATE ${WB_WARNINGS})
  target_include_directories(${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
endfunction()

function(wb_executable name)
  add_executable(${name} ${ARGN})
  target_compile_options(${name} PRIVATE ${WB_WARNINGS})
endfunction()

# wb_test(NAME SOURCES... LIBS ...): a cmocka test registered with CTest.
function(wb_test name)
  cmake_parse_arguments(T "SERIAL" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_compile_options(${name} PRIVATE ${WB_WARNINGS})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  add_test(NAME ${name} COMMAND ${name} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "WB_SOURCE_DIR=${CMAKE_SOURCE_DIR};WB_BIN_DIR=${CMAKE_BINARY_DIR}/bin;WB_SHARED_DIR=${CMAKE_SOURCE_DIR}/../shared")
  if(T_SERIAL)
    set_tests_properties(${name} PROPERTIES RUN_SERIAL TRUE)
  endif()
  if(T_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()

# wb_script_test(NAME SCRIPT): a shell integration test (exit 77 = skipped).
function(wb_script_test name script)
  cmake_parse_arguments(T "SERIAL" "TIMEOUT" "LABELS" ${ARGN})
  add_test(NAME ${name} COMMAND bash ${script} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "WB_SOURCE_DIR=${CMAKE_SOURCE_DIR};WB_BIN_DIR=${CMAKE_BINARY_DIR}/bin;WB_TEST_BIN_DIR=${CMAKE_BINARY_DIR}/tests;WB_SHARED_DIR=${CMAKE_SOURCE_DIR}/../shared")
  if(T_SERIAL)
    set_tests_properties(${name} PROPERTIES RUN_SERIAL TRUE)
  endif()
  if(T_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()
