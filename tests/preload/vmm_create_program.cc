// A VMM allocator as PyTorch's expandable segments and vLLM run it: asks the
// device's granularity, creates handles on the device with cuMemCreate,
// reserves, maps, grants the device access, uses the memory, reads the
// handles' properties, retains them back from an address, and releases,
// unmaps and frees. Under the shim the handles may live on a host node; the
// program must not notice (stdout is compared with and without the shim).
//
// Settings: VMM_SIZES (MiB per handle, "8,8"), VMM_LOCATION (device,
// host_numa), VMM_DEVICE (its id, default 0), VMM_RDMA=1 (gpuDirectRDMACapable), VMM_VIA_PROC=1 (the VMM
// calls from cuGetProcAddress), VMM_RELEASE_FIRST=1 (cuMemRelease before
// cuMemUnmap, which CUDA allows), VMM_CREATE_LIBRARY (a shared library whose
// nccl_stand_in_create makes the handles, as NCCL makes its own).
#include <cuda.h>
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tests/doubles/fake_control.h"
#include "tests/preload/program_support.h"

#undef cuGetProcAddress
extern "C" CUresult cuGetProcAddress_v2(const char*, void**, int, cuuint64_t,
                                        CUdriverProcAddressQueryResult*);

namespace {

using test_program::report;

constexpr size_t kMiB = size_t{1} << 20;

bool setting(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && std::strcmp(value, "1") == 0;
}

std::vector<size_t> sizes() {
  const char* text = std::getenv("VMM_SIZES");
  std::vector<size_t> result;
  for (const char* next = text ? text : "8"; *next != '\0';) {
    char* end = nullptr;
    result.push_back(std::strtoul(next, &end, 10) * kMiB);
    next = *end == ',' ? end + 1 : end;
  }
  return result;
}

const char* name_of(CUresult result) {
  const char* name = nullptr;
  cuGetErrorName(result, &name);
  return name ? name : "unknown";
}

const char* location_name(CUmemLocationType type) {
  switch (type) {
    case CU_MEM_LOCATION_TYPE_DEVICE: return "device";
    case CU_MEM_LOCATION_TYPE_HOST_NUMA: return "host_numa";
    default: return "other";
  }
}

// The VMM calls, either linked directly or as cuGetProcAddress hands them out.
struct Vmm {
  decltype(&cuMemCreate) create = &cuMemCreate;
  decltype(&cuMemRelease) release = &cuMemRelease;
  decltype(&cuMemRetainAllocationHandle) retain = &cuMemRetainAllocationHandle;
  decltype(&cuMemGetAllocationPropertiesFromHandle) properties =
      &cuMemGetAllocationPropertiesFromHandle;
};

template <typename Fn>
void look_up(const char* symbol, Fn& function) {
  void* found = nullptr;
  CUdriverProcAddressQueryResult status{};
  if (cuGetProcAddress_v2(symbol, &found, 12000, CU_GET_PROC_ADDRESS_DEFAULT, &status) ==
          CUDA_SUCCESS &&
      found != nullptr) {
    function = reinterpret_cast<Fn>(found);
  }
}

Vmm vmm_calls() {
  Vmm vmm;
  if (!setting("VMM_VIA_PROC")) return vmm;
  look_up("cuMemCreate", vmm.create);
  look_up("cuMemRelease", vmm.release);
  look_up("cuMemRetainAllocationHandle", vmm.retain);
  look_up("cuMemGetAllocationPropertiesFromHandle", vmm.properties);
  return vmm;
}

struct Segment {
  CUmemGenericAllocationHandle handle = 0;
  CUdeviceptr address = 0;
  size_t size = 0;
  bool mapped = false;
  bool released = false;
};

uint8_t pattern(size_t segment, size_t offset) {
  return static_cast<uint8_t>(segment * 31 + offset / 4096 + 7);
}

int run_vmm() {
  Vmm vmm = vmm_calls();
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  bool on_host = std::getenv("VMM_LOCATION") && std::string(std::getenv("VMM_LOCATION")) == "host_numa";
  prop.location.type = on_host ? CU_MEM_LOCATION_TYPE_HOST_NUMA : CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = std::getenv("VMM_DEVICE") ? std::atoi(std::getenv("VMM_DEVICE")) : 0;
  prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
  prop.allocFlags.gpuDirectRDMACapable = setting("VMM_RDMA") ? 1 : 0;
  size_t granularity = 0;
  CUresult result = cuMemGetAllocationGranularity(&granularity, &prop,
                                                  CU_MEM_ALLOC_GRANULARITY_MINIMUM);
  std::printf("granularity=%s %zu\n", name_of(result), granularity);
  using LibraryCreate = CUresult (*)(CUmemGenericAllocationHandle*, size_t,
                                     const CUmemAllocationProp*);
  LibraryCreate create_library = nullptr;
  if (const char* path = std::getenv("VMM_CREATE_LIBRARY")) {
    void* library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
      std::printf("dlopen %s failed: %s\n", path, dlerror());
      return 1;
    }
    create_library = reinterpret_cast<LibraryCreate>(dlsym(library, "nccl_stand_in_create"));
  }
  std::vector<Segment> segments;
  int failures = 0;
  for (size_t size : sizes()) {
    size_t index = segments.size();
    Segment segment;
    segment.size = size;
    size_t device_bytes = fake_cuda_allocated_device_bytes();
    result = create_library != nullptr ? create_library(&segment.handle, size, &prop)
                                       : vmm.create(&segment.handle, size, &prop, 0);
    std::printf("s%zu create=%s\n", index, name_of(result));
    if (result != CUDA_SUCCESS) continue;
    std::string key = "s" + std::to_string(index);
    report(key + ".on_device", fake_cuda_allocated_device_bytes() > device_bytes ? "1" : "0");
    report(key + ".handle", test_program::hex(segment.handle));
    CUresult reserve = cuMemAddressReserve(&segment.address, size, granularity, 0, 0);
    CUresult map = cuMemMap(segment.address, size, 0, segment.handle, 0);
    CUmemAccessDesc access{};
    access.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    access.location.id = 0;
    access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    CUresult grant = cuMemSetAccess(segment.address, size, &access, 1);
    std::printf("s%zu reserve=%s map=%s access=%s\n", index, name_of(reserve), name_of(map),
                name_of(grant));
    segment.mapped = map == CUDA_SUCCESS;
    if (segment.mapped && grant == CUDA_SUCCESS) {
      auto* bytes = reinterpret_cast<uint8_t*>(segment.address);
      for (size_t offset = 0; offset < size; offset += 4096) bytes[offset] = pattern(index, offset);
    }
    CUmemAllocationProp answered{};
    result = vmm.properties(&answered, segment.handle);
    std::printf("s%zu properties=%s location=%s:%d handle_types=%d rdma=%d\n", index,
                name_of(result), location_name(answered.location.type), answered.location.id,
                static_cast<int>(answered.requestedHandleTypes),
                static_cast<int>(answered.allocFlags.gpuDirectRDMACapable));
    CUmemGenericAllocationHandle retained = 0;
    result = vmm.retain(&retained, reinterpret_cast<void*>(segment.address + size / 2));
    std::printf("s%zu retain=%s same=%d\n", index, name_of(result), retained == segment.handle);
    if (result == CUDA_SUCCESS) {
      std::printf("s%zu retained_release=%s\n", index, name_of(vmm.release(retained)));
    }
    if (setting("VMM_RELEASE_FIRST")) {
      std::printf("s%zu early_release=%s\n", index, name_of(vmm.release(segment.handle)));
      segment.released = true;
    }
    segments.push_back(segment);
  }
  for (size_t index = 0; index < segments.size(); ++index) {
    const Segment& segment = segments[index];
    bool ok = segment.mapped;
    auto* bytes = reinterpret_cast<const uint8_t*>(segment.address);
    for (size_t offset = 0; ok && offset < segment.size; offset += 4096) {
      ok = bytes[offset] == pattern(index, offset);
    }
    std::printf("s%zu pattern_ok=%d\n", index, ok ? 1 : 0);
    failures += ok ? 0 : 1;
  }
  report("live.host_segments", std::to_string(fake_cuda_live_memory_objects()));
  for (size_t index = 0; index < segments.size(); ++index) {
    const Segment& segment = segments[index];
    CUresult unmap = cuMemUnmap(segment.address, segment.size);
    CUresult release = segment.released ? CUDA_SUCCESS : vmm.release(segment.handle);
    CUresult free = cuMemAddressFree(segment.address, segment.size);
    std::printf("s%zu unmap=%s release=%s free=%s\n", index, name_of(unmap), name_of(release),
                name_of(free));
  }
  report("end.memory_objects", std::to_string(fake_cuda_live_memory_objects()));
  report("end.device_bytes", std::to_string(fake_cuda_allocated_device_bytes()));
  report("end.create_calls", std::to_string(fake_cuda_call_count("cuMemCreate")));
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return test_program::run_scenario("vmm_create_program", {{"vmm", run_vmm}}, argc, argv);
}
