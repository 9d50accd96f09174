# Capture benchmark: block codec per zstd level against plain zstd, persister end to end,
# ring handoff. Never run by CI.
wb_executable(bench_persist ${CMAKE_CURRENT_LIST_DIR}/bench_persist.c)
target_link_libraries(bench_persist PRIVATE wb_persist)
set_target_properties(bench_persist PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
