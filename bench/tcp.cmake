# TCP reassembly + SoupBinTCP + ITCH + book from a pcap, beside MoldUDP64 (docs/performance.md, TCP feeds).
wb_executable(bench_tcp ${CMAKE_CURRENT_LIST_DIR}/bench_tcp.c ${CMAKE_SOURCE_DIR}/tests/tcp/tcp_pcap.c)
target_include_directories(bench_tcp PRIVATE ${CMAKE_SOURCE_DIR}/tests/tcp)
target_link_libraries(bench_tcp PRIVATE wb_feeds)
