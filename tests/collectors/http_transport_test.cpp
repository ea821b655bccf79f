// The HTTP transport against servers on 127.0.0.1: a small HTTP/1.1 server of
// the tests' own, and openssl s_server for TLS; each test on a real EventLoop.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "event_loop.hpp"
#include "http_test_server.hpp"
#include "http_transport.hpp"
#include "loop_reactor.hpp"

using namespace outpost;
using namespace std::chrono_literals;
using outpost::test::HttpTestReply;
using outpost::test::HttpTestServer;
namespace fs = std::filesystem;

namespace {

struct TestLoop {
  SystemClock clock;
  EventLoop loop{clock};
  LoopReactor reactor{loop};

  // Turns the loop until `done()` holds or `limit` has passed (a guard
  // against a hang, not a measurement); looks at `done()` at least every 10 ms.
  bool run_until(const std::function<bool()>& done, Duration limit = 20s) {
    bool gave_up = false;
    const auto guard = loop.after(limit, [&] { gave_up = true; });
    EventLoop::TimerId poll_timer = 0;
    std::function<void()> poll = [&] { poll_timer = loop.after(10ms, poll); };
    poll();
    while (!done() && !gave_up) REQUIRE(loop.run_once(true));
    loop.cancel(guard);
    loop.cancel(poll_timer);
    return done();
  }
  // Turns the loop for `d`.
  void run_for(Duration d) {
    bool over = false;
    loop.after(d, [&] { over = true; });
    while (!over) REQUIRE(loop.run_once(true));
  }
};

SendResult send_one(TestLoop& t, Transport& transport, const Batch& batch) {
  std::optional<SendResult> result;
  transport.send(batch, [&](SendResult r) { result = std::move(r); });
  CHECK_FALSE(result.has_value());  // never from inside send()
  REQUIRE(t.run_until([&] { return result.has_value(); }));
  return *result;
}

Batch make_batch(std::string id, std::string payload) {
  Batch b;
  b.id = std::move(id);
  b.records = 1;
  b.payload = std::move(payload);
  return b;
}

struct TempDir {
  fs::path path;
  TempDir() {
    char name[] = "/tmp/outpost-http-XXXXXX";
    REQUIRE(mkdtemp(name) != nullptr);
    path = name;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& content) const {
    std::ofstream(path / name, std::ios::binary | std::ios::trunc) << content;
    return (path / name).string();
  }
};

std::string gunzip(const std::string& data) {
  z_stream z{};
  REQUIRE(inflateInit2(&z, 15 + 16) == Z_OK);
  std::string out;
  char buf[4096];
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
  }
  inflateEnd(&z);
  REQUIRE(rc == Z_STREAM_END);
  return out;
}

// A loopback port where nothing listens: bound, never listening, held for
// the test so nothing else takes it.
struct DeadPort {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int port = 0;
  DeadPort() {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port = ntohs(addr.sin_port);
  }
  ~DeadPort() { close(fd); }
};

int free_port() {
  DeadPort p;
  return p.port;
}

bool has_openssl() { return std::system("openssl version >/dev/null 2>&1") == 0; }

