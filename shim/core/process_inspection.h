// Facts about the host process that decide what the shim can intercept.
#pragma once

namespace egm {

// True if /proc/self/exe carries CUDA device code (an .nv_fatbin section),
// i.e. it was built by nvcc; with no dynamic libcudart loaded, its runtime
// is linked statically and its cudaMalloc calls never reach the shim.
bool executable_has_cuda_code();

}  // namespace egm
