#include "http_test_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>

namespace outpost::test {

namespace {

using Clock = std::chrono::steady_clock;

struct Connection {
  int fd = -1;
  std::string in;
  std::optional<Clock::time_point> answer_at;  // a delayed answer waiting
  std::string answer;
};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  const auto e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// One whole request off the front of `in`, if it has arrived.
std::optional<HttpTestRequest> take_request(std::string& in) {
  const auto end = in.find("\r\n\r\n");
  if (end == std::string::npos) return std::nullopt;
  HttpTestRequest r;
  std::size_t pos = in.find("\r\n");
  const std::string first = in.substr(0, pos);
  const auto sp1 = first.find(' ');
  const auto sp2 = first.find(' ', sp1 + 1);
  r.method = first.substr(0, sp1);
  r.target = first.substr(sp1 + 1, sp2 - sp1 - 1);
  while (pos < end) {
    const auto next = in.find("\r\n", pos + 2);
    const std::string line = in.substr(pos + 2, next - pos - 2);
    const auto colon = line.find(':');
    if (colon != std::string::npos) r.headers[lower(line.substr(0, colon))] = trim(line.substr(colon + 1));
    pos = next;
  }
  std::size_t length = 0;
  if (auto it = r.headers.find("content-length"); it != r.headers.end()) length = std::stoul(it->second);
  if (in.size() < end + 4 + length) return std::nullopt;
  r.body = in.substr(end + 4, length);
  in.erase(0, end + 4 + length);
  return r;
}

std::string reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    default: return "Status";
  }
}

std::string render(const HttpTestReply& reply) {
  std::string out = "HTTP/1.1 " + std::to_string(reply.status) + " " + reason(reply.status) + "\r\n";
  if (reply.status != 204) out += "Content-Length: " + std::to_string(reply.body.size()) + "\r\n";
  for (const auto& h : reply.headers) out += h + "\r\n";
  out += "\r\n";
  if (reply.status != 204) out += reply.body;
  return out;
}

void write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return;  // the client went away: nothing to answer
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

HttpTestServer::HttpTestServer(HttpTestReply reply) : reply_(std::move(reply)) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listen_fd_, 16) != 0 || getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      pipe2(wake_, O_CLOEXEC) != 0) {
    const std::string error = std::strerror(errno);
    if (listen_fd_ >= 0) close(listen_fd_);
    throw std::runtime_error("test HTTP server: " + error);
  }
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { run(); });
}

HttpTestServer::~HttpTestServer() {
  [[maybe_unused]] auto n = write(wake_[1], "x", 1);
  thread_.join();
  close(listen_fd_);
  close(wake_[0]);
  close(wake_[1]);
}

std::string HttpTestServer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void HttpTestServer::set_reply(HttpTestReply reply) {
  std::lock_guard lock(mutex_);
  reply_ = std::move(reply);
}

std::vector<HttpTestRequest> HttpTestServer::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

void HttpTestServer::run() {
  std::vector<Connection> conns;
  for (;;) {
    std::vector<pollfd> fds{{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    int wait_ms = -1;
    const auto now = Clock::now();
    for (const auto& c : conns) {
      // A connection with an answer waiting reads nothing more until it is sent.
      fds.push_back({c.fd, static_cast<short>(c.answer_at ? 0 : POLLIN), 0});
      if (c.answer_at) {
        const auto ms = std::chrono::ceil<std::chrono::milliseconds>(*c.answer_at - now).count();
        const int left = static_cast<int>(std::max<long long>(0, ms));
        wait_ms = wait_ms < 0 ? left : std::min(wait_ms, left);
      }
    }
    if (poll(fds.data(), fds.size(), wait_ms) < 0 && errno != EINTR) break;
    if (fds[0].revents != 0) break;
    if ((fds[1].revents & POLLIN) != 0) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) {
        conns.push_back({fd, {}, std::nullopt, {}});
        ++connections_;
      }
    }
    for (std::size_t i = 0; i < conns.size(); ++i) {
      auto& c = conns[i];
      bool closed = false;
      const short ready = i + 2 < fds.size() ? fds[i + 2].revents : 0;
      if ((ready & (POLLHUP | POLLERR)) != 0 && c.answer_at) closed = true;  // gone before its answer
      if (ready != 0 && !c.answer_at) {
        char buf[65536];
        const ssize_t n = read(c.fd, buf, sizeof buf);
        if (n <= 0)
          closed = true;
        else
          c.in.append(buf, static_cast<std::size_t>(n));
      }
      if (!closed && c.answer_at && Clock::now() >= *c.answer_at) {
        write_all(c.fd, c.answer);
        c.answer_at.reset();
      }
      while (!closed && !c.answer_at) {
        auto request = take_request(c.in);
        if (!request) break;
        HttpTestReply reply;
        {
          std::lock_guard lock(mutex_);
          requests_.push_back(std::move(*request));
          reply = reply_;
        }
        if (reply.delay.count() > 0) {
          c.answer = render(reply);
          c.answer_at = Clock::now() + reply.delay;
        } else {
          write_all(c.fd, render(reply));
        }
      }
      if (closed) {
        close(c.fd);
        c.fd = -1;
      }
    }
    conns.erase(std::remove_if(conns.begin(), conns.end(), [](const Connection& c) { return c.fd < 0; }), conns.end());
  }
  for (auto& c : conns) close(c.fd);
}

}  // namespace outpost::test
