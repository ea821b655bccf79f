// The one limiter of repeated log lines (outputs, spool, syncer), on a fake
// clock: the first line at once, then one per interval saying how many were
// held back, at the level asked for.

#include <catch2/catch.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>
#include <string>

#include "clock.hpp"
#include "log_limiter.hpp"

using namespace std::chrono_literals;
using outpost::FakeClock;
using outpost::LogLimiter;

namespace {

// Captures what spdlog's default logger writes as "LEVEL message" lines while it lives.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    auto logger = std::make_shared<spdlog::logger>("captured", sink);
    logger->set_pattern("%l %v");
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

}  // namespace

TEST_CASE("log limiter: one line per interval, the next one counting those held back", "[limiter]") {
  FakeClock clock;
  LogLimiter limiter(1min);
  std::uint64_t held_back = 99;
  CHECK(limiter.allow(clock.now(), held_back));
  CHECK(held_back == 0);
  for (int i = 1; i <= 5; ++i) {
    clock.advance(10s);
    CHECK_FALSE(limiter.allow(clock.now(), held_back));
  }
  CHECK(limiter.held_back() == 5);
  clock.advance(11s);  // 61 s after the first line
  CHECK(limiter.allow(clock.now(), held_back));
  CHECK(held_back == 5);
  CHECK(limiter.held_back() == 0);
  clock.advance(1s);
  CHECK_FALSE(limiter.allow(clock.now(), held_back));
  clock.advance(5min);
  CHECK(limiter.allow(clock.now(), held_back));
  CHECK(held_back == 1);
  CHECK(limiter.suppressed() == 6);
}

TEST_CASE("log limiter: the lines it writes, at their level, with the count held back", "[limiter]") {
  CapturedLog log;
  FakeClock clock;
  LogLimiter sends(30s);
  sends.warn(clock.now(), "output vm: send failed: connection refused");
  for (int i = 0; i < 4; ++i) {
    clock.advance(5s);
    sends.warn(clock.now(), "output vm: send failed: connection refused");
  }
  clock.advance(10s);  // 30 s after the first line
  sends.warn(clock.now(), "output vm: send failed: timeout");
  LogLimiter disk;
  disk.error(clock.now(), "output file: cannot write results.jsonl: No space left on device");
  CHECK(log.text() ==
        "warning output vm: send failed: connection refused\n"
        "warning output vm: send failed: timeout (4 more suppressed)\n"
        "error output file: cannot write results.jsonl: No space left on device\n");
  CHECK(sends.suppressed() == 4);
}

TEST_CASE("log limiter: with_suppressed adds the count only when there is one", "[limiter]") {
  CHECK(outpost::with_suppressed("sync: fdatasync failed", 0) == "sync: fdatasync failed");
  CHECK(outpost::with_suppressed("sync: fdatasync failed", 3) == "sync: fdatasync failed (3 more suppressed)");
}
