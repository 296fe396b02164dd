// Kernels, streams, events and modules of the fake libcuda.so.1, for the
// staging tests (issue 13): linked next to fake_cuda.cc.
//
// Stream order: every stream has a queue. Work enqueued on a stream (a
// kernel, cuMemcpyDtoDAsync, cuEventRecord, cuStreamWaitEvent) runs at once
// when the stream holds nothing earlier, else after the earlier work, in
// order. A test holds a stream back with fake_cuda_stream_block (its work
// waits, as behind a long kernel) and lets it go with
// fake_cuda_stream_release (fake_cuda_stream_run_until runs part of it, to
// stop between two items); cuStreamSynchronize, cuEventSynchronize and
// cuCtxSynchronize complete the held work (the wait the real calls do).
// cuStreamWaitEvent makes the stream's later work wait for the event's last
// record; an event is complete when the work before its record is done
// (cuEventQuery: CUDA_ERROR_NOT_READY until then). Any stream handle is
// accepted (the runtime's streams are the driver's too); NULL and
// CU_STREAM_LEGACY are the legacy default stream, CU_STREAM_PER_THREAD (and
// NULL through a _ptsz entry point) the calling thread's own default stream.
// Unlike CUDA the legacy stream does not synchronize with the other streams,
// and the runtime's fake_cudart_stream_block holds only the runtime's own
// events, not this queue. cuMemcpyDtoDAsync checks that both ranges lie in
// the driver's memory (CUDA_ERROR_INVALID_VALUE otherwise).
//
// Capture: between cuStreamBeginCapture_v2 and cuStreamEndCapture, work on
// the stream is recorded as nodes of the graph (fake_cuda_graph_node_count)
// and never runs.
//
// Kernels run on the host (the fake's device memory is host memory):
// fake_cuda_function(NAME) gives a CUfunction, fake_cuda_library_kernel(NAME)
// a "CUkernel" cast to CUfunction as the runtime launches them
// (cuFuncGetParamInfo: CUDA_ERROR_INVALID_HANDLE on it, cuKernelGetParamInfo
// answers). Parameters are laid out at their natural alignment and copied at
// the launch, as the driver copies them:
//   read_sum(const uint64_t* in, uint64_t words, uint64_t* out)  out[0] = sum of in[0..words)
//   fill(uint64_t* out, uint64_t words, uint64_t value)
//   struct_read(struct {const uint64_t* in; uint64_t words;} args, uint64_t* out)  by value
//   alias_write(uint64_t* p, uint64_t* const* table)  p[1] = 11, then (*table)[0] = 22
//   range_sum(const uint64_t* begin, const uint64_t* end, uint64_t* out)
//   read_sum4(const uint64_t* a, b, c, d, uint64_t words, uint64_t* out)  out[0] = sum of all four
//   add(uint64_t* p, uint64_t value)  p[0] += value (a device-scope atomic on a GPU)
// cuModuleLoadData takes any image; its cuModuleGetFunction knows
// "egm_write_back" (copy, snapshot, original, words): every word where
// copy != snapshot is stored to original, the shim's staging write-back.
#include <cuda.h>
#include <pthread.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "tests/doubles/fake_control.h"
#include "tests/doubles/fake_driver_internal.h"

namespace {

// ---- the fake kernels ----

struct Arguments {
  const unsigned char* bytes;
  const std::vector<size_t>& offsets;

