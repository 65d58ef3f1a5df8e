# Install rules: evnet's headers, its targets (evnet::evnet, and evnet::tls when defined),
# evnetConfig.cmake with its version file, Findasio.cmake and Findliburing.cmake. Nothing of the tests' dependencies.
include(CMakePackageConfigHelpers)
set(EVNET_CMAKE_INSTALL_DIR "${CMAKE_INSTALL_DATADIR}/cmake/evnet")

install(TARGETS evnet EXPORT evnetTargets)
install(DIRECTORY include/evnet DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(EXPORT evnetTargets NAMESPACE evnet:: DESTINATION "${EVNET_CMAKE_INSTALL_DIR}")
if(TARGET evnet_tls)
  install(TARGETS evnet_tls EXPORT evnetTlsTargets)
  install(EXPORT evnetTlsTargets NAMESPACE evnet:: DESTINATION "${EVNET_CMAKE_INSTALL_DIR}")
endif()

# A fetched asio goes into a folder of its own, <prefix>/include/evnet-asio, which no compiler
# searches unless told: a program that includes <asio.hpp> with -I<prefix>/include still gets
# its own asio. evnetConfig.cmake falls back to this copy only when the consumer has no asio.
set(EVNET_BUNDLED_ASIO_DIR "")
if(EVNET_FETCHED_ASIO_INCLUDE_DIR)
  set(EVNET_BUNDLED_ASIO_DIR "${CMAKE_INSTALL_INCLUDEDIR}/evnet-asio")
  install(DIRECTORY "${EVNET_FETCHED_ASIO_INCLUDE_DIR}/" DESTINATION "${EVNET_BUNDLED_ASIO_DIR}"
          FILES_MATCHING PATTERN "*.hpp" PATTERN "*.ipp")
endif()

configure_package_config_file(cmake/evnetConfig.cmake.in
                              "${PROJECT_BINARY_DIR}/evnetConfig.cmake"
                              INSTALL_DESTINATION "${EVNET_CMAKE_INSTALL_DIR}")
# SemVer (README "Versions and changes"): in 0.x a minor release may break the API.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(compatibility SameMinorVersion)
else()
  set(compatibility SameMajorVersion)
endif()
write_basic_package_version_file("${PROJECT_BINARY_DIR}/evnetConfigVersion.cmake"
                                 COMPATIBILITY ${compatibility} ARCH_INDEPENDENT)
install(FILES "${PROJECT_BINARY_DIR}/evnetConfig.cmake"
              "${PROJECT_BINARY_DIR}/evnetConfigVersion.cmake" cmake/Findasio.cmake
              cmake/evnetAsioVersion.cmake cmake/Findliburing.cmake
        DESTINATION "${EVNET_CMAKE_INSTALL_DIR}")
