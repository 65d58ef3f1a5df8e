# Install rules: headers, evnetConfig.cmake, its version file and Findasio.cmake.
include(CMakePackageConfigHelpers)
set(EVNET_CMAKE_INSTALL_DIR "${CMAKE_INSTALL_DATADIR}/cmake/evnet")

install(TARGETS evnet EXPORT evnetTargets)
install(DIRECTORY include/ DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
if(EVNET_FETCHED_ASIO_INCLUDE_DIR)
  # asio was fetched: ship its headers next to evnet's so find_package(evnet) finds them.
  install(DIRECTORY "${EVNET_FETCHED_ASIO_INCLUDE_DIR}/" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
          FILES_MATCHING PATTERN "*.hpp" PATTERN "*.ipp")
endif()
install(EXPORT evnetTargets NAMESPACE evnet:: DESTINATION "${EVNET_CMAKE_INSTALL_DIR}")

configure_package_config_file(cmake/evnetConfig.cmake.in
                              "${PROJECT_BINARY_DIR}/evnetConfig.cmake"
                              INSTALL_DESTINATION "${EVNET_CMAKE_INSTALL_DIR}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/evnetConfigVersion.cmake"
                                 COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)
install(FILES "${PROJECT_BINARY_DIR}/evnetConfig.cmake"
              "${PROJECT_BINARY_DIR}/evnetConfigVersion.cmake" cmake/Findasio.cmake
        DESTINATION "${EVNET_CMAKE_INSTALL_DIR}")