  template <typename T>
  T at(size_t index) const {
    T value;
    std::memcpy(&value, bytes + offsets[index], sizeof value);
    return value;
  }
};

struct WordSpan {
  const uint64_t* in;
  uint64_t words;
};

uint64_t sum(const uint64_t* begin, const uint64_t* end) {
  uint64_t total = 0;
  for (const uint64_t* word = begin; word < end; ++word) total += *word;
  return total;
}

void read_sum(const Arguments& a) {
  const auto* in = a.at<const uint64_t*>(0);
  a.at<uint64_t*>(2)[0] = sum(in, in + a.at<uint64_t>(1));
}

void fill(const Arguments& a) {
  auto* out = a.at<uint64_t*>(0);
  std::fill(out, out + a.at<uint64_t>(1), a.at<uint64_t>(2));
}

void struct_read(const Arguments& a) {
  WordSpan span = a.at<WordSpan>(0);
  a.at<uint64_t*>(1)[0] = sum(span.in, span.in + span.words);
}

// The write through *table reaches memory by a pointer stored in memory,
// which no launch-time rewrite can see.
void alias_write(const Arguments& a) {
  a.at<uint64_t*>(0)[1] = 11;
  (*a.at<uint64_t* const*>(1))[0] = 22;
}

void range_sum(const Arguments& a) {
  a.at<uint64_t*>(2)[0] = sum(a.at<const uint64_t*>(0), a.at<const uint64_t*>(1));
}

void read_sum4(const Arguments& a) {
  uint64_t words = a.at<uint64_t>(4), total = 0;
  for (size_t i = 0; i < 4; ++i) {
    const auto* in = a.at<const uint64_t*>(i);
    total += sum(in, in + words);
  }
  a.at<uint64_t*>(5)[0] = total;
}

void add(const Arguments& a) { a.at<uint64_t*>(0)[0] += a.at<uint64_t>(1); }

// The host version of shim/core/staging_kernels.cu.
void egm_write_back(const Arguments& a) {
  const auto* copy = a.at<const uint64_t*>(0);
  const auto* snapshot = a.at<const uint64_t*>(1);
  auto* original = a.at<uint64_t*>(2);
  uint64_t words = a.at<uint64_t>(3);
  for (uint64_t i = 0; i < words; ++i) {
    if (copy[i] != snapshot[i]) original[i] = copy[i];
  }
}

constexpr const char* kWriteBack = "egm_write_back";

struct Kernel {
  const char* name;
  std::vector<size_t> sizes;  // parameter sizes, in order
  void (*body)(const Arguments&);
  std::vector<size_t> offsets;  // natural alignment, filled in by kernels()
  size_t bytes = 0;             // the parameter block
};

// A CUfunction or "CUkernel" handle points to one of these.
struct Handle {
  const Kernel* kernel;
  bool library;  // a CUkernel: cuKernelGetParamInfo only
};

const std::vector<Kernel>& kernels() {
  static const auto* table = [] {
    auto* list = new std::vector<Kernel>{
        {"read_sum", {8, 8, 8}, read_sum},
        {"fill", {8, 8, 8}, fill},
        {"struct_read", {sizeof(WordSpan), 8}, struct_read},
        {"alias_write", {8, 8}, alias_write},
        {"range_sum", {8, 8, 8}, range_sum},
        {"read_sum4", {8, 8, 8, 8, 8, 8}, read_sum4},
        {"add", {8, 8}, add},
        {kWriteBack, {8, 8, 8, 8}, egm_write_back},
    };
    for (Kernel& kernel : *list) {
      size_t end = 0;
      for (size_t size : kernel.sizes) {
        size_t align = std::min<size_t>(size, 8);
        size_t offset = (end + align - 1) / align * align;
        kernel.offsets.push_back(offset);
        end = offset + size;
      }
      kernel.bytes = end;
    }
    return list;
  }();
  return *table;
}

// Two handles per kernel: [0] the function, [1] the library kernel.
const std::vector<std::array<Handle, 2>>& handles() {
  static const auto* table = [] {
    auto* list = new std::vector<std::array<Handle, 2>>();
    for (const Kernel& kernel : kernels()) {
      list->push_back({Handle{&kernel, false}, Handle{&kernel, true}});
    }
    return list;
  }();
  return *table;
}

const Handle* handle_of(const void* pointer) {
  for (const auto& pair : handles()) {
    for (const Handle& handle : pair) {
      if (&handle == pointer) return &handle;
    }
  }
  return nullptr;
}

CUfunction handle_named(const char* name, bool library) {
  if (name == nullptr) return nullptr;
  for (const auto& pair : handles()) {
    if (std::strcmp(pair[0].kernel->name, name) == 0) {
      return reinterpret_cast<CUfunction>(const_cast<Handle*>(&pair[library ? 1 : 0]));
    }
  }
  return nullptr;
}

// ---- streams, events, graphs ----

struct Graph {
  std::vector<std::string> nodes;
};

struct EventState {
  uint64_t recorded = 0;      // records so far
  uint64_t completed = 0;     // the last record whose earlier work is done
  // Each record that completed: a wait is for the record current when it was
  // enqueued, which a later record on another stream does not complete.
  std::set<uint64_t> done;
  CUstream stream = nullptr;  // the queue of the last record
};

// Shared by the event's handle and the work that records or waits for it: a
// wait outlives cuEventDestroy, as in CUDA.
using EventPointer = std::shared_ptr<EventState>;

struct Work {
  // A kernel's name, "memcpy", "event-record" or "event-wait": the graph
  // node's name when captured, where fake_cuda_stream_run_until stops.
  std::string what;
  std::function<void()> run;  // empty for a wait
  EventPointer wait_event;
  uint64_t wait_generation = 0;
};

struct Queue {
  bool blocked = false;
  Graph* capture = nullptr;  // capturing into this graph
  std::deque<Work> pending;
};

constexpr int kRecordedParameters = 8;

struct LaunchState {
  std::mutex mutex;
  std::map<CUstream, Queue> queues;
  std::set<CUstream> created;
  std::map<CUevent, EventPointer> events;
  std::set<CUmodule> modules;
  std::map<std::string, long, std::less<>> kernel_runs;
  std::array<uintptr_t, kRecordedParameters> last_pointers{};
};

void lock_before_fork();
void unlock_after_fork();

// Never destroyed: work may be enqueued while the process exits. Its lock
// is held across fork(), like the fake runtime's (fake_cudart.cc): a forked
// child's cudaFree completes held work here, whatever the parent's other
// threads were doing.
LaunchState& state() {
  static LaunchState* launch = [] {
    auto* created = new LaunchState();
    pthread_atfork(lock_before_fork, unlock_after_fork, unlock_after_fork);
    return created;
  }();
  return *launch;
}

void lock_before_fork() { state().mutex.lock(); }
void unlock_after_fork() { state().mutex.unlock(); }

thread_local char per_thread_stream;  // its address names the thread's default stream

// The queue a stream handle names. `per_thread_entry`: called through a
// _ptsz entry point, where NULL is the per-thread default stream.
CUstream queue_key(CUstream stream, bool per_thread_entry) {
  if (stream == nullptr) stream = per_thread_entry ? CU_STREAM_PER_THREAD : CU_STREAM_LEGACY;
  if (stream == CU_STREAM_PER_THREAD) return reinterpret_cast<CUstream>(&per_thread_stream);
  return stream;
}

bool wait_is_over(const Work& work) {
  return work.wait_generation == 0 || work.wait_event->done.count(work.wait_generation) > 0;
}

// Runs whatever may run now, in each stream's order. Lock held.
void run_ready_work(LaunchState& launch) {
  for (bool progress = true; progress;) {
    progress = false;
    for (auto& [key, queue] : launch.queues) {
      while (!queue.blocked && !queue.pending.empty()) {
        if (queue.pending.front().wait_event != nullptr && !wait_is_over(queue.pending.front())) {
          break;
        }
        Work work = std::move(queue.pending.front());
        queue.pending.pop_front();
        if (work.run) work.run();
        progress = true;
      }
    }
  }
}

// Lock held.
void enqueue(LaunchState& launch, CUstream key, Work work) {
  Queue& queue = launch.queues[key];
  if (queue.capture != nullptr) {
    queue.capture->nodes.push_back(work.what);
    return;
  }
  queue.pending.push_back(std::move(work));
  run_ready_work(launch);
}

// The wait of a synchronizing call: the stream's held work is done (and, when
// it waits for other streams, theirs too). Lock held.
void complete(LaunchState& launch, CUstream key) {
  launch.queues[key].blocked = false;
  run_ready_work(launch);
  if (!launch.queues[key].pending.empty()) {
    for (auto& [other, queue] : launch.queues) queue.blocked = false;
    run_ready_work(launch);
  }
}

CUresult record_event(CUevent event, CUstream stream, bool per_thread_entry, const char* api) {
  if (CUresult failure = fake::driver_injected_failure(api)) return failure;
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  auto it = launch.events.find(event);
  if (it == launch.events.end()) return CUDA_ERROR_INVALID_HANDLE;
  CUstream key = queue_key(stream, per_thread_entry);
  if (launch.queues[key].capture != nullptr) {
    launch.queues[key].capture->nodes.push_back("event-record");
    return CUDA_SUCCESS;
  }
  EventPointer recorded = it->second;
  uint64_t generation = ++recorded->recorded;
  recorded->stream = key;
  enqueue(launch, key, Work{"event-record", [recorded, generation] {
                              recorded->completed = std::max(recorded->completed, generation);
                              recorded->done.insert(generation);
                            }});
  return CUDA_SUCCESS;
}

CUresult wait_event(CUstream stream, CUevent event, unsigned flags, bool per_thread_entry,
                    const char* api) {
  if (CUresult failure = fake::driver_injected_failure(api)) return failure;
  if (flags & ~unsigned{CU_EVENT_WAIT_EXTERNAL}) return CUDA_ERROR_INVALID_VALUE;
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  auto it = launch.events.find(event);
  if (it == launch.events.end()) return CUDA_ERROR_INVALID_HANDLE;
  Work wait{"event-wait", nullptr, it->second, it->second->recorded};
  enqueue(launch, queue_key(stream, per_thread_entry), std::move(wait));
  return CUDA_SUCCESS;
}

CUresult copy_async(CUdeviceptr destination, CUdeviceptr source, size_t size, CUstream stream,
                    bool per_thread_entry, const char* api) {
  if (CUresult failure = fake::driver_injected_failure(api)) return failure;
  if (size == 0) return CUDA_SUCCESS;
  if (!fake::is_driver_memory(destination, size) || !fake::is_driver_memory(source, size)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  enqueue(launch, queue_key(stream, per_thread_entry),
          Work{"memcpy", [destination, source, size] {
                 std::memmove(reinterpret_cast<void*>(static_cast<uintptr_t>(destination)),
                              reinterpret_cast<const void*>(static_cast<uintptr_t>(source)), size);
               }});
  return CUDA_SUCCESS;
}

// The parameter block from `extra` (CU_LAUNCH_PARAM_BUFFER_POINTER/SIZE).
CUresult block_from_extra(void** extra, const Kernel& kernel, std::vector<unsigned char>& block) {
  const void* buffer = nullptr;
  const size_t* size = nullptr;
  for (size_t i = 0; extra[i] != nullptr && extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
    if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER) {
      buffer = extra[i + 1];
    } else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE) {
      size = static_cast<const size_t*>(extra[i + 1]);
    } else {
      return CUDA_ERROR_INVALID_VALUE;
    }
  }
  if (kernel.bytes == 0) return CUDA_SUCCESS;
  if (buffer == nullptr || size == nullptr || *size < kernel.bytes) return CUDA_ERROR_INVALID_VALUE;
  std::memcpy(block.data(), buffer, kernel.bytes);
  return CUDA_SUCCESS;
}

