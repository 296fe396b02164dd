// The shim's own kernel for staging (shim/core/stager.h), compiled to PTX at
// build time and loaded with cuModuleLoadData when a staging window is made.
// After a launch that read and wrote the copy of an allocation, each word
// the launch changed in the copy is stored back to the original. A word the
// launch did not change through the copy is never stored, so a write the
// launch made to the original through a pointer the shim did not rewrite
// survives.
extern "C" __global__ void egm_write_back(const unsigned long long* copy,
                                          const unsigned long long* snapshot,
                                          unsigned long long* original,
                                          unsigned long long words) {
  unsigned long long stride = static_cast<unsigned long long>(gridDim.x) * blockDim.x;
  for (unsigned long long i = static_cast<unsigned long long>(blockIdx.x) * blockDim.x +
                              threadIdx.x;
       i < words; i += stride) {
    unsigned long long value = copy[i];
    if (value != snapshot[i]) original[i] = value;
  }
}
