// CUDA IPC for memory the shim placed on the host. CUDA's own IPC handles
// cannot export host-NUMA VMM memory, so the shim makes its chunks
// shareable (a POSIX fd handle type), puts an IpcRecord (ipc_record.h) in
// the handle, and an opener under the shim resolves it: it gets the chunk's
// fd from the exporter (ipc_channel.h), imports it, maps the whole chunk
// and grants its current device access. Opening the same chunk again
// counts a reference, as CUDA does; the last close unmaps. Pointers and
// handles that are not the shim's go to CUDA unchanged.
#pragma once

#include <cuda.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <optional>

#include "shim/core/ipc_record.h"

namespace egm {

// cuIpcGetMemHandle: nullopt when `pointer` is not in the shim's memory.
std::optional<CUresult> ipc_get_handle(unsigned char handle[kIpcHandleBytes], uintptr_t pointer);

// cuIpcOpenMemHandle: nullopt when `handle` is not a shim record.
// `runtime`: a cudaIpcOpenMemHandle call, which makes the runtime's context
// current first, as the runtime does.
std::optional<CUresult> ipc_open_handle(CUdeviceptr* pointer,
                                        const unsigned char handle[kIpcHandleBytes],
                                        unsigned int flags, bool runtime);

// cuIpcCloseMemHandle: nullopt when `pointer` was not opened by
// ipc_open_handle (lock-free while nothing is open).
std::optional<CUresult> ipc_close_handle(CUdeviceptr pointer);

// The runtime's error for a driver result of the calls above.
cudaError_t ipc_runtime_error(CUresult result);

}  // namespace egm
