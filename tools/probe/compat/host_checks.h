// The compatibility checks that need no kernel: each calls the CUDA API as a
// program would and returns a result string comparable between a run without
// and a run with libegm.so (error names, values, checksums; no addresses).
// "SKIP-MISSING <names>" when this CUDA runtime lacks an entry point.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace egm::compat {

using Check = std::pair<const char*, std::string (*)()>;

// In the order they run.
const std::vector<Check>& host_checks();

}  // namespace egm::compat
