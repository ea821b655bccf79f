// NatsTransport against a real nats-server -js on loopback.

#include "nats_transport.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <memory>
#include <optional>

#include "event_loop.hpp"
#include "loop_reactor.hpp"
#include "nats_server.hpp"
#include "nats_stream.hpp"

namespace outpost {
namespace {

using testing::NatsServer;
using testing::read_nats_stream;

bool have_nats_server() {
  if (!NatsServer::binary().empty()) return true;
  WARN("nats-server is not installed (apt install nats-server): NATS transport tests skipped");
  return false;
}

// A real loop on the system clock, with a periodic tick that counts its turns.
struct Loop {
  SystemClock clock;
  EventLoop loop{clock};
  LoopReactor reactor{loop};
  int ticks = 0;

  void tick_every(Duration d) {
    loop.after(d, [this, d] {
      ++ticks;
      tick_every(d);
    });
  }
  // Turns the loop until `done()` or 30 s.
  template <typename Pred>
  bool run_until(Pred done, Duration limit = std::chrono::seconds(30)) {
    bool expired = false;
    auto timer = loop.after(limit, [&] { expired = true; });
    while (!done() && !expired) REQUIRE(loop.run_once(true));
    loop.cancel(timer);
    return done();
  }
  // Turns the loop for `d`, whatever happens.
  void run_for(Duration d) {
    bool over = false;
    loop.after(d, [&] { over = true; });
    while (!over) REQUIRE(loop.run_once(true));
  }
};

NatsOptions options_for(const std::string& url, Duration timeout = std::chrono::seconds(5)) {
  NatsOptions o;
  o.url = url;
  o.agent = "vp-ams-1";
  o.timeout = timeout;
  return o;
}

Batch batch(std::string id, RecordClass cls, std::string payload) {
  Batch b;
  b.id = std::move(id);
  b.cls = cls;
  b.records = 1;
  b.payload = std::move(payload);
  return b;
}

// Sends and waits for the one result.
SendResult send_and_wait(Loop& l, Transport& t, const Batch& b) {
  std::optional<SendResult> result;
  bool inside_send = true;
  bool called_inside = false;
  t.send(b, [&](SendResult r) {
    called_inside = inside_send;
    result = std::move(r);
  });
  inside_send = false;
  REQUIRE(l.run_until([&] { return result.has_value(); }));
  CHECK_FALSE(called_inside);
  return *result;
}

// A TCP listener that never accepts: the kernel completes the handshake, and
// then nothing ever speaks.
struct SilentListener {
  int fd = -1;
  int port = 0;
  SilentListener() {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(listen(fd, 16) == 0);
    REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port = ntohs(addr.sin_port);
  }
  ~SilentListener() { close(fd); }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port); }
};

}  // namespace

TEST_CASE("nats: each batch is one message on SUBJECT.AGENT.CLASS with its id as Nats-Msg-Id", "[nats]") {
  if (!have_nats_server()) return;
  NatsServer server;
  REQUIRE(server.start());
  Loop l;
  NatsTransport t(l.reactor, options_for(server.url()));

  std::vector<Batch> sent = {
      batch("probe-0001", RecordClass::probe, "{\"kind\":\"probe\",\"rtt_ms\":1.5}\n{\"kind\":\"probe\"}\n"),
      batch("series-0001", RecordClass::series, "{\"kind\":\"series\",\"loss\":0}\n"),
      batch("event-0001", RecordClass::event, "{\"kind\":\"event\",\"verdict\":\"target_down\"}\n"),
  };
  for (const auto& b : sent) {
    SendResult r = send_and_wait(l, t, b);
    INFO(r.detail);
    CHECK(r.outcome == SendOutcome::delivered);
  }

  auto stream = read_nats_stream(server.url(), "OUTPOST");
  CHECK(stream.subjects == std::vector<std::string>{"outpost.>"});
  CHECK(stream.file_storage);
  CHECK(stream.duplicate_window_ns >= std::chrono::nanoseconds(std::chrono::minutes(2)).count());
  REQUIRE(stream.messages.size() == 3);
  const char* subjects[] = {"outpost.vp-ams-1.probe", "outpost.vp-ams-1.series", "outpost.vp-ams-1.event"};
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(stream.messages[i].subject == subjects[i]);
    CHECK(stream.messages[i].data == sent[i].payload);
    CHECK(stream.messages[i].msg_id == sent[i].id);
  }
}

