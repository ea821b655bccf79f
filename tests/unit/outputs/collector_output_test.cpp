// A collector output over a fake transport: batches per record class closed
// by age and size, sent from the spool one at a time, events first; a failed
// send retried with the same id after a growing, jittered delay; a refused
// batch quarantined. Time is a fake clock.

#include <catch2/catch.hpp>

#include <deque>
#include <set>
#include <string>
#include <vector>

#include "fake_reactor.hpp"
#include "json_lines.hpp"
#include "output.hpp"
#include "outputs.hpp"

using outpost::test::FakeReactor;
using namespace std::chrono_literals;

namespace {

struct Send {
  outpost::Batch batch;
  outpost::Transport::Done done;
};

class FakeTransport final : public outpost::Transport {
 public:
  explicit FakeTransport(std::deque<Send>& sends) : sends_(sends) {}
  void send(const outpost::Batch& batch, Done done) override { sends_.push_back({batch, std::move(done)}); }
  void cancel() override { ++cancels; }
  int cancels = 0;

 private:
  std::deque<Send>& sends_;
};

outpost::Record probe(int n) {
  outpost::ProbeResult r;
  r.status = outpost::ProbeStatus::reply;
  r.sequence = static_cast<std::uint16_t>(n);
  r.sent = outpost::WallTime(std::chrono::seconds(1419264900 + n));
  return outpost::probe_record({"fra-1", "naenara", "kp", "icmp", 0, 4}, r);
}

outpost::Record series(int n) {
  outpost::SeriesWindow w;
  w.key = {"naenara", "kp", "icmp", 0, 4};
  w.start = outpost::WallTime(std::chrono::seconds(1419264900 + 60 * n));
  w.length = 60s;
  w.sent = 2;
  w.received = 2;
  return outpost::series_record("fra-1", w);
}

outpost::Record event() {
  outpost::DetectorEvent e;
  e.kind = outpost::EventKind::target_down;
  e.target = "naenara";
  e.group = "kp";
  e.start = outpost::WallTime(std::chrono::seconds(1419264900));
  return outpost::event_record("fra-1", e, nullptr, e.start);
}

struct Rig {
  FakeReactor reactor;
  std::deque<Send> sends;
  std::unique_ptr<outpost::CollectorOutput> out;

  explicit Rig(outpost::OutputSpec spec = {}) {
    spec.kind = outpost::OutputSpec::Kind::http;
    spec.target = "http://127.0.0.1:9/ingest";
    if (spec.name.empty()) spec.name = "h";
    out = std::make_unique<outpost::CollectorOutput>(
        reactor, spec, "fra-1", std::make_unique<outpost::Spool>("", 1 << 20),
        std::make_unique<FakeTransport>(sends), [](const outpost::Record& r) { return outpost::to_json_line(r); });
  }
  // Completes the oldest send.
  outpost::Batch complete(outpost::SendOutcome outcome, int status = 0) {
    REQUIRE_FALSE(sends.empty());
    Send s = std::move(sends.front());
    sends.pop_front();
    s.done({outcome, status, "test"});
    return s.batch;
  }
};

}  // namespace

TEST_CASE("collector output: a batch closes by age and is deleted once delivered", "[outputs]") {
  outpost::OutputSpec spec;
  spec.batch_age = 5s;
  Rig rig(spec);
  for (int i = 0; i < 3; ++i) rig.out->write(probe(i));
  rig.reactor.advance(4s);
  CHECK(rig.sends.empty());
  rig.reactor.advance(1s);
  REQUIRE(rig.sends.size() == 1);
  CHECK(rig.sends.front().batch.records == 3);
  CHECK(rig.sends.front().batch.cls == outpost::RecordClass::probe);
  CHECK(rig.sends.front().batch.payload ==
        outpost::to_json_line(probe(0)) + outpost::to_json_line(probe(1)) + outpost::to_json_line(probe(2)));
  CHECK_FALSE(rig.out->drained());
  rig.complete(outpost::SendOutcome::delivered);
  CHECK(rig.out->drained());
  CHECK(rig.out->stats().delivered == 1);
  CHECK(rig.out->stats().delivered_records == 3);
  CHECK(rig.out->spool().pending() == 0);
}

