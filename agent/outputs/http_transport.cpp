#include "http_transport.hpp"

#include <curl/curl.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "shared_library.hpp"

namespace outpost {

namespace {

// The functions of OUTPOST_CURL_SONAME this file calls, loaded on first use
// (shared_library.hpp); the defines after the table send every call there.
#define OUTPOST_CURL_FUNCTIONS(X) \
  X(curl_easy_cleanup) \
  X(curl_easy_getinfo) \
  X(curl_easy_init) \
  X(curl_easy_setopt) \
  X(curl_easy_strerror) \
  X(curl_free) \
  X(curl_global_init) \
  X(curl_multi_add_handle) \
  X(curl_multi_cleanup) \
  X(curl_multi_info_read) \
  X(curl_multi_init) \
  X(curl_multi_remove_handle) \
  X(curl_multi_setopt) \
  X(curl_multi_socket_action) \
  X(curl_multi_strerror) \
  X(curl_slist_append) \
  X(curl_slist_free_all) \
  X(curl_url) \
  X(curl_url_cleanup) \
  X(curl_url_get) \
  X(curl_url_set)

OUTPOST_SHARED_API(CurlApi, curl_api, OUTPOST_CURL_SONAME, OUTPOST_CURL_FUNCTIONS)

// curl.h's own macros for these (they count the arguments) make way.
#undef curl_easy_getinfo
#undef curl_easy_setopt
#undef curl_multi_setopt
#define curl_easy_cleanup curl_api().curl_easy_cleanup
#define curl_easy_getinfo curl_api().curl_easy_getinfo
#define curl_easy_init curl_api().curl_easy_init
#define curl_easy_setopt curl_api().curl_easy_setopt
#define curl_easy_strerror curl_api().curl_easy_strerror
#define curl_free curl_api().curl_free
#define curl_global_init curl_api().curl_global_init
#define curl_multi_add_handle curl_api().curl_multi_add_handle
#define curl_multi_cleanup curl_api().curl_multi_cleanup
#define curl_multi_info_read curl_api().curl_multi_info_read
#define curl_multi_init curl_api().curl_multi_init
#define curl_multi_remove_handle curl_api().curl_multi_remove_handle
#define curl_multi_setopt curl_api().curl_multi_setopt
#define curl_multi_socket_action curl_api().curl_multi_socket_action
#define curl_multi_strerror curl_api().curl_multi_strerror
#define curl_slist_append curl_api().curl_slist_append
#define curl_slist_free_all curl_api().curl_slist_free_all
#define curl_url curl_api().curl_url
#define curl_url_cleanup curl_api().curl_url_cleanup
#define curl_url_get curl_api().curl_url_get
#define curl_url_set curl_api().curl_url_set


constexpr std::size_t kResponseKept = 4096;  // bytes of a response body kept for the detail
constexpr std::size_t kDetailBody = 200;     // bytes of it that go into the detail

void global_init() {
  static const CURLcode code = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (code != CURLE_OK) throw std::runtime_error(std::string("curl: cannot initialise: ") + curl_easy_strerror(code));
}

// Printable ASCII kept, line breaks and tabs become spaces, any other byte '?'.
std::string printable(std::string_view text, std::size_t max) {
  std::string out;
  for (char c : text.substr(0, max)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f)
      out += c;
    else if (c == '\n' || c == '\r' || c == '\t')
      out += ' ';
    else
      out += '?';
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::string seconds_text(Duration d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

bool tls_failure(CURLcode code) {
  switch (code) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_USE_SSL_FAILED:
      return true;
    default:
      return false;
  }
}

std::string trim_right(std::string s) {
  while (!s.empty() && std::strchr(" \t\r\n\v\f", s.back()) != nullptr) s.pop_back();
  return s;
}

}  // namespace

SendOutcome http_outcome(int status) {
  if (status >= 200 && status < 300) return SendOutcome::delivered;
  if (status == 408 || status == 425 || status == 429 || status >= 500) return SendOutcome::retry;
  // A redirect is never followed and will not change by itself: as wrong as a 4xx.
  if (status >= 300 && status < 500) return SendOutcome::rejected;
  return SendOutcome::retry;  // no response, or only an informational one
}

std::string gzip_compress(const std::string& data) {
  z_stream z{};
  // windowBits 15 + 16: the gzip wrapper rather than zlib's.
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("gzip: cannot initialise zlib");
  std::string out(deflateBound(&z, data.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  const auto written = z.total_out;
  deflateEnd(&z);
  if (rc != Z_STREAM_END) throw std::runtime_error("gzip: zlib could not compress the body");
  out.resize(written);
  return out;
}

// The handles live here so that the header needs no curl.
struct HttpTransport::Curl {
  CURLM* multi = nullptr;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  bool added = false;     // the easy handle is in the multi handle
  std::string body;       // what CURLOPT_POSTFIELDS points at during a request
  std::string response;   // the first kResponseKept bytes of the answer
  char error[CURL_ERROR_SIZE] = {};

  ~Curl() {
    if (added) curl_multi_remove_handle(multi, easy);
    if (easy != nullptr) curl_easy_cleanup(easy);
    if (multi != nullptr) curl_multi_cleanup(multi);
    curl_slist_free_all(headers);
  }

  static int on_socket(CURL*, curl_socket_t fd, int what, void* self, void*) {
    static_cast<HttpTransport*>(self)->on_curl_socket(fd, what);
    return 0;
  }
  static int on_timer(CURLM*, long timeout_ms, void* self) {
    static_cast<HttpTransport*>(self)->on_curl_timer(timeout_ms);
    return 0;
  }
  static std::size_t on_write(char* data, std::size_t size, std::size_t n, void* self) {
    auto& response = static_cast<Curl*>(self)->response;
    const std::size_t bytes = size * n;
    if (response.size() < kResponseKept) response.append(data, std::min(bytes, kResponseKept - response.size()));
    return bytes;  // the rest is read and dropped
  }

  template <typename T>
  void set(CURLoption option, T value, const char* what) {
    const CURLcode code = curl_easy_setopt(easy, option, value);
    if (code != CURLE_OK) throw std::runtime_error(std::string("curl: cannot set ") + what + ": " + curl_easy_strerror(code));
  }
};

HttpTransport::HttpTransport(Reactor& reactor, HttpOptions options)
    : reactor_(reactor), options_(std::move(options)) {
  global_init();

  // The URL: http or https, and host:port for the details.
  CURLU* url = curl_url();
  if (url == nullptr) throw std::runtime_error("curl: cannot allocate a URL");
  std::string scheme;
  const CURLUcode parsed = curl_url_set(url, CURLUPART_URL, options_.url.c_str(), 0);
  if (parsed == CURLUE_OK) {
    char* part = nullptr;
    if (curl_url_get(url, CURLUPART_SCHEME, &part, 0) == CURLUE_OK) scheme = part;
    curl_free(part);
    part = nullptr;
    if (curl_url_get(url, CURLUPART_HOST, &part, 0) == CURLUE_OK) endpoint_ = part;
    curl_free(part);
    part = nullptr;
    if (curl_url_get(url, CURLUPART_PORT, &part, CURLU_DEFAULT_PORT) == CURLUE_OK) endpoint_ += std::string(":") + part;
    curl_free(part);
  }
  curl_url_cleanup(url);
  if (parsed != CURLUE_OK) throw std::runtime_error("HTTP output: bad URL \"" + options_.url + "\"");
  if (scheme != "http" && scheme != "https")
    throw std::runtime_error("HTTP output: URL \"" + options_.url + "\" is neither http nor https");

  if (!options_.token_file.empty()) {
    std::string error;
    if (!refresh_token(error)) throw std::runtime_error("HTTP output: " + error);
  }
  if (!options_.ca_file.empty() && access(options_.ca_file.c_str(), R_OK) != 0)
    throw std::runtime_error("HTTP output: CA file " + options_.ca_file + ": " + std::strerror(errno));

  curl_ = std::make_unique<Curl>();
  auto& c = *curl_;
  c.multi = curl_multi_init();
  c.easy = curl_easy_init();
  if (c.multi == nullptr || c.easy == nullptr) throw std::runtime_error("curl: cannot create handles");
  curl_multi_setopt(c.multi, CURLMOPT_SOCKETFUNCTION, &Curl::on_socket);
  curl_multi_setopt(c.multi, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(c.multi, CURLMOPT_TIMERFUNCTION, &Curl::on_timer);
  curl_multi_setopt(c.multi, CURLMOPT_TIMERDATA, this);

  const long timeout_ms =
      std::max<long>(1, static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(options_.timeout).count()));
  c.set(CURLOPT_URL, options_.url.c_str(), "the URL");
  c.set(CURLOPT_PROTOCOLS_STR, "http,https", "the protocols");
  c.set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https", "the redirect protocols");
  c.set(CURLOPT_FOLLOWLOCATION, 0L, "no redirects");
  c.set(CURLOPT_POST, 1L, "POST");
  c.set(CURLOPT_NOSIGNAL, 1L, "no signals");
  c.set(CURLOPT_TIMEOUT_MS, timeout_ms, "the timeout");
  c.set(CURLOPT_CONNECTTIMEOUT_MS, timeout_ms, "the connect timeout");
  c.set(CURLOPT_SSL_VERIFYPEER, 1L, "peer verification");
  c.set(CURLOPT_SSL_VERIFYHOST, 2L, "host verification");
  if (!options_.ca_file.empty()) {
    c.set(CURLOPT_CAINFO, options_.ca_file.c_str(), "the CA file");
    c.set(CURLOPT_CAPATH, static_cast<const char*>(nullptr), "no CA directory");  // only this file's CAs
  }
  c.set(CURLOPT_WRITEFUNCTION, &Curl::on_write, "the response writer");
  c.set(CURLOPT_WRITEDATA, &c, "the response buffer");
  c.set(CURLOPT_ERRORBUFFER, c.error, "the error buffer");
  c.set(CURLOPT_USERAGENT, "outpost", "the user agent");
  c.set(CURLOPT_TCP_KEEPALIVE, 1L, "TCP keepalive");
}

HttpTransport::~HttpTransport() {
  closing_ = true;
  if (deferred_ != 0) reactor_.cancel(deferred_);
  if (curl_timer_ != 0) reactor_.cancel(curl_timer_);
  for (int fd : watched_) reactor_.unwatch(fd);
  watched_.clear();
  curl_.reset();  // while the members its callbacks touch are still here
}

bool HttpTransport::refresh_token(std::string& error) {
  const std::string& path = options_.token_file;
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    error = "token file " + path + ": " + std::strerror(errno);
    return false;
  }
  if (!token_.empty() && st.st_mtim.tv_sec == token_mtime_.tv_sec && st.st_mtim.tv_nsec == token_mtime_.tv_nsec &&
      st.st_size == token_size_)
    return true;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "token file " + path + ": " + std::strerror(errno);
    return false;
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::string token = trim_right(text.str());
  if (token.empty()) {
    error = "token file " + path + " is empty";
    return false;
  }
  if (token.find_first_of("\r\n") != std::string::npos) {
    error = "token file " + path + " holds more than one line";
    return false;
  }
  token_ = std::move(token);
  token_mtime_ = st.st_mtim;
  token_size_ = st.st_size;
  return true;
}

void HttpTransport::send(const Batch& batch, Done done) {
  if (busy_) cancel();  // one send at a time: a new one replaces the old
  busy_ = true;
  done_ = std::move(done);

  if (!options_.token_file.empty()) {
    std::string error;
    if (!refresh_token(error)) return finish_later({SendOutcome::retry, 0, error});
  }
  auto& c = *curl_;
  try {
    c.body = options_.body ? options_.body(batch) : batch.payload;
    if (options_.gzip) c.body = gzip_compress(c.body);
  } catch (const std::exception& e) {
    return finish_later({SendOutcome::rejected, 0, std::string("cannot encode the body: ") + e.what()});
  }
  c.response.clear();

  curl_slist_free_all(c.headers);
  c.headers = nullptr;
  std::vector<std::string> lines;
  lines.push_back("X-Outpost-Batch-Id: " + batch.id);
  if (!options_.content_type.empty()) lines.push_back("Content-Type: " + options_.content_type);
  if (options_.gzip) lines.push_back("Content-Encoding: gzip");
  lines.push_back("Expect:");  // no 100-continue round trip before the body
  for (const auto& h : options_.headers) lines.push_back(h);
  if (!token_.empty()) lines.push_back("Authorization: Bearer " + token_);
  for (const auto& line : lines) {
    curl_slist* next = curl_slist_append(c.headers, line.c_str());
    if (next == nullptr) return finish_later({SendOutcome::retry, 0, "curl: out of memory for the headers"});
    c.headers = next;
  }
  curl_easy_setopt(c.easy, CURLOPT_HTTPHEADER, c.headers);
  curl_easy_setopt(c.easy, CURLOPT_POSTFIELDS, c.body.data());
  curl_easy_setopt(c.easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(c.body.size()));

  // curl starts on its timer (armed from inside add_handle, run by the
  // loop), so nothing completes inside send().
  const CURLMcode code = curl_multi_add_handle(c.multi, c.easy);
  if (code != CURLM_OK)
    return finish_later({SendOutcome::retry, 0, std::string("curl: ") + curl_multi_strerror(code)});
  c.added = true;
}

void HttpTransport::cancel() {
  if (!busy_) return;
  done_ = nullptr;
  stop_request();
}

void HttpTransport::stop_request() {
  busy_ = false;
  if (deferred_ != 0) {
    reactor_.cancel(deferred_);
    deferred_ = 0;
  }
  auto& c = *curl_;
  if (c.added) {
    c.added = false;
    curl_multi_remove_handle(c.multi, c.easy);
  }
}

void HttpTransport::finish(SendResult result) {
  stop_request();
  // A token echoed back by a collector stays out of the detail all the same.
  if (token_.size() >= 4) {
    for (auto at = result.detail.find(token_); at != std::string::npos; at = result.detail.find(token_, at))
      result.detail.replace(at, token_.size(), "<token>");
  }
  Done done = std::move(done_);
  done_ = nullptr;
  if (done) done(std::move(result));
  // `this` may be gone here.
}

void HttpTransport::finish_later(SendResult result) {
  deferred_ = reactor_.after(Duration::zero(), [this, result = std::move(result)]() mutable {
    deferred_ = 0;
    finish(std::move(result));
  });
}

void HttpTransport::on_curl_socket(int fd, int what) {
  if (what == CURL_POLL_REMOVE) {
    reactor_.unwatch(fd);
    watched_.erase(std::remove(watched_.begin(), watched_.end(), fd), watched_.end());
    return;
  }
  if (closing_) return;
  std::uint32_t events = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= EPOLLIN;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= EPOLLOUT;
  reactor_.watch(fd, events, [this, fd](std::uint32_t ready) {
    int flags = 0;
    if ((ready & EPOLLIN) != 0) flags |= CURL_CSELECT_IN;
    if ((ready & EPOLLOUT) != 0) flags |= CURL_CSELECT_OUT;
    if ((ready & (EPOLLERR | EPOLLHUP)) != 0) flags |= CURL_CSELECT_ERR;
    drive(fd, flags);
  });
  if (std::find(watched_.begin(), watched_.end(), fd) == watched_.end()) watched_.push_back(fd);
}

void HttpTransport::on_curl_timer(long timeout_ms) {
  if (curl_timer_ != 0) {
    reactor_.cancel(curl_timer_);
    curl_timer_ = 0;
  }
  if (closing_ || timeout_ms < 0) return;
  curl_timer_ = reactor_.after(std::chrono::milliseconds(timeout_ms), [this] {
    curl_timer_ = 0;
    drive(CURL_SOCKET_TIMEOUT, 0);
  });
}

void HttpTransport::drive(int fd, int flags) {
  int running = 0;
  curl_multi_socket_action(curl_->multi, fd, flags, &running);
  collect();
}

void HttpTransport::collect() {
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(curl_->multi, &left)) {
    if (msg->msg != CURLMSG_DONE || msg->easy_handle != curl_->easy || !busy_) continue;
    SendResult result = judge(msg->data.result);
    finish(std::move(result));
    return;  // `this` may be gone
  }
}

SendResult HttpTransport::judge(int curl_code) {
  const auto code = static_cast<CURLcode>(curl_code);
  auto& c = *curl_;
  long status = 0;
  curl_easy_getinfo(c.easy, CURLINFO_RESPONSE_CODE, &status);
  SendResult r;
  r.status = static_cast<int>(status);
  const std::string error = printable(c.error, CURL_ERROR_SIZE);

  if (code == CURLE_OK) {
    r.outcome = http_outcome(r.status);
    r.detail = "HTTP " + std::to_string(status);
    if (status >= 300 && status < 400) {
      char* location = nullptr;
      curl_easy_getinfo(c.easy, CURLINFO_REDIRECT_URL, &location);
      r.detail += location != nullptr ? ": redirects to " + printable(location, kDetailBody) : ": a redirect, not followed";
    } else if (r.outcome != SendOutcome::delivered) {
      const std::string body = printable(c.response, kDetailBody);
      if (!body.empty()) r.detail += ": " + body;
    }
    return r;
  }

  r.outcome = SendOutcome::retry;
  if (code == CURLE_OPERATION_TIMEDOUT) {
    r.detail = "timed out after " + seconds_text(options_.timeout);
  } else if (code == CURLE_COULDNT_CONNECT) {
    long os_errno = 0;
    curl_easy_getinfo(c.easy, CURLINFO_OS_ERRNO, &os_errno);
    if (os_errno == ECONNREFUSED)
      r.detail = "connection refused (" + endpoint_ + ")";
    else if (os_errno != 0)
      r.detail = std::string("cannot connect to ") + endpoint_ + ": " + std::strerror(static_cast<int>(os_errno));
    else
      r.detail = "cannot connect to " + endpoint_ + (error.empty() ? "" : ": " + error);
  } else if (code == CURLE_COULDNT_RESOLVE_HOST) {
    r.detail = "cannot resolve " + endpoint_ + (error.empty() ? "" : ": " + error);
  } else if (tls_failure(code)) {
    r.detail = "TLS: " + (error.empty() ? std::string(curl_easy_strerror(code)) : error);
  } else {
    r.detail = curl_easy_strerror(code);
    if (!error.empty()) r.detail += ": " + error;
  }
  return r;
}

}  // namespace outpost
