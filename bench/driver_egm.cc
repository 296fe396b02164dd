#include "bench/driver_egm.h"

#include <dlfcn.h>

#include "shim/core/vmm_descriptors.h"

namespace egm::bench {
namespace {

template <typename Function>
bool resolve(void* library, const char* name, Function* function, std::string* missing) {
  *function = reinterpret_cast<Function>(dlsym(library, name));
  if (*function == nullptr) *missing += std::string(missing->empty() ? "" : ", ") + name;
  return *function != nullptr;
}

bool load(DriverApi* api, std::string* error) {
  void* library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* reason = dlerror();
    *error = std::string("dlopen libcuda.so.1: ") + (reason ? reason : "failed");
    return false;
  }
  std::string missing;
#define EGM_BENCH_RESOLVE(member, symbol) resolve(library, #symbol, &api->member, &missing);
  EGM_DRIVER_EGM_SEQUENCE(EGM_BENCH_RESOLVE)
  EGM_BENCH_DRIVER_CALLS(EGM_BENCH_RESOLVE)
#undef EGM_BENCH_RESOLVE
  if (!missing.empty()) *error = "libcuda.so.1 lacks " + missing;
  return missing.empty();
}

}  // namespace

const DriverApi* driver_api(std::string* error) {
  static std::string load_error;
  static const DriverApi* const api = [] {
    static DriverApi loaded;
    return load(&loaded, &load_error) ? &loaded : nullptr;
  }();
  if (api == nullptr && error != nullptr) *error = load_error;
  return api;
}

std::string driver_error_name(CUresult result) {
  const DriverApi* api = driver_api(nullptr);
  const char* name = nullptr;
  if (api != nullptr && api->get_error_name(result, &name) == CUDA_SUCCESS && name != nullptr) {
    return name;
  }
  return "CUresult " + std::to_string(static_cast<int>(result));
}

std::string memory_location(const void* address) {
  const DriverApi* api = driver_api(nullptr);
  if (api == nullptr) return "unknown";
  CUmemGenericAllocationHandle handle = 0;
  // Only VMM mappings (the shim's, the raw sequence's) have a handle.
  if (api->mem_retain_allocation_handle(&handle, const_cast<void*>(address)) != CUDA_SUCCESS) {
    return "device";
  }
  CUmemAllocationProp properties = {};
  CUresult result = api->mem_get_allocation_properties(&properties, handle);
  api->mem_release(handle);  // drops the reference taken by the retain
  if (result != CUDA_SUCCESS) return "vmm";
  switch (properties.location.type) {
    case CU_MEM_LOCATION_TYPE_HOST_NUMA:
      return "host-numa:" + std::to_string(properties.location.id);
    case CU_MEM_LOCATION_TYPE_HOST: return "host";
    case CU_MEM_LOCATION_TYPE_DEVICE: return "device-vmm";
    default: return "vmm";
  }
}

bool RawEgm::init(int device_ordinal, std::string* error) {
  api_ = driver_api(error);
  if (api_ == nullptr) return false;
  CUdevice device = 0;
  CUresult result = api_->device_get(&device, device_ordinal);
  if (result != CUDA_SUCCESS) {
    *error = "cuDeviceGet: " + driver_error_name(result);
    return false;
  }
  device_ = device;
  int node = -1;
  // The shim's default placement: the GPU's nearest node, else node 0.
  if (api_->device_get_attribute(&node, CU_DEVICE_ATTRIBUTE_HOST_NUMA_ID, device) != CUDA_SUCCESS ||
      node < 0) {
    node = 0;
  }
  node_ = node;
  const CUmemAllocationProp props = properties();
  result =
      api_->mem_get_allocation_granularity(&granularity_, &props, CU_MEM_ALLOC_GRANULARITY_MINIMUM);
  if (result != CUDA_SUCCESS || granularity_ == 0) {
    *error = "cuMemGetAllocationGranularity(HOST_NUMA): " + driver_error_name(result);
    return false;
  }
  return true;
}

CUmemAllocationProp RawEgm::properties() const { return egm::host_numa_properties(node_); }

size_t RawEgm::padded(size_t bytes) const {
  return (bytes + granularity_ - 1) / granularity_ * granularity_;
}

CUresult RawEgm::map(size_t bytes, RawMapping* mapping, const char** failed_step) const {
  const CUmemAllocationProp props = properties();
  mapping->size = padded(bytes);
  CUresult result = api_->mem_create(&mapping->handle, mapping->size, &props, 0);
  if (result != CUDA_SUCCESS) {
    *failed_step = "cuMemCreate";
    return result;
  }
  result = api_->mem_address_reserve(&mapping->address, mapping->size, granularity_, 0, 0);
  if (result != CUDA_SUCCESS) {
    api_->mem_release(mapping->handle);
    *failed_step = "cuMemAddressReserve";
    return result;
  }
  result = api_->mem_map(mapping->address, mapping->size, 0, mapping->handle, 0);
  if (result != CUDA_SUCCESS) {
    api_->mem_address_free(mapping->address, mapping->size);
    api_->mem_release(mapping->handle);
    *failed_step = "cuMemMap";
    return result;
  }
  const CUmemAccessDesc access[2] = {egm::read_write_for(CU_MEM_LOCATION_TYPE_DEVICE, device_),
                                     egm::read_write_for(CU_MEM_LOCATION_TYPE_HOST_NUMA, node_)};
  result = api_->mem_set_access(mapping->address, mapping->size, access, 2);
  if (result != CUDA_SUCCESS) {
    unmap(*mapping);
    *failed_step = "cuMemSetAccess";
  }
  return result;
}

CUresult RawEgm::unmap(const RawMapping& mapping) const {
  CUresult first = api_->mem_unmap(mapping.address, mapping.size);
  CUresult release = api_->mem_release(mapping.handle);
  CUresult address_free = api_->mem_address_free(mapping.address, mapping.size);
  if (first == CUDA_SUCCESS) first = release;
  if (first == CUDA_SUCCESS) first = address_free;
  return first;
}

}  // namespace egm::bench