TEST_CASE("collector output: sending while a batch waits in the spool or is in flight, not with open ones only",
          "[outputs]") {
  outpost::OutputSpec spec;
  spec.batch_age = 5s;
  spec.retry_min = 1s;
  Rig rig(spec);
  CHECK_FALSE(rig.out->sending());
  rig.out->write(probe(1));
  CHECK_FALSE(rig.out->sending());  // an open batch: the agent's loop may still gather its wakes
  CHECK_FALSE(rig.out->drained());
  rig.reactor.advance(5s);
  REQUIRE(rig.sends.size() == 1);
  CHECK(rig.out->sending());  // in flight
  rig.complete(outpost::SendOutcome::retry);
  CHECK(rig.out->sending());  // spooled, waiting for its retry: the collector is away
  rig.reactor.advance(1s);
  rig.complete(outpost::SendOutcome::delivered);
  CHECK_FALSE(rig.out->sending());
}

TEST_CASE("collector output: a batch closes by size", "[outputs]") {
  outpost::OutputSpec spec;
  spec.batch_bytes = 2 * outpost::to_json_line(probe(1)).size();
  Rig rig(spec);
  rig.out->write(probe(1));
  CHECK(rig.sends.empty());
  rig.out->write(probe(2));  // reaches batch_bytes: closed and sent at once
  REQUIRE(rig.sends.size() == 1);
  CHECK(rig.sends.front().batch.records == 2);
}

TEST_CASE("collector output: a batch never grows past batch_bytes", "[outputs]") {
  outpost::OutputSpec spec;
  const std::size_t line = outpost::to_json_line(probe(1)).size();
  spec.batch_bytes = 2 * line + line / 2;  // room for two and a half records
  Rig rig(spec);
  for (int i = 0; i < 3; ++i) rig.out->write(probe(i));  // the third would not fit: the first two go
  REQUIRE(rig.sends.size() == 1);
  CHECK(rig.sends.front().batch.records == 2);
  CHECK(rig.sends.front().batch.payload.size() <= spec.batch_bytes);
  rig.complete(outpost::SendOutcome::delivered);
  rig.out->flush();
  REQUIRE(rig.sends.size() == 1);
  CHECK(rig.sends.front().batch.records == 1);
}

TEST_CASE("collector output: one send at a time, events before series before probes, ids never repeat", "[outputs]") {
  Rig rig;
  rig.out->write(probe(1));
  rig.out->write(series(1));
  rig.out->write(event());
  rig.out->write(probe(2));
  rig.out->flush();  // all three classes close; the first to close is sent at once
  REQUIRE(rig.sends.size() == 1);
  std::vector<outpost::RecordClass> order;
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(rig.sends.size() == 1);
    const auto batch = rig.complete(outpost::SendOutcome::delivered);
    order.push_back(batch.cls);
    ids.push_back(batch.id);
  }
  CHECK(rig.sends.empty());
  // The first send left before the others were closed; of those waiting, the event went first.
  CHECK(order[1] == outpost::RecordClass::series);
  CHECK(order[2] == outpost::RecordClass::probe);
  CHECK(std::set<std::string>(ids.begin(), ids.end()).size() == 3);
  CHECK(rig.out->stats().delivered_records == 4);
}

