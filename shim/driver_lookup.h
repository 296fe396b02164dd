// The link between the dlsym override and the driver overrides.
#pragma once

namespace egm {

// The shim's override for a real libcuda function, or `real` itself.
void* driver_override_for(void* real);

}  // namespace egm