// openssl s_server on 127.0.0.1: what a client sends comes out on its
// standard output, what the test writes to its standard input goes back.
// Killed when it goes out of scope, whatever the test did.
class OpensslServer {
 public:
  OpensslServer(const std::string& cert, const std::string& key, int port) : port_(port) {
    int in[2], out[2];
    REQUIRE(pipe2(in, O_CLOEXEC) == 0);
    REQUIRE(pipe2(out, O_CLOEXEC) == 0);
    const std::string accept = "127.0.0.1:" + std::to_string(port);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      const int null = open("/dev/null", O_WRONLY);
      dup2(null, 2);
      execlp("openssl", "openssl", "s_server", "-accept", accept.c_str(), "-cert", cert.c_str(), "-key", key.c_str(),
             static_cast<char*>(nullptr));
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    in_ = in[1];
    out_ = out[0];
    fcntl(out_, F_SETFL, O_NONBLOCK);
  }
  ~OpensslServer() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    close(in_);
    close(out_);
  }
  int out_fd() const { return out_; }
  std::string& output() { return output_; }
  void read_some() {
    char buf[4096];
    ssize_t n;
    while ((n = read(out_, buf, sizeof buf)) > 0) output_.append(buf, static_cast<std::size_t>(n));
  }
  // Before the loop runs: waits until it listens.
  bool wait_listening() {
    for (int i = 0; i < 200 && output_.find("ACCEPT") == std::string::npos; ++i) {
      pollfd p{out_, POLLIN, 0};
      poll(&p, 1, 50);
      read_some();
    }
    return output_.find("ACCEPT") != std::string::npos;
  }
  void answer(const std::string& text) { REQUIRE(write(in_, text.data(), text.size()) == static_cast<ssize_t>(text.size())); }

 private:
  int port_;
  pid_t pid_ = -1;
  int in_ = -1;
  int out_ = -1;
  std::string output_;
};

}  // namespace

TEST_CASE("http: 204 is delivered with the body and batch id and content type and bearer token", "[http]") {
  TestLoop t;
  TempDir dir;
  HttpTestServer server;
  HttpOptions o;
  o.url = server.url("/ingest?db=outpost");
  o.content_type = "application/x-ndjson";
  o.token_file = dir.write("token", "tok-first-1234\n\n");
  o.headers = {"X-Extra: yes"};
  HttpTransport transport(t.reactor, o);

  const SendResult r = send_one(t, transport, make_batch("b-0001", "{\"a\":1}\n{\"a\":2}\n"));
  CHECK(r.outcome == SendOutcome::delivered);
  CHECK(r.status == 204);
  const auto requests = server.requests();
  REQUIRE(requests.size() == 1);
  const auto& q = requests[0];
  CHECK(q.method == "POST");
  CHECK(q.target == "/ingest?db=outpost");
  CHECK(q.body == "{\"a\":1}\n{\"a\":2}\n");
  CHECK(q.header("x-outpost-batch-id") == "b-0001");
  CHECK(q.header("content-type") == "application/x-ndjson");
  CHECK(q.header("authorization") == "Bearer tok-first-1234");
  CHECK(q.header("x-extra") == "yes");
  CHECK(q.header("content-encoding").empty());
  CHECK(q.header("expect").empty());  // no 100-continue wait

  SECTION("a second batch goes over the same connection") {
    CHECK(send_one(t, transport, make_batch("b-0002", "x\n")).outcome == SendOutcome::delivered);
    REQUIRE(server.requests().size() == 2);
    CHECK(server.requests()[1].header("x-outpost-batch-id") == "b-0002");
    CHECK(server.connections() == 1);
  }
  SECTION("a rotated token is read again") {
    const auto before = fs::last_write_time(o.token_file);
    dir.write("token", "tok-second-56789\n");
    fs::last_write_time(o.token_file, before + 2s);
    CHECK(send_one(t, transport, make_batch("b-0002", "x\n")).outcome == SendOutcome::delivered);
    REQUIRE(server.requests().size() == 2);
    CHECK(server.requests()[1].header("authorization") == "Bearer tok-second-56789");
  }
  SECTION("a token file gone at a later send is a retry that says so") {
    fs::remove(o.token_file);
    const SendResult gone = send_one(t, transport, make_batch("b-0002", "x\n"));
    CHECK(gone.outcome == SendOutcome::retry);
    CHECK_THAT(gone.detail, Catch::Contains("token file") && Catch::Contains("No such file"));
    CHECK(server.requests().size() == 1);
  }
}

