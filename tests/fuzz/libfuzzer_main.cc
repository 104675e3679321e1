// The entry point libFuzzer calls, for the target named by POOLKEEPER_FUZZ_TARGET (one executable
// per target: run.sh's fuzz_<target>, and the g++ replay drivers with replay_main.cc).
#include <cstddef>
#include <cstdint>
#include <span>

#include "targets.h"

#ifndef POOLKEEPER_FUZZ_TARGET
#error "define POOLKEEPER_FUZZ_TARGET to one of the functions in targets.h"
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  poolkeeper::fuzz::POOLKEEPER_FUZZ_TARGET(std::span<const uint8_t>(data, size));
  return 0;
}
