// How a batch reaches one collector: an HTTP POST, a JetStream publish, a
// write to a file. A transport sends one batch at a time and says how it went;
// the output above it keeps the spool, the retries and the counters.
// Leaves to others: batching, spooling, retry timing (output.hpp).
#pragma once

#include <functional>
#include <string>

#include "batch.hpp"

namespace outpost {

enum class SendOutcome {
  delivered,  // the collector acknowledged the batch: it may be deleted
  retry,      // not delivered (connection refused, timeout, 5xx, 429): send it again later
  rejected,   // refused for good (4xx other than 429, e.g. samples too old): quarantine, never resend
};

struct SendResult {
  SendOutcome outcome = SendOutcome::retry;
  int status = 0;      // the HTTP status, when there was one
  std::string detail;  // for people: "HTTP 400: out of bounds", "connection refused", ...
};

class Transport {
 public:
  using Done = std::function<void(SendResult)>;
  virtual ~Transport() = default;
  // Starts sending `batch`; `done` runs exactly once, later, on the loop's
  // thread (never from inside send()). One send at a time.
  virtual void send(const Batch& batch, Done done) = 0;
  // Abandons a send under way; its `done` is never called.
  virtual void cancel() = 0;
};

}  // namespace outpost
