// A CUDA program for the reliability LD_PRELOAD tests:
// `reliability_program SCENARIO`, linked against the fake libcudart.so.13
// and the fake libcuda.so.1 (tests/doubles).
//
// stdout carries what must not change under libegm.so (call results, data
// checks); what may change (addresses, whether the shim served a request,
// the doubles' live counts) goes as KEY=VALUE lines to ALLOC_PROGRAM_REPORT.
// Scenario settings come from REL_* environment variables.
//
// Every scenario runs under a watchdog (alarm): a deadlock ends the process
// with SIGALRM instead of hanging the test.
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/doubles/fake_control.h"
#include "tests/preload/program_support.h"

namespace {

using test_program::address_of;
using test_program::hex;
using test_program::report;

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kLargeSize = 3 * kMiB + 123;  // a whole chunk, padded to 4 MiB
constexpr size_t kManagedSize = 5 * kMiB;      // padded to 6 MiB
constexpr size_t kDriverSize = kMiB + 5;       // too large for a block: a 2 MiB chunk
constexpr size_t kSmallSize = 1000;            // a block of a shared chunk (EGM_SUBALLOC=1)
constexpr unsigned kWatchdogSeconds = 30;
constexpr int kHandlerExitCode = 86;

// ---- output ----

// One write(2): usable from exit handlers and after stdio may be gone.
void print_raw(const std::string& text) {
  ssize_t ignored = write(STDOUT_FILENO, text.data(), text.size());
  (void)ignored;
}

const char* name_of(cudaError_t error) { return cudaGetErrorName(error); }

const char* name_of(CUresult result) {
  const char* name = nullptr;
  return cuGetErrorName(result, &name) == CUDA_SUCCESS && name ? name : "CUDA_ERROR_UNKNOWN_CODE";
}

long env_number(const char* name, long fallback) {
  const char* text = std::getenv(name);
  return text && *text ? std::strtol(text, nullptr, 0) : fallback;
}

std::string env_text(const char* name) {
  const char* text = std::getenv(name);
  return text ? text : "";
}

void report_counts(const std::string& prefix) {
  report(prefix + ".cuda_handles", std::to_string(fake_cuda_live_handles()));
  report(prefix + ".cuda_reservations", std::to_string(fake_cuda_live_reservations()));
  report(prefix + ".cuda_mappings", std::to_string(fake_cuda_live_mappings()));
  report(prefix + ".cuda_memory_objects", std::to_string(fake_cuda_live_memory_objects()));
  report(prefix + ".cuda_allocations", std::to_string(fake_cuda_live_allocations()));
  report(prefix + ".cudart_allocations", std::to_string(fake_cudart_live_allocations()));
}

bool is_mapped_by_driver(const void* pointer) {
  return fake_cuda_mapping_of(pointer, nullptr, nullptr) == 1;
}

// ---- a per-allocation pattern, on a sample of words (8 MiB in full is too slow) ----

constexpr size_t kPatternStride = 4096;

uint64_t pattern_word(uint64_t seed, size_t offset) {
  return (seed * 0x9e3779b97f4a7c15ULL) ^ (offset * 0xff51afd7ed558ccdULL);
}

template <typename Visit>
void for_each_sample(size_t size, Visit visit) {
  if (size < sizeof(uint64_t)) return;
  size_t last = size - sizeof(uint64_t);  // the whole request must be usable
  for (size_t offset = 0; offset + sizeof(uint64_t) <= last; offset += kPatternStride) {
    visit(offset);  // words that do not overlap the last one
  }
  visit(last);
}

void write_pattern(void* pointer, size_t size, uint64_t seed) {
  auto* bytes = static_cast<uint8_t*>(pointer);
  for_each_sample(size, [&](size_t offset) {
    uint64_t word = pattern_word(seed, offset);
    std::memcpy(bytes + offset, &word, sizeof word);
  });
  if (size < sizeof(uint64_t)) std::memset(pointer, static_cast<int>(seed), size);
}

bool pattern_holds(const void* pointer, size_t size, uint64_t seed) {
  const auto* bytes = static_cast<const uint8_t*>(pointer);
  bool holds = true;
  for_each_sample(size, [&](size_t offset) {
    uint64_t word = 0;
    std::memcpy(&word, bytes + offset, sizeof word);
    holds = holds && word == pattern_word(seed, offset);
  });
  return holds;
}

// ---- allocating with one of the APIs ----

enum class Api { kCudaMalloc, kCudaMallocManaged, kCuMemAlloc };
constexpr Api kApis[] = {Api::kCudaMalloc, Api::kCudaMallocManaged, Api::kCuMemAlloc};

const char* api_name(Api api) {
  switch (api) {
    case Api::kCudaMalloc: return "cudaMalloc";
    case Api::kCudaMallocManaged: return "cudaMallocManaged";
    case Api::kCuMemAlloc: return "cuMemAlloc";
  }
  return "?";
}

// The call's result name; *pointer is set on success.
std::string allocate_with(Api api, void** pointer, size_t size) {
  switch (api) {
    case Api::kCudaMalloc: return name_of(cudaMalloc(pointer, size));
    case Api::kCudaMallocManaged:
      return name_of(cudaMallocManaged(pointer, size, cudaMemAttachGlobal));
    case Api::kCuMemAlloc:
      return name_of(cuMemAlloc(reinterpret_cast<CUdeviceptr*>(pointer), size));
  }
  return "unknown-api";
}

std::string free_with(Api api, void* pointer) {
  if (api == Api::kCuMemAlloc) return name_of(cuMemFree(reinterpret_cast<CUdeviceptr>(pointer)));
  return name_of(cudaFree(pointer));
}

struct Allocation {
  std::string label;
  Api api = Api::kCudaMalloc;
  size_t size = 0;
  void* pointer = nullptr;
};

// Allocates, reports where the memory came from and checks it from the CPU.
Allocation allocate_and_use(const std::string& label, Api api, size_t size) {
  Allocation allocation{label, api, size};
  std::string result = allocate_with(api, &allocation.pointer, size);
  bool usable = false;
  if (allocation.pointer != nullptr) {
    write_pattern(allocation.pointer, size, label.size() * 31 + size);
    usable = pattern_holds(allocation.pointer, size, label.size() * 31 + size);
    report(label + ".addr", address_of(allocation.pointer));
    report(label + ".redirected", is_mapped_by_driver(allocation.pointer) ? "1" : "0");
  }
  std::printf("%s %s(%zu)=%s pattern_ok=%d\n", label.c_str(), api_name(api), size, result.c_str(),
              usable);
  return allocation;
}

void free_and_print(const Allocation& allocation) {
  if (allocation.pointer == nullptr) return;
  std::printf("%s free=%s\n", allocation.label.c_str(),
              free_with(allocation.api, allocation.pointer).c_str());
}

// ---- cycle: both sequences, each chunk-reuse and block path once ----

int scenario_cycle() {
  free_and_print(allocate_and_use("a1", Api::kCudaMalloc, kLargeSize));
  free_and_print(allocate_and_use("a2", Api::kCudaMalloc, kLargeSize));  // the pool: a1's chunk
  Allocation s1 = allocate_and_use("s1", Api::kCudaMalloc, kSmallSize);
  Allocation s2 = allocate_and_use("s2", Api::kCudaMalloc, kSmallSize);  // EGM_SUBALLOC: s1's chunk
  free_and_print(s1);
  free_and_print(s2);
  free_and_print(allocate_and_use("m1", Api::kCudaMallocManaged, kManagedSize));
  free_and_print(allocate_and_use("d1", Api::kCuMemAlloc, kDriverSize));
  report_counts("end");
  return 0;
}

// ---- stress: threads allocating and freeing at random ----

struct StressTotals {
  std::atomic<long> allocations{0};
  std::atomic<long> frees{0};
  std::atomic<long> redirected{0};
  std::atomic<long> alloc_failures{0};
  std::atomic<long> free_failures{0};
  std::atomic<long> verify_failures{0};
  std::atomic<long> by_api[3] = {};
};

constexpr size_t kStressSlots = 4;

// 256 B ... 8 MiB, spread evenly over the powers of two.
size_t random_size(std::mt19937_64& random) {
  int power = 8 + static_cast<int>(random() % 15);  // 2^8 .. 2^22
  size_t base = size_t{1} << power;
  return base + random() % (base + 1);  // up to 2^23 = 8 MiB
}

void stress_free(Allocation& slot, uint64_t seed, StressTotals& totals) {
  if (!pattern_holds(slot.pointer, slot.size, seed)) totals.verify_failures++;
  std::string result = free_with(slot.api, slot.pointer);
  if (result != "cudaSuccess" && result != "CUDA_SUCCESS") totals.free_failures++;
  totals.frees++;
  slot.pointer = nullptr;
}

void stress_allocate(Allocation& slot, uint64_t seed, std::mt19937_64& random,
                     StressTotals& totals) {
  slot.api = kApis[random() % 3];
  slot.size = random_size(random);
  std::string result = allocate_with(slot.api, &slot.pointer, slot.size);
  if (slot.pointer == nullptr) {
    totals.alloc_failures++;
    return;
  }
  totals.allocations++;
  totals.by_api[static_cast<int>(slot.api)]++;
  if (is_mapped_by_driver(slot.pointer)) totals.redirected++;
  write_pattern(slot.pointer, slot.size, seed);
}

void stress_thread(int thread, long iterations, StressTotals& totals) {
  std::mt19937_64 random(static_cast<uint64_t>(thread) * 7919 + 1);
  Allocation slots[kStressSlots];
  uint64_t seeds[kStressSlots] = {};
  for (long i = 0; i < iterations; ++i) {
    size_t index = random() % kStressSlots;
    if (slots[index].pointer != nullptr) {
      stress_free(slots[index], seeds[index], totals);
      continue;
    }
    seeds[index] = (static_cast<uint64_t>(thread) << 32) | static_cast<uint64_t>(i);
    stress_allocate(slots[index], seeds[index], random, totals);
  }
  for (size_t index = 0; index < kStressSlots; ++index) {
    if (slots[index].pointer != nullptr) stress_free(slots[index], seeds[index], totals);
  }
}

int scenario_stress() {
  int thread_count = static_cast<int>(env_number("REL_THREADS", 32));
  long iterations = env_number("REL_ITERATIONS", 10000);
  StressTotals totals;
  std::vector<std::thread> threads;
  for (int thread = 0; thread < thread_count; ++thread) {
    threads.emplace_back(stress_thread, thread, iterations, std::ref(totals));
  }
  for (std::thread& thread : threads) thread.join();
  std::printf("stress alloc_failures=%ld free_failures=%ld verify_failures=%ld\n",
              totals.alloc_failures.load(), totals.free_failures.load(),
              totals.verify_failures.load());
  report("stress.allocations", std::to_string(totals.allocations.load()));
  report("stress.frees", std::to_string(totals.frees.load()));
  report("stress.redirected", std::to_string(totals.redirected.load()));
  for (Api api : kApis) {
    report(std::string("stress.") + api_name(api),
           std::to_string(totals.by_api[static_cast<int>(api)].load()));
  }
  report_counts("end");
  return 0;
}

// ---- cudaFree edge cases (REL_CASE), compared with and without the shim ----

void print_free(const std::string& what, cudaError_t result) {
  std::printf("%s cudaFree=%s last_error=%s\n", what.c_str(), name_of(result),
              name_of(cudaGetLastError()));
}

void free_case_double() {
  Allocation a = allocate_and_use("p", Api::kCudaMalloc, kLargeSize);
  print_free("first", cudaFree(a.pointer));
  print_free("second", cudaFree(a.pointer));
}

void free_case_interior() {
  Allocation a = allocate_and_use("p", Api::kCudaMalloc, kLargeSize);
  print_free("interior", cudaFree(static_cast<char*>(a.pointer) + 4096));
  print_free("start", cudaFree(a.pointer));
}

void free_case_other_thread() {
  Allocation a = allocate_and_use("p", Api::kCudaMalloc, kLargeSize);
  cudaError_t result = cudaErrorUnknown;
  std::thread([&] { result = cudaFree(a.pointer); }).join();
  print_free("other-thread", result);
}

void free_case_other_device() {
  Allocation a = allocate_and_use("p", Api::kCudaMalloc, kLargeSize);
  std::printf("cudaSetDevice(1)=%s\n", name_of(cudaSetDevice(1)));
  print_free("device-1-current", cudaFree(a.pointer));
  std::printf("cudaSetDevice(0)=%s\n", name_of(cudaSetDevice(0)));
}

void free_case_after_reset() {
  Allocation a = allocate_and_use("p", Api::kCudaMalloc, kLargeSize);
  std::printf("cudaDeviceReset=%s\n", name_of(cudaDeviceReset()));
  print_free("after-reset", cudaFree(a.pointer));
}

// Registered before the first CUDA call, as a real runtime registers its
// teardown at its initialization: these run after it (exit handlers run in
// reverse order of registration).
void* freed_by_atexit = nullptr;

void free_in_atexit_handler() {
  cudaError_t result = cudaFree(freed_by_atexit);
  print_raw(std::string("atexit-handler cudaFree=") + name_of(result) + "\n");
}

struct FreedByStaticDestructor {
  void* pointer = nullptr;
  ~FreedByStaticDestructor() {
    cudaError_t result = cudaFree(pointer);
    print_raw(std::string("static-destructor cudaFree=") + name_of(result) + "\n");
  }
};

void free_case_at_exit() {
  static FreedByStaticDestructor freed_by_destructor;
  std::atexit(free_in_atexit_handler);
  freed_by_atexit = allocate_and_use("p", Api::kCudaMalloc, kLargeSize).pointer;
  freed_by_destructor.pointer = allocate_and_use("q", Api::kCudaMalloc, kLargeSize).pointer;
}

int scenario_free_edge() {
  const std::map<std::string, std::function<void()>> cases = {
      {"nullptr", [] { print_free("nullptr", cudaFree(nullptr)); }},
      {"double", free_case_double},
      {"interior", free_case_interior},
      {"real-allocator",  // below EGM_MIN_SIZE: the runtime's own memory
       [] {
         print_free("real", cudaFree(allocate_and_use("p", Api::kCudaMalloc, kSmallSize).pointer));
       }},
      {"other-thread", free_case_other_thread},
      {"other-device", free_case_other_device},
      {"after-reset", free_case_after_reset},
      {"at-exit", free_case_at_exit},
  };
  auto found = cases.find(env_text("REL_CASE"));
  if (found == cases.end()) return 2;
  found->second();
  return 0;
}

// ---- fork: the child runs CUDA-free code ----

int scenario_fork() {
  Allocation kept = allocate_and_use("p", Api::kCudaMalloc, kLargeSize);
  std::fflush(stdout);
  pid_t child = fork();
  if (child == 0) {
    long sum = 0;
    for (int i = 1; i <= 1000; ++i) sum += i;
    std::printf("child sum=%ld\n", sum);
    std::exit(0);  // a normal exit: atexit handlers and library destructors run
  }
  report("child.pid", std::to_string(child));
  int status = 0;
  waitpid(child, &status, 0);
  std::printf("child exited=%d status=%d\n", WIFEXITED(status), WEXITSTATUS(status));
  free_and_print(kept);
  return 0;
}

// ---- exit and signals ----

int scenario_exit_from_thread() {
  free_and_print(allocate_and_use("p", Api::kCudaMalloc, kLargeSize));
  allocate_and_use("leaked", Api::kCudaMalloc, kLargeSize);
  std::thread exiting([] {
    std::printf("exit from a thread\n");
    std::exit(0);
  });
  exiting.join();  // never returns: the process exits meanwhile
  return 1;
}

int scenario_abort() {
  free_and_print(allocate_and_use("p", Api::kCudaMalloc, kLargeSize));
  allocate_and_use("live", Api::kCudaMalloc, kLargeSize);
  std::abort();
}

void on_program_sigsegv(int) {
  const char text[] = "program SIGSEGV handler called\n";
  ssize_t ignored = write(STDOUT_FILENO, text, sizeof text - 1);
  (void)ignored;
  _exit(kHandlerExitCode);
}

std::atomic<int> program_sigusr2_calls{0};

void on_program_sigusr2(int) { program_sigusr2_calls++; }

void install_handler(int signal_number, void (*handler)(int)) {
  struct sigaction action {};
  action.sa_handler = handler;
  sigemptyset(&action.sa_mask);
  sigaction(signal_number, &action, nullptr);
}

int scenario_segv() {
  if (env_text("REL_LATE_SIGSEGV") == "1") install_handler(SIGSEGV, on_program_sigsegv);
  free_and_print(allocate_and_use("p", Api::kCudaMalloc, kLargeSize));
  raise(SIGSEGV);
  return 1;
}

int scenario_own_sigusr2() {
  Allocation a = allocate_and_use("p", Api::kCudaMalloc, kLargeSize);
  raise(SIGUSR2);
  std::printf("program SIGUSR2 handler calls=%d\n", program_sigusr2_calls.load());
  free_and_print(a);
  return 0;
}

std::atomic<long> program_sigusr1_tid{0};

void on_program_sigusr1(int) { program_sigusr1_tid = syscall(SYS_gettid); }

// With the main thread blocking SIGUSR1, a process-directed SIGUSR1 may only
// run on another thread that does not block it: the shim's threads (the live
// view's here) must not be such threads.
int scenario_signal_threads() {
  install_handler(SIGUSR1, on_program_sigusr1);
  Allocation a = allocate_and_use("p", Api::kCudaMalloc, kLargeSize);
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, nullptr);
  kill(getpid(), SIGUSR1);
  usleep(200 * 1000);
  std::printf("while blocked: handler ran=%d\n", program_sigusr1_tid.load() != 0);
  pthread_sigmask(SIG_UNBLOCK, &usr1, nullptr);
  std::printf("after unblock: on the main thread=%d\n", program_sigusr1_tid.load() == getpid());
  free_and_print(a);
  return 0;
}

