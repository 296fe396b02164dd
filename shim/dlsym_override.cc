// dlsym, overridden to catch lookups of libcuda's allocation functions on a
// libcuda handle (statically linked runtimes find the driver that way).
//
// glibc's dlsym(RTLD_NEXT, ...) finds "the next object after the caller",
// judged by the return address. The entry point is therefore a few lines of
// assembly that JUMP to glibc's dlsym for RTLD_NEXT and RTLD_DEFAULT, so that
// the caller's return address is what glibc sees. Plain C++ cannot promise
// that tail call (a sanitizer build does not make it, and a sanitizer
// runtime's own RTLD_NEXT lookups then find itself and loop forever); and
// no instrumented code runs on that path, since sanitizers call dlsym
// before their shadow memory exists.
#include <dlfcn.h>

#include <cstring>

#include "shim/core/real_dlsym.h"
#include "shim/driver_lookup.h"

#if !defined(__x86_64__)
#error "dlsym_override.cc has the x86-64 entry point only"
#endif

extern "C" {

// Written once by egm_resolve_real_dlsym; read by the entry point.
__attribute__((visibility("hidden"))) void* egm_real_dlsym_pointer = nullptr;

__attribute__((visibility("hidden"))) EGM_NOT_SANITIZED void* egm_resolve_real_dlsym() {
  void* real = reinterpret_cast<void*>(egm::real_dlsym());
  __atomic_store_n(&egm_real_dlsym_pointer, real, __ATOMIC_RELEASE);
  return real;
}

// A lookup on a real handle: the shim's override in place of a libcuda
// function it wraps; anything else unchanged.
__attribute__((visibility("hidden"))) void* egm_dlsym_on_handle(void* handle, const char* symbol,
                                                                void* real) {
  void* found = reinterpret_cast<egm::DlsymFunction>(real)(handle, symbol);
  if (found == nullptr || symbol == nullptr || std::strncmp(symbol, "cu", 2) != 0) return found;
  Dl_info origin;
  // Only functions of a loaded libcuda: never load the driver for a lookup.
  if (dladdr(found, &origin) == 0 || origin.dli_fname == nullptr ||
      std::strstr(origin.dli_fname, "libcuda.so") == nullptr) {
    return found;
  }
  return egm::driver_override_for(found);
}

}  // extern "C"

// void* dlsym(void* handle, const char* symbol)
//   rdi = handle, rsi = symbol; RTLD_NEXT is -1, RTLD_DEFAULT is 0.
asm(R"(
    .text
    .globl dlsym
    .type dlsym, @function
dlsym:
    movq egm_real_dlsym_pointer(%rip), %rax
    testq %rax, %rax
    jnz 1f
    pushq %rdi
    pushq %rsi
    subq $8, %rsp
    call egm_resolve_real_dlsym
    addq $8, %rsp
    popq %rsi
    popq %rdi
    testq %rax, %rax
    jz 3f
1:
    cmpq $-1, %rdi
    je 2f
    testq %rdi, %rdi
    je 2f
    movq %rax, %rdx
    jmp egm_dlsym_on_handle
2:
    jmp *%rax
3:
    ret
    .size dlsym, .-dlsym
)");
