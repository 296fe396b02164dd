// The PTX of shim/core/staging_kernels.cu, embedded at build time.
#pragma once

namespace egm {

// NUL-terminated, as cuModuleLoadData takes PTX.
extern const char kStagingKernelsPtx[];
// The write-back kernel's name in it.
inline constexpr const char* kWriteBackKernel = "egm_write_back";

}  // namespace egm