// fake_cuda_launch_pause: the calling thread of one chosen launch stops
// after enqueueing it, as a thread preempted inside the driver's launch.
struct LaunchPause {
  std::mutex mutex;
  std::condition_variable changed;
  std::string kernel;  // empty: no pause armed
  int timeout_ms = 0;
  bool paused = false;
  bool resumed = false;
};

LaunchPause& launch_pause() {
  static auto* pause = new LaunchPause();
  return *pause;
}

void pause_after_launch(const char* name) {
  LaunchPause& pause = launch_pause();
  std::unique_lock<std::mutex> lock(pause.mutex);
  if (pause.kernel.empty() || pause.kernel != name) return;
  pause.kernel.clear();
  pause.paused = true;
  pause.resumed = false;
  pause.changed.notify_all();
  pause.changed.wait_for(lock, std::chrono::milliseconds(pause.timeout_ms),
                         [&] { return pause.resumed; });
  pause.paused = false;
  pause.changed.notify_all();
}

struct LaunchShape {
  unsigned grid[3];
  unsigned block[3];
  CUstream stream;
};

CUresult launch(const char* api, CUfunction function, const LaunchShape& shape,
                bool per_thread_entry, void** params, void** extra) {
  if (CUresult failure = fake::driver_injected_failure(api)) return failure;
  const Handle* handle = handle_of(function);
  if (handle == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  uint64_t threads = uint64_t{shape.block[0]} * shape.block[1] * shape.block[2];
  if (shape.grid[0] == 0 || shape.grid[1] == 0 || shape.grid[2] == 0 || threads == 0 ||
      threads > 1024) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  const Kernel& kernel = *handle->kernel;
  std::vector<unsigned char> block(kernel.bytes);
  if (params != nullptr && extra != nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (extra != nullptr) {
    if (CUresult error = block_from_extra(extra, kernel, block)) return error;
  } else {
    for (size_t i = 0; i < kernel.sizes.size(); ++i) {
      if (params == nullptr || params[i] == nullptr) return CUDA_ERROR_INVALID_VALUE;
      std::memcpy(block.data() + kernel.offsets[i], params[i], kernel.sizes[i]);
    }
  }
  LaunchState& launch = state();
  {
    std::lock_guard<std::mutex> lock(launch.mutex);
    if (std::strcmp(kernel.name, kWriteBack) != 0) {
      launch.last_pointers.fill(0);
      for (size_t i = 0; i < kernel.sizes.size() && i < kRecordedParameters; ++i) {
        std::memcpy(&launch.last_pointers[i], block.data() + kernel.offsets[i],
                    std::min<size_t>(kernel.sizes[i], sizeof(uintptr_t)));
      }
    }
    enqueue(launch, queue_key(shape.stream, per_thread_entry),
            Work{kernel.name, [&launch, &kernel, block = std::move(block)] {
                   kernel.body(Arguments{block.data(), kernel.offsets});
                   ++launch.kernel_runs[kernel.name];
                 }});
  }
  pause_after_launch(kernel.name);
  return CUDA_SUCCESS;
}

LaunchShape shape_of(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                     CUstream stream) {
  return LaunchShape{{gx, gy, gz}, {bx, by, bz}, stream};
}

CUresult launch_ex(const char* api, const CUlaunchConfig* config, CUfunction function,
                   bool per_thread_entry, void** params, void** extra) {
  if (config == nullptr || (config->numAttrs != 0 && config->attrs == nullptr)) {
    if (CUresult failure = fake::driver_injected_failure(api)) return failure;
    return CUDA_ERROR_INVALID_VALUE;
  }
  LaunchShape shape =
      shape_of(config->gridDimX, config->gridDimY, config->gridDimZ, config->blockDimX,
               config->blockDimY, config->blockDimZ, config->hStream);
  return launch(api, function, shape, per_thread_entry, params, extra);
}

CUresult param_info(const void* function, bool library, size_t index, size_t* offset,
                    size_t* size) {
  const Handle* handle = handle_of(function);
  if (handle == nullptr || handle->library != library) return CUDA_ERROR_INVALID_HANDLE;
  if (offset == nullptr || index >= handle->kernel->sizes.size()) return CUDA_ERROR_INVALID_VALUE;
  *offset = handle->kernel->offsets[index];
  if (size != nullptr) *size = handle->kernel->sizes[index];
  return CUDA_SUCCESS;
}

CUresult is_capturing(CUstream stream, CUstreamCaptureStatus* status, bool per_thread_entry,
                      const char* api) {
  if (CUresult failure = fake::driver_injected_failure(api)) return failure;
  if (status == nullptr) return CUDA_ERROR_INVALID_VALUE;
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  auto it = launch.queues.find(queue_key(stream, per_thread_entry));
  bool capturing = it != launch.queues.end() && it->second.capture != nullptr;
  *status = capturing ? CU_STREAM_CAPTURE_STATUS_ACTIVE : CU_STREAM_CAPTURE_STATUS_NONE;
  return CUDA_SUCCESS;
}

CUresult begin_capture(CUstream stream, CUstreamCaptureMode mode, bool per_thread_entry,
                       const char* api) {
  if (CUresult failure = fake::driver_injected_failure(api)) return failure;
  if (mode != CU_STREAM_CAPTURE_MODE_GLOBAL && mode != CU_STREAM_CAPTURE_MODE_THREAD_LOCAL &&
      mode != CU_STREAM_CAPTURE_MODE_RELAXED) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  CUstream key = queue_key(stream, per_thread_entry);
  if (key == CU_STREAM_LEGACY) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  Queue& queue = launch.queues[key];
  if (queue.capture != nullptr) return CUDA_ERROR_ILLEGAL_STATE;
  queue.capture = new Graph();
  return CUDA_SUCCESS;
}

CUresult end_capture(CUstream stream, CUgraph* graph, bool per_thread_entry, const char* api) {
  if (CUresult failure = fake::driver_injected_failure(api)) return failure;
  if (graph == nullptr) return CUDA_ERROR_INVALID_VALUE;
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  Queue& queue = launch.queues[queue_key(stream, per_thread_entry)];
  if (queue.capture == nullptr) return CUDA_ERROR_ILLEGAL_STATE;
  *graph = reinterpret_cast<CUgraph>(queue.capture);
  queue.capture = nullptr;
  return CUDA_SUCCESS;
}

CUresult synchronize_stream(CUstream stream, bool per_thread_entry, const char* api) {
  if (CUresult failure = fake::driver_injected_failure(api)) return failure;
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  complete(launch, queue_key(stream, per_thread_entry));
  return CUDA_SUCCESS;
}

CUresult query_stream(CUstream stream, bool per_thread_entry, const char* api) {
  if (CUresult failure = fake::driver_injected_failure(api)) return failure;
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  auto it = launch.queues.find(queue_key(stream, per_thread_entry));
  bool idle = it == launch.queues.end() || it->second.pending.empty();
  return idle ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

struct Module {
  int unused = 0;
};

}  // namespace

#pragma GCC visibility push(default)
extern "C" {

// ---- launches ----

CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                        unsigned by, unsigned bz, unsigned shared, CUstream stream, void** params,
                        void** extra) {
  (void)shared;
  return launch("cuLaunchKernel", f, shape_of(gx, gy, gz, bx, by, bz, stream), false, params,
                extra);
}

CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                             unsigned by, unsigned bz, unsigned shared, CUstream stream,
                             void** params, void** extra) {
  (void)shared;
  return launch("cuLaunchKernel_ptsz", f, shape_of(gx, gy, gz, bx, by, bz, stream), true, params,
                extra);
}

CUresult cuLaunchKernelEx(const CUlaunchConfig* config, CUfunction f, void** params, void** extra) {
  return launch_ex("cuLaunchKernelEx", config, f, false, params, extra);
}

CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig* config, CUfunction f, void** params,
                               void** extra) {
  return launch_ex("cuLaunchKernelEx_ptsz", config, f, true, params, extra);
}