TEST_CASE("collector output: a failed send is retried with the same id after a growing, jittered delay", "[outputs]") {
  outpost::OutputSpec spec;
  spec.retry_min = 1s;
  spec.retry_max = 4s;
  Rig rig(spec);
  rig.out->write(event());
  rig.out->flush();
  const std::string id = rig.complete(outpost::SendOutcome::retry).id;
  // Each delay lies in [backoff/2, backoff]; backoff doubles up to retry_max.
  for (auto backoff : {1s, 2s, 4s, 4s, 4s}) {
    const auto half = std::chrono::duration_cast<outpost::Duration>(backoff) / 2;
    rig.reactor.advance(half - 1ms);
    CHECK(rig.sends.empty());
    rig.reactor.advance(half + 1ms);
    REQUIRE(rig.sends.size() == 1);
    CHECK(rig.sends.front().batch.id == id);
    rig.complete(outpost::SendOutcome::retry);
  }
  CHECK(rig.out->stats().failures == 6);
  rig.reactor.advance(4s);
  rig.complete(outpost::SendOutcome::delivered);
  CHECK(rig.out->drained());
  // After a success the backoff starts again from retry_min.
  rig.out->write(event());
  rig.out->flush();
  rig.complete(outpost::SendOutcome::retry);
  rig.reactor.advance(1s);
  CHECK(rig.sends.size() == 1);
}

TEST_CASE("collector output: a refused batch is quarantined and the next one goes", "[outputs]") {
  Rig rig;
  rig.out->write(series(1));
  rig.out->flush();
  rig.out->write(series(2));
  rig.out->flush();
  rig.complete(outpost::SendOutcome::rejected, 400);
  REQUIRE(rig.sends.size() == 1);  // no waiting after a refusal: it will not get better
  rig.complete(outpost::SendOutcome::delivered);
  CHECK(rig.out->stats().rejected == 1);
  CHECK(rig.out->stats().rejected_records == 1);
  CHECK(rig.out->stats().delivered == 1);
  CHECK(rig.out->spool().stats().quarantined == 1);
  CHECK(rig.out->drained());
}

TEST_CASE("collector output: remote write stops retrying a batch over an hour old that the store keeps failing",
          "[outputs]") {
  outpost::OutputSpec spec;
  spec.kind = outpost::OutputSpec::Kind::prometheus_remote_write;
  spec.retry_max = 1min;
  Rig rig(spec);
  // Rig sets kind http; remote write is what this test is about.
  rig.out = std::make_unique<outpost::CollectorOutput>(
      rig.reactor,
      [&] {
        auto s = spec;
        s.name = "rw";
        s.target = "http://127.0.0.1:9/api/v1/write";
        return s;
      }(),
      "fra-1", std::make_unique<outpost::Spool>("", 1 << 20), std::make_unique<FakeTransport>(rig.sends),
      [](const outpost::Record& r) { return outpost::to_json_line(r); });
  rig.out->write(series(1));
  rig.out->flush();
  rig.complete(outpost::SendOutcome::retry, 500);  // young: tried again
  CHECK(rig.out->stats().rejected == 0);
  rig.reactor.advance(61min);
  REQUIRE(rig.sends.size() == 1);
  rig.complete(outpost::SendOutcome::retry, 500);  // "too old sample": given up
  CHECK(rig.out->stats().rejected == 1);
  CHECK(rig.out->drained());
}

TEST_CASE("collector output: a retired output takes no records but still sends what it holds", "[outputs]") {
  Rig rig;
  rig.out->write(event());
  rig.out->flush();
  rig.out->retire();
  rig.out->write(event());
  rig.out->flush();
  REQUIRE(rig.sends.size() == 1);
  rig.complete(outpost::SendOutcome::delivered);
  CHECK(rig.sends.empty());
  CHECK(rig.out->drained());
  CHECK(rig.out->stats().records == 1);
}

TEST_CASE("Outputs: an output may not change its kind under the same name", "[outputs]") {
  FakeReactor reactor;
  outpost::Outputs outputs;
  outputs.attach(reactor, "fra-1", "");
  outpost::OutputSpec file;
  file.target = "/dev/null";
  file.name = "main";
  REQUIRE(outputs.apply({file}).empty());
  outpost::OutputSpec http;
  http.kind = outpost::OutputSpec::Kind::http;
  http.target = "http://127.0.0.1:9/";
  http.name = "main";
  const std::string error = outputs.apply({http});
  CHECK_THAT(error, Catch::Contains("main") && Catch::Contains("new name"));
  REQUIRE(outputs.outputs().size() == 1);
  CHECK(outputs.outputs()[0]->spec().kind == outpost::OutputSpec::Kind::file);
}
