// The one table of egm-shim's options, and the only place where an option is
// written: its row gives the name, the default (Config's fields get it from
// here), the accepted form, the doc line and the field with its parser and
// printer. Parsing, validation, the start line (ParsedConfig::summary),
// `--help` of the tools and the README's options table all come from it.
// A new option: a Config field without initializer, then a row here.
#pragma once

#include <array>
#include <string_view>

#include "config/option_fields.h"

namespace egm {

struct OptionSpec {
  std::string_view name;
  std::string_view type;           // bool, enum, size, list, policy, path
  std::string_view default_value;  // as a user would write it; "" = unset
  std::string_view accepted;       // the accepted form, quoted in errors; an enum's names
  std::string_view doc;            // one line
  OptionField field;               // where the value lands in Config (option_fields.h)
};

inline constexpr std::array<OptionSpec, 30> kOptions = {{
    {"EGM_CONFIG", "path", "", "a readable regular file (at most 1 MiB) of VARIABLE=value lines",
     "Read options from this file first; the environment overrides it. '#' at the start of a "
     "line or after a blank starts a comment; blanks around '=', CRLF and a UTF-8 BOM are "
     "accepted.",
     {parse_nothing, nullptr}},
    {"EGM_ENABLE", "bool", "1", "0 or 1",
     "Master switch: 0 leaves every call to the real CUDA runtime.",
     off_start_line(bool_field<&Config::enable>())},
    {"EGM_MODE", "enum", "always", "always, spill or off",
     "always: every matching request goes to host memory. spill: device memory first; a "
     "request of at least EGM_SPILL_MIN_SIZE goes to host memory once the device's free memory "
     "minus the request would fall under EGM_DEVICE_RESERVE, a smaller one only when the real "
     "allocation runs out of memory. off: none.",
     enum_field<&Config::mode>()},
    {"EGM_NUMA_POLICY", "policy", "nearest",
     "nearest, bind:NODES, preferred:NODE, interleave:NODES, weighted:NODE=W[,NODE=W...] or "
     "most-free (NODES as numactl writes them: 0-3,5 or all)",
     "Which host NUMA node serves a request: the GPU's nearest node; one of NODES; NODE first, "
     "then the others by distance; NODES round-robin per allocation; round-robin in proportion "
     "to the weights; the node with the most free memory.",
     {parse_numa_policy, print_numa_policy}},
    {"EGM_APIS", "list", "all",
     "all or a comma-separated list of cudaMalloc, cudaMallocManaged, cudaMallocAsync, "
     "cudaMallocPitch, cuMemAlloc, cuMemAllocManaged, cuMemAllocPitch, cuMemCreate",
     "Which intercepted calls are redirected; the others go to the real runtime.",
     {parse_apis, print_apis}},
    {"EGM_MIN_SIZE", "size", "0", "bytes, with an optional K, M, G, T or KiB, MiB, GiB, TiB suffix",
     "Requests smaller than this stay on the device.",
     size_field<&Config::min_size>()},
    {"EGM_MAX_SIZE", "size", "", "bytes, with an optional K, M, G, T or KiB, MiB, GiB, TiB suffix",
     "Requests larger than this stay on the device; unset = no limit.",
     {parse_max_size, print_max_size}},
    {"EGM_DEVICES", "list", "all", "all or GPU ordinals as numactl writes lists: 0-3,5",
     "Which GPUs' requests are redirected (ordinals as the program sees them).",
     {parse_devices, print_devices}},
    {"EGM_NODE_LIMIT", "list", "", "NODE:SIZE[,NODE:SIZE...], e.g. 0:64G,1:32G",
     "Cap on the bytes the shim maps on each listed node, summed over every process of the "
     "user on the host (EGM_LEDGER; per process with EGM_LEDGER=off); a request over the cap "
     "takes EGM_FALLBACK.",
     {parse_node_limits, print_node_limits}},
    {"EGM_LEDGER", "path", "auto", "auto, off or an absolute file path",
     "Host ledger that makes EGM_NODE_LIMIT count the bytes of every process of the user on "
     "the host (and egm-inspect --live list them): auto = /dev/shm/egm-ledger-UID-PIDNS, off = "
     "each process counts only its own bytes.",
     {parse_ledger, nullptr}},
    {"EGM_FALLBACK", "enum", "device", "device, next-node or error",
     "When host placement fails or a cap is reached: the real call (device memory); the next "
     "allowed node by distance, then the device; or cudaErrorMemoryAllocation.",
     enum_field<&Config::fallback>()},
    {"EGM_DEVICE_RESERVE", "size", "auto",
     "auto, or bytes with an optional K, M, G, T or KiB, MiB, GiB, TiB suffix",
     "spill mode: device memory kept for requests smaller than EGM_SPILL_MIN_SIZE (and CUDA's "
     "own allocations); larger requests that would eat into it go to host memory. auto = 1/128 "
     "of the device's memory, at least 1 GiB.",
     size_or_auto_field<&Config::device_reserve>()},
    {"EGM_SPILL_MIN_SIZE", "size", "auto",
     "auto, or bytes with an optional K, M, G, T or KiB, MiB, GiB, TiB suffix",
     "spill mode: requests smaller than this stay on the device while it has room, reserve "
     "included; only larger ones spill at EGM_DEVICE_RESERVE. auto = the device's memory / 2048 "
     "rounded down to a power of two, within 8 MiB..256 MiB (64 MiB on a 140 GiB GPU). 0 = "
     "every request spills at the reserve.",
     size_or_auto_field<&Config::spill_min_size>()},
    {"EGM_HOST_ACCESS", "bool", "1", "0 or 1",
     "Grant the CPU read-write access to redirected cudaMalloc memory (managed memory always "
     "gets it).",
     bool_field<&Config::host_access>()},
    {"EGM_MEMINFO", "enum", "device", "device or device+host",
     "What cudaMemGetInfo/cuMemGetInfo report: the device's memory, or that plus the host "
     "memory the policy may use (so frameworks that size pools from free memory see it).",
     enum_field<&Config::meminfo_includes_host>()},
    {"EGM_POINTER_ATTRIBUTES", "enum", "requested", "requested or physical",
     "What pointer and range queries (cudaPointerGetAttributes, cuPointerGetAttribute(s), "
     "cuMemGetAddressRange, managed range attributes) report for redirected memory: what the "
     "program allocated (device or managed memory, its own base and size), or the host mapping "
     "as it is (the driver's answer).",
     enum_field<&Config::physical_pointer_attributes>()},
    {"EGM_HOOK_DRIVER", "bool", "1", "0 or 1",
     "Also intercept driver-API allocations (cuMemAlloc...), including those reached through "
     "cuGetProcAddress and dlsym on libcuda, as statically linked runtimes do. 0 = runtime "
     "calls only.",
     bool_field<&Config::hook_driver>()},
    {"EGM_POOL_LIMIT", "size", "1G",
     "bytes, with an optional K, M, G, T or KiB, MiB, GiB, TiB suffix",
     "Host memory the shim keeps mapped after frees, for reuse (per process; 0 = unmap at "
     "once). Oldest chunks are unmapped first when it is full.",
     size_field<&Config::pool_limit>()},
    {"EGM_POOL_PREALLOC", "size", "0",
     "bytes, with an optional K, M, G, T or KiB, MiB, GiB, TiB suffix",
     "At the first redirected allocation, map this much (in granule-sized chunks, up to "
     "EGM_POOL_LIMIT) in the background, so that early small allocations find it ready.",
     size_field<&Config::pool_prealloc>()},
    {"EGM_SUBALLOC", "bool", "1", "0 or 1",
     "Serve requests smaller than the granule (2 MiB) as blocks of shared chunks instead of a "
     "whole granule each.",
     bool_field<&Config::suballocate>()},
    {"EGM_PEER_ACCESS", "enum", "enabled", "enabled or all",
     "Which other GPUs may use a GPU's host-placed memory: those the program enables peer "
     "access to (cudaDeviceEnablePeerAccess, cuCtxEnablePeerAccess), or every GPU from the "
     "start.",
     enum_field<&Config::peer_access_all>()},
    {"EGM_GRANULARITY", "enum", "minimum", "minimum or recommended",
     "Which allocation granularity of the driver sizes are rounded up to.",
     enum_field<&Config::granularity>()},
    {"EGM_LOG_FILE", "path", "",
     "a file path; %p is replaced by the process id, %r by the rank, %h by the host name",
     "Write the log (decisions, every map/unmap, the exit summary) to this file. Empty = "
     "warnings and errors to stderr only. %r is the first of RANK, SLURM_PROCID, "
     "OMPI_COMM_WORLD_RANK, PMI_RANK that is set (norank when none is, or it is not a number).",
     off_start_line(path_template_field<&Config::log_file_template>())},
    {"EGM_SNAPSHOT_FILE", "path", "",
     "a file path; %p is replaced by the process id, %r by the rank, %h by the host name",
     "Live view: on SIGUSR2 the shim writes its current mapping table here (as log lines, "
     "read by egm-inspect; `egm-inspect --live PID` sends the signal). Unset = no handler.",
     off_start_line(path_template_field<&Config::snapshot_template>())},
    {"EGM_METRICS_FILE", "path", "", "a file path; %p is replaced by the process id, %r by the rank, %h by the host name",
     "Metrics in the Prometheus text format (pinned bytes per node and GPU, pool, maps, "
     "unmaps, fallbacks, spill decisions), rewritten atomically every EGM_METRICS_INTERVAL "
     "from the first redirected request on, and at exit; for node_exporter's textfile "
     "collector, name it *.prom. Unset = none.",
     off_start_line(path_template_field<&Config::metrics_template>())},
    {"EGM_METRICS_INTERVAL", "seconds", "5", "seconds from 0.1 to 86400, e.g. 5 or 0.5",
     "How often EGM_METRICS_FILE is rewritten.",
     {parse_metrics_interval, nullptr}},
    {"EGM_LOG_LEVEL", "enum", "info", "trace, debug, info, warn, error or off",
     "Lowest level written to EGM_LOG_FILE (to stderr when no file is set, where the default "
     "is warn). debug adds one line per request a filter leaves on the device, with its reason "
     "(spill mode's decisions are info).",
     {parse_log_level_field, print_log_level}},
    {"EGM_STAGING", "bool", "0", "0 or 1",
     "1 (experimental, unsafe: README, Limits): before each kernel launch that passes "
     "host-placed allocations, copy them into an HBM window on the launch's stream, give the "
     "kernel the copies and write its changes back after it. An integer argument equal to an "
     "allocation's address is rewritten too (it faulted Hugging Face generation on the H200). "
     "0 = kernels read host memory over the link.",
     bool_field<&Config::staging>()},
    {"EGM_STAGING_WINDOW", "size", "2G",
     "bytes from 1M, with an optional K, M, G, T or KiB, MiB, GiB, TiB suffix",
     "EGM_STAGING: device memory per GPU for the copies, taken at the first redirected "
     "allocation on the GPU; an allocation is staged when twice its size fits in half of it.",
     {parse_staging_window, print_staging_window}},
    {"EGM_STRICT", "bool", "0", "0 or 1",
     "1: bad configuration stops the process at load (exit status 1) instead of switching "
     "redirection off.",
     off_start_line(bool_field<&Config::strict>())},
}};

// The spec for `name`, or nullptr.
const OptionSpec* find_option(std::string_view name);

}  // namespace egm