CUresult cuFuncGetParamInfo(CUfunction f, size_t index, size_t* offset, size_t* size) {
  if (CUresult failure = fake::driver_injected_failure("cuFuncGetParamInfo")) return failure;
  return param_info(f, false, index, offset, size);
}

CUresult cuKernelGetParamInfo(CUkernel kernel, size_t index, size_t* offset, size_t* size) {
  if (CUresult failure = fake::driver_injected_failure("cuKernelGetParamInfo")) return failure;
  return param_info(kernel, true, index, offset, size);
}

// ---- modules: the shim's write-back kernel ----

CUresult cuModuleLoadData(CUmodule* module, const void* image) {
  if (CUresult failure = fake::driver_injected_failure("cuModuleLoadData")) return failure;
  if (module == nullptr || image == nullptr) return CUDA_ERROR_INVALID_VALUE;
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  *module = reinterpret_cast<CUmodule>(new Module());
  launch.modules.insert(*module);
  return CUDA_SUCCESS;
}

CUresult cuModuleGetFunction(CUfunction* function, CUmodule module, const char* name) {
  if (CUresult failure = fake::driver_injected_failure("cuModuleGetFunction")) return failure;
  if (function == nullptr || name == nullptr) return CUDA_ERROR_INVALID_VALUE;
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  if (launch.modules.count(module) == 0) return CUDA_ERROR_INVALID_HANDLE;
  if (std::strcmp(name, kWriteBack) != 0) return CUDA_ERROR_NOT_FOUND;
  *function = handle_named(kWriteBack, false);
  return CUDA_SUCCESS;
}

