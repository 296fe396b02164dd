// Checks CPU loads and stores through a mapped GPU virtual address. A range
// the driver did not map for the CPU faults; that must be reported, not
// crash the probe, so the access runs under a SIGSEGV/SIGBUS guard.
#pragma once

#include <cstddef>
#include <string>

namespace egm::probe {

// The byte the probe writes at `index` of a buffer; `seed` tells patterns apart.
unsigned char pattern_byte(size_t index, unsigned seed);

// Fills `size` bytes at `buffer` with pattern `seed`.
void fill_pattern(unsigned char* buffer, size_t size, unsigned seed);

// Where `buffer` first differs from pattern `seed`, or `size` if nowhere.
size_t first_pattern_mismatch(const unsigned char* buffer, size_t size, unsigned seed);

// Reads [address, address + size) expecting pattern `expected_seed`, writes
// pattern `write_seed` and reads it back. "" when all went well, else what
// went wrong ("byte 17 is 0x00, expected 0x9a", "SIGSEGV while reading").
std::string cpu_access_problem(void* address, size_t size, unsigned expected_seed,
                               unsigned write_seed);

}  // namespace egm::probe
