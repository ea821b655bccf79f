#include "nats_transport.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "shared_library.hpp"

namespace outpost {

namespace {

// The functions of OUTPOST_NATS_SONAME this file calls, loaded on first use
// (shared_library.hpp); the defines after the table send every call there.
#define OUTPOST_NATS_FUNCTIONS(X) \
  X(jsCtx_Destroy) \
  X(jsOptions_Init) \
  X(jsPubAck_Destroy) \
  X(jsPubOptions_Init) \
  X(jsStreamConfig_Init) \
  X(jsStreamInfo_Destroy) \
  X(js_AddStream) \
  X(js_GetStreamInfo) \
  X(js_PublishMsg) \
  X(natsConnection_Close) \
  X(natsConnection_Connect) \
  X(natsConnection_Destroy) \
  X(natsConnection_GetMaxPayload) \
  X(natsConnection_IsClosed) \
  X(natsConnection_JetStream) \
  X(natsMsgHeader_Set) \
  X(natsMsg_Create) \
  X(natsMsg_Destroy) \
  X(natsOptions_Create) \
  X(natsOptions_Destroy) \
  X(natsOptions_SetAllowReconnect) \
  X(natsOptions_SetName) \
  X(natsOptions_SetTimeout) \
  X(natsOptions_SetToken) \
  X(natsOptions_SetURL) \
  X(natsStatus_GetText) \
  X(nats_GetLastError) \
  X(nats_ReleaseThreadMemory)

OUTPOST_SHARED_API(NatsApi, nats_api, OUTPOST_NATS_SONAME, OUTPOST_NATS_FUNCTIONS)

#define jsCtx_Destroy nats_api().jsCtx_Destroy
#define jsOptions_Init nats_api().jsOptions_Init
#define jsPubAck_Destroy nats_api().jsPubAck_Destroy
#define jsPubOptions_Init nats_api().jsPubOptions_Init
#define jsStreamConfig_Init nats_api().jsStreamConfig_Init
#define jsStreamInfo_Destroy nats_api().jsStreamInfo_Destroy
#define js_AddStream nats_api().js_AddStream
#define js_GetStreamInfo nats_api().js_GetStreamInfo
#define js_PublishMsg nats_api().js_PublishMsg
#define natsConnection_Close nats_api().natsConnection_Close
#define natsConnection_Connect nats_api().natsConnection_Connect
#define natsConnection_Destroy nats_api().natsConnection_Destroy
#define natsConnection_GetMaxPayload nats_api().natsConnection_GetMaxPayload
#define natsConnection_IsClosed nats_api().natsConnection_IsClosed
#define natsConnection_JetStream nats_api().natsConnection_JetStream
#define natsMsgHeader_Set nats_api().natsMsgHeader_Set
#define natsMsg_Create nats_api().natsMsg_Create
#define natsMsg_Destroy nats_api().natsMsg_Destroy
#define natsOptions_Create nats_api().natsOptions_Create
#define natsOptions_Destroy nats_api().natsOptions_Destroy
#define natsOptions_SetAllowReconnect nats_api().natsOptions_SetAllowReconnect
#define natsOptions_SetName nats_api().natsOptions_SetName
#define natsOptions_SetTimeout nats_api().natsOptions_SetTimeout
#define natsOptions_SetToken nats_api().natsOptions_SetToken
#define natsOptions_SetURL nats_api().natsOptions_SetURL
#define natsStatus_GetText nats_api().natsStatus_GetText
#define nats_GetLastError nats_api().nats_GetLastError
#define nats_ReleaseThreadMemory nats_api().nats_ReleaseThreadMemory


using Deadline = std::chrono::steady_clock::time_point;

std::int64_t ms_left(Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return std::max<std::int64_t>(left.count(), 0);
}

// "10s", "0.5s"
std::string seconds_text(Duration d) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  std::ostringstream out;
  out << static_cast<double>(ms) / 1000.0 << "s";
  return out.str();
}

std::string_view class_token(RecordClass cls) {
  switch (cls) {
    case RecordClass::probe: return "probe";
    case RecordClass::series: return "series";
    case RecordClass::event: return "event";
  }
  return "probe";
}

bool plain_token(std::string_view token) {
  if (token.empty()) return false;
  return std::none_of(token.begin(), token.end(), [](char c) {
    return c == '.' || c == '*' || c == '>' || c == '/' || c == '\\' || static_cast<unsigned char>(c) <= ' ' ||
           c == 0x7f;
  });
}

bool plain_subject(std::string_view subject) {
  std::size_t start = 0;
  while (true) {
    auto dot = subject.find('.', start);
    if (!plain_token(subject.substr(start, dot == std::string_view::npos ? dot : dot - start))) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// libnats's last error for this thread, without its "(file.c:123): " prefix.
std::string last_nats_error(natsStatus s) {
  const char* text = nats_GetLastError(nullptr);
  std::string out = text != nullptr ? text : "";
  if (!out.empty() && out.front() == '(') {
    if (auto end = out.find("): "); end != std::string::npos) out.erase(0, end + 3);
  }
  if (out.empty()) out = natsStatus_GetText(s);
  return out;
}

// Host and port of the first server in a NATS URL list ("nats://u:p@h:4222,...").
std::pair<std::string, std::string> first_host_port(const std::string& url) {
  std::string rest = url.substr(0, url.find(','));
  if (auto scheme = rest.find("://"); scheme != std::string::npos) rest.erase(0, scheme + 3);
  if (auto at = rest.rfind('@'); at != std::string::npos) rest.erase(0, at + 1);
  if (auto slash = rest.find('/'); slash != std::string::npos) rest.erase(slash);
  std::string host = rest, port = "4222";
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    host = rest.substr(1, close == std::string::npos ? std::string::npos : close - 1);
    if (close != std::string::npos && close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
  } else if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  return {host, port};
}

// libnats says only "no server available" when a connection fails; a plain
// TCP connection to the same place says why ("connection refused", ...).
std::string why_no_server(const std::string& url, Deadline deadline, Duration timeout) {
  auto [host, port] = first_host_port(url);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return "cannot resolve " + host + ": " + gai_strerror(rc);
  }
  std::string why = "no answer within " + seconds_text(timeout);
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int err = 0;
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        if (poll(&p, 1, static_cast<int>(ms_left(deadline))) == 1) {
          socklen_t len = sizeof err;
          getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        } else {
          err = ETIMEDOUT;
        }
      }
    }
    close(fd);
    if (err == 0) {
      why = "no NATS handshake within " + seconds_text(timeout);
      break;
    }
    why = err == ETIMEDOUT ? "no answer within " + seconds_text(timeout) : std::strerror(err);
    std::transform(why.begin(), why.end(), why.begin(), [](unsigned char c) { return std::tolower(c); });
    if (ms_left(deadline) == 0) break;
  }
  freeaddrinfo(found);
  return why;
}

