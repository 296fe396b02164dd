// More entry points of the fake libcuda.so.1, for egm-probe (tools/probe)
// and the multi-GPU tests: device PCI ids, one primary context per device,
// each thread's context stack (cuCtxSetCurrent replaces its top,
// cuCtxPushCurrent/cuCtxPopCurrent push and pop), cuCtxGetDevice, peer
// access between contexts, and host<->device copies. Meant to be linked into //tests/doubles:libcuda.so.1 next to
// fake_cuda.cc; it reaches the fake's mappings only through the inspection
// functions fake_cuda.cc exports (fake_control.h).
//
// Copies are plain memcpy on the fake's host-memory "device" addresses, and
// fail as the driver would: CUDA_ERROR_INVALID_CONTEXT without a current
// context, CUDA_ERROR_INVALID_VALUE on an address range that is not wholly
// mapped, CUDA_ERROR_ILLEGAL_ADDRESS where the current context's device was
// not granted access.
//
// Unlike the driver, cuCtxGetDevice without a current context reports
// device 0: the single-GPU test programs allocate through the driver API
// without ever making a context current.
// FAKE_CUDA_FAIL rules apply to these functions too (counted here, so
// fake_cuda_call_count does not see them).
#include <cuda.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/doubles/fail_injection.h"
#include "tests/doubles/fake_control.h"
#include "tests/doubles/fake_env.h"

namespace {

constexpr uintptr_t kContextBase = 0xc0de0000;  // context handle of device d: base + d + 1

struct ContextState {
  std::mutex mutex;
  std::map<int, int> primary_references;  // device -> cuDevicePrimaryCtxRetain count
  std::set<std::pair<int, int>> peer_access;  // (accessor, owner) enabled by cuCtxEnablePeerAccess
};

// Never destroyed: a context may be released while the process exits.
ContextState& contexts() {
  static ContextState* state = new ContextState();
  return *state;
}

// The thread's context stack; its top is the current context.
thread_local std::vector<CUcontext> context_stack;

CUcontext current_context() { return context_stack.empty() ? nullptr : context_stack.back(); }

fake::FailureInjector& injector() {
  static fake::FailureInjector* failures =
      new fake::FailureInjector("FAKE_CUDA_FAIL", CUDA_ERROR_OUT_OF_MEMORY);
  return *failures;
}

CUresult injected_failure(std::string_view function) {
  return static_cast<CUresult>(injector().on_call(function));
}

bool is_valid_device(CUdevice device) {
  return device >= 0 && device < fake::env_number("FAKE_CUDA_DEVICE_COUNT", 1);
}

CUcontext primary_context_of(CUdevice device) {
  return reinterpret_cast<CUcontext>(kContextBase + static_cast<uintptr_t>(device) + 1);
}

// The device whose primary context `context` is, or -1.
int device_of_context(CUcontext context) {
  uintptr_t value = reinterpret_cast<uintptr_t>(context);
  if (value <= kContextBase) return -1;
  int device = static_cast<int>(value - kContextBase - 1);
  return is_valid_device(device) ? device : -1;
}

bool is_active(CUcontext context) {
  ContextState& state = contexts();
  std::lock_guard<std::mutex> lock(state.mutex);
  auto it = state.primary_references.find(device_of_context(context));
  return it != state.primary_references.end() && it->second > 0;
}

// Whether the device may touch all of [address, address + size): every byte
// mapped (else INVALID_VALUE) and granted to the device (else ILLEGAL_ADDRESS).
CUresult device_range_check(CUdeviceptr address, size_t size) {
  CUcontext context = current_context();
  if (context == nullptr || !is_active(context)) return CUDA_ERROR_INVALID_CONTEXT;
  int device = device_of_context(context);
  uintptr_t next = static_cast<uintptr_t>(address);
  uintptr_t end = next + size;
  while (next < end) {
    uintptr_t base = 0;
    size_t length = 0;
    const void* at = reinterpret_cast<const void*>(next);
    if (fake_cuda_mapping_of(at, &base, &length) == 0) return CUDA_ERROR_INVALID_VALUE;
    if (fake_cuda_device_access_to(at, device) != 1) return CUDA_ERROR_ILLEGAL_ADDRESS;
    next = base + length;
  }
  return CUDA_SUCCESS;
}

// The device of the current context: 0 without one (see the file comment),
// -1 when the current context is not active.
int current_device() {
  CUcontext context = current_context();
  if (context == nullptr) return 0;
  return is_active(context) ? device_of_context(context) : -1;
}

}  // namespace

