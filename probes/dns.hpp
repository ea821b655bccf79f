// The dns probe: one query in flight over UDP with kernel timestamps, retried
// over TCP when the answer comes back truncated, its answers checked against `expect`.
// Leaves to others: the message codec (dns_message.hpp), when to ask (agent
// scheduler), the event loop that watches its socket (engine).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dns_message.hpp"
#include "dns_sockets.hpp"
#include "socket_receive.hpp"  // keep_kernel_timestamps_on
#include "dns_tcp_framing.hpp"
#include "probe.hpp"

namespace outpost {

// Free text that a probe takes from what came over the network (why an
// answer was ignored, why TCP gave nothing, an unmet expect) is cut to this.
inline constexpr std::size_t kDnsMaxDetailText = 256;

struct DnsProbeSpec {
  DnsQuestion question;
  std::vector<std::string> expect;  // each must be among the answers (ASCII case and a final dot ignored)
  std::uint16_t port = 53;
};

// Empty when every expected string is among the answers; otherwise a message
// saying what was expected and what came.
std::string check_dns_expect(const std::vector<std::string>& expect, const DnsAnswerInfo& info);

// Whether an ICMP error's quote of a datagram we sent (the payload the kernel
// hands back with it, as much as the sender quoted) is this query: at least
// its id, and every byte quoted equal to the query's.
bool dns_error_quotes_query(std::span<const std::uint8_t> quoted, std::span<const std::uint8_t> query);

// One query to one server. UDP from a kernel-chosen port on a connected
// socket (the kernel drops datagrams from anyone else): one shared with
// other queries to the server when the context has shared sockets
// (dns_sockets.hpp: a datagram or ICMP error whose id is of no query in
// flight there is counted in the `ignored` of each query in flight on it),
// or one of its own. A reply with the wrong id or question, or malformed,
// is counted and ignored. Of the answer,
// the first kDnsMaxAnswersKept records are kept, each cut to
// kDnsMaxAnswerText characters, and the rest counted (answers_dropped);
// `expect` is checked against the records kept, before they are cut. RTT from
// SO_TIMESTAMPING (software TX stamp from the error queue, RX stamp on the
// reply). A truncated answer is asked again over TCP within the same timeout;
// the RTT stays the UDP one, the TCP exchange is timed apart (tcp_time).
// Status: any answer is reply (the rcode says the rest), unless `expect` is
// not met (error); an ICMP error about the query (IP_RECVERR: port
// unreachable, i.e. ECONNREFUSED, host unreachable, ...) is unreachable,
// when it quotes the query's id (dns_error_quotes_query): the kernel hands
// the socket any error that quotes its ports, which an off-path host can
// guess; one that does not prove it is ours is counted in `ignored`.
class DnsProbe final : public Probe {
 public:
  DnsProbe(IpAddress server, DnsProbeSpec spec, Duration timeout);
  ~DnsProbe() override;
  DnsProbe(const DnsProbe&) = delete;
  DnsProbe& operator=(const DnsProbe&) = delete;

  void start(ProbeContext& ctx) override;
  void on_sent(WallTime) override {}
  bool on_packet(const DecodedPacket&, WallTime) override { return false; }
  void on_timeout() override;
  void on_ready(ProbeContext& ctx, int fd, std::uint32_t events) override;
  void on_dns_message(ProbeContext& ctx, const DnsSocketMessage& message) override;
  bool finished() const override { return finished_; }
  const ProbeResult& result() const override { return result_; }

  std::uint16_t query_id() const { return id_; }  // random, chosen in start()

 private:
  bool open_udp(std::string* error);
  void start_shared(ProbeContext& ctx, DnsSockets& sockets, std::uint64_t token);
  void take_shared_stamp();
  void handle(ProbeContext& ctx, const DnsSocketMessage& m);
  void on_icmp_error(const DnsSocketMessage& m);
  void read_error_queue(int max_messages);
  void read_udp(ProbeContext& ctx);
  void drain_udp();
  void on_udp_answer(ProbeContext& ctx, const DnsResponse& response, std::optional<WallTime> rx, int ttl);
  void start_tcp(ProbeContext& ctx);
  void on_tcp_ready();
  void give_up_tcp(std::string why);
  void finish_answer(const DnsResponse& response, const char* transport);
  void finish(ProbeStatus status, std::string error = {});
  void close_fd(int& fd);

  IpAddress server_;
  DnsProbeSpec spec_;
  Duration timeout_;
  std::uint16_t id_ = 0;
  std::vector<std::uint8_t> query_;
  // Both watched by the engine; the UDP socket stays open (and drained)
  // while TCP is tried, so that its number cannot be reused while watched.
  int udp_ = -1;
  // Or the query on a socket shared with others (ProbeContext::dns_sockets).
  DnsSockets* shared_ = nullptr;
  DnsSockets::Query shared_query_;
  int tcp_ = -1;
  std::optional<DnsResponse> truncated_;  // the UDP answer, while TCP is tried
  std::vector<std::uint8_t> tcp_out_;     // length-prefixed query
  std::size_t tcp_written_ = 0;
  DnsTcpReader tcp_in_;
  std::chrono::steady_clock::time_point tcp_started_;
  ProbeResult result_;
  bool finished_ = false;
};

}  // namespace outpost
