// What every test program that the LD_PRELOAD tests spawn (alloc_program,
// api_program, multi_gpu_program, reliability_program) shares: its KEY=VALUE
// report and its main().
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace test_program {

// One KEY=VALUE line in the file $ALLOC_PROGRAM_REPORT names (nothing when
// unset): the values that legitimately differ under the shim, kept out of
// stdout so that stdout stays comparable with and without it.
void report(const std::string& key, const std::string& value);

// "0x7f..." of an address.
std::string hex(uintptr_t value);
std::string address_of(const void* pointer);

using Scenarios = std::map<std::string, std::function<int()>>;

// The programs' main(): `program SCENARIO` runs that scenario between the
// lines "scenario NAME" and "exit STATUS" (stdout line-buffered, so that a
// crash keeps what came before); an unknown one gets the usage and status 2.
int run_scenario(const char* program, const Scenarios& scenarios, int argc, char** argv);

}  // namespace test_program
