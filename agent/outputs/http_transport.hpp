// A batch as one HTTP POST, driven by libcurl's multi interface on the
// reactor: curl's sockets are watched by the loop and its one timer is a
// reactor timer, so a slow or dead collector never blocks a probe. Adds the
// batch id header, a bearer token read from a file (re-read when it
// changes), gzip, TLS with a CA file, a per-request timeout, and turns what
// happened (status, refusal, timeout, certificate) into a SendResult.
// Leaves to others: what the body holds (the encoders and `body`), retry
// timing and the spool (the output above).
#pragma once

#include <chrono>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "batch.hpp"
#include "reactor.hpp"
#include "transport.hpp"

namespace outpost {

struct HttpOptions {
  std::string url;
  Duration timeout = std::chrono::seconds(10);  // the whole request
  std::string ca_file;                          // PEM CAs for https, instead of the system's
  std::string token_file;                       // bearer token, read from this file; never logged
  bool gzip = false;                            // Content-Encoding: gzip on the body (zlib)
  std::string content_type;                     // e.g. application/x-ndjson, text/plain; charset=utf-8
  std::vector<std::string> headers;             // extra "Name: value" headers (e.g. remote write's)
  // Turns a batch's payload into the request body (e.g. snappy for remote
  // write); identity when empty. What it throws makes the batch rejected.
  std::function<std::string(const Batch&)> body;
};

// How a finished request is judged; apart from the transport so it can be
// read (and tested) on its own. `status` is 0 when no response came.
SendOutcome http_outcome(int status);

// Gzip (RFC 1952) of `data` with zlib; throws std::runtime_error if zlib fails.
std::string gzip_compress(const std::string& data);

class HttpTransport final : public Transport {
 public:
  // Throws std::runtime_error with a clear message when the URL is not http(s),
  // the token file cannot be read, or curl cannot be set up.
  HttpTransport(Reactor& reactor, HttpOptions options);
  ~HttpTransport() override;
  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;

  // A send while another is under way cancels that one first.
  void send(const Batch& batch, Done done) override;
  void cancel() override;

 private:
  struct Curl;  // the curl handles, what they point into, and curl's callbacks
  // curl's callbacks, forwarded from the static trampolines.
  void on_curl_socket(int fd, int what);
  void on_curl_timer(long timeout_ms);
  // A watched socket is ready, or curl's timer is due: let curl run, then
  // collect what finished.
  void drive(int fd, int flags);
  void collect();
  // Finishes the send under way with `result`; nothing of `this` is touched
  // after `done` runs (it may start the next send, or destroy the transport).
  void finish(SendResult result);
  // Finishes on the loop's next turn (a send that failed before curl saw it).
  void finish_later(SendResult result);
  // The current token, re-read when the file's mtime or size changed; "" and
  // `error` set when it cannot be read.
  bool refresh_token(std::string& error);
  SendResult judge(int curl_code);
  void stop_request();

  Reactor& reactor_;
  HttpOptions options_;
  std::string endpoint_;  // host:port of the URL, for details
  std::string token_;
  std::timespec token_mtime_{};
  long long token_size_ = -1;
  std::unique_ptr<Curl> curl_;
  bool busy_ = false;
  bool closing_ = false;
  Done done_;
  Reactor::TimerId curl_timer_ = 0;
  Reactor::TimerId deferred_ = 0;
  std::vector<int> watched_;
};

}  // namespace outpost