CUresult cuModuleUnload(CUmodule module) {
  if (CUresult failure = fake::driver_injected_failure("cuModuleUnload")) return failure;
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  if (launch.modules.erase(module) == 0) return CUDA_ERROR_INVALID_HANDLE;
  delete reinterpret_cast<Module*>(module);
  return CUDA_SUCCESS;
}

// ---- copies ----

CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr destination, CUdeviceptr source, size_t size,
                              CUstream stream) {
  return copy_async(destination, source, size, stream, false, "cuMemcpyDtoDAsync_v2");
}

CUresult cuMemcpyDtoDAsync_v2_ptsz(CUdeviceptr destination, CUdeviceptr source, size_t size,
                                   CUstream stream) {
  return copy_async(destination, source, size, stream, true, "cuMemcpyDtoDAsync_v2_ptsz");
}

// ---- streams ----

CUresult cuStreamCreate(CUstream* stream, unsigned int flags) {
  if (CUresult failure = fake::driver_injected_failure("cuStreamCreate")) return failure;
  if (stream == nullptr || (flags & ~unsigned{CU_STREAM_NON_BLOCKING}) != 0) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  *stream = reinterpret_cast<CUstream>(new char);
  launch.created.insert(*stream);
  launch.queues[*stream];
  return CUDA_SUCCESS;
}