TEST_CASE("http: a kept-alive connection the collector closes leaves the loop quiet", "[http]") {
  TestLoop t;
  auto server = std::make_unique<HttpTestServer>();
  HttpOptions o;
  o.url = server->url();
  HttpTransport transport(t.reactor, o);
  CHECK(send_one(t, transport, make_batch("b-1", "x")).outcome == SendOutcome::delivered);
  server.reset();  // closes the idle connection

  // Nothing to do now: the loop must sleep, not turn on a closed socket.
  int turns = 0;
  bool over = false;
  t.loop.after(300ms, [&] { over = true; });
  while (!over) {
    REQUIRE(t.loop.run_once(true));
    ++turns;
  }
  CHECK(turns < 20);
}

TEST_CASE("http: a large batch arrives whole", "[http]") {
  TestLoop t;
  HttpTestServer server;
  HttpOptions o;
  o.url = server.url();
  HttpTransport transport(t.reactor, o);
  std::string payload;
  for (int i = 0; payload.size() < 3'000'000; ++i) payload += "probe,target=t" + std::to_string(i) + " rtt=" + std::to_string(i * 7) + "\n";
  CHECK(send_one(t, transport, make_batch("b-big", payload)).outcome == SendOutcome::delivered);
  REQUIRE(server.requests().size() == 1);
  CHECK(server.requests()[0].body == payload);
}

TEST_CASE("http: a body function shapes the request body and one that throws rejects the batch", "[http]") {
  TestLoop t;
  HttpTestServer server;
  HttpOptions o;
  o.url = server.url();
  o.content_type = "application/x-protobuf";
  o.body = [](const Batch& b) {
    if (b.payload.empty()) throw std::runtime_error("nothing to encode");
    return "<" + b.payload + ">";
  };
  HttpTransport transport(t.reactor, o);
  CHECK(send_one(t, transport, make_batch("b-1", "abc")).outcome == SendOutcome::delivered);
  REQUIRE(server.requests().size() == 1);
  CHECK(server.requests()[0].body == "<abc>");

  const SendResult bad = send_one(t, transport, make_batch("b-2", ""));
  CHECK(bad.outcome == SendOutcome::rejected);
  CHECK_THAT(bad.detail, Catch::Contains("nothing to encode"));
  CHECK(server.requests().size() == 1);
}

TEST_CASE("http: gzip sends Content-Encoding gzip and a body that inflates to the payload", "[http]") {
  TestLoop t;
  HttpTestServer server;
  HttpOptions o;
  o.url = server.url();
  o.content_type = "text/plain; charset=utf-8";
  o.gzip = true;
  HttpTransport transport(t.reactor, o);
  std::string payload;
  for (int i = 0; i < 500; ++i) payload += "probe,target=host" + std::to_string(i % 7) + " rtt=" + std::to_string(i) + "\n";

  CHECK(send_one(t, transport, make_batch("b-gz", payload)).outcome == SendOutcome::delivered);
  const auto requests = server.requests();
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].header("content-encoding") == "gzip");
  CHECK(requests[0].body.size() < payload.size());
  CHECK(gunzip(requests[0].body) == payload);
}

