// The one list of CUDA entry points (shim/core/entry_points.h) against the
// CUDA headers the shim is built with: every allocation-family symbol they
// declare is overridden or deliberately passed through, so that a new CUDA
// version cannot add an allocation call silently; every override is
// exported by libegm.so (shim/exports.lds); every libcuda function the shim,
// egm-probe and egm-bench call (kDriverCalls) is the version cuda.h means today.
#include "shim/core/entry_points.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

namespace egm {
namespace {

std::string read(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string runfile(const std::string& path) {
  const char* dir = std::getenv("TEST_SRCDIR");
  return std::string(dir ? dir : ".") + "/" + path;
}

// The symbols a header can make: declared names (the old versions keep
// theirs in the header's legacy section), the targets of renaming macros
// (cuMemAlloc -> cuMemAlloc_v2) and the per-thread-stream variants.
std::set<std::string> symbols_of(const std::string& text, const std::string& result_type,
                                 const std::string& api, const std::string& ptsz_macro,
                                 const std::string& ptds_macro) {
  std::set<std::string> names;
  auto collect = [&](const std::regex& pattern, const std::string& suffix, bool with_plain) {
    for (std::sregex_iterator it(text.begin(), text.end(), pattern), end; it != end; ++it) {
      if (with_plain) names.insert((*it)[1]);
      if (!suffix.empty()) names.insert(std::string((*it)[1]) + suffix);
    }
  };
  collect(std::regex(result_type + "\\s+" + api + "\\s+(\\w+)\\s*\\("), "", true);
  collect(std::regex("#define\\s+\\w+\\s+(cu\\w+)[ \\t]*\\n"), "", true);
  collect(std::regex("#define\\s+\\w+\\s+" + ptsz_macro + "\\((\\w+)\\)"), "_ptsz", true);
  collect(std::regex("#define\\s+\\w+\\s+" + ptds_macro + "\\((\\w+)\\)"), "_ptds", true);
  return names;
}

const std::regex kDriverFamily(
    "cu(Mem(?!cpy|set)\\w*|Pointer\\w*|StreamAttachMem\\w*|Ipc\\w*|Array3?D?(Create|Destroy)\\w*|"
    "MipmappedArray(Create|Destroy)\\w*|Graph(Add)?Mem(Alloc|Free)Node\\w*|Multicast\\w*)");
const std::regex kRuntimeFamily(
    "cuda(Malloc\\w*|Free\\w*|Mem(Advise|Prefetch|Range|Discard|GetInfo|Pool)\\w*|Pointer\\w*|"
    "StreamAttachMem\\w*|Ipc\\w*|Host(Alloc|Register|Unregister|GetDevicePointer|GetFlags)\\w*|"
    "Graph(Add)?Mem(Alloc|Free)Node\\w*|DeviceGraphMemTrim|(Device)?(Get|Set)MemPool|"
    "DeviceGetDefaultMemPool|Array\\w*Destroy)");

std::set<std::string> family(const std::set<std::string>& names, const std::regex& pattern) {
  std::set<std::string> members;
  for (const std::string& name : names) {
    if (std::regex_match(name, pattern)) members.insert(name);
  }
  return members;
}

std::set<std::string> driver_family() {
  return family(symbols_of(read(runfile("local_cuda/include/cuda.h")), "CUresult", "CUDAAPI",
                           "__CUDA_API_PTSZ", "__CUDA_API_PTDS"),
                kDriverFamily);
}

std::set<std::string> runtime_family() {
  return family(symbols_of(read(runfile("local_cuda/include/cuda_runtime_api.h")), "cudaError_t",
                           "CUDARTAPI", "__CUDART_API_PTSZ", "__CUDART_API_PTDS"),
                kRuntimeFamily);
}

TEST(EntryPointsTest, TheHeadersAreParsed) {
  // A parser that finds nothing would pass everything below.
  std::set<std::string> driver = driver_family(), runtime = runtime_family();
  EXPECT_GT(driver.size(), 80u);
  EXPECT_GT(runtime.size(), 50u);
  for (const char* known : {"cuMemAlloc_v2", "cuMemAdvise", "cuMemAdvise_v2",
                            "cuMemPrefetchAsync_v2_ptsz", "cuStreamAttachMemAsync_ptsz"}) {
    EXPECT_TRUE(driver.count(known)) << known;
  }
  for (const char* known : {"cudaMalloc", "cudaMemPrefetchAsync_ptsz", "cudaPointerGetAttributes"}) {
    EXPECT_TRUE(runtime.count(known)) << known;
  }
}

TEST(EntryPointsTest, EveryAllocationFamilySymbolIsInterceptedOrPassedThroughOnPurpose) {
  std::set<std::string> all = driver_family();
  for (const std::string& name : runtime_family()) all.insert(name);
  for (const std::string& name : all) {
    EXPECT_TRUE(is_listed_entry_point(name))
        << name << " is declared by the CUDA headers but neither overridden "
        << "(EGM_DRIVER_OVERRIDES / EGM_RUNTIME_OVERRIDES) nor in kPassedThrough "
        << "(shim/core/entry_points.h)";
  }
}

TEST(EntryPointsTest, NoListedSymbolIsStaleOrListedTwice) {
  std::set<std::string> all = driver_family();
  for (const std::string& name : runtime_family()) all.insert(name);
  std::set<std::string_view> seen;
  for (const PassedThrough& passed : kPassedThrough) {
    EXPECT_TRUE(all.count(std::string(passed.name))) << passed.name << " is not in the headers";
    EXPECT_TRUE(seen.insert(passed.name).second) << passed.name << " listed twice";
    EXPECT_FALSE(passed.why.empty()) << passed.name;
  }
  for (std::string_view name : kDriverOverrideNames) {
    EXPECT_TRUE(seen.insert(name).second) << name << " both overridden and passed through";
  }
  for (std::string_view name : kRuntimeOverrideNames) {
    EXPECT_TRUE(seen.insert(name).second) << name << " both overridden and passed through";
  }
}

TEST(EntryPointsTest, EveryOverrideIsExported) {
  std::string script = read(runfile("egm_shim/shim/exports.lds"));
  auto exported = [&](std::string_view name) {
    return script.find("    " + std::string(name) + ";\n") != std::string::npos;
  };
  for (std::string_view name : kDriverOverrideNames) EXPECT_TRUE(exported(name)) << name;
  for (std::string_view name : kRuntimeOverrideNames) EXPECT_TRUE(exported(name)) << name;
}

// The names cuda.h's macros rename to another symbol: cuMemAlloc ->
// cuMemAlloc_v2, cuMemcpyHtoD -> __CUDA_API_PTDS(cuMemcpyHtoD_v2). A driver
// table typed decltype(&::cuMemAlloc) but resolving "cuMemAlloc" would call
// the 32-bit v1 with v2's arguments.
std::set<std::string> renamed_by_cuda_h() {
  std::string text = read(runfile("local_cuda/include/cuda.h"));
  std::regex rename("#define\\s+(cu\\w+)\\s+(?:__CUDA_API_PT[SD][SZ]\\()?(cu\\w+)");
  std::set<std::string> renamed;
  for (std::sregex_iterator it(text.begin(), text.end(), rename), end; it != end; ++it) {
    std::string target = (*it)[2];
    // cuGetProcAddress_v2 -> cuGetProcAddress_v2_ptsz: only for programs built
    // for the per-thread default stream; the plain name is the legacy stream's.
    bool per_thread = std::regex_search(target, std::regex("_pt[sd][sz]$"));
    if ((*it)[1] != target && !per_thread) renamed.insert((*it)[1]);
  }
  return renamed;
}

TEST(EntryPointsTest, EveryCalledDriverFunctionIsCudaHsCurrentVersion) {
  std::set<std::string> declared =
      symbols_of(read(runfile("local_cuda/include/cuda.h")), "CUresult", "CUDAAPI",
                 "__CUDA_API_PTSZ", "__CUDA_API_PTDS");
  std::set<std::string> renamed = renamed_by_cuda_h();
  ASSERT_TRUE(renamed.count("cuMemAlloc")) << "the renaming macros were not parsed";
  ASSERT_TRUE(renamed.count("cuMemcpyHtoD"));
  for (const DriverCall& call : kDriverCalls) {
    std::string symbol(call.symbol);
    EXPECT_TRUE(declared.count(symbol)) << symbol << " is not a cuda.h function";
    // The one deliberate old version: cuGetProcAddress's v1, typed by hand.
    if (call.member == "get_proc_address_v1") continue;
    EXPECT_FALSE(renamed.count(symbol))
        << symbol << " (" << call.member << ") is an old version: cuda.h renames it";
  }
}

TEST(EntryPointsTest, DriverCallsHaveOneMemberNameAndAreListedOncePerCaller) {
  std::map<std::string_view, std::string_view> member_of;
  std::map<std::string_view, unsigned> callers_of;
  for (const DriverCall& call : kDriverCalls) {
    EXPECT_NE(call.callers, 0u) << call.symbol;
    auto [named, inserted] = member_of.emplace(call.symbol, call.member);
    EXPECT_EQ(named->second, call.member) << call.symbol << " has two member names";
    EXPECT_EQ(callers_of[call.symbol] & call.callers, 0u)
        << call.symbol << " listed twice for one caller";
    callers_of[call.symbol] |= call.callers;
  }
  // Every tool runs the EGM sequence.
  for (const char* symbol : {"cuMemCreate", "cuMemMap", "cuMemSetAccess", "cuMemUnmap"}) {
    EXPECT_EQ(callers_of[symbol], kCalledByShim | kCalledByProbe | kCalledByBench) << symbol;
  }
}

}  // namespace
}  // namespace egm