// Held work still runs once released, as a destroyed stream's work completes on a GPU.
CUresult cuStreamDestroy_v2(CUstream stream) {
  if (CUresult failure = fake::driver_injected_failure("cuStreamDestroy_v2")) return failure;
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  if (launch.created.erase(stream) == 0) return CUDA_ERROR_INVALID_HANDLE;
  auto it = launch.queues.find(stream);
  if (it != launch.queues.end() && it->second.pending.empty()) {
    delete it->second.capture;
    launch.queues.erase(it);
    delete reinterpret_cast<char*>(stream);
  }
  return CUDA_SUCCESS;
}

CUresult cuStreamSynchronize(CUstream stream) {
  return synchronize_stream(stream, false, "cuStreamSynchronize");
}

CUresult cuStreamSynchronize_ptsz(CUstream stream) {
  return synchronize_stream(stream, true, "cuStreamSynchronize_ptsz");
}

CUresult cuStreamQuery(CUstream stream) { return query_stream(stream, false, "cuStreamQuery"); }

CUresult cuStreamQuery_ptsz(CUstream stream) {
  return query_stream(stream, true, "cuStreamQuery_ptsz");
}

CUresult cuStreamWaitEvent(CUstream stream, CUevent event, unsigned int flags) {
  return wait_event(stream, event, flags, false, "cuStreamWaitEvent");
}

CUresult cuStreamWaitEvent_ptsz(CUstream stream, CUevent event, unsigned int flags) {
  return wait_event(stream, event, flags, true, "cuStreamWaitEvent_ptsz");
}

CUresult cuStreamIsCapturing(CUstream stream, CUstreamCaptureStatus* status) {
  return is_capturing(stream, status, false, "cuStreamIsCapturing");
}

