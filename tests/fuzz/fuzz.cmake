# Initial cache of the fuzz build (cmake -C tests/fuzz/fuzz.cmake …), used by
# tests/fuzz/run.sh. Every library gets libFuzzer's coverage instrumentation
# (fuzzer-no-link) and ASan + UBSan; the harnesses link libFuzzer itself.
set(CMAKE_C_COMPILER clang CACHE STRING "")
set(CMAKE_CXX_COMPILER clang++ CACHE STRING "")
set(CMAKE_BUILD_TYPE "" CACHE STRING "")
set(CMAKE_C_FLAGS "-O1 -gline-tables-only -fsanitize=fuzzer-no-link" CACHE STRING "")
set(CMAKE_CXX_FLAGS "-O1 -gline-tables-only -fsanitize=fuzzer-no-link" CACHE STRING "")
set(BUNKER_SANITIZE "address,undefined" CACHE STRING "")
set(BUNKER_FUZZ ON CACHE BOOL "")
# clang warns about things g++ does not; the g++ build keeps -Werror.
set(BUNKER_WERROR OFF CACHE BOOL "")
