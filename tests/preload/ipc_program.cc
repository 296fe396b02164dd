// Two real processes sharing memory through CUDA IPC handles, for
// ipc_test: the exporter allocates with cudaMalloc, fills it, exports it
// with cudaIpcGetMemHandle and starts this program again (posix_spawn, so
// that the opener inherits LD_PRELOAD like a torch.multiprocessing child,
// unless IPC_OPENER_WITHOUT_SHIM=1) to open, check, write back and close.
// Every step prints one line; stdout is the record the test compares.
//
//   ipc_program export [MODE]   MODE: check (default), hold (the exporter
//                               frees and reallocates while the opener has
//                               the memory open), exit (print the handle,
//                               exit without freeing), exit-held (exit while
//                               the opener has it open; the opener finishes
//                               after, its last line "open orphan-done")
//   ipc_program open HEX        (the opener; HEX: the 64-byte handle)
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

namespace {

constexpr size_t kBytes = size_t{4} << 20;
constexpr size_t kWords = kBytes / sizeof(unsigned);

const char* name_of(cudaError_t error) { return cudaGetErrorName(error); }

std::string to_hex(const cudaIpcMemHandle_t& handle) {
  std::string hex;
  char pair[3];
  for (unsigned char byte : handle.reserved) {
    std::snprintf(pair, sizeof pair, "%02x", byte);
    hex += pair;
  }
  return hex;
}

bool from_hex(const std::string& hex, cudaIpcMemHandle_t* handle) {
  if (hex.size() != 2 * sizeof handle->reserved) return false;
  for (size_t i = 0; i < sizeof handle->reserved; ++i) {
    handle->reserved[i] = static_cast<char>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
  }
  return true;
}

std::vector<unsigned> pattern(unsigned seed) {
  std::vector<unsigned> words(kWords);
  for (size_t i = 0; i < kWords; ++i) words[i] = seed * 2654435761u + static_cast<unsigned>(i);
  return words;
}

// "ok" or the first differing word.
std::string compare(const void* device, unsigned seed) {
  std::vector<unsigned> got(kWords);
  cudaError_t copied = cudaMemcpy(got.data(), device, kBytes, cudaMemcpyDeviceToHost);
  if (copied != cudaSuccess) return std::string("copy-failed:") + name_of(copied);
  std::vector<unsigned> want = pattern(seed);
  for (size_t i = 0; i < kWords; ++i) {
    if (got[i] != want[i]) return "differs-at-word-" + std::to_string(i);
  }
  return "ok";
}

bool fill(void* device, unsigned seed) {
  std::vector<unsigned> words = pattern(seed);
  return cudaMemcpy(device, words.data(), kBytes, cudaMemcpyHostToDevice) == cudaSuccess;
}

// The environment for the opener: ours, without LD_PRELOAD if asked.
std::vector<char*> opener_environment() {
  bool without_shim = getenv("IPC_OPENER_WITHOUT_SHIM") != nullptr;
  std::vector<char*> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (without_shim && std::strncmp(*entry, "LD_PRELOAD=", 11) == 0) continue;
    environment.push_back(*entry);
  }
  environment.push_back(nullptr);
  return environment;
}

pid_t start_opener(const char* self, const std::string& hex, const char* mode, int to_child,
                   int from_child) {
  std::string to = std::to_string(to_child), from = std::to_string(from_child);
  std::vector<char*> args = {const_cast<char*>(self), const_cast<char*>("open"),
                             const_cast<char*>(hex.c_str()), const_cast<char*>(mode),
                             const_cast<char*>(to.c_str()), const_cast<char*>(from.c_str()),
                             nullptr};
  std::vector<char*> environment = opener_environment();
  std::fflush(stdout);
  pid_t child = 0;
  if (posix_spawn(&child, self, nullptr, nullptr, args.data(), environment.data()) != 0) return -1;
  return child;
}