TEST_CASE("http: statuses become outcomes with a short detail", "[http]") {
  TestLoop t;
  HttpTestServer server;
  HttpOptions o;
  o.url = server.url();
  HttpTransport transport(t.reactor, o);

  SECTION("400 is rejected, with the collector's words") {
    server.set_reply({400, "out of bounds", {}, 0ms});
    const SendResult r = send_one(t, transport, make_batch("b", "x"));
    CHECK(r.outcome == SendOutcome::rejected);
    CHECK(r.status == 400);
    CHECK(r.detail == "HTTP 400: out of bounds");
  }
  SECTION("a long body with odd bytes is cut and made printable") {
    server.set_reply({422, "bad\x01line\n" + std::string(1000, 'z'), {}, 0ms});
    const SendResult r = send_one(t, transport, make_batch("b", "x"));
    CHECK(r.outcome == SendOutcome::rejected);
    CHECK_THAT(r.detail, Catch::StartsWith("HTTP 422: bad?line zzz"));
    CHECK(r.detail.size() == std::string("HTTP 422: ").size() + 200);
  }
  SECTION("5xx, 429 and 408 are retried") {
    for (int status : {500, 503, 429, 408}) {
      server.set_reply({status, "later", {}, 0ms});
      const SendResult r = send_one(t, transport, make_batch("b", "x"));
      CHECK(r.outcome == SendOutcome::retry);
      CHECK(r.status == status);
      CHECK(r.detail == "HTTP " + std::to_string(status) + ": later");
    }
  }
  SECTION("a redirect is not followed, and rejected, saying where it points") {
    server.set_reply({301, "", {"Location: http://collector.example/write"}, 0ms});
    const SendResult r = send_one(t, transport, make_batch("b", "x"));
    CHECK(r.outcome == SendOutcome::rejected);
    CHECK(r.status == 301);
    CHECK_THAT(r.detail, Catch::Contains("301") && Catch::Contains("http://collector.example/write"));
    CHECK(server.requests().size() == 1);
  }
  SECTION("other 4xx are rejected") {
    server.set_reply({404, "", {}, 0ms});
    const SendResult r = send_one(t, transport, make_batch("b", "x"));
    CHECK(r.outcome == SendOutcome::rejected);
    CHECK(r.detail == "HTTP 404");
  }
}

TEST_CASE("http: the outcome of each status", "[http]") {
  CHECK(http_outcome(200) == SendOutcome::delivered);
  CHECK(http_outcome(204) == SendOutcome::delivered);
  CHECK(http_outcome(299) == SendOutcome::delivered);
  CHECK(http_outcome(302) == SendOutcome::rejected);
  CHECK(http_outcome(400) == SendOutcome::rejected);
  CHECK(http_outcome(401) == SendOutcome::rejected);
  CHECK(http_outcome(413) == SendOutcome::rejected);
  CHECK(http_outcome(408) == SendOutcome::retry);
  CHECK(http_outcome(425) == SendOutcome::retry);
  CHECK(http_outcome(429) == SendOutcome::retry);
  CHECK(http_outcome(500) == SendOutcome::retry);
  CHECK(http_outcome(504) == SendOutcome::retry);
  CHECK(http_outcome(0) == SendOutcome::retry);
  CHECK(http_outcome(100) == SendOutcome::retry);
}

TEST_CASE("http: nothing listening is a retry: connection refused", "[http]") {
  TestLoop t;
  DeadPort dead;
  HttpOptions o;
  o.url = "http://127.0.0.1:" + std::to_string(dead.port) + "/write";
  HttpTransport transport(t.reactor, o);
  const SendResult r = send_one(t, transport, make_batch("b", "x"));
  CHECK(r.outcome == SendOutcome::retry);
  CHECK(r.status == 0);
  CHECK(r.detail == "connection refused (127.0.0.1:" + std::to_string(dead.port) + ")");
}

TEST_CASE("http: a slow collector times out as a retry while the loop keeps running", "[http]") {
  TestLoop t;
  HttpTestServer server({204, "", {}, 3000ms});
  HttpOptions o;
  o.url = server.url();
  o.timeout = 1s;
  HttpTransport transport(t.reactor, o);

  int ticks = 0;
  bool ticking = true;
  EventLoop::TimerId tick_timer = 0;
  std::function<void()> tick = [&] {
    ++ticks;
    if (ticking) tick_timer = t.loop.after(50ms, tick);
  };
  tick_timer = t.loop.after(50ms, tick);

  std::optional<SendResult> result;
  int ticks_at_done = -1;
  transport.send(make_batch("b-slow", "x"), [&](SendResult r) {
    result = std::move(r);
    ticks_at_done = ticks;
  });
  REQUIRE(t.run_until([&] { return result.has_value(); }));
  ticking = false;
  t.loop.cancel(tick_timer);
  CHECK(result->outcome == SendOutcome::retry);
  CHECK(result->detail == "timed out after 1s");
  CHECK(server.requests().size() == 1);  // it got there; the answer did not come back in time
  CHECK(ticks_at_done >= 5);             // the loop ran other timers while the request waited
}

