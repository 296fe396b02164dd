#include "shim/core/ipc_channel.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <mutex>

#include "shim/core/helper_thread.h"

namespace egm {
namespace {

constexpr uint64_t kRequestMagic = 0x45474d2d49504331ull;  // "EGM-IPC1"
constexpr int kTimeoutSeconds = 10;                       // a stuck peer never hangs the other
// The exporter serves one connection at a time; an opener sends its request
// right after connecting, so a peer silent for this long is dropped before
// it can hold up the openers queued behind it.
constexpr int kRequestTimeoutMs = 500;

struct Request {
  uint64_t magic;
  uint64_t chunk_id;
};

struct Reply {
  int32_t result;  // CUresult
};

sockaddr_un abstract_address(const std::string& name, socklen_t* length) {
  sockaddr_un address = {};
  address.sun_family = AF_UNIX;
  size_t bytes = std::min(name.size(), sizeof address.sun_path - 1);
  std::memcpy(address.sun_path + 1, name.data(), bytes);  // sun_path[0] = 0: abstract
  *length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + bytes);
  return address;
}

void set_timeouts(int socket, timeval timeout = {kTimeoutSeconds, 0}) {
  setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
}

bool peer_credentials(int socket, ucred* peer) {
  socklen_t length = sizeof *peer;
  return getsockopt(socket, SOL_SOCKET, SO_PEERCRED, peer, &length) == 0;
}

bool send_reply(int socket, CUresult result, int fd) {
  Reply reply = {static_cast<int32_t>(result)};
  iovec data = {&reply, sizeof reply};
  msghdr message = {};
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (result == CUDA_SUCCESS) {
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(header), &fd, sizeof fd);
  }
  return sendmsg(socket, &message, MSG_NOSIGNAL) == sizeof reply;
}

// One connection: a peer of another uid gets no answer at all.
void serve_one(int connection, const ChunkFdSource& source) {
  set_timeouts(connection, {0, kRequestTimeoutMs * 1000});
  ucred peer = {};
  if (!peer_credentials(connection, &peer) || peer.uid != geteuid()) return;
  Request request = {};
  if (recv(connection, &request, sizeof request, 0) != sizeof request ||
      request.magic != kRequestMagic) {
    return;
  }
  int fd = -1;
  CUresult result = source(request.chunk_id, &fd);
  send_reply(connection, result, fd);
  if (result == CUDA_SUCCESS) close(fd);  // the peer has its own copy now
}

void serve_forever(int listener, ChunkFdSource source) {
  for (;;) {
    int connection = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (connection < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) {
        if (errno == EMFILE || errno == ENFILE) sleep(1);
        continue;
      }
      return;
    }
    serve_one(connection, source);
    close(connection);
  }
}

}  // namespace

bool start_fd_server(const std::string& name, ChunkFdSource source, std::string* why) {
  static std::once_flag once;
  static bool started = false;
  static std::string failure;
  std::call_once(once, [&] {
    int listener = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    socklen_t length = 0;
    sockaddr_un address = abstract_address(name, &length);
    if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        listen(listener, 64) != 0) {
      failure = std::string("socket ") + name + ": " + std::strerror(errno);
      if (listener >= 0) close(listener);
      return;
    }
    start_helper_thread([listener, source = std::move(source)] { serve_forever(listener, source); });
    started = true;
  });
  if (!started && why != nullptr) *why = failure;
  return started;
}

CUresult request_chunk_fd(const std::string& name, uint32_t pid, uint64_t chunk_id, int* fd,
                          std::string* why) {
  auto fail = [why](const std::string& reason) {
    if (why != nullptr) *why = reason;
    return CUDA_ERROR_INVALID_HANDLE;
  };
  int connection = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (connection < 0) return fail(std::string("socket: ") + std::strerror(errno));
  set_timeouts(connection);
  socklen_t length = 0;
  sockaddr_un address = abstract_address(name, &length);
  if (connect(connection, reinterpret_cast<sockaddr*>(&address), length) != 0) {
    int error = errno;
    close(connection);
    return fail(error == ECONNREFUSED ? "exporter-gone"
                                      : std::string("connect: ") + std::strerror(error));
  }
  ucred peer = {};
  if (!peer_credentials(connection, &peer) || peer.uid != geteuid() ||
      static_cast<uint32_t>(peer.pid) != pid) {
    close(connection);
    return fail("wrong-peer");
  }
  Request request = {kRequestMagic, chunk_id};
  Reply reply = {-1};
  iovec data = {&reply, sizeof reply};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr message = {};
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  bool sent = send(connection, &request, sizeof request, MSG_NOSIGNAL) == sizeof request;
  ssize_t got = sent ? recvmsg(connection, &message, MSG_CMSG_CLOEXEC) : -1;
  int error = errno;
  close(connection);
  if (got != sizeof reply) {
    return fail(got == 0 ? "exporter-closed" : std::string("recv: ") + std::strerror(error));
  }
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  int received = -1;
  if (header != nullptr && header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_RIGHTS) {
    std::memcpy(&received, CMSG_DATA(header), sizeof received);
  }
  if (reply.result != CUDA_SUCCESS) {
    if (received >= 0) close(received);
    if (why != nullptr) *why = "exporter-refused";
    return static_cast<CUresult>(reply.result);
  }
  if (received < 0) return fail("no-fd");
  *fd = received;
  return CUDA_SUCCESS;
}

}  // namespace egm
