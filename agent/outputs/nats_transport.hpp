// A batch as one NATS JetStream message: published to SUBJECT.AGENT.CLASS with
// the batch id as `Nats-Msg-Id`, so the stream's duplicate window drops a
// resend; only the stream's publish ack counts as delivered. libnats blocks,
// so connecting, the stream lookup and the publish run on a thread of the
// transport's own, and each result comes back to the loop through an eventfd.
// Leaves to others: batching, spooling and retry timing (the output above it).
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "reactor.hpp"
#include "transport.hpp"

namespace outpost {

struct NatsOptions {
  std::string url;                  // nats://127.0.0.1:4222 or tls://...
  std::string stream = "OUTPOST";   // created when missing, with subjects SUBJECT.>
  std::string subject = "outpost";  // messages go to SUBJECT.AGENT.CLASS (class: probe, series, event)
  std::string agent;                // the agent id (a subject token)
  Duration timeout = std::chrono::seconds(10);  // for a whole send: connect, stream lookup and ack
  std::string token_file;           // optional auth token read from this file (never logged)
};

// The duplicate window a stream is created with (JetStream's default).
inline constexpr Duration kNatsDuplicateWindow = std::chrono::minutes(2);

// "SUBJECT.AGENT.CLASS" for a batch of class `cls`.
std::string nats_subject(const NatsOptions& options, RecordClass cls);
// The URL for people: any user and password in it replaced by "***".
std::string nats_redacted_url(const std::string& url);

class NatsTransport final : public Transport {
 public:
  // Never blocks: the connection is made on the first send, on the
  // transport's thread. Throws std::invalid_argument when the stream, the
  // subject or the agent cannot be used in a subject.
  NatsTransport(Reactor& reactor, NatsOptions options);
  // Closes the connection (a publish waiting for its ack ends at once) and
  // joins the thread; a pending `done` is never called.
  ~NatsTransport() override;
  NatsTransport(const NatsTransport&) = delete;
  NatsTransport& operator=(const NatsTransport&) = delete;

  // One send at a time; a send while another is pending abandons the first,
  // as cancel() would. Ends within options.timeout (plus the time a publish
  // abandoned before it still takes).
  void send(const Batch& batch, Done done) override;
  // The pending `done` is dropped; a publish already on the wire may still
  // land (the duplicate window drops its resend).
  void cancel() override;

 private:
  struct Job {
    std::uint64_t generation = 0;
    std::string id;
    std::string subject;
    std::string payload;
  };
  struct Completion {
    std::uint64_t generation = 0;
    SendResult result;
  };
  class Session;  // the libnats side; lives on the worker thread only

  void work();
  void serve(Session& session);
  void on_completions();

  Reactor& reactor_;
  const NatsOptions options_;
  int eventfd_ = -1;

  // Loop thread only.
  Done done_;
  std::uint64_t generation_ = 0;  // of the send whose done_ is pending

  // Shared with the worker thread, under mutex_.
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  std::deque<Completion> completions_;
  bool stopping_ = false;
  Session* session_ = nullptr;  // so the destructor can close its connection

  std::thread worker_;  // last: started once everything above exists
};

}  // namespace outpost
