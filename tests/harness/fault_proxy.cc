#include "tests/harness/fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>

namespace bunker::testing {

namespace {

constexpr size_t kChunk = 64 * 1024;
constexpr size_t kMaxHeaderBytes = 64 * 1024;

constexpr std::string_view kSlowDownBody =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
    "<Message>Please reduce your request rate.</Message>"
    "<RequestId>fault-proxy</RequestId></Error>";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Writes everything or fails (peer gone).
bool SendAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Closes with RST instead of FIN.
void Abort(int fd) {
  if (fd < 0) return;
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  ::close(fd);
}

int ConnectLoopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// Client-to-server framing: finds request boundaries so that a request can
// be answered by the proxy instead of the server.
class RequestFramer {
 public:
  // Feeds bytes from the client. Appends what must go to the server to
  // *to_server and returns how many whole requests were swallowed and must
  // now be answered with a 503 (`take_slow_down` decides per request).
  int Feed(const char* data, size_t n, const std::function<bool()>& take_slow_down,
           std::string* to_server, std::atomic<uint64_t>* requests) {
    int slow_downs = 0;
    while (n > 0) {
      if (passthrough_) {
        to_server->append(data, n);
        return slow_downs;
      }
      if (body_left_ == 0 && !in_body_) {
        // Reading a header block.
        header_.append(data, n);
        n = 0;
        size_t end = header_.find("\r\n\r\n");
        if (end == std::string::npos) {
          if (header_.size() > kMaxHeaderBytes) {
            passthrough_ = true;
            to_server->append(header_);
            header_.clear();
          }
          return slow_downs;
        }
        std::string rest = header_.substr(end + 4);
        std::string head = header_.substr(0, end + 4);
        header_.clear();
        requests->fetch_add(1);
        std::string lower = Lower(head);
        uint64_t length = 0;
        if (size_t p = lower.find("\r\ncontent-length:"); p != std::string::npos) {
          length = std::strtoull(lower.c_str() + p + 17, nullptr, 10);
        }
        bool odd = lower.find("\r\ntransfer-encoding:") != std::string::npos ||
                   lower.find("\r\nexpect:") != std::string::npos;
        if (odd) {
          passthrough_ = true;
          to_server->append(head);
          to_server->append(rest);
          return slow_downs;
        }
        swallow_ = take_slow_down();
        if (!swallow_) to_server->append(head);
        body_left_ = length;
        in_body_ = true;
        if (body_left_ == 0) {
          in_body_ = false;
          if (swallow_) ++slow_downs;
        }
        // Continue with whatever followed the header block.
        leftover_ = std::move(rest);
        data = leftover_.data();
        n = leftover_.size();
        continue;
      }
      // Inside a body.
      size_t take = static_cast<size_t>(std::min<uint64_t>(body_left_, n));
      if (!swallow_) to_server->append(data, take);
      body_left_ -= take;
      data += take;
      n -= take;
      if (body_left_ == 0) {
        in_body_ = false;
        if (swallow_) ++slow_downs;
      }
    }
    return slow_downs;
  }

 private:
  bool passthrough_ = false;
  bool in_body_ = false;
  bool swallow_ = false;
  uint64_t body_left_ = 0;
  std::string header_;
  std::string leftover_;
};

}  // namespace

Result<std::unique_ptr<FaultProxy>> FaultProxy::Start(uint16_t target_port) {
  std::unique_ptr<FaultProxy> proxy(new FaultProxy());
  proxy->target_port_ = target_port;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("fault proxy socket", errno);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd, 128) != 0) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus("fault proxy bind/listen", err);
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  proxy->port_ = ntohs(addr.sin_port);
  proxy->listen_fd_ = fd;
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return ErrnoStatus("fault proxy pipe", errno);
  proxy->wake_read_ = pipe_fds[0];
  proxy->wake_write_ = pipe_fds[1];
  proxy->acceptor_ = std::thread([p = proxy.get()] { p->AcceptLoop(); });
  return proxy;
}

FaultProxy::~FaultProxy() {
  if (wake_write_ >= 0) {
    char b = 1;
    [[maybe_unused]] ssize_t w = ::write(wake_write_, &b, 1);
  }
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers.swap(workers_);
  }
  for (std::thread& t : workers) t.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (wake_read_ >= 0) ::close(wake_read_);
  if (wake_write_ >= 0) ::close(wake_write_);
}

std::string FaultProxy::endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

