#include "shim/core/ipc.h"

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include <fmt/format.h>

#include "shim/core/driver_api.h"
#include "shim/core/events.h"
#include "shim/core/ipc_channel.h"
#include "shim/core/real_runtime.h"
#include "shim/core/runtime_guard.h"
#include "shim/core/shim.h"
#include "shim/core/vmm_descriptors.h"

namespace egm {
namespace {

// A chunk of another process mapped here: what cuIpcCloseMemHandle undoes.
struct Opened {
  CUdeviceptr base = 0;
  size_t size = 0;
  CUmemGenericAllocationHandle handle = 0;
  int references = 0;
};

// Per exporter (pid, start time), chunk and device.
using OpenedKey = std::tuple<uint32_t, uint64_t, uint64_t, int>;

struct Opens {
  std::mutex mutex;
  std::map<OpenedKey, Opened> by_key;
  std::atomic<size_t> count{0};  // by_key.size(): closes of other pointers skip the lock
};

Opens& opens() {
  static Opens* state = new Opens();  // never destroyed: closes can come during exit
  return *state;
}

uint64_t own_start_time() {
  static const uint64_t start_time = process_start_time();
  return start_time;
}

std::string record_fields(const IpcRecord& record) {
  return fmt::format("exporter={} chunk={} offset={} bytes={} chunk_bytes={}", record.pid,
                     record.chunk_id, record.offset, record.size, record.chunk_size);
}

void log(const char* name, const std::string& fields, const char* error) {
  Shim::instance().log_event(events::ipc(name, fields, error));
}

CUresult log_failure(const char* name, const std::string& fields, const DriverApi* driver,
                     CUresult result, const std::string& why) {
  std::string error = driver != nullptr ? driver->error_name(result) : "CUDA_ERROR";
  if (!why.empty()) error += " why=" + why;
  log(name, fields, error.c_str());
  return result;
}

// Maps the imported `handle` (chunk_size bytes) for `device`; undoes
// itself on failure.
CUresult map_imported(const DriverApi& driver, Opened& opened, int device, std::string& step) {
  CUresult result = driver.mem_address_reserve(&opened.base, opened.size, 0, 0, 0);
  if (result != CUDA_SUCCESS) {
    step = "cuMemAddressReserve";
    return result;
  }
  result = driver.mem_map(opened.base, opened.size, 0, opened.handle, 0);
  if (result != CUDA_SUCCESS) {
    step = "cuMemMap";
    driver.mem_address_free(opened.base, opened.size);
    return result;
  }
  CUmemAccessDesc access = read_write_for(CU_MEM_LOCATION_TYPE_DEVICE, device);
  result = driver.mem_set_access(opened.base, opened.size, &access, 1);
  if (result != CUDA_SUCCESS) {
    step = "cuMemSetAccess";
    driver.mem_unmap(opened.base, opened.size);
    driver.mem_address_free(opened.base, opened.size);
  }
  return result;
}

void unmap_imported(const DriverApi& driver, const Opened& opened) {
  driver.mem_unmap(opened.base, opened.size);
  driver.mem_release(opened.handle);
  driver.mem_address_free(opened.base, opened.size);
}

// The fd from the exporter, imported as a handle this process owns: the
// memory lives as long as this handle, whatever the exporter does.
CUresult import_chunk(const DriverApi& driver, const IpcRecord& record,
                      CUmemGenericAllocationHandle* handle, std::string& why) {
  if (driver.mem_import_from_shareable_handle == nullptr) {
    why = "no-cuMemImportFromShareableHandle";
    return CUDA_ERROR_NOT_SUPPORTED;
  }
  std::string name = ipc_socket_name(geteuid(), record.pid, record.start_time);
  int fd = -1;
  CUresult result = request_chunk_fd(name, record.pid, record.chunk_id, &fd, &why);
  if (result != CUDA_SUCCESS) return result;
  result = driver.mem_import_from_shareable_handle(
      handle, reinterpret_cast<void*>(static_cast<uintptr_t>(fd)),
      CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
  close(fd);
  if (result != CUDA_SUCCESS) why = "cuMemImportFromShareableHandle";
  return result;
}

void make_runtime_context_current() {
  RuntimeCallScope scope;
  if (auto real_free = real_runtime().free.get()) real_free(nullptr);
}

}  // namespace

std::optional<CUresult> ipc_get_handle(unsigned char handle[kIpcHandleBytes], uintptr_t pointer) {
  Shim& shim = Shim::instance();
  std::optional<Allocation> mapping = shim.allocation_at(pointer);
  if (!mapping) return std::nullopt;
  const DriverApi* driver = driver_api(nullptr);
  std::string fields = fmt::format("addr={:#x} alloc={:#x}", pointer, mapping->address);
  if (handle == nullptr) {
    return log_failure("ipc-export", fields, driver, CUDA_ERROR_INVALID_VALUE, "null-handle");
  }
  std::optional<Chunk> chunk = shim.export_chunk(*mapping);
  if (!chunk || !chunk->mapping.shareable) {
    // As CUDA answers for host-placed VMM memory it cannot export.
    return log_failure("ipc-export", fields + fmt::format(" chunk={}", mapping->chunk_id), driver,
                       CUDA_ERROR_INVALID_VALUE, chunk ? "chunk-not-shareable" : "no-chunk");
  }
  std::string why;
  std::string name = ipc_socket_name(geteuid(), getpid(), own_start_time());
  auto serve = [](uint64_t chunk_id, int* fd) { return Shim::instance().chunk_fd(chunk_id, fd); };
  if (!start_fd_server(name, serve, &why)) {
    return log_failure("ipc-export", fields, driver, CUDA_ERROR_OPERATING_SYSTEM, why);
  }
  IpcRecord record;
  record.pid = static_cast<uint32_t>(getpid());
  record.start_time = own_start_time();
  record.chunk_id = chunk->id;
  record.chunk_size = chunk->mapping.mapped_size;
  record.offset = mapping->address - static_cast<uintptr_t>(chunk->mapping.address);
  record.size = mapping->requested;
  record.device = mapping->device;
  encode_ipc_record(record, handle);
  log("ipc-export", fields + " " + record_fields(record), nullptr);
  return CUDA_SUCCESS;
}

std::optional<CUresult> ipc_open_handle(CUdeviceptr* pointer,
                                        const unsigned char handle[kIpcHandleBytes],
                                        unsigned int flags, bool runtime) {
  IpcRecord record;
  IpcRecordKind kind = decode_ipc_record(handle, &record);
  if (kind == IpcRecordKind::kNotOurs || Shim::instance().forked_child()) return std::nullopt;
  const DriverApi* driver = driver_api(nullptr);
  std::string fields = record_fields(record);
  if (kind == IpcRecordKind::kUnsupported) {
    return log_failure("ipc-open", "", driver, CUDA_ERROR_INVALID_HANDLE, "unknown-record-version");
  }
  if (pointer == nullptr || (flags & ~unsigned{CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS}) != 0) {
    return log_failure("ipc-open", fields, driver, CUDA_ERROR_INVALID_VALUE, "arguments");
  }
  if (driver == nullptr) return CUDA_ERROR_NOT_INITIALIZED;
  if (runtime) make_runtime_context_current();
  CUdevice device = 0;
  if (driver->ctx_get_device == nullptr || driver->ctx_get_device(&device) != CUDA_SUCCESS) {
    return log_failure("ipc-open", fields, driver, CUDA_ERROR_INVALID_CONTEXT, "no-context");
  }
  fields += fmt::format(" device={}", device);
  // CUDA refuses a handle opened in the process that exported it.
  if (record.pid == static_cast<uint32_t>(getpid()) && record.start_time == own_start_time()) {
    return log_failure("ipc-open", fields, driver, CUDA_ERROR_INVALID_CONTEXT, "same-process");
  }
  Opens& state = opens();
  std::lock_guard<std::mutex> lock(state.mutex);
  OpenedKey key{record.pid, record.start_time, record.chunk_id, static_cast<int>(device)};
  auto found = state.by_key.find(key);
  if (found != state.by_key.end()) {
    // A record whose sizes differ from the chunk mapped for its key was not
    // made by the exporter: its offset could point past the mapping.
    if (record.chunk_size != found->second.size) {
      return log_failure("ipc-open", fields, driver, CUDA_ERROR_INVALID_HANDLE,
                         "chunk-size-differs");
    }
    ++found->second.references;
    *pointer = found->second.base + record.offset;
    log("ipc-open", fields + fmt::format(" addr={:#x} references={}", *pointer,
                                         found->second.references),
        nullptr);
    return CUDA_SUCCESS;
  }
  Opened opened;
  opened.size = record.chunk_size;
  std::string why;
  CUresult result = import_chunk(*driver, record, &opened.handle, why);
  if (result != CUDA_SUCCESS) return log_failure("ipc-open", fields, driver, result, why);
  result = map_imported(*driver, opened, static_cast<int>(device), why);
  if (result != CUDA_SUCCESS) {
    driver->mem_release(opened.handle);
    return log_failure("ipc-open", fields, driver, CUDA_ERROR_MAP_FAILED,
                       why + "=" + driver->error_name(result));
  }
  opened.references = 1;
  state.by_key[key] = opened;
  state.count.store(state.by_key.size(), std::memory_order_release);
  *pointer = opened.base + record.offset;
  log("ipc-open", fields + fmt::format(" addr={:#x} references=1", *pointer), nullptr);
  return CUDA_SUCCESS;
}

std::optional<CUresult> ipc_close_handle(CUdeviceptr pointer) {
  Opens& state = opens();
  if (state.count.load(std::memory_order_acquire) == 0) return std::nullopt;
  const DriverApi* driver = driver_api(nullptr);
  if (driver == nullptr) return std::nullopt;
  std::lock_guard<std::mutex> lock(state.mutex);
  for (auto it = state.by_key.begin(); it != state.by_key.end(); ++it) {
    Opened& opened = it->second;
    if (pointer < opened.base || pointer >= opened.base + opened.size) continue;
    std::string fields = fmt::format("exporter={} chunk={} addr={:#x}", std::get<0>(it->first),
                                     std::get<2>(it->first), pointer);
    if (--opened.references > 0) {
      log("ipc-close", fields + fmt::format(" references={}", opened.references), nullptr);
      return CUDA_SUCCESS;
    }
    // Work still queued on the mapping must finish before it goes away.
    if (driver->ctx_synchronize != nullptr) driver->ctx_synchronize();
    unmap_imported(*driver, opened);
    state.by_key.erase(it);
    state.count.store(state.by_key.size(), std::memory_order_release);
    log("ipc-close", fields + " references=0 unmapped=1", nullptr);
    return CUDA_SUCCESS;
  }
  return std::nullopt;
}

cudaError_t ipc_runtime_error(CUresult result) {
  switch (result) {
    case CUDA_SUCCESS: return cudaSuccess;
    case CUDA_ERROR_INVALID_VALUE: return cudaErrorInvalidValue;
    case CUDA_ERROR_INVALID_HANDLE: return cudaErrorInvalidResourceHandle;
    case CUDA_ERROR_INVALID_CONTEXT: return cudaErrorDeviceUninitialized;
    case CUDA_ERROR_MAP_FAILED: return cudaErrorMapBufferObjectFailed;
    case CUDA_ERROR_OUT_OF_MEMORY: return cudaErrorMemoryAllocation;
    case CUDA_ERROR_NOT_SUPPORTED: return cudaErrorNotSupported;
    case CUDA_ERROR_NOT_INITIALIZED: return cudaErrorInitializationError;
    case CUDA_ERROR_OPERATING_SYSTEM: return cudaErrorOperatingSystem;
    default: return cudaErrorUnknown;
  }
}

}  // namespace egm
