// Several of these run side by side under libegm.so with one host ledger
// (EGM_LEDGER) and a cap (EGM_NODE_LIMIT), for ledger_test.cc:
//   churn: LEDGER_STEPS times, allocate or free one of 6 slots of 2 MiB at
//          random (seed LEDGER_SEED); with LEDGER_KILL_AT=k, at step k it
//          makes sure it holds 2 host allocations (EGM_FALLBACK=error: every
//          success is host memory) and kills itself with SIGKILL.
//   fill:  allocates 2 MiB until a request fails (EGM_FALLBACK=error), says
//          how many it got ("filled=N"), frees them.
//   truncate: allocates 2 MiB, cuts the ledger file (EGM_LEDGER) to
//          LEDGER_TRUNCATE_TO bytes as a careless program might, then frees,
//          allocates and frees again ("after-truncate=cudaSuccess ...").
#include <cuda_runtime_api.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "tests/preload/program_support.h"

namespace {

constexpr size_t kChunk = size_t{2} << 20;

long env_number(const char* name, long fallback) {
  const char* text = std::getenv(name);
  return text && *text ? std::strtol(text, nullptr, 10) : fallback;
}

[[noreturn]] void die_holding(std::array<void*, 6>& slots) {
  int held = 0;
  for (void* slot : slots) held += slot != nullptr;
  for (int tries = 0; held < 2 && tries < 5000; ++tries) {
    for (void*& slot : slots) {
      if (slot == nullptr && held < 2 && cudaMalloc(&slot, kChunk) == cudaSuccess) ++held;
      if (slot == nullptr) cudaGetLastError();
    }
    if (held < 2) usleep(1000);
  }
  std::printf("holding=%d\n", held);
  std::fflush(stdout);
  raise(SIGKILL);
  std::abort();
}

int churn() {
  std::mt19937 random(static_cast<unsigned>(env_number("LEDGER_SEED", 1)));
  long steps = env_number("LEDGER_STEPS", 300);
  long kill_at = env_number("LEDGER_KILL_AT", -1);
  std::array<void*, 6> slots{};
  int host_or_device = 0, refused = 0;
  for (long step = 0; step < steps; ++step) {
    if (step == kill_at) die_holding(slots);
    void*& slot = slots[random() % slots.size()];
    if (slot == nullptr) {
      if (cudaMalloc(&slot, kChunk) == cudaSuccess) {
        ++host_or_device;
      } else {
        slot = nullptr;
        cudaGetLastError();
        ++refused;
      }
    } else {
      if (cudaFree(slot) != cudaSuccess) return 1;
      slot = nullptr;
    }
    if (random() % 4 == 0) usleep(random() % 300);
  }
  for (void* slot : slots) {
    if (slot != nullptr && cudaFree(slot) != cudaSuccess) return 1;
  }
  std::printf("allocated=%d refused=%d\n", host_or_device, refused);
  return 0;
}

int fill() {
  std::vector<void*> got;
  void* pointer = nullptr;
  while (got.size() < 64 && cudaMalloc(&pointer, kChunk) == cudaSuccess) got.push_back(pointer);
  cudaGetLastError();
  std::printf("filled=%zu\n", got.size());
  for (void* each : got) {
    if (cudaFree(each) != cudaSuccess) return 1;
  }
  return 0;
}

int truncate_ledger() {
  void* first = nullptr;
  cudaError_t allocated = cudaMalloc(&first, kChunk);
  const char* ledger = std::getenv("EGM_LEDGER");
  int cut = ledger != nullptr ? truncate(ledger, env_number("LEDGER_TRUNCATE_TO", 0)) : -1;
  cudaError_t freed = cudaFree(first);
  void* second = nullptr;
  cudaError_t again = cudaMalloc(&second, kChunk);
  cudaError_t freed_again = cudaFree(second);
  std::printf("after-truncate=%s cut=%d free=%s malloc=%s free=%s\n",
              cudaGetErrorName(allocated), cut, cudaGetErrorName(freed), cudaGetErrorName(again),
              cudaGetErrorName(freed_again));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return test_program::run_scenario("ledger_program", {{"churn", churn}, {"fill", fill}, {"truncate", truncate_ledger}}, argc,
                                    argv);
}
