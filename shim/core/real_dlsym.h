// glibc's own dlsym. The shim overrides dlsym (to catch lookups of libcuda's
// allocation functions), so its own lookups must bypass the override.
#pragma once

namespace egm {

using DlsymFunction = void* (*)(void*, const char*);

// Sanitizer runtimes call dlsym while they initialize, before their shadow
// memory exists: the dlsym path must not be instrumented.
#define EGM_NOT_SANITIZED __attribute__((no_sanitize("address", "thread", "undefined")))

EGM_NOT_SANITIZED DlsymFunction real_dlsym();

}  // namespace egm