CUresult cuStreamIsCapturing_ptsz(CUstream stream, CUstreamCaptureStatus* status) {
  return is_capturing(stream, status, true, "cuStreamIsCapturing_ptsz");
}

CUresult cuStreamBeginCapture_v2(CUstream stream, CUstreamCaptureMode mode) {
  return begin_capture(stream, mode, false, "cuStreamBeginCapture_v2");
}

CUresult cuStreamBeginCapture_v2_ptsz(CUstream stream, CUstreamCaptureMode mode) {
  return begin_capture(stream, mode, true, "cuStreamBeginCapture_v2_ptsz");
}

CUresult cuStreamEndCapture(CUstream stream, CUgraph* graph) {
  return end_capture(stream, graph, false, "cuStreamEndCapture");
}

CUresult cuStreamEndCapture_ptsz(CUstream stream, CUgraph* graph) {
  return end_capture(stream, graph, true, "cuStreamEndCapture_ptsz");
}

CUresult cuGraphDestroy(CUgraph graph) {
  if (CUresult failure = fake::driver_injected_failure("cuGraphDestroy")) return failure;
  if (graph == nullptr) return CUDA_ERROR_INVALID_VALUE;
  delete reinterpret_cast<Graph*>(graph);
  return CUDA_SUCCESS;
}

// ---- events: complete when the work recorded before them is done ----

CUresult cuEventCreate(CUevent* event, unsigned int) {
  if (CUresult failure = fake::driver_injected_failure("cuEventCreate")) return failure;
  if (event == nullptr) return CUDA_ERROR_INVALID_VALUE;
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  *event = reinterpret_cast<CUevent>(new char);
  launch.events[*event] = std::make_shared<EventState>();
  return CUDA_SUCCESS;
}

CUresult cuEventRecord(CUevent event, CUstream stream) {
  return record_event(event, stream, false, "cuEventRecord");
}

CUresult cuEventRecord_ptsz(CUevent event, CUstream stream) {
  return record_event(event, stream, true, "cuEventRecord_ptsz");
}

CUresult cuEventQuery(CUevent event) {
  if (CUresult failure = fake::driver_injected_failure("cuEventQuery")) return failure;
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  auto it = launch.events.find(event);
  if (it == launch.events.end()) return CUDA_ERROR_INVALID_HANDLE;
  return it->second->completed >= it->second->recorded ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

CUresult cuEventSynchronize(CUevent event) {
  if (CUresult failure = fake::driver_injected_failure("cuEventSynchronize")) return failure;
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  auto it = launch.events.find(event);
  if (it == launch.events.end()) return CUDA_ERROR_INVALID_HANDLE;
  if (it->second->completed < it->second->recorded) complete(launch, it->second->stream);
  return CUDA_SUCCESS;
}

CUresult cuEventDestroy_v2(CUevent event) {
  if (CUresult failure = fake::driver_injected_failure("cuEventDestroy_v2")) return failure;
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  if (launch.events.erase(event) == 0) return CUDA_ERROR_INVALID_HANDLE;
  delete reinterpret_cast<char*>(event);
  return CUDA_SUCCESS;
}

// ---- inspection and test control (fake_control.h) ----

CUfunction fake_cuda_function(const char* name) { return handle_named(name, false); }

CUfunction fake_cuda_library_kernel(const char* name) { return handle_named(name, true); }

uintptr_t fake_cuda_last_kernel_pointer(int param) {
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  return param >= 0 && param < kRecordedParameters ? launch.last_pointers[param] : 0;
}

long fake_cuda_kernel_runs(const char* name) {
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  auto it = name == nullptr ? launch.kernel_runs.end() : launch.kernel_runs.find(name);
  return it == launch.kernel_runs.end() ? 0 : it->second;
}

void fake_cuda_synchronize_all(void) { fake::synchronize_all_streams(); }

int fake_cuda_stream_block(CUstream stream) {
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  launch.queues[queue_key(stream, false)].blocked = true;
  return 0;
}

int fake_cuda_stream_release(CUstream stream) {
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  launch.queues[queue_key(stream, false)].blocked = false;
  run_ready_work(launch);
  return 0;
}

long fake_cuda_stream_run_until(CUstream stream, const char* what) {
  if (what == nullptr) return -1;
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  Queue& queue = launch.queues[queue_key(stream, false)];
  long ran = 0;
  while (!queue.pending.empty() && queue.pending.front().what != what) {
    if (queue.pending.front().wait_event != nullptr && !wait_is_over(queue.pending.front())) break;
    Work work = std::move(queue.pending.front());
    queue.pending.pop_front();
    if (work.run) work.run();
    ++ran;
    run_ready_work(launch);  // what waited for this work
  }
  return ran;
}

void fake_cuda_launch_pause(const char* kernel, int timeout_ms) {
  LaunchPause& pause = launch_pause();
  std::lock_guard<std::mutex> lock(pause.mutex);
  pause.kernel = kernel != nullptr ? kernel : "";
  pause.timeout_ms = timeout_ms;
}

int fake_cuda_launch_wait_paused(int timeout_ms) {
  LaunchPause& pause = launch_pause();
  std::unique_lock<std::mutex> lock(pause.mutex);
  return pause.changed.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                                [&] { return pause.paused; })
             ? 1
             : 0;
}

