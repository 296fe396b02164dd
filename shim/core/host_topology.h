// The host's NUMA nodes as libnuma reports them.
#pragma once

#include <cstddef>

#include "config/config.h"

namespace egm {

HostTopology read_host_topology();

// Free bytes on `node` now, 0 when unknown.
size_t free_bytes_of_node(int node);

}  // namespace egm
