// egm-bench: one measurement of egm-shim's benchmark per run, as JSON.
// bench/run_bench.sh runs it without the shim and under LD_PRELOAD=libegm.so
// and combines the results; see bench/README.md.
#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>

#include "bench/driver_egm.h"
#include "bench/sections.h"
#include "bench/stats.h"

extern char** environ;

namespace egm::bench {
namespace {

constexpr int kExitUsage = 2;
constexpr int kExitFailed = 1;

struct Section {
  const char* name;
  JsonObject (*run)(const BenchOptions&);
  const char* what;
  // The 2 MiB location probe allocates through the shim: the memory
  // sections skip it, so that the shim's log holds their requests only.
  bool probe = true;
};

// No measurement: the header (GPU, where a 2 MiB cudaMalloc lands) only.
JsonObject run_info(const BenchOptions&) { return JsonObject(); }

constexpr Section kSections[] = {
    {"info", run_info, "the GPU, and where a 2 MiB cudaMalloc lands (a quick check)"},
    {"latency", run_runtime_latency, "cudaMalloc+cudaFree latency by size"},
    {"raw-egm", run_raw_egm_latency, "the raw EGM driver sequence, same sizes"},
    {"bandwidth", run_bandwidth, "kernel read/write GB/s: cudaMalloc, cudaHostAlloc, managed"},
    {"passthrough", run_passthrough, "ns per cudaFree(nullptr) and per 256 B malloc/free pair"},
    {"memory-4k", run_memory_4k, "10 000 x 4 KiB held at once (footprint: shim log)", false},
    {"memory-mix", run_memory_mix, "PyTorch-like size mix held at once (footprint: shim log)",
     false},
    {"throughput", run_throughput, "alloc/free ops/s with 1, 8, 32 threads"},
    {"launch", run_launch, "ns per kernel launch, device and host-placed argument"},
};

void print_usage(std::FILE* stream) {
  std::fprintf(stream,
               "usage: egm-bench --section NAME [--config LABEL] [--quick] [--json FILE]\n"
               "One measurement as JSON (stdout, or FILE). Without a GPU it prints\n"
               "'no GPU' and exits 0. bench/run_bench.sh runs every section with and\n"
               "without the shim and prints the combined table. Sections:\n");
  for (const Section& section : kSections) {
    std::fprintf(stream, "  %-12s %s\n", section.name, section.what);
  }
}

const Section* find_section(std::string_view name) {
  for (const Section& section : kSections) {
    if (name == section.name) return &section;
  }
  return nullptr;
}

// Returns kExitUsage on a bad command line, -1 to go on, 0 after --help.
int parse_arguments(int argc, char** argv, BenchOptions* options) {
  for (int i = 1; i < argc; ++i) {
    std::string_view argument = argv[i];
    bool has_value = i + 1 < argc;
    if (argument == "--help" || argument == "-h") {
      print_usage(stdout);
      return 0;
    } else if (argument == "--quick") {
      options->quick = true;
    } else if (argument == "--section" && has_value) {
      options->section = argv[++i];
    } else if (argument == "--config" && has_value) {
      options->config = argv[++i];
    } else if (argument == "--json" && has_value) {
      options->json_path = argv[++i];
    } else {
      std::fprintf(stderr, "egm-bench: unexpected argument '%s'\n", argv[i]);
      print_usage(stderr);
      return kExitUsage;
    }
  }
  if (find_section(options->section) == nullptr) {
    std::fprintf(stderr, "egm-bench: --section needs one of the names below\n");
    print_usage(stderr);
    return kExitUsage;
  }
  return -1;
}

// The shim's options and LD_PRELOAD as this process sees them, so that each
// result says what it was measured under.
JsonObject environment_snapshot() {
  JsonObject snapshot;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string_view variable = *entry;
    size_t equals = variable.find('=');
    if (equals == std::string_view::npos) continue;
    std::string_view name = variable.substr(0, equals);
    if (name == "LD_PRELOAD" || name.substr(0, 4) == "EGM_") {
      snapshot.text(name, variable.substr(equals + 1));
    }
  }
  return snapshot;
}

JsonObject gpu_description(int device) {
  cudaDeviceProp properties = {};
  cudaGetDeviceProperties(&properties, device);
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  JsonObject gpu;
  return gpu.text("name", properties.name)
      .text("compute_capability",
            std::to_string(properties.major) + "." + std::to_string(properties.minor))
      .integer("memory_bytes", static_cast<long long>(properties.totalGlobalMem))
      .integer("driver_version", driver)
      .integer("runtime_version", runtime);
}

// Where a plain 2 MiB cudaMalloc lands: shows whether the shim redirects.
std::string probe_cudamalloc_location() {
  void* pointer = nullptr;
  cudaError_t error = cudaMalloc(&pointer, 2 * kMiB);
  if (error != cudaSuccess) return "cudaMalloc failed: " + runtime_error_text(error);
  std::string location = memory_location(pointer);
  cudaFree(pointer);
  return location;
}

bool write_output(const BenchOptions& options, const std::string& json) {
  if (options.json_path.empty()) {
    std::cout << json << "\n";
    return static_cast<bool>(std::cout.flush());
  }
  std::ofstream file(options.json_path);
  file << json << "\n";
  return static_cast<bool>(file.flush());
}

JsonObject report_header(const BenchOptions& options) {
  JsonObject header;
  return header.text("tool", "egm-bench")
      .integer("format", 1)
      .text("section", options.section)
      .text("config", options.config)
      .boolean("quick", options.quick)
      .object("environment", environment_snapshot());
}

// No GPU (no driver, or no device): say so and succeed, as CI expects.
bool report_missing_gpu(const BenchOptions& options) {
  int count = 0;
  cudaError_t error = cudaGetDeviceCount(&count);
  if (error == cudaSuccess && count > 0) return false;
  std::string reason = error != cudaSuccess ? runtime_error_text(error) : "no CUDA device";
  std::printf("egm-bench: no GPU (%s): nothing measured\n", reason.c_str());
  JsonObject report = report_header(options);
  report.boolean("no_gpu", true).text("reason", reason);
  if (!options.json_path.empty()) write_output(options, report.str());
  return true;
}

int run(const BenchOptions& options) {
  if (report_missing_gpu(options)) return 0;
  cudaError_t error = cudaSetDevice(options.device);
  if (error == cudaSuccess) error = cudaFree(nullptr);  // create the context before timing
  if (error != cudaSuccess) {
    std::fprintf(stderr, "egm-bench: CUDA initialization: %s\n", runtime_error_text(error).c_str());
    return kExitFailed;
  }
  std::string driver_error;
  driver_api(&driver_error);
  const Section* section = find_section(options.section);
  JsonObject report = report_header(options);
  report.boolean("no_gpu", false).object("gpu", gpu_description(options.device));
  if (section->probe) report.text("cudamalloc_2mib_location", probe_cudamalloc_location());
  if (!driver_error.empty()) report.text("driver_api_error", driver_error);
  double start = now_seconds();
  JsonObject results = section->run(options);
  report.object("results", results).number("seconds", now_seconds() - start);
  if (!write_output(options, report.str())) {
    std::fprintf(stderr, "egm-bench: cannot write the result\n");
    return kExitFailed;
  }
  return 0;
}

}  // namespace

std::string runtime_error_text(int error) {
  auto code = static_cast<cudaError_t>(error);
  return std::string(cudaGetErrorName(code)) + ": " + cudaGetErrorString(code);
}

}  // namespace egm::bench

int main(int argc, char** argv) {
  egm::bench::BenchOptions options;
  int status = egm::bench::parse_arguments(argc, argv, &options);
  if (status >= 0) return status;
  return egm::bench::run(options);
}
