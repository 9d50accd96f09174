# IEX DEEP replay from memory: parse-only and parse+book against a byte-touch baseline.
set(WB_IEX_ROOT ${CMAKE_CURRENT_LIST_DIR}/..)
wb_executable(bench_iex ${CMAKE_CURRENT_LIST_DIR}/bench_iex.c ${WB_IEX_ROOT}/tests/iex/iex_pcap.c)
target_include_directories(bench_iex PRIVATE ${WB_IEX_ROOT}/tests/iex)
target_link_libraries(bench_iex PRIVATE wb_feeds PkgConfig::PCAP)