TEST_CASE("nats: the same batch sent twice is delivered twice and stored once", "[nats]") {
  if (!have_nats_server()) return;
  NatsServer server;
  REQUIRE(server.start());
  Loop l;
  NatsTransport t(l.reactor, options_for(server.url()));
  Batch b = batch("probe-0042", RecordClass::probe, "{\"kind\":\"probe\"}\n");

  SendResult first = send_and_wait(l, t, b);
  SendResult again = send_and_wait(l, t, b);
  CHECK(first.outcome == SendOutcome::delivered);
  CHECK(again.outcome == SendOutcome::delivered);
  CHECK(again.detail.find("duplicate") != std::string::npos);

  auto stream = read_nats_stream(server.url(), "OUTPOST");
  REQUIRE(stream.messages.size() == 1);
  CHECK(stream.messages[0].msg_id == "probe-0042");
}

TEST_CASE("nats: no server is a retry that says why, and the loop keeps turning", "[nats]") {
  if (!have_nats_server()) return;
  Loop l;

  SECTION("nothing listens: connection refused") {
    NatsServer never_started;
    NatsTransport t(l.reactor, options_for(never_started.url()));
    SendResult r = send_and_wait(l, t, batch("probe-1", RecordClass::probe, "x\n"));
    CHECK(r.outcome == SendOutcome::retry);
    CHECK(r.detail == "nats: connection refused (" + never_started.url() + ")");
  }
  SECTION("something listens and never speaks: the send ends at its timeout, the loop turns meanwhile") {
    SilentListener silent;
    NatsTransport t(l.reactor, options_for(silent.url(), std::chrono::milliseconds(600)));
    l.tick_every(std::chrono::milliseconds(10));
    SendResult r = send_and_wait(l, t, batch("probe-1", RecordClass::probe, "x\n"));
    INFO(r.detail);
    CHECK(r.outcome == SendOutcome::retry);
    CHECK(r.detail.rfind("nats: no ", 0) == 0);
    CHECK(r.detail.find(silent.url()) != std::string::npos);
    CHECK(l.ticks >= 5);  // about 60: the tick kept firing while the send was pending
  }
}

TEST_CASE("nats: a server killed and started again on its store: retry during the outage, nothing lost", "[nats]") {
  if (!have_nats_server()) return;
  NatsServer server;
  REQUIRE(server.start());
  Loop l;
  NatsTransport t(l.reactor, options_for(server.url()));

  Batch before = batch("event-0001", RecordClass::event, "{\"before\":true}\n");
  Batch during = batch("event-0002", RecordClass::event, "{\"during\":true}\n");
  Batch after = batch("event-0003", RecordClass::event, "{\"after\":true}\n");
  REQUIRE(send_and_wait(l, t, before).outcome == SendOutcome::delivered);

  server.kill();
  SendResult outage = send_and_wait(l, t, during);
  INFO(outage.detail);
  CHECK(outage.outcome == SendOutcome::retry);
  CHECK(outage.detail.find(server.url()) != std::string::npos);

  REQUIRE(server.start());
  SendResult resent = send_and_wait(l, t, during);
  INFO(resent.detail);
  CHECK(resent.outcome == SendOutcome::delivered);
  CHECK(send_and_wait(l, t, after).outcome == SendOutcome::delivered);

  auto stream = read_nats_stream(server.url(), "OUTPOST");
  std::vector<std::string> ids;
  for (const auto& m : stream.messages) ids.push_back(m.msg_id);
  CHECK(ids == std::vector<std::string>{"event-0001", "event-0002", "event-0003"});
}