int wait_for(pid_t child) {
  int status = 0;
  if (child <= 0 || waitpid(child, &status, 0) != child) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int run_export(const char* self, const std::string& mode) {
  void* memory = nullptr;
  std::printf("export cudaMalloc=%s\n", name_of(cudaMalloc(&memory, kBytes)));
  if (memory == nullptr) return 1;
  std::printf("export fill=%d\n", fill(memory, 1) ? 1 : 0);
  cudaIpcMemHandle_t handle = {};
  cudaError_t got = cudaIpcGetMemHandle(&handle, memory);
  std::printf("export cudaIpcGetMemHandle=%s\n", name_of(got));
  // An interior pointer exports the same allocation (as CUDA's handles do).
  cudaIpcMemHandle_t interior = {};
  cudaError_t got_interior =
      cudaIpcGetMemHandle(&interior, static_cast<char*>(memory) + kBytes / 2);
  std::printf("export interior=%s same=%d\n", name_of(got_interior),
              std::memcmp(&handle, &interior, sizeof handle) == 0 ? 1 : 0);
  if (got != cudaSuccess) return 1;
  std::string hex = to_hex(handle);
  if (mode == "exit") {
    std::printf("handle %s\n", hex.c_str());
    std::fflush(stdout);
    _exit(0);  // no free, no CUDA teardown: the opener comes later
  }
  int to_child[2], from_child[2];
  if (pipe(to_child) != 0 || pipe(from_child) != 0) return 1;
  if (mode == "exit-held") {
    start_opener(self, hex, "orphan", to_child[0], from_child[1]);
    close(from_child[1]);
    char byte = 0;
    bool opened = read(from_child[0], &byte, 1) == 1 && byte == 'o';
    std::printf("export opener-opened=%d exiting\n", opened ? 1 : 0);
    std::fflush(stdout);
    _exit(0);  // no free, no teardown, the opener still mapping the memory
  }
  if (mode == "hold") {
    pid_t opener = start_opener(self, hex, "hold", to_child[0], from_child[1]);
    close(from_child[1]);  // the opener's end: a dead opener reads as end of file
    char byte = 0;
    bool opened = read(from_child[0], &byte, 1) == 1 && byte == 'o';
    std::printf("export opener-opened=%d\n", opened ? 1 : 0);
    std::printf("export cudaFree=%s\n", name_of(cudaFree(memory)));
    void* reused = nullptr;
    std::printf("export cudaMalloc-again=%s\n", name_of(cudaMalloc(&reused, kBytes)));
    std::printf("export fill-again=%d\n", reused != nullptr && fill(reused, 3) ? 1 : 0);
    (void)!write(to_child[1], "g", 1);
    std::printf("export opener-exit=%d\n", wait_for(opener));
    std::printf("export cudaFree-again=%s\n", name_of(cudaFree(reused)));
    return 0;
  }
  int opener_exit = wait_for(start_opener(self, hex, "check", to_child[0], from_child[1]));
  std::printf("export opener-exit=%d\n", opener_exit);
  std::printf("export sees-opener-write=%s\n", compare(memory, 2).c_str());
  std::printf("export cudaFree=%s\n", name_of(cudaFree(memory)));
  return 0;
}

int run_open(const std::string& hex, const std::string& mode, int from_parent, int to_parent) {
  cudaIpcMemHandle_t handle = {};
  if (!from_hex(hex, &handle)) return 2;
  void* opened = nullptr;
  cudaError_t result = cudaIpcOpenMemHandle(&opened, handle, cudaIpcMemLazyEnablePeerAccess);
  std::printf("open cudaIpcOpenMemHandle=%s\n", name_of(result));
  if (result != cudaSuccess) return 3;
  std::printf("open reads-exporter-pattern=%s\n", compare(opened, 1).c_str());
  if (mode == "orphan") {
    pid_t exporter = getppid();
    (void)!write(to_parent, "o", 1);
    for (int waited = 0; getppid() == exporter && waited < 1000; ++waited) usleep(10000);
    std::printf("open exporter-gone=%d\n", getppid() != exporter ? 1 : 0);
    std::printf("open after-exporter-exit=%s\n", compare(opened, 1).c_str());
    std::printf("open cudaIpcCloseMemHandle=%s\n", name_of(cudaIpcCloseMemHandle(opened)));
    std::printf("open orphan-done\n");
    return 0;
  }
  if (mode == "hold") {
    (void)!write(to_parent, "o", 1);
    char byte = 0;
    (void)!read(from_parent, &byte, 1);
    // The exporter freed and allocated again: this mapping still holds
    // the old bytes, never the new allocation's.
    std::printf("open after-exporter-free=%s\n", compare(opened, 1).c_str());
    std::printf("open cudaIpcCloseMemHandle=%s\n", name_of(cudaIpcCloseMemHandle(opened)));
    return 0;
  }
  std::printf("open write=%d\n", fill(opened, 2) ? 1 : 0);
  // Opened again: CUDA counts a reference and returns the same pointer.
  CUipcMemHandle driver_handle;
  std::memcpy(&driver_handle, &handle, sizeof driver_handle);
  CUdeviceptr again = 0;
  CUresult second = cuIpcOpenMemHandle(&again, driver_handle, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS);
  std::printf("open cuIpcOpenMemHandle-again=%d same=%d\n", static_cast<int>(second),
              again == reinterpret_cast<CUdeviceptr>(opened) ? 1 : 0);
  std::printf("open cuIpcCloseMemHandle=%d\n", static_cast<int>(cuIpcCloseMemHandle(again)));
  std::printf("open still-mapped=%s\n", compare(opened, 2).c_str());
  std::printf("open cudaIpcCloseMemHandle=%s\n", name_of(cudaIpcCloseMemHandle(opened)));
  std::printf("open close-again=%s\n", name_of(cudaIpcCloseMemHandle(opened)));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  std::string command = argc > 1 ? argv[1] : "";
  if (command == "export") return run_export(argv[0], argc > 2 ? argv[2] : "check");
  if (command == "open" && argc > 2) {
    std::string mode = argc > 3 ? argv[3] : "check";
    int from_parent = argc > 4 ? std::atoi(argv[4]) : -1;
    int to_parent = argc > 5 ? std::atoi(argv[5]) : -1;
    return run_open(argv[2], mode, from_parent, to_parent);
  }
  std::fprintf(stderr, "usage: ipc_program export [check|hold|exit] | open HEX\n");
  return 2;
}