TEST_CASE("http: cancel() drops a send under way and the next send works", "[http]") {
  TestLoop t;
  HttpTestServer server({204, "", {}, 1500ms});
  HttpOptions o;
  o.url = server.url();
  HttpTransport transport(t.reactor, o);

  bool called = false;
  transport.send(make_batch("b-cancelled", "x"), [&](SendResult) { called = true; });
  REQUIRE(t.run_until([&] { return server.requests().size() == 1; }));
  transport.cancel();
  transport.cancel();  // twice is harmless
  t.run_for(2s);        // past the moment the server answers
  CHECK_FALSE(called);

  server.set_reply({204, "", {}, 0ms});
  const SendResult r = send_one(t, transport, make_batch("b-next", "y"));
  CHECK(r.outcome == SendOutcome::delivered);
  REQUIRE(server.requests().size() == 2);
  CHECK(server.requests()[1].header("x-outpost-batch-id") == "b-next");
  CHECK_FALSE(called);
}

TEST_CASE("http: a transport destroyed mid-request calls nothing and leaves the loop clean", "[http]") {
  TestLoop t;
  HttpTestServer server({204, "", {}, 500ms});
  HttpOptions o;
  o.url = server.url();
  auto transport = std::make_unique<HttpTransport>(t.reactor, o);
  bool called = false;
  transport->send(make_batch("b", "x"), [&](SendResult) { called = true; });
  REQUIRE(t.run_until([&] { return server.requests().size() == 1; }));
  transport.reset();
  t.run_for(1s);
  CHECK_FALSE(called);
  CHECK(t.loop.pending_timers() == 0);
}

TEST_CASE("http: done may start the next send or destroy the transport", "[http]") {
  TestLoop t;
  HttpTestServer server;
  HttpOptions o;
  o.url = server.url();
  auto transport = std::make_unique<HttpTransport>(t.reactor, o);
  int delivered = 0;
  Transport::Done next = [&](SendResult r) {
    if (r.outcome == SendOutcome::delivered) ++delivered;
    if (delivered < 3)
      transport->send(make_batch("b-" + std::to_string(delivered), "x"), next);
    else
      transport.reset();
  };
  transport->send(make_batch("b-start", "x"), next);
  REQUIRE(t.run_until([&] { return transport == nullptr; }));
  CHECK(delivered == 3);
  CHECK(server.requests().size() == 3);
}

TEST_CASE("http: the bearer token never appears in a detail", "[http]") {
  TestLoop t;
  TempDir dir;
  const std::string token = "tok-SECRET-4242-zz";
  HttpOptions o;
  o.token_file = dir.write("token", token + "\n");

  SECTION("a collector that echoes it back") {
    HttpTestServer server({401, "bad token " + token, {}, 0ms});
    o.url = server.url();
    HttpTransport transport(t.reactor, o);
    const SendResult r = send_one(t, transport, make_batch("b", "x"));
    CHECK(r.outcome == SendOutcome::rejected);
    CHECK(server.requests().at(0).header("authorization") == "Bearer " + token);
    CHECK_THAT(r.detail, Catch::StartsWith("HTTP 401: bad token"));
    CHECK(r.detail.find("SECRET") == std::string::npos);
  }
  SECTION("refused, timed out, token file gone") {
    DeadPort dead;
    o.url = "http://127.0.0.1:" + std::to_string(dead.port) + "/";
    HttpTransport refused(t.reactor, o);
    CHECK(send_one(t, refused, make_batch("b", "x")).detail.find("SECRET") == std::string::npos);

    HttpTestServer slow({204, "", {}, 2000ms});
    o.url = slow.url();
    o.timeout = 300ms;
    HttpTransport late(t.reactor, o);
    const SendResult r = send_one(t, late, make_batch("b", "x"));
    CHECK(r.detail == "timed out after 300ms");

    fs::remove(o.token_file);
    const SendResult gone = send_one(t, late, make_batch("b", "x"));
    CHECK(gone.outcome == SendOutcome::retry);
    CHECK(gone.detail.find("SECRET") == std::string::npos);
  }
}