SendResult retry(std::string detail) { return {SendOutcome::retry, 0, "nats: " + std::move(detail)}; }

}  // namespace

std::string nats_subject(const NatsOptions& options, RecordClass cls) {
  return options.subject + "." + options.agent + "." + std::string(class_token(cls));
}

std::string nats_redacted_url(const std::string& url) {
  std::string out;
  std::size_t start = 0;
  while (start <= url.size()) {
    auto comma = url.find(',', start);
    std::string one = url.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    auto scheme = one.find("://");
    auto host_start = scheme == std::string::npos ? 0 : scheme + 3;
    if (auto at = one.rfind('@'); at != std::string::npos && at >= host_start) {
      one.replace(host_start, at - host_start, "***");
    }
    if (!out.empty()) out += ',';
    out += one;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// One connection and its JetStream context, used by the worker thread only
// (close() aside, which any thread may call to end a wait at once).
class NatsTransport::Session {
 public:
  explicit Session(const NatsOptions& options) : options_(options), shown_url_(nats_redacted_url(options.url)) {}
  ~Session() { drop(); }

  SendResult send(const Job& job, Deadline deadline) {
    if (conn_ != nullptr && natsConnection_IsClosed(conn_)) drop();
    if (conn_ == nullptr) {
      if (auto failed = connect(deadline)) return *failed;
    }
    if (!stream_ready_) {
      if (auto failed = ensure_stream(deadline)) return *failed;
    }
    return publish(job, deadline);
  }

  // Closes the connection: a publish waiting for its ack returns now.
  void close() {
    std::lock_guard lock(conn_mutex_);
    if (conn_ != nullptr) natsConnection_Close(conn_);
  }

 private:
  std::optional<SendResult> connect(Deadline deadline) {
    std::string token;
    if (!options_.token_file.empty()) {
      std::ifstream in(options_.token_file);
      if (!in) return retry("cannot read the token file " + options_.token_file + ": " + std::strerror(errno));
      std::getline(in, token, '\0');
      auto not_space = [](unsigned char c) { return !std::isspace(c); };
      token.erase(token.begin(), std::find_if(token.begin(), token.end(), not_space));
      token.erase(std::find_if(token.rbegin(), token.rend(), not_space).base(), token.end());
      if (token.empty()) return retry("the token file " + options_.token_file + " is empty");
    }
    natsOptions* opts = nullptr;
    natsStatus s = natsOptions_Create(&opts);
    const std::string name = "outpost " + options_.agent;
    if (s == NATS_OK) s = natsOptions_SetURL(opts, options_.url.c_str());
    if (s == NATS_OK) s = natsOptions_SetName(opts, name.c_str());
    if (s == NATS_OK) s = natsOptions_SetTimeout(opts, std::max<std::int64_t>(ms_left(deadline), 1));
    // A lost connection fails the send under way; the output retries it, and
    // the next send connects afresh.
    if (s == NATS_OK) s = natsOptions_SetAllowReconnect(opts, false);
    if (s == NATS_OK && !token.empty()) s = natsOptions_SetToken(opts, token.c_str());
    std::fill(token.begin(), token.end(), '\0');
    natsConnection* conn = nullptr;
    if (s == NATS_OK) s = natsConnection_Connect(&conn, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK) {
      std::string why = s == NATS_NO_SERVER ? why_no_server(options_.url, deadline, options_.timeout)
                        : s == NATS_TIMEOUT   ? "no answer within " + seconds_text(options_.timeout)
                                              : last_nats_error(s);
      return retry(why + " (" + shown_url_ + ")");
    }
    jsOptions js_opts;
    jsOptions_Init(&js_opts);
    jsCtx* js = nullptr;
    if (s = natsConnection_JetStream(&js, conn, &js_opts); s != NATS_OK) {
      natsConnection_Destroy(conn);
      return retry(last_nats_error(s) + " (" + shown_url_ + ")");
    }
    {
      std::lock_guard lock(conn_mutex_);
      conn_ = conn;
    }
    js_ = js;
    spdlog::info("nats: connected to {}", shown_url_);
    return std::nullopt;
  }

  // The stream, created when missing; once per connection.
  std::optional<SendResult> ensure_stream(Deadline deadline) {
    jsOptions opts;
    jsOptions_Init(&opts);
    opts.Wait = std::max<std::int64_t>(ms_left(deadline), 1);
    jsStreamInfo* info = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_GetStreamInfo(&info, js_, options_.stream.c_str(), &opts, &jerr);
    if (s == NATS_OK) {
      if (info->Config != nullptr && info->Config->Duplicates < std::chrono::nanoseconds(kNatsDuplicateWindow).count()) {
        spdlog::warn("nats: stream {} drops duplicates for {} only; a batch resent later is stored twice",
                     options_.stream, seconds_text(std::chrono::nanoseconds(info->Config->Duplicates)));
      }
      jsStreamInfo_Destroy(info);
      stream_ready_ = true;
      return std::nullopt;
    }
    if (s != NATS_NOT_FOUND) return stream_failure(s, "looking up stream " + options_.stream);

    const std::string subjects = options_.subject + ".>";
    const char* subject_list[] = {subjects.c_str()};
    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    config.Name = options_.stream.c_str();
    config.Subjects = subject_list;
    config.SubjectsLen = 1;
    config.Storage = js_FileStorage;
    config.Duplicates = std::chrono::nanoseconds(kNatsDuplicateWindow).count();
    opts.Wait = std::max<std::int64_t>(ms_left(deadline), 1);
    s = js_AddStream(&info, js_, &config, &opts, &jerr);
    if (info != nullptr) jsStreamInfo_Destroy(info);
    if (s != NATS_OK && jerr != JSStreamNameExistErr) {
      return stream_failure(s, "creating stream " + options_.stream + " for " + subjects);
    }
    if (s == NATS_OK) spdlog::info("nats: created stream {} for {}", options_.stream, subjects);
    stream_ready_ = true;
    return std::nullopt;
  }

  SendResult stream_failure(natsStatus s, const std::string& what) {
    std::string why = s == NATS_NO_RESPONDERS ? "JetStream is not enabled on the server"
                      : s == NATS_TIMEOUT     ? "no answer within " + seconds_text(options_.timeout)
                                              : last_nats_error(s);
    if (s != NATS_ERR) drop();
    return retry(what + ": " + why + " (" + shown_url_ + ")");
  }

  SendResult publish(const Job& job, Deadline deadline) {
    natsMsg* msg = nullptr;
    natsStatus s =
        natsMsg_Create(&msg, job.subject.c_str(), nullptr, job.payload.data(), static_cast<int>(job.payload.size()));
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, "Nats-Msg-Id", job.id.c_str());
    if (s != NATS_OK) {
      natsMsg_Destroy(msg);
      return retry(last_nats_error(s));
    }
    jsPubOptions opts;
    jsPubOptions_Init(&opts);
    opts.MaxWait = std::max<std::int64_t>(ms_left(deadline), 1);
    jsPubAck* ack = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    s = js_PublishMsg(&ack, js_, msg, &opts, &jerr);
    natsMsg_Destroy(msg);
    if (s == NATS_OK) {
      SendResult done{SendOutcome::delivered, 0,
                      std::string("nats: ") + (ack->Duplicate ? "duplicate, " : "") + "stream " + ack->Stream +
                          " seq " + std::to_string(ack->Sequence)};
      jsPubAck_Destroy(ack);
      return done;
    }
    const std::string where = " (" + job.subject + ", " + shown_url_ + ")";
    switch (s) {
      case NATS_TIMEOUT:
        // Maybe a slow stream, maybe a connection that died silently: start afresh.
        drop();
        return retry("no ack within " + seconds_text(options_.timeout) + where);
      case NATS_NO_RESPONDERS:
        stream_ready_ = false;  // gone, or not listening on this subject: look again next time
        return retry("no stream listens on " + job.subject + " (" + shown_url_ + ")");
      case NATS_MAX_PAYLOAD:
        return {SendOutcome::rejected, 0,
                "nats: batch of " + std::to_string(job.payload.size()) + " bytes exceeds the server's maximum payload of " +
                    std::to_string(natsConnection_GetMaxPayload(conn_)) + " bytes" + where};
      case NATS_ERR:
        if (jerr == JSStreamMessageExceedsMaximumErr) {
          return {SendOutcome::rejected, 0, "nats: " + last_nats_error(s) + where};
        }
        if (jerr == JSStreamNotFoundErr) stream_ready_ = false;
        return retry(last_nats_error(s) + where);
      default:
        if (natsConnection_IsClosed(conn_) || s == NATS_CONNECTION_CLOSED || s == NATS_CONNECTION_DISCONNECTED ||
            s == NATS_IO_ERROR || s == NATS_STALE_CONNECTION) {
          drop();
          return retry("connection lost" + where);
        }
        return retry(last_nats_error(s) + where);
    }
  }

  void drop() {
    if (js_ != nullptr) jsCtx_Destroy(js_);
    js_ = nullptr;
    natsConnection* conn = nullptr;
    {
      std::lock_guard lock(conn_mutex_);
      std::swap(conn, conn_);
    }
    if (conn != nullptr) natsConnection_Destroy(conn);
    stream_ready_ = false;
  }

  const NatsOptions& options_;
  const std::string shown_url_;
  std::mutex conn_mutex_;  // conn_ against close() from another thread
  natsConnection* conn_ = nullptr;
  jsCtx* js_ = nullptr;
  bool stream_ready_ = false;
};

NatsTransport::NatsTransport(Reactor& reactor, NatsOptions options)
    : reactor_(reactor), options_(std::move(options)) {
  if (!plain_token(options_.stream)) throw std::invalid_argument("nats: bad stream name '" + options_.stream + "'");
  if (!plain_subject(options_.subject)) throw std::invalid_argument("nats: bad subject '" + options_.subject + "'");
  if (!plain_token(options_.agent)) {
    throw std::invalid_argument("nats: the agent id '" + options_.agent + "' is not a subject token");
  }
  if (options_.url.empty()) throw std::invalid_argument("nats: no URL");
  // libnats is loaded here, where failing is an error the caller reports,
  // not on the worker thread.
  nats_api();
  eventfd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (eventfd_ < 0) throw std::system_error(errno, std::generic_category(), "nats: eventfd");
  reactor_.watch(eventfd_, EPOLLIN, [this](std::uint32_t) { on_completions(); });
  worker_ = std::thread([this] { work(); });
}

NatsTransport::~NatsTransport() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    if (session_ != nullptr) session_->close();
  }
  wake_.notify_all();
  worker_.join();
  reactor_.unwatch(eventfd_);
  ::close(eventfd_);
}

