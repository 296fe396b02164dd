// fidelity_program on a real GPU: the doubles' inspection functions it
// reports with do not exist there; -1 says "unknown" in its report.
#include "tests/doubles/fake_control.h"

extern "C" {
int fake_cuda_mapping_of(const void*, uintptr_t*, size_t*) { return -1; }
int fake_cuda_live_mappings(void) { return -1; }
int fake_cuda_live_allocations(void) { return -1; }
int fake_cudart_live_allocations(void) { return -1; }
}
