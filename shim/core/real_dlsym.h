// glibc's own dlsym. The shim overrides dlsym (to catch lookups of libcuda's
// allocation functions), so its own lookups must bypass the override.
#pragma once

namespace egm {

using DlsymFunction = void* (*)(void*, const char*);

DlsymFunction real_dlsym();

}  // namespace egm
