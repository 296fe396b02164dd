// How an IPC opener gets a chunk's file descriptor from the exporter: the
// exporter serves it on an abstract Unix socket (named by ipc_socket_name)
// from a thread started at its first export; one request (a chunk id) per
// connection, answered with a result and, on success, the fd (SCM_RIGHTS).
// Both ends check the other with SO_PEERCRED: same uid, and the server must
// be the exporting pid.
#pragma once

#include <cuda.h>

#include <cstdint>
#include <functional>
#include <string>

namespace egm {

// Makes a new fd for chunk `chunk_id`, or says why not.
using ChunkFdSource = std::function<CUresult(uint64_t chunk_id, int* fd)>;

// Binds `name` and starts the serving thread; later calls return the first
// call's answer. False (with `why`) if the socket could not be bound.
bool start_fd_server(const std::string& name, ChunkFdSource source, std::string* why);

// The fd of chunk `chunk_id` from process `pid` serving `name`. A missing
// exporter, a wrong peer or a timeout give CUDA_ERROR_INVALID_HANDLE.
CUresult request_chunk_fd(const std::string& name, uint32_t pid, uint64_t chunk_id, int* fd,
                          std::string* why);

}  // namespace egm
