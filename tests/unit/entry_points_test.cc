// The one list of CUDA entry points (shim/core/entry_points.h) against the
// CUDA headers the shim is built with: every allocation-family symbol they
// declare is overridden or deliberately passed through, so that a new CUDA
// version cannot add an allocation call silently; every override is
// exported by libegm.so (shim/exports.lds).
#include "shim/core/entry_points.h"

#include <gtest/gtest.h>

#include <fstream>
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

}  // namespace
}  // namespace egm