// Handlers the program has before any library initializer runs (the
// executable's .preinit_array runs first): before libegm.so's.
bool environment_says(char** envp, const char* entry) {
  for (char** variable = envp; variable && *variable; ++variable) {
    if (std::strcmp(*variable, entry) == 0) return true;
  }
  return false;
}

void install_early_handlers(int, char**, char** envp) {
  if (environment_says(envp, "REL_EARLY_SIGSEGV=1")) install_handler(SIGSEGV, on_program_sigsegv);
  if (environment_says(envp, "REL_EARLY_SIGUSR2=1")) install_handler(SIGUSR2, on_program_sigusr2);
}

__attribute__((section(".preinit_array"),
               used)) void (*const early_handlers)(int, char**, char**) = install_early_handlers;

// ---- live view: mappings stay live until stdin has a line ----

int scenario_live_wait() {
  // Freed while l1..l3 are live, so that none of them can reuse its address.
  Allocation freed = allocate_and_use("freed", Api::kCudaMalloc, kLargeSize);
  std::vector<Allocation> live = {allocate_and_use("l1", Api::kCudaMalloc, kLargeSize),
                                  allocate_and_use("l2", Api::kCudaMallocManaged, kManagedSize),
                                  allocate_and_use("l3", Api::kCuMemAlloc, kDriverSize)};
  free_and_print(freed);
  std::printf("ready\n");
  std::fflush(stdout);
  // Waits in 100 ms slices: ThreadSanitizer delivers the live view's SIGUSR2
  // only when the receiving thread returns from the call it is blocked in.
  pollfd input = {STDIN_FILENO, POLLIN, 0};
  while (poll(&input, 1, 100) == 0) {
  }
  char line[16];
  if (read(STDIN_FILENO, line, sizeof line) <= 0) std::printf("stdin closed\n");
  for (const Allocation& allocation : live) free_and_print(allocation);
  return 0;
}

int scenario_one() {
  free_and_print(allocate_and_use("p", Api::kCudaMalloc, kLargeSize));
  return 0;
}

const std::map<std::string, std::function<int()>>& scenarios() {
  static const auto* table = new std::map<std::string, std::function<int()>>{
      {"cycle", scenario_cycle},
      {"stress", scenario_stress},
      {"free-edge", scenario_free_edge},
      {"fork", scenario_fork},
      {"exit-from-thread", scenario_exit_from_thread},
      {"abort", scenario_abort},
      {"segv", scenario_segv},
      {"own-sigusr2", scenario_own_sigusr2},
      {"signal-threads", scenario_signal_threads},
      {"live-wait", scenario_live_wait},
      {"one", scenario_one},
  };
  return *table;
}

}  // namespace

int main(int argc, char** argv) {
  alarm(static_cast<unsigned>(env_number("REL_WATCHDOG_SECONDS", kWatchdogSeconds)));
  return test_program::run_scenario("reliability_program", scenarios(), argc, argv);
}
