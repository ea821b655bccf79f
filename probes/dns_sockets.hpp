// The UDP sockets that DNS queries to one server share, a few at a time: a
// connected socket takes at most kDnsQueriesPerSocket queries, for at most
// kDnsSocketLifetime after it was opened, and then a fresh one (with a fresh
// random source port) takes over. What the socket reads goes to its query
// by the DNS id (answers, and the quotes of ICMP errors), the kernel's send
// stamps by the socket's count of sends (SOF_TIMESTAMPING_OPT_ID).
// Leaves to others: what a query asks and what its answer means (dns.hpp),
// the event loop that watches the sockets (Engine::FdService).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "clock.hpp"
#include "ip_address.hpp"
#include "probe.hpp"

namespace outpost {

// At most this many datagrams (and as many error-queue messages) are read
// from a probe's UDP socket per readiness, and none more once this many
// bytes were: each byte may cost kDnsStepsPerByte steps to parse. The
// socket is watched level-triggered, so the loop wakes again for the rest
// after its timers, signals and other sockets have had their turn: a server
// that floods its answers cannot hold the loop.
inline constexpr int kDnsMaxDatagramsPerWake = 64;
inline constexpr std::size_t kDnsMaxBytesPerWake = 128 * 1024;

// A socket per query cost about 12 system calls (socket, four options,
// connect, two epoll_ctl, close...) where the query itself needs two: at
// 5,000 queries/s that was most of the agent's CPU. Shared by 64 queries
// opened within 1 s, a socket costs a query a fifth of a call, and a forger
// off the path still has to hit a random port (a new one at least every
// second and every 64 queries) and a random id drawn for each query.
inline constexpr std::uint32_t kDnsQueriesPerSocket = 64;
inline constexpr Duration kDnsSocketLifetime = std::chrono::seconds(1);

// What one read of a DNS socket gave.
struct DnsSocketMessage {
  enum class Kind : std::uint8_t { answer, sent_stamp, icmp_error, ignored };
  Kind kind = Kind::answer;
  std::span<const std::uint8_t> payload;  // answer: the datagram; icmp_error: the quote of our query
  std::optional<WallTime> stamp;          // the kernel's: of the answer or error arriving, or of the send
  int ttl = -1;                           // of the answer, or of the ICMP error
  std::uint32_t key = 0;                  // sent_stamp: which send of the socket (SOF_TIMESTAMPING_OPT_ID)
  std::uint8_t icmp_proto = 0;            // icmp_error: IPPROTO_ICMP or IPPROTO_ICMPV6
  int icmp_type = -1;
  int icmp_code = -1;
  IpAddress offender;                     // icmp_error: who sent it
  const char* why = nullptr;              // ignored: why
};

enum class DnsRead : std::uint8_t { message, skipped, drained, failed };

// One recvmsg on a DNS socket, from its error queue when `errqueue`:
// message (in *out, its payload in buf), skipped (an error-queue entry of
// no use, or an ICMP error's errno on the normal queue: the error queue
// holds the error itself), drained (nothing more), failed (*err).
DnsRead read_dns_message(int fd, bool errqueue, std::span<std::uint8_t> buf, DnsSocketMessage* out, int* err);

// Switches kernel stamps on for a DNS socket: software TX stamps on the
// error queue without the packet (keyed by the send's count when `keyed`),
// RX stamps on answers; ICMP errors on the error queue, TTLs. False when the
// kernel takes no TX stamps (RX ones only, then) or, when keyed, no keys.
bool set_dns_socket_options(int fd, bool v6, bool keyed);

class DnsSockets {
 public:
  using Token = std::uint64_t;  // the engine's name for the query's probe
  using Deliver = std::function<void(Token, const DnsSocketMessage&)>;
  using Watch = std::function<void(int fd, std::uint32_t events, std::function<void(std::uint32_t)> ready)>;
  using Unwatch = std::function<void(int fd)>;

  // deliver is called from ready callbacks and flush(), never from open,
  // send or close.
  DnsSockets(const Clock& clock, Watch watch, Unwatch unwatch, Deliver deliver);
  ~DnsSockets();
  DnsSockets(const DnsSockets&) = delete;
  DnsSockets& operator=(const DnsSockets&) = delete;

  struct Query {
    std::uint64_t socket = 0;
    std::uint16_t id = 0;
    explicit operator bool() const { return socket != 0; }
  };
  // A socket toward server:port for one more query, and an id drawn by
  // `draw` that no query in flight on that socket has. Empty, with *error,
  // when no socket could be opened.
  Query open(const IpAddress& server, std::uint16_t port, Token token, const std::function<std::uint16_t()>& draw,
             std::string* error);
  // Sends the query's datagram; false with *err (the socket then takes no
  // more queries: the kernel's count of its sends may have moved). May move
  // the query to a fresh socket (q->socket).
  bool send(Query* q, std::span<const std::uint8_t> datagram, int* err);
  // The kernel's stamp of the query leaving, once read.
  std::optional<WallTime> sent_stamp(const Query& q) const;
  // The query is over: what comes for its id from now on is for no query.
  void close(const Query& q);
  // Delivers the ICMP errors read while a send's stamp was: called where
  // the engine may finish probes (before the loop waits).
  void flush();

  std::uint64_t stray() const { return stray_; }  // answers and errors for no query in flight
  std::size_t sockets_open() const { return sockets_.size(); }
  std::uint16_t local_port(const Query& q) const;  // of the query's socket (0 once closed)

 private:
  struct Pending {
    std::uint16_t id = 0;
    Token token = 0;
    std::optional<std::uint32_t> key;  // the socket's count of sends, for its stamp
    std::optional<WallTime> stamp;
  };
  struct Socket {
    std::uint64_t serial = 0;
    int fd = -1;
    IpAddress server;
    std::uint16_t port = 0;
    SteadyTime opened{};
    bool keyed = true;     // stamps carry the count of sends
    bool retired = false;  // takes no more queries; closed when its last one is over
    int reading = 0;       // a read loop is on it: not closed meanwhile
    std::uint32_t queries = 0;
    std::uint32_t sends = 0;
    std::vector<Pending> pending;
  };
  struct Deferred {
    std::uint64_t socket;
    DnsSocketMessage message;
    std::vector<std::uint8_t> payload;
  };
  struct ServerKey {
    IpAddress server;
    std::uint16_t port;
    bool operator==(const ServerKey&) const = default;
  };
  struct ServerKeyHash {
    std::size_t operator()(const ServerKey& k) const noexcept { return k.server.hash() * 31 + k.port; }
  };

  Socket* find(std::uint64_t serial) const;
  Socket* open_socket(const IpAddress& server, std::uint16_t port, std::string* error);
  bool usable(const Socket& s, SteadyTime now) const;
  void retire(Socket& s);
  void close_if_done(Socket& s);
  void sweep(SteadyTime now);
  void on_ready(std::uint64_t serial, std::uint32_t events);
  void dispatch(Socket& s, const DnsSocketMessage& m);

  const Clock& clock_;
  Watch watch_;
  Unwatch unwatch_;
  Deliver deliver_;
  std::uint64_t next_serial_ = 1;
  std::unordered_map<std::uint64_t, std::unique_ptr<Socket>> sockets_;
  std::unordered_map<ServerKey, std::uint64_t, ServerKeyHash> current_;
  std::vector<Deferred> deferred_;
  SteadyTime last_sweep_{};
  std::uint64_t stray_ = 0;
};

}  // namespace outpost