TEST_CASE("http: set-up errors are thrown with a clear message", "[http]") {
  TestLoop t;
  HttpOptions o;
  o.url = "http://127.0.0.1:9/write";
  o.token_file = "/nonexistent/outpost-token";
  CHECK_THROWS_WITH(HttpTransport(t.reactor, o), Catch::Contains("/nonexistent/outpost-token"));
  o.token_file.clear();
  o.ca_file = "/nonexistent/ca.pem";
  CHECK_THROWS_WITH(HttpTransport(t.reactor, o), Catch::Contains("CA file /nonexistent/ca.pem"));
  o.ca_file.clear();
  o.url = "ftp://127.0.0.1/write";
  CHECK_THROWS_WITH(HttpTransport(t.reactor, o), Catch::Contains("neither http nor https"));
}

TEST_CASE("http: TLS with a CA file is delivered with the right CA and a certificate failure with another", "[http][tls]") {
  if (!has_openssl()) {
    WARN("the openssl binary is missing: TLS not tested");
    return;
  }
  TempDir dir;
  const std::string d = dir.path.string();
  const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  dir.write("ext.cnf", "subjectAltName=IP:127.0.0.1\n");
  const std::string make =
      "cd '" + d + "' && " +
      "openssl req -x509 " + ec + " -keyout ca.key -out ca.pem -days 1 -subj /CN=outpost-test-ca && " +
      "openssl req -x509 " + ec + " -keyout other.key -out other.pem -days 1 -subj /CN=outpost-other-ca && " +
      "openssl req " + ec + " -keyout server.key -out server.csr -subj /CN=127.0.0.1 && " +
      "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 1 "
      "-extfile ext.cnf";
  REQUIRE(std::system((make + " >/dev/null 2>&1").c_str()) == 0);

  TestLoop t;
  const int port = free_port();
  OpensslServer tls(d + "/server.pem", d + "/server.key", port);
  REQUIRE(tls.wait_listening());
  HttpOptions o;
  o.url = "https://127.0.0.1:" + std::to_string(port) + "/write";
  o.content_type = "text/plain";

  {  // another CA first: s_server serves one connection at a time
    o.ca_file = d + "/other.pem";
    HttpTransport transport(t.reactor, o);
    const SendResult r = send_one(t, transport, make_batch("b-tls", "x"));
    CHECK(r.outcome == SendOutcome::retry);
    CHECK(r.status == 0);
    CHECK_THAT(r.detail, Catch::StartsWith("TLS: ") && Catch::Contains("certificate"));
  }
  {
    o.ca_file = d + "/ca.pem";
    HttpTransport transport(t.reactor, o);
    // s_server prints what arrives; the test answers once the whole request is there.
    bool answered = false;
    t.loop.watch(tls.out_fd(), [&] {
      tls.read_some();
      if (!answered && tls.output().find("\r\n\r\nline=tls") != std::string::npos) {
        answered = true;
        tls.answer("HTTP/1.1 204 No Content\r\n\r\n");
      }
    });
    const SendResult r = send_one(t, transport, make_batch("b-tls", "line=tls"));
    t.loop.unwatch(tls.out_fd());
    CHECK(r.outcome == SendOutcome::delivered);
    CHECK(r.status == 204);
    CHECK_THAT(tls.output(), Catch::Contains("X-Outpost-Batch-Id: b-tls"));
  }
}
