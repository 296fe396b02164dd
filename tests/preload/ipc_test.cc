// CUDA IPC on the shim's host memory, with two real processes over the
// doubles (the fake driver backs VMM memory with memfds, so exporter and
// opener really share bytes): ipc_program exports a cudaMalloc'd buffer,
// its spawned opener opens, reads, writes back and closes.
#include <dirent.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/preload/harness.h"

namespace {

using preload::RunOptions;
using preload::RunResult;
using preload::contains;

RunResult run_ipc(std::vector<std::string> args, std::map<std::string, std::string> env,
                  bool preload = true) {
  RunOptions options;
  options.program = "tests/preload/ipc_program";
  options.args = std::move(args);
  options.preload = preload;
  env.emplace("EGM_MODE", "always");
  options.env = std::move(env);
  return preload::run(options);
}

// Every egm-PID.log of the run (exporter and opener), concatenated.
std::string all_logs(const RunResult& run) {
  std::string text;
  for (const std::string& name : preload::entries_of(run.dir)) {
    if (name.rfind("egm-", 0) == 0) text += preload::read_file(run.dir + "/" + name);
  }
  return text;
}

TEST(IpcTest, OpenerUnderTheShimSharesTheBytesBothWays) {
  RunResult run = run_ipc({"export"}, {});
  ASSERT_EQ(run.exit_code, 0) << run.describe();
  for (const char* line :
       {"export cudaMalloc=cudaSuccess", "export cudaIpcGetMemHandle=cudaSuccess",
        "export interior=cudaSuccess same=1", "open cudaIpcOpenMemHandle=cudaSuccess",
        "open reads-exporter-pattern=ok", "open write=1",
        "open cuIpcOpenMemHandle-again=0 same=1", "open cuIpcCloseMemHandle=0",
        "open still-mapped=ok", "open cudaIpcCloseMemHandle=cudaSuccess",
        "open close-again=cudaErrorInvalidValue", "export opener-exit=0",
        "export sees-opener-write=ok", "export cudaFree=cudaSuccess"}) {
    EXPECT_TRUE(contains(run.out, line)) << line << "\n" << run.describe();
  }
  std::string logs = all_logs(run);
  EXPECT_TRUE(contains(logs, "event=ipc-export")) << logs;
  EXPECT_TRUE(contains(logs, "event=ipc-open")) << logs;
  EXPECT_TRUE(contains(logs, "references=2")) << logs;
  EXPECT_TRUE(contains(logs, "event=ipc-close")) << logs;
  EXPECT_TRUE(contains(logs, "unmapped=1")) << logs;
  // The exported chunk is unmapped at free, not cached.
  EXPECT_TRUE(contains(logs, "reason=exported")) << logs;
}

TEST(IpcTest, OpenerWithoutTheShimGetsTheDriversError) {
  RunResult run = run_ipc({"export"}, {{"IPC_OPENER_WITHOUT_SHIM", "1"}});
  ASSERT_EQ(run.exit_code, 0) << run.describe();
  // The fake driver refuses a handle it did not make, as CUDA does.
  EXPECT_TRUE(contains(run.out, "open cudaIpcOpenMemHandle=cudaErrorInvalidValue"))
      << run.describe();
  EXPECT_TRUE(contains(run.out, "export opener-exit=3")) << run.describe();
  EXPECT_TRUE(contains(run.out, "export cudaFree=cudaSuccess")) << run.describe();
}

TEST(IpcTest, MemoryNotFromTheShimPassesThrough) {
  // EGM_MODE=off: nothing is redirected; export and open answer as without
  // the shim (the fake runtime's handles cannot be opened elsewhere).
  RunResult with = run_ipc({"export"}, {{"EGM_MODE", "off"}});
  RunResult without = run_ipc({"export"}, {}, false);
  EXPECT_EQ(with.exit_code, without.exit_code) << with.describe() << without.describe();
  EXPECT_EQ(with.out, without.out) << with.describe() << without.describe();
  EXPECT_TRUE(contains(without.out, "export cudaIpcGetMemHandle=cudaSuccess")) << without.describe();
  EXPECT_FALSE(contains(all_logs(with), "event=ipc-")) << all_logs(with);
}

TEST(IpcTest, ExporterGoneGivesACleanError) {
  RunResult exporter = run_ipc({"export", "exit"}, {});
  ASSERT_EQ(exporter.exit_code, 0) << exporter.describe();
  std::string hex;
  for (const std::string& line : preload::lines_of(exporter.out)) {
    if (line.rfind("handle ", 0) == 0) hex = line.substr(7);
  }
  ASSERT_EQ(hex.size(), 128u) << exporter.describe();
  RunResult opener = run_ipc({"open", hex}, {});
  EXPECT_EQ(opener.exit_code, 3) << opener.describe();
  EXPECT_TRUE(contains(opener.out, "open cudaIpcOpenMemHandle=cudaErrorInvalidResourceHandle"))
      << opener.describe();
  EXPECT_TRUE(contains(opener.log_text, "why=exporter-gone")) << opener.describe();
}

TEST(IpcTest, ExporterFreeWhileOpenLeavesTheOpenersMapping) {
  // A pool that would cache the freed chunk: an exported one is unmapped
  // instead, so the new allocation never shares the opener's bytes.
  RunResult run = run_ipc({"export", "hold"}, {{"EGM_POOL_LIMIT", "64M"}});
  ASSERT_EQ(run.exit_code, 0) << run.describe();
  for (const char* line :
       {"open cudaIpcOpenMemHandle=cudaSuccess", "export opener-opened=1",
        "export cudaFree=cudaSuccess", "export cudaMalloc-again=cudaSuccess",
        "export fill-again=1", "open after-exporter-free=ok",
        "open cudaIpcCloseMemHandle=cudaSuccess", "export opener-exit=0"}) {
    EXPECT_TRUE(contains(run.out, line)) << line << "\n" << run.describe();
  }
  EXPECT_TRUE(contains(all_logs(run), "reason=exported")) << all_logs(run);
}

TEST(IpcTest, ExporterExitLeavesTheOpenersMappingValid) {
  RunResult run = run_ipc({"export", "exit-held"}, {});
  ASSERT_EQ(run.exit_code, 0) << run.describe();
  // The opener outlives the exporter and writes to the same stdout file.
  std::string out;
  for (int waited = 0; waited < 200; ++waited) {
    out = preload::read_file(run.dir + "/stdout");
    if (contains(out, "open orphan-done")) break;
    usleep(50000);
  }
  for (const char* line :
       {"open cudaIpcOpenMemHandle=cudaSuccess", "export opener-opened=1 exiting",
        "open exporter-gone=1", "open after-exporter-exit=ok",
        "open cudaIpcCloseMemHandle=cudaSuccess", "open orphan-done"}) {
    EXPECT_TRUE(contains(out, line)) << line << "\n" << out;
  }
}

TEST(IpcTest, ChunksThatCannotBeSharedStillAllocate) {
  // A driver that refuses the fd handle type: the chunk is made without it
  // and the export fails as CUDA's does on host-placed memory.
  RunResult run = run_ipc({"export"}, {{"FAKE_CUDA_NO_SHAREABLE", "1"}});
  EXPECT_TRUE(contains(run.out, "export cudaMalloc=cudaSuccess")) << run.describe();
  EXPECT_TRUE(contains(run.out, "export cudaIpcGetMemHandle=cudaErrorInvalidValue"))
      << run.describe();
  EXPECT_TRUE(contains(run.log_text, "why=chunk-not-shareable")) << run.describe();
}

}  // namespace

