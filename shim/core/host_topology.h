// The host's NUMA nodes as libnuma reports them.
#pragma once

#include "config/config.h"

namespace egm {

HostTopology read_host_topology();

}  // namespace egm