#pragma GCC visibility push(default)
extern "C" {

CUresult cuDeviceGetPCIBusId(char* bus_id, int length, CUdevice device) {
  if (CUresult failure = injected_failure("cuDeviceGetPCIBusId")) return failure;
  if (bus_id == nullptr || length <= 0) return CUDA_ERROR_INVALID_VALUE;
  if (!is_valid_device(device)) return CUDA_ERROR_INVALID_DEVICE;
  std::snprintf(bus_id, static_cast<size_t>(length), "0000:%02x:00.0", 0x10 + device);
  return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext* context, CUdevice device) {
  if (CUresult failure = injected_failure("cuDevicePrimaryCtxRetain")) return failure;
  if (context == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (!is_valid_device(device)) return CUDA_ERROR_INVALID_DEVICE;
  ContextState& state = contexts();
  std::lock_guard<std::mutex> lock(state.mutex);
  ++state.primary_references[device];
  *context = primary_context_of(device);
  return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice device) {
  if (CUresult failure = injected_failure("cuDevicePrimaryCtxRelease")) return failure;
  if (!is_valid_device(device)) return CUDA_ERROR_INVALID_DEVICE;
  ContextState& state = contexts();
  std::lock_guard<std::mutex> lock(state.mutex);
  int& references = state.primary_references[device];
  if (references == 0) return CUDA_ERROR_INVALID_CONTEXT;
  --references;
  return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext context) {
  if (CUresult failure = injected_failure("cuCtxSetCurrent")) return failure;
  if (context != nullptr && !is_active(context)) return CUDA_ERROR_INVALID_CONTEXT;
  if (context == nullptr) {
    if (!context_stack.empty()) context_stack.pop_back();
  } else if (context_stack.empty()) {
    context_stack.push_back(context);
  } else {
    context_stack.back() = context;
  }
  return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(CUcontext* context) {
  if (CUresult failure = injected_failure("cuCtxGetCurrent")) return failure;
  if (context == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *context = current_context();
  return CUDA_SUCCESS;
}

CUresult cuCtxPushCurrent_v2(CUcontext context) {
  if (CUresult failure = injected_failure("cuCtxPushCurrent_v2")) return failure;
  if (context == nullptr || !is_active(context)) return CUDA_ERROR_INVALID_CONTEXT;
  context_stack.push_back(context);
  return CUDA_SUCCESS;
}

CUresult cuCtxPopCurrent_v2(CUcontext* context) {
  if (CUresult failure = injected_failure("cuCtxPopCurrent_v2")) return failure;
  if (context_stack.empty()) return CUDA_ERROR_INVALID_CONTEXT;
  if (context != nullptr) *context = context_stack.back();
  context_stack.pop_back();
  return CUDA_SUCCESS;
}

CUresult cuCtxGetDevice(CUdevice* device) {
  if (CUresult failure = injected_failure("cuCtxGetDevice")) return failure;
  if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  int current = current_device();
  if (current < 0) return CUDA_ERROR_INVALID_CONTEXT;
  *device = current;
  return CUDA_SUCCESS;
}

// Every pair of distinct fake devices can reach each other.
CUresult cuDeviceCanAccessPeer(int* can_access, CUdevice device, CUdevice peer) {
  if (CUresult failure = injected_failure("cuDeviceCanAccessPeer")) return failure;
  if (can_access == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (!is_valid_device(device) || !is_valid_device(peer)) return CUDA_ERROR_INVALID_DEVICE;
  *can_access = device != peer ? 1 : 0;
  return CUDA_SUCCESS;
}

// The current context's device may now use memory of `peer_context`'s device.
CUresult cuCtxEnablePeerAccess(CUcontext peer_context, unsigned int flags) {
  if (CUresult failure = injected_failure("cuCtxEnablePeerAccess")) return failure;
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  CUcontext context = current_context();
  if (context == nullptr || !is_active(context)) return CUDA_ERROR_INVALID_CONTEXT;
  if (peer_context == nullptr || !is_active(peer_context)) return CUDA_ERROR_INVALID_CONTEXT;
  int accessor = device_of_context(context), owner = device_of_context(peer_context);
  if (accessor == owner) return CUDA_ERROR_INVALID_DEVICE;
  ContextState& state = contexts();
  std::lock_guard<std::mutex> lock(state.mutex);
  if (!state.peer_access.insert({accessor, owner}).second) {
    return CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED;
  }
  return CUDA_SUCCESS;
}

CUresult cuCtxDisablePeerAccess(CUcontext peer_context) {
  if (CUresult failure = injected_failure("cuCtxDisablePeerAccess")) return failure;
  CUcontext context = current_context();
  if (context == nullptr || !is_active(context)) return CUDA_ERROR_INVALID_CONTEXT;
  ContextState& state = contexts();
  std::lock_guard<std::mutex> lock(state.mutex);
  std::pair<int, int> pair{device_of_context(context), device_of_context(peer_context)};
  return state.peer_access.erase(pair) == 1 ? CUDA_SUCCESS : CUDA_ERROR_PEER_ACCESS_NOT_ENABLED;
}

CUresult cuMemcpyHtoD_v2(CUdeviceptr destination, const void* source, size_t size) {
  if (CUresult failure = injected_failure("cuMemcpyHtoD")) return failure;
  if (source == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult problem = device_range_check(destination, size)) return problem;
  std::memcpy(reinterpret_cast<void*>(static_cast<uintptr_t>(destination)), source, size);
  return CUDA_SUCCESS;
}

CUresult cuMemcpyDtoH_v2(void* destination, CUdeviceptr source, size_t size) {
  if (CUresult failure = injected_failure("cuMemcpyDtoH")) return failure;
  if (destination == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult problem = device_range_check(source, size)) return problem;
  std::memcpy(destination, reinterpret_cast<const void*>(static_cast<uintptr_t>(source)), size);
  return CUDA_SUCCESS;
}

// For egm-probe --selftest: with unified addressing any two pointers may be
// copied between (plain cuMemAlloc memory is not a mapping the fake tracks,
// so these do not check ranges).
CUresult cuMemcpy(CUdeviceptr destination, CUdeviceptr source, size_t size) {
  if (CUresult failure = injected_failure("cuMemcpy")) return failure;
  if (size == 0) return CUDA_SUCCESS;
  if (destination == 0 || source == 0) return CUDA_ERROR_INVALID_VALUE;
  std::memmove(reinterpret_cast<void*>(static_cast<uintptr_t>(destination)),
               reinterpret_cast<const void*>(static_cast<uintptr_t>(source)), size);
  return CUDA_SUCCESS;
}

CUresult cuMemsetD32_v2(CUdeviceptr destination, unsigned int value, size_t count) {
  if (CUresult failure = injected_failure("cuMemsetD32")) return failure;
  if (count == 0) return CUDA_SUCCESS;
  if (destination == 0 || destination % 4 != 0) return CUDA_ERROR_INVALID_VALUE;
  auto* words = reinterpret_cast<unsigned int*>(static_cast<uintptr_t>(destination));
  for (size_t i = 0; i < count; ++i) words[i] = value;
  return CUDA_SUCCESS;
}

// ---- inspection (to be declared in fake_control.h) ----

// cuDevicePrimaryCtxRetain calls not yet released, over all devices.
int fake_cuda_live_primary_context_references(void) {
  ContextState& state = contexts();
  std::lock_guard<std::mutex> lock(state.mutex);
  int references = 0;
  for (const auto& [device, count] : state.primary_references) references += count;
  return references;
}

int fake_cuda_ctx_peer_access_enabled(int accessor, int owner) {
  ContextState& state = contexts();
  std::lock_guard<std::mutex> lock(state.mutex);
  return state.peer_access.count({accessor, owner}) == 1 ? 1 : 0;
}

}  // extern "C"
#pragma GCC visibility pop