TEST_CASE("nats: cancel() drops the pending done and later sends work", "[nats]") {
  if (!have_nats_server()) return;
  Loop l;
  bool cancelled_done = false;

  SECTION("a publish under way") {
    NatsServer server;
    REQUIRE(server.start());
    NatsTransport t(l.reactor, options_for(server.url()));
    t.send(batch("probe-0001", RecordClass::probe, "cancelled\n"), [&](SendResult) { cancelled_done = true; });
    t.cancel();
    SendResult next = send_and_wait(l, t, batch("probe-0002", RecordClass::probe, "next\n"));
    CHECK(next.outcome == SendOutcome::delivered);
    CHECK(send_and_wait(l, t, batch("probe-0003", RecordClass::probe, "third\n")).outcome == SendOutcome::delivered);
    CHECK_FALSE(cancelled_done);
    auto stream = read_nats_stream(server.url(), "OUTPOST");
    REQUIRE(stream.messages.size() >= 2);  // the cancelled one may have landed too
    CHECK(stream.messages.back().msg_id == "probe-0003");
  }
  SECTION("a connection that hangs") {
    SilentListener silent;
    NatsTransport t(l.reactor, options_for(silent.url(), std::chrono::milliseconds(300)));
    t.send(batch("probe-0001", RecordClass::probe, "cancelled\n"), [&](SendResult) { cancelled_done = true; });
    l.run_for(std::chrono::milliseconds(50));
    t.cancel();
    SendResult next = send_and_wait(l, t, batch("probe-0002", RecordClass::probe, "next\n"));
    CHECK(next.outcome == SendOutcome::retry);
    CHECK_FALSE(cancelled_done);
  }
}

TEST_CASE("nats: destroying the transport with a send pending calls no done", "[nats]") {
  if (!have_nats_server()) return;
  Loop l;
  bool called = false;

  SECTION("against a live server") {
    NatsServer server;
    REQUIRE(server.start());
    auto t = std::make_unique<NatsTransport>(l.reactor, options_for(server.url()));
    // Connected first, so that the pending send is a publish.
    REQUIRE(send_and_wait(l, *t, batch("probe-0001", RecordClass::probe, "x\n")).outcome == SendOutcome::delivered);
    t->send(batch("probe-0002", RecordClass::probe, "y\n"), [&](SendResult) { called = true; });
    t.reset();
    l.run_for(std::chrono::milliseconds(200));
    CHECK_FALSE(called);
    // The server is still there for others.
    NatsTransport other(l.reactor, options_for(server.url()));
    CHECK(send_and_wait(l, other, batch("probe-0003", RecordClass::probe, "z\n")).outcome ==
          SendOutcome::delivered);
  }
  SECTION("while connecting to a server that never answers") {
    SilentListener silent;
    auto t = std::make_unique<NatsTransport>(l.reactor, options_for(silent.url(), std::chrono::milliseconds(300)));
    t->send(batch("probe-0001", RecordClass::probe, "x\n"), [&](SendResult) { called = true; });
    l.run_for(std::chrono::milliseconds(50));
    t.reset();
    l.run_for(std::chrono::milliseconds(100));
    CHECK_FALSE(called);
  }
}