namespace {

// Hostile records and peers: forged fields fail with an error (never a
// pointer outside the mapping), the exporter's own handle fails as CUDA's
// does in the exporting process, and a peer that connects to the exporter
// and says nothing neither holds up the next opener nor leaks an fd.
TEST(IpcTest, ForgedRecordsAndSilentPeersGetErrors) {
  RunResult run = run_ipc({"export", "hostile"}, {});
  ASSERT_EQ(run.exit_code, 0) << run.describe();
  for (const char* line :
       {"export open-own-handle=cudaErrorDeviceUninitialized", "export silent-peer-connected=1",
        "open cudaIpcOpenMemHandle=cudaSuccess", "open within-5s=1",
        "open forged-bigger-chunk=cudaErrorInvalidResourceHandle",
        "open bad-checksum=cudaErrorInvalidResourceHandle",
        "open version-255=cudaErrorInvalidResourceHandle",
        "open offset-past-chunk=cudaErrorInvalidResourceHandle",
        "open size-past-chunk=cudaErrorInvalidResourceHandle",
        "open chunk-size-0=cudaErrorInvalidResourceHandle",
        "open pid-0=cudaErrorInvalidResourceHandle", "open pid-1=cudaErrorInvalidResourceHandle",
        "open pid-max=cudaErrorInvalidResourceHandle", "open null-pointer=cudaErrorInvalidValue",
        "open bad-flags=cudaErrorInvalidValue", "open still-reads=ok",
        "open cudaIpcCloseMemHandle=cudaSuccess", "open close-again=cudaErrorInvalidValue",
        "export opener-exit=0", "export fds-leaked=0", "export cudaFree=cudaSuccess"}) {
    EXPECT_TRUE(contains(run.out, line)) << line << "\n" << run.describe();
  }
  // Another chunk of the same exporter: refused by the exporter, an error here.
  EXPECT_TRUE(contains(run.out, "open other-chunk=cudaError")) << run.describe();
  EXPECT_FALSE(contains(run.out, "open other-chunk=cudaSuccess")) << run.describe();
  std::string logs = all_logs(run);
  EXPECT_TRUE(contains(logs, "why=same-process")) << logs;
  EXPECT_TRUE(contains(logs, "why=chunk-size-differs")) << logs;
}

}  // namespace
