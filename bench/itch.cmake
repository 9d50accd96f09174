# ITCH decode and decode+book from memory on a wbsim day (docs/performance.md, ITCH).
if(TARGET wb_sim)
  wb_executable(bench_itch ${CMAKE_CURRENT_LIST_DIR}/bench_itch.c)
  target_link_libraries(bench_itch PRIVATE wb_sim wb_book wb_parsers)
endif()