void NatsTransport::send(const Batch& batch, Done done) {
  done_ = std::move(done);
  Job job{++generation_, batch.id, nats_subject(options_, batch.cls), batch.payload};
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  wake_.notify_all();
}

void NatsTransport::cancel() {
  done_ = nullptr;
  ++generation_;
}

void NatsTransport::work() {
  // Signals belong to the loop's thread (and libnats's threads, started
  // from here, inherit this mask); faults stay deliverable.
  sigset_t all;
  sigfillset(&all);
  for (int fault : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP}) sigdelset(&all, fault);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);

  {
    Session session(options_);
    {
      std::lock_guard lock(mutex_);
      session_ = &session;
    }
    serve(session);
    std::lock_guard lock(mutex_);
    session_ = nullptr;
  }  // the session's connection closes here
  nats_ReleaseThreadMemory();
}

void NatsTransport::serve(Session& session) {
  while (true) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    Deadline deadline = std::chrono::steady_clock::now() + options_.timeout;
    SendResult result = session.send(job, deadline);
    {
      std::lock_guard lock(mutex_);
      completions_.push_back({job.generation, std::move(result)});
    }
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(eventfd_, &one, sizeof one);
  }
}

void NatsTransport::on_completions() {
  std::uint64_t count = 0;
  [[maybe_unused]] auto n = ::read(eventfd_, &count, sizeof count);
  std::deque<Completion> ready;
  {
    std::lock_guard lock(mutex_);
    ready.swap(completions_);
  }
  for (auto& c : ready) {
    if (c.generation != generation_ || !done_) continue;  // cancelled or replaced
    Done done = std::move(done_);
    done_ = nullptr;
    // Last: done may send again, or destroy this transport.
    done(std::move(c.result));
    return;
  }
}

}  // namespace outpost
