// The record egm-shim puts in a 64-byte CUDA IPC handle (cudaIpcMemHandle_t,
// CUipcMemHandle) for memory it placed on the host: which process exported
// it, which chunk, and where in the chunk the allocation lies. Opaque to the
// program; another process under the shim resolves it (ipc.h). A magic and a
// checksum tell it from a real CUDA handle, which goes to CUDA unchanged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace egm {

inline constexpr size_t kIpcHandleBytes = 64;
inline constexpr uint8_t kIpcRecordVersion = 1;

struct IpcRecord {
  uint32_t pid = 0;          // the exporter
  uint64_t start_time = 0;   // its start time (/proc/PID/stat), against pid reuse
  uint64_t chunk_id = 0;     // the exporter's chunk (ids are never reused)
  uint64_t chunk_size = 0;   // bytes the opener maps
  uint64_t offset = 0;       // the allocation's start within the chunk
  uint64_t size = 0;         // the allocation's requested size
  int32_t device = 0;        // the exporter's device
};

enum class IpcRecordKind {
  kNotOurs,      // a real CUDA handle (or garbage): CUDA's to answer
  kOurs,         // a record this shim can resolve
  kUnsupported,  // the shim's magic, but a version or checksum it cannot read
};

void encode_ipc_record(const IpcRecord& record, unsigned char out[kIpcHandleBytes]);
IpcRecordKind decode_ipc_record(const unsigned char in[kIpcHandleBytes], IpcRecord* record);

// This process's start time in clock ticks since boot; 0 if unknown.
uint64_t process_start_time();
// The exporter's socket name in the abstract namespace (without the
// leading NUL): one per uid, pid and start time.
std::string ipc_socket_name(uint32_t uid, uint32_t pid, uint64_t start_time);

}  // namespace egm
