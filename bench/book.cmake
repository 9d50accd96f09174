# Book microbench: ns per applied ITCH message on a generated day-like stream.
wb_executable(bench_book ${CMAKE_CURRENT_LIST_DIR}/bench_book.c)
target_link_libraries(bench_book PRIVATE wb_book)
