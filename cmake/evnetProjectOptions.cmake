# Warning and sanitizer flags for evnet's own tests, examples and benchmarks; never for the
# interface target that consumers link.
add_library(evnet_project_options INTERFACE)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(evnet_project_options INTERFACE -Wall -Wextra -Wpedantic)
  if(EVNET_WARNINGS_AS_ERRORS)
    target_compile_options(evnet_project_options INTERFACE -Werror)
  endif()
  if(EVNET_SANITIZE)
    target_compile_options(evnet_project_options INTERFACE -fsanitize=${EVNET_SANITIZE}
                           -fno-sanitize-recover=all -fno-omit-frame-pointer)
    target_link_options(evnet_project_options INTERFACE -fsanitize=${EVNET_SANITIZE})
    if(EVNET_SANITIZE MATCHES "thread" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      # asio uses std::atomic_thread_fence, which GCC warns TSan does not model.
      target_compile_options(evnet_project_options INTERFACE -Wno-tsan)
    endif()
  endif()
endif()
target_link_libraries(evnet_project_options INTERFACE evnet::evnet)
