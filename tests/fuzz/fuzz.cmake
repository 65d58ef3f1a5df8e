# libFuzzer targets (Clang only; included when EVNET_FUZZ is ON).
#   resp_fuzz   the hub's RESP2 parser, encoders and glob matcher (examples/hub/resp.hpp)
#   fuzz_resp   CTest: runs resp_fuzz for EVNET_FUZZ_SECONDS over the seed corpus; the seeds
#               are only read, new inputs go to <build>/fuzz/resp/corpus, findings to
#               <build>/fuzz/resp/ (crash-*, leak-*, timeout-*), and any finding fails the test.
set(EVNET_FUZZ_SECONDS 60 CACHE STRING "How long each fuzz_* CTest test runs, in seconds")

set(_evnet_fuzz_dir "${CMAKE_CURRENT_LIST_DIR}")
set(_evnet_fuzz_out "${CMAKE_CURRENT_BINARY_DIR}/fuzz/resp")
file(MAKE_DIRECTORY "${_evnet_fuzz_out}/corpus")

add_executable(resp_fuzz "${_evnet_fuzz_dir}/resp_fuzz.cpp")
target_include_directories(resp_fuzz PRIVATE "${_evnet_fuzz_dir}/../../examples")
target_compile_features(resp_fuzz PRIVATE cxx_std_20)
target_compile_options(resp_fuzz PRIVATE -g -O1 -Wall -Wextra -Wpedantic
                       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
target_link_options(resp_fuzz PRIVATE -fsanitize=fuzzer,address,undefined)

# libFuzzer writes new inputs to the first corpus directory and only reads the others.
add_test(NAME fuzz_resp
         COMMAND resp_fuzz -max_total_time=${EVNET_FUZZ_SECONDS} -timeout=10 -print_final_stats=1
                 "-artifact_prefix=${_evnet_fuzz_out}/" "${_evnet_fuzz_out}/corpus"
                 "${_evnet_fuzz_dir}/corpus/resp")
math(EXPR _evnet_fuzz_timeout "${EVNET_FUZZ_SECONDS} + 120")
set_tests_properties(fuzz_resp PROPERTIES TIMEOUT ${_evnet_fuzz_timeout} LABELS fuzz)
