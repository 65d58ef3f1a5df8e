add_executable(loadgen loadgen.cpp)
add_executable(asio_echo_server asio_echo_server.cpp)
target_link_libraries(asio_echo_server PRIVATE asio::asio Threads::Threads)
