// The IPC record in a 64-byte CUDA IPC handle: round trip, and what must
// never be taken for the shim's (real handles, damaged or newer records).
#include "shim/core/ipc_record.h"

#include <gtest/gtest.h>

#include <cstring>

namespace egm {
namespace {

IpcRecord sample() {
  IpcRecord record;
  record.pid = 4242;
  record.start_time = 123456789;
  record.chunk_id = 7;
  record.chunk_size = 4 << 20;
  record.offset = 2 << 20;
  record.size = 1 << 20;
  record.device = 3;
  return record;
}

TEST(IpcRecordTest, RoundTrips) {
  unsigned char bytes[kIpcHandleBytes];
  encode_ipc_record(sample(), bytes);
  IpcRecord back;
  ASSERT_EQ(decode_ipc_record(bytes, &back), IpcRecordKind::kOurs);
  EXPECT_EQ(back.pid, 4242u);
  EXPECT_EQ(back.start_time, 123456789u);
  EXPECT_EQ(back.chunk_id, 7u);
  EXPECT_EQ(back.chunk_size, 4u << 20);
  EXPECT_EQ(back.offset, 2u << 20);
  EXPECT_EQ(back.size, 1u << 20);
  EXPECT_EQ(back.device, 3);
}

TEST(IpcRecordTest, RealHandlesAreNotOurs) {
  unsigned char bytes[kIpcHandleBytes] = {};
  IpcRecord record;
  EXPECT_EQ(decode_ipc_record(bytes, &record), IpcRecordKind::kNotOurs);
  for (size_t i = 0; i < kIpcHandleBytes; ++i) bytes[i] = static_cast<unsigned char>(i * 37 + 1);
  EXPECT_EQ(decode_ipc_record(bytes, &record), IpcRecordKind::kNotOurs);
}

TEST(IpcRecordTest, DamagedOrNewerRecordsAreRefused) {
  unsigned char bytes[kIpcHandleBytes];
  IpcRecord record;
  for (size_t at : {size_t{7}, size_t{8}, size_t{30}, size_t{63}}) {
    encode_ipc_record(sample(), bytes);
    bytes[at] ^= 0x5a;
    EXPECT_EQ(decode_ipc_record(bytes, &record), IpcRecordKind::kUnsupported) << at;
  }
  IpcRecord outside = sample();
  outside.offset = outside.chunk_size;  // past the chunk: never mapped
  encode_ipc_record(outside, bytes);
  EXPECT_EQ(decode_ipc_record(bytes, &record), IpcRecordKind::kUnsupported);
}

TEST(IpcRecordTest, StartTimeAndSocketName) {
  EXPECT_GT(process_start_time(), 0u);
  EXPECT_EQ(ipc_socket_name(1000, 42, 99), "egm-ipc-1000-42-99");
}

}  // namespace
}  // namespace egm
