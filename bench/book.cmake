# Book microbench: ns per applied ITCH message on a generated day-like stream; with wbsim,
# `bench_book day` replays a wbsim day parse + prefetch + book (docs/performance.md, Book).
wb_executable(bench_book ${CMAKE_CURRENT_LIST_DIR}/bench_book.c)
target_link_libraries(bench_book PRIVATE wb_book)
if(TARGET wb_sim)
  target_compile_definitions(bench_book PRIVATE WB_BENCH_DAY)
  target_link_libraries(bench_book PRIVATE wb_sim wb_parsers)
endif()
# A/B of book builds loaded as shared objects into one process (scripts/ab-book.sh).
if(TARGET wb_sim)
  wb_executable(bench_ab_book ${CMAKE_CURRENT_LIST_DIR}/ab_book.c)
  target_include_directories(bench_ab_book PRIVATE ${CMAKE_SOURCE_DIR}/book)
  target_link_libraries(bench_ab_book PRIVATE wb_sim wb_parsers ${CMAKE_DL_LIBS})
endif()
