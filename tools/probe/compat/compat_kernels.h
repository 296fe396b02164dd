// Checks that need kernels (device atomics, textures). Built by nvcc into
// libegm_compat_kernels.so, which egm-compat-checks dlopens only when it can:
// a CUDA runtime that cannot run kernels (the CPU test doubles) cannot load it.
#pragma once

#include <string>

namespace egm::compat {

// Each returns a result string comparable between runs: error names and
// values computed on the GPU, never addresses.
std::string atomics_check();
std::string texture_check();

}  // namespace egm::compat
