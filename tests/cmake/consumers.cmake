# Included by each consumer project once it has evnet: builds consumer.cpp with evnet::evnet and,
# when EVNET_TEST_TLS is on, tls_consumer.cpp with evnet::tls, and registers them as the
# project's tests. EVNET_EXPECT_ASIO_VERSION (ASIO_VERSION, e.g. 102299) checks which asio
# compiled them; EVNET_EXPECT_NO_TLS that evnet::tls is absent.
if(TARGET evnet_project_options OR TARGET version_test OR TARGET doctest::doctest)
  message(FATAL_ERROR "evnet added its tests or build options to a consumer project")
endif()
enable_testing()

add_executable(consumer "${CMAKE_CURRENT_LIST_DIR}/consumer.cpp")
target_link_libraries(consumer PRIVATE evnet::evnet)
add_test(NAME consumer COMMAND consumer)
set(asio_regex "[0-9]+")
if(EVNET_EXPECT_ASIO_VERSION)
  set(asio_regex "${EVNET_EXPECT_ASIO_VERSION}")
endif()
set_tests_properties(consumer PROPERTIES PASS_REGULAR_EXPRESSION
                     "evnet ${EVNET_EXPECT_VERSION} consumer: ok \\(asio ${asio_regex}\\)")

if(EVNET_TEST_TLS)
  if(NOT TARGET evnet::tls)
    message(FATAL_ERROR "evnet::tls is not defined")
  endif()
  add_executable(tls_consumer "${CMAKE_CURRENT_LIST_DIR}/tls_consumer.cpp")
  target_link_libraries(tls_consumer PRIVATE evnet::tls)
  add_test(NAME tls_consumer COMMAND tls_consumer)
  set_tests_properties(tls_consumer PROPERTIES PASS_REGULAR_EXPRESSION
                       "evnet ${EVNET_EXPECT_VERSION} tls consumer: ok")
endif()
if(EVNET_EXPECT_NO_TLS AND TARGET evnet::tls)
  message(FATAL_ERROR "evnet::tls is defined although OpenSSL was not to be found")
endif()