TEST_CASE("nats: a batch the stream will never take is rejected and the next one goes", "[nats]") {
  if (!have_nats_server()) return;
  NatsServer server;
  REQUIRE(server.start());
  {
    // A stream made beforehand, with a 1 KiB message limit.
    natsConnection* conn = nullptr;
    jsCtx* js = nullptr;
    REQUIRE(natsConnection_ConnectTo(&conn, server.url().c_str()) == NATS_OK);
    REQUIRE(natsConnection_JetStream(&js, conn, nullptr) == NATS_OK);
    jsStreamConfig config;
    jsStreamConfig_Init(&config);
    const char* subjects[] = {"outpost.>"};
    config.Name = "OUTPOST";
    config.Subjects = subjects;
    config.SubjectsLen = 1;
    config.MaxMsgSize = 1024;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    CHECK(js_AddStream(nullptr, js, &config, nullptr, &jerr) == NATS_OK);
    jsCtx_Destroy(js);
    natsConnection_Destroy(conn);
  }
  Loop l;
  NatsTransport t(l.reactor, options_for(server.url()));
  SendResult big = send_and_wait(l, t, batch("series-0001", RecordClass::series, std::string(4096, 'x')));
  CHECK(big.outcome == SendOutcome::rejected);
  CHECK(big.detail.find("maximum") != std::string::npos);
  CHECK(send_and_wait(l, t, batch("series-0002", RecordClass::series, "small\n")).outcome == SendOutcome::delivered);
}

TEST_CASE("nats: the token from token_file authenticates and never shows", "[nats]") {
  if (!have_nats_server()) return;
  const std::string token = "s3cr3t-token-4a7f";
  NatsServer server({"--auth", token});
  REQUIRE(server.start());
  Loop l;
  auto token_file = server.dir() + "/token";
  auto options = options_for(server.url());
  options.token_file = token_file;

  SECTION("the right token") {
    std::ofstream(token_file) << token << "\n";
    NatsTransport t(l.reactor, options);
    SendResult r = send_and_wait(l, t, batch("probe-1", RecordClass::probe, "x\n"));
    INFO(r.detail);
    CHECK(r.outcome == SendOutcome::delivered);
  }
  SECTION("a wrong token") {
    std::ofstream(token_file) << "not-" << token << "\n";
    NatsTransport t(l.reactor, options);
    SendResult r = send_and_wait(l, t, batch("probe-1", RecordClass::probe, "x\n"));
    INFO(r.detail);
    CHECK(r.outcome == SendOutcome::retry);
    CHECK(r.detail.find(token) == std::string::npos);
    CHECK(r.detail.find(server.url()) != std::string::npos);
  }
  SECTION("no token file") {
    NatsTransport t(l.reactor, options);
    SendResult r = send_and_wait(l, t, batch("probe-1", RecordClass::probe, "x\n"));
    CHECK(r.outcome == SendOutcome::retry);
    CHECK(r.detail.find("token file") != std::string::npos);
  }
}

TEST_CASE("nats: subjects, names and URLs for people", "[nats]") {
  NatsOptions o;
  o.url = "nats://127.0.0.1:4222";
  o.agent = "vp-1";
  CHECK(nats_subject(o, RecordClass::probe) == "outpost.vp-1.probe");
  CHECK(nats_subject(o, RecordClass::series) == "outpost.vp-1.series");
  CHECK(nats_subject(o, RecordClass::event) == "outpost.vp-1.event");
  CHECK(nats_redacted_url("nats://user:pw@h:4222,tls://tok@h2:4443") == "nats://***@h:4222,tls://***@h2:4443");
  CHECK(nats_redacted_url("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222");

  SystemClock clock;
  EventLoop loop(clock);
  LoopReactor reactor(loop);
  auto bad = o;
  bad.agent = "vp.1";
  CHECK_THROWS_AS(NatsTransport(reactor, bad), std::invalid_argument);
  bad = o;
  bad.subject = "outpost.*";
  CHECK_THROWS_AS(NatsTransport(reactor, bad), std::invalid_argument);
  bad = o;
  bad.stream = "OUT POST";
  CHECK_THROWS_AS(NatsTransport(reactor, bad), std::invalid_argument);
  o.subject = "metrics.outpost";
  CHECK_NOTHROW(NatsTransport(reactor, o));
}

}  // namespace outpost
