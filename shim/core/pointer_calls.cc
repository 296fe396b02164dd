#include "shim/core/pointer_calls.h"

#include "shim/core/memory_queries.h"
#include "shim/core/shim.h"

namespace egm {
namespace {

// The allocation whose requested answers replace the driver's, if any.
std::optional<Allocation> answered_allocation(uintptr_t pointer) {
  Shim& shim = Shim::instance();
  if (shim.physical_pointer_attributes()) return std::nullopt;
  return shim.allocation_at(pointer);
}

// False for the errors that concern the process, not the pointer (the
// driver is not up, no usable context): those stand for every pointer.
bool answers_pointers(CUresult result) {
  return result != CUDA_ERROR_NOT_INITIALIZED && result != CUDA_ERROR_DEINITIALIZED &&
         result != CUDA_ERROR_INVALID_CONTEXT;
}

}  // namespace

cudaError_t runtime_pointer_attributes(cudaPointerAttributes* attributes, const void* pointer,
                                       cudaError_t real_result) {
  if (real_result != cudaSuccess || attributes == nullptr) return real_result;
  std::optional<Allocation> owner = answered_allocation(reinterpret_cast<uintptr_t>(pointer));
  if (!owner) return real_result;
  RuntimePointerFields fields =
      requested_runtime_attributes(*owner, reinterpret_cast<uintptr_t>(pointer));
  attributes->type = static_cast<cudaMemoryType>(fields.type);
  attributes->device = fields.device;
  attributes->devicePointer = fields.device_pointer;
  attributes->hostPointer = fields.host_pointer;
  return real_result;
}

CUresult pointer_attribute(void* data, CUpointer_attribute attribute, CUdeviceptr pointer,
                           CUresult result) {
  std::optional<Allocation> owner = answered_allocation(static_cast<uintptr_t>(pointer));
  if (!owner || data == nullptr || !answers_pointers(result)) return result;
  // The shim's answers stand whatever the host mapping said (IS_MANAGED
  // sets the low byte of a boolean whose width the driver chooses).
  switch (requested_pointer_attribute(*owner, pointer, attribute, data)) {
    case PointerAnswer::kNoValue: return CUDA_ERROR_INVALID_VALUE;
    case PointerAnswer::kWritten: return CUDA_SUCCESS;  // whatever the host mapping said
    default: return result;
  }
}

CUresult pointer_attributes(unsigned count, CUpointer_attribute* attributes, void** data,
                            CUdeviceptr pointer, CUresult result) {
  std::optional<Allocation> owner = answered_allocation(static_cast<uintptr_t>(pointer));
  if (!owner || result != CUDA_SUCCESS || attributes == nullptr || data == nullptr) return result;
  for (unsigned i = 0; i < count; ++i) {
    if (data[i] == nullptr) continue;
    if (requested_pointer_attribute(*owner, pointer, attributes[i], data[i]) ==
        PointerAnswer::kNoValue) {
      *static_cast<void**>(data[i]) = nullptr;  // "default NULL values", as documented
    }
  }
  return result;
}

std::optional<CUresult> address_range(CUdeviceptr* base, size_t* size, CUdeviceptr pointer) {
  std::optional<Allocation> owner = answered_allocation(static_cast<uintptr_t>(pointer));
  if (!owner) return std::nullopt;
  if (base != nullptr) *base = static_cast<CUdeviceptr>(owner->address);
  if (size != nullptr) *size = owner->requested;
  return CUDA_SUCCESS;
}

}  // namespace egm
