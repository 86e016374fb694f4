#include "tests/harness/ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace bunker::testing {
namespace {

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

}  // namespace

Result<std::vector<uint16_t>> PickFreePorts(size_t count) {
  // All sockets stay bound until every port is picked, so the ports differ.
  std::vector<int> sockets;
  std::vector<uint16_t> ports;
  Status status;
  for (size_t i = 0; i < count && status.ok(); ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      status = ErrnoStatus("socket", errno);
      break;
    }
    sockets.push_back(fd);
    sockaddr_in addr = Loopback(0);
    socklen_t len = sizeof(addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      status = ErrnoStatus("bind 127.0.0.1:0", errno);
    } else if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      status = ErrnoStatus("getsockname", errno);
    } else {
      ports.push_back(ntohs(addr.sin_port));
    }
  }
  for (int fd : sockets) {
    close(fd);
  }
  if (!status.ok()) {
    return status;
  }
  return ports;
}

Result<uint16_t> PickFreePort() {
  ASSIGN_OR_RETURN(std::vector<uint16_t> ports, PickFreePorts(1));
  return ports[0];
}

bool PortAcceptsConnections(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return false;
  }
  sockaddr_in addr = Loopback(port);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

}  // namespace bunker::testing