void FaultProxy::DropAfterBytes(uint64_t bytes, int connections, Direction direction) {
  drop_bytes_ = bytes;
  drop_direction_ = direction == Direction::kToClient ? 0 : 1;
  drop_connections_ = connections;
}

void FaultProxy::SetDelay(std::chrono::milliseconds delay) { delay_ms_ = delay.count(); }

void FaultProxy::RespondSlowDown(int requests) { slow_downs_ = requests; }

void FaultProxy::ClearFaults() {
  drop_connections_ = 0;
  delay_ms_ = 0;
  slow_downs_ = 0;
}

void FaultProxy::AcceptLoop() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_read_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    accepted_.fetch_add(1);
    std::lock_guard<std::mutex> lock(mu_);
    workers_.emplace_back([this, client] { Serve(client); });
  }
}

void FaultProxy::Serve(int client) {
  int one = 1;
  ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  int server = ConnectLoopback(target_port_);
  if (server < 0) {  // the target is down: the client sees a reset
    Abort(client);
    return;
  }
  // Is this connection one of those to cut?
  std::optional<uint64_t> drop_budget;
  int drop_direction = drop_direction_.load();
  for (int left = drop_connections_.load(); left > 0;) {
    if (drop_connections_.compare_exchange_weak(left, left - 1)) {
      drop_budget = drop_bytes_.load();
      break;
    }
  }
  uint64_t forwarded[2] = {0, 0};  // [0] to client, [1] to server
  RequestFramer framer;
  auto take_slow_down = [this] {
    for (int left = slow_downs_.load(); left > 0;) {
      if (slow_downs_.compare_exchange_weak(left, left - 1)) return true;
    }
    return false;
  };
  std::string slow_down_response =
      "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
      "Content-Length: " +
      std::to_string(kSlowDownBody.size()) + "\r\nConnection: keep-alive\r\n\r\n" +
      std::string(kSlowDownBody);
  // Forwards `data` in direction `dir` (0: to client), honouring the drop
  // budget; returns false when the connection is finished.
  auto forward = [&](int dir, const char* data, size_t n) -> bool {
    if (int64_t d = delay_ms_.load(); d > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(d));
    }
    bool cut = false;
    if (drop_budget && dir == drop_direction) {
      uint64_t room = *drop_budget > forwarded[dir] ? *drop_budget - forwarded[dir] : 0;
      if (n >= room) {
        n = static_cast<size_t>(room);
        cut = true;
      }
    }
    if (n > 0 && !SendAll(dir == 0 ? client : server, data, n)) return false;
    forwarded[dir] += n;
    if (cut) {
      dropped_.fetch_add(1);
      return false;
    }
    return true;
  };

  std::vector<char> buf(kChunk);
  bool client_open = true, server_open = true, aborted = false;
  while (client_open || server_open) {
    pollfd fds[3] = {{client_open ? client : -1, POLLIN, 0},
                     {server_open ? server : -1, POLLIN, 0},
                     {wake_read_, POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[2].revents != 0) {
      aborted = true;
      break;
    }
    if (client_open && fds[0].revents != 0) {
      ssize_t n = ::recv(client, buf.data(), buf.size(), 0);
      if (n <= 0) {
        client_open = false;
        ::shutdown(server, SHUT_WR);
        if (n < 0) {
          aborted = true;
          break;
        }
      } else {
        std::string to_server;
        int answers =
            framer.Feed(buf.data(), static_cast<size_t>(n), take_slow_down, &to_server, &requests_);
        if (!to_server.empty() && !forward(1, to_server.data(), to_server.size())) {
          aborted = true;
          break;
        }
        for (int i = 0; i < answers; ++i) {
          slow_downs_sent_.fetch_add(1);
          if (!SendAll(client, slow_down_response.data(), slow_down_response.size())) {
            aborted = true;
            break;
          }
        }
        if (aborted) break;
      }
    }
    if (server_open && fds[1].revents != 0) {
      ssize_t n = ::recv(server, buf.data(), buf.size(), 0);
      if (n <= 0) {
        server_open = false;
        ::shutdown(client, SHUT_WR);
        if (n < 0) {
          aborted = true;
          break;
        }
      } else if (!forward(0, buf.data(), static_cast<size_t>(n))) {
        aborted = true;
        break;
      }
    }
  }
  if (aborted) {
    Abort(client);
    Abort(server);
  } else {
    ::close(client);
    ::close(server);
  }
}

}  // namespace bunker::testing