void fake_cuda_launch_resume(void) {
  LaunchPause& pause = launch_pause();
  std::lock_guard<std::mutex> lock(pause.mutex);
  pause.resumed = true;
  pause.changed.notify_all();
}

long fake_cuda_stream_pending(CUstream stream) {
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  auto it = launch.queues.find(queue_key(stream, false));
  return it == launch.queues.end() ? 0 : static_cast<long>(it->second.pending.size());
}

long fake_cuda_graph_node_count(CUgraph graph) {
  if (graph == nullptr) return -1;
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  return static_cast<long>(reinterpret_cast<Graph*>(graph)->nodes.size());
}

void* fake_cuda_entry_point(const char* name, int per_thread) {
  void* function = nullptr;
  cuuint64_t flags =
      per_thread ? CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM : CU_GET_PROC_ADDRESS_DEFAULT;
  return cuGetProcAddress_v2(name, &function, 13000, flags, nullptr) == CUDA_SUCCESS ? function
                                                                                     : nullptr;
}

int fake_cuda_live_modules(void) {
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  return static_cast<int>(launch.modules.size());
}

}  // extern "C"
#pragma GCC visibility pop

namespace fake {

template <typename Fn>
void* address_of(Fn* function) {
  return reinterpret_cast<void*>(function);
}

const std::vector<StreamProcEntry>& stream_proc_entries() {
  static const auto* entries = new std::vector<StreamProcEntry>{
      {"cuLaunchKernel", 4000, address_of(&cuLaunchKernel), address_of(&cuLaunchKernel_ptsz)},
      {"cuLaunchKernelEx", 11060, address_of(&cuLaunchKernelEx),
       address_of(&cuLaunchKernelEx_ptsz)},
      {"cuFuncGetParamInfo", 12040, address_of(&cuFuncGetParamInfo), nullptr},
      {"cuKernelGetParamInfo", 12040, address_of(&cuKernelGetParamInfo), nullptr},
      {"cuModuleLoadData", 2000, address_of(&cuModuleLoadData), nullptr},
      {"cuModuleGetFunction", 2000, address_of(&cuModuleGetFunction), nullptr},
      {"cuModuleUnload", 2000, address_of(&cuModuleUnload), nullptr},
      {"cuMemcpyDtoDAsync", 3020, address_of(&cuMemcpyDtoDAsync_v2),
       address_of(&cuMemcpyDtoDAsync_v2_ptsz)},
      {"cuStreamCreate", 2000, address_of(&cuStreamCreate), nullptr},
      {"cuStreamDestroy", 4000, address_of(&cuStreamDestroy_v2), nullptr},
      {"cuStreamSynchronize", 2000, address_of(&cuStreamSynchronize),
       address_of(&cuStreamSynchronize_ptsz)},
      {"cuStreamQuery", 2000, address_of(&cuStreamQuery), address_of(&cuStreamQuery_ptsz)},
      {"cuStreamWaitEvent", 3020, address_of(&cuStreamWaitEvent),
       address_of(&cuStreamWaitEvent_ptsz)},
      {"cuStreamIsCapturing", 10000, address_of(&cuStreamIsCapturing),
       address_of(&cuStreamIsCapturing_ptsz)},
      {"cuStreamBeginCapture", 10010, address_of(&cuStreamBeginCapture_v2),
       address_of(&cuStreamBeginCapture_v2_ptsz)},
      {"cuStreamEndCapture", 10000, address_of(&cuStreamEndCapture),
       address_of(&cuStreamEndCapture_ptsz)},
      {"cuGraphDestroy", 10000, address_of(&cuGraphDestroy), nullptr},
      {"cuEventRecord", 2000, address_of(&cuEventRecord), address_of(&cuEventRecord_ptsz)},
      {"cuEventSynchronize", 2000, address_of(&cuEventSynchronize), nullptr},
  };
  return *entries;
}

void synchronize_all_streams() {
  LaunchState& launch = state();
  std::lock_guard<std::mutex> lock(launch.mutex);
  for (auto& [key, queue] : launch.queues) queue.blocked = false;
  run_ready_work(launch);
}

}  // namespace fake
