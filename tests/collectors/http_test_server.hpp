// A small HTTP/1.1 server on 127.0.0.1 for the transport's tests: its own
// thread, keep-alive connections, every request recorded, and each answered
// with the configured status, body and delay.
// Leaves to others: TLS (the TLS test runs openssl s_server), chunked request
// bodies (the transport never sends them).
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace outpost::test {

struct HttpTestRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct HttpTestReply {
  int status = 204;
  std::string body;
  std::vector<std::string> headers;  // extra "Name: value" lines
  std::chrono::milliseconds delay{0};
};

class HttpTestServer {
 public:
  // Listens on 127.0.0.1 at a port the kernel picks; throws if it cannot.
  explicit HttpTestServer(HttpTestReply reply = {});
  ~HttpTestServer();  // stops the thread and closes every socket
  HttpTestServer(const HttpTestServer&) = delete;
  HttpTestServer& operator=(const HttpTestServer&) = delete;

  int port() const { return port_; }
  std::string url(const std::string& path = "/write") const;
  void set_reply(HttpTestReply reply);
  std::vector<HttpTestRequest> requests() const;
  int connections() const { return connections_; }

 private:
  void run();

  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;
  std::atomic<int> connections_{0};
  mutable std::mutex mutex_;
  HttpTestReply reply_;
  std::vector<HttpTestRequest> requests_;
  std::thread thread_;
};

}  // namespace outpost::test
