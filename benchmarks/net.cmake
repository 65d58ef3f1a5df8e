# Standalone network programs: they use neither evnet's code nor its interface target. The TLS
# ones (loadgen's --tls, the raw asio::ssl server) link OpenSSL 3 directly.
find_package(OpenSSL 3 REQUIRED)
add_executable(loadgen loadgen.cpp)
target_link_libraries(loadgen PRIVATE OpenSSL::SSL)
add_executable(asio_echo_server asio_echo_server.cpp)
target_link_libraries(asio_echo_server PRIVATE asio::asio Threads::Threads)
add_executable(asio_tls_echo_server asio_tls_echo_server.cpp)
target_link_libraries(asio_tls_echo_server PRIVATE asio::asio Threads::Threads OpenSSL::SSL)
foreach(program loadgen asio_echo_server asio_tls_echo_server)
  target_compile_features(${program} PRIVATE cxx_std_20)
  target_compile_options(${program} PRIVATE -Wall -Wextra -Wpedantic
                                            $<$<BOOL:${EVNET_WARNINGS_AS_ERRORS}>:-Werror>)
endforeach()

# The evnet echo server of the benchmarks (the example plus --timeout); evnet_project_options
# brings evnet::evnet and the warnings (-Wall -Wextra -Wpedantic, -Werror when
# EVNET_WARNINGS_AS_ERRORS).
add_executable(evnet_echo_server evnet_echo_server.cpp)
target_link_libraries(evnet_echo_server PRIVATE evnet::evnet evnet_project_options)

# The io_uring ceiling: a hand-written echo server on liburing alone (what issue #16 measures
# evnet's io_uring transport against), where liburing is found.
if(EVNET_IO_URING)
  add_executable(uring_echo_server uring_echo_server.cpp)
  target_link_libraries(uring_echo_server PRIVATE liburing::liburing)
  target_compile_features(uring_echo_server PRIVATE cxx_std_20)
  target_compile_options(uring_echo_server PRIVATE -Wall -Wextra -Wpedantic
                                                   $<$<BOOL:${EVNET_WARNINGS_AS_ERRORS}>:-Werror>)
endif()
