// Built as libnccl_stand_in.so: a communication library's own cuMemCreate,
// as NCCL makes its buffers (checking the result, as NCCL's CUCHECK does, so
// the call is not a tail call). The shim must leave such handles on the
// device (the file name starts with libnccl).
#include <cuda.h>

namespace {
volatile int failed_creates = 0;
}

extern "C" __attribute__((visibility("default"))) CUresult nccl_stand_in_create(
    CUmemGenericAllocationHandle* handle, size_t size, const CUmemAllocationProp* prop) {
  CUresult result = cuMemCreate(handle, size, prop, 0);
  if (result != CUDA_SUCCESS) failed_creates = failed_creates + 1;
  return result;
}
