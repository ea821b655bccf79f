#include "dns.hpp"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
// After <time.h>: scm_timestamping holds struct timespec.
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <tins/tins.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

namespace outpost {
namespace {

using Bytes = std::span<const std::uint8_t>;

constexpr std::size_t kHeaderSize = 12;
constexpr std::size_t kMaxNameWire = 255;

struct TypeName {
  std::uint16_t type;
  std::string_view name;
};
constexpr TypeName kTypes[] = {{1, "A"},    {2, "NS"},  {5, "CNAME"}, {6, "SOA"},
                               {12, "PTR"}, {15, "MX"}, {16, "TXT"},  {28, "AAAA"}};
enum : std::uint16_t { kA = 1, kNS = 2, kCNAME = 5, kSOA = 6, kPTR = 12, kMX = 15, kTXT = 16, kAAAA = 28 };

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view strip_final_dot(std::string_view s) {
  if (s.size() > 1 && s.back() == '.') s.remove_suffix(1);
  return s;
}

// Appends one byte of a label (in_name) or of TXT text, so that the result is printable ASCII.
void append_escaped(std::string& out, std::uint8_t c, bool in_name) {
  if (c == '\\' || (in_name && c == '.')) {
    out += '\\';
    out += static_cast<char>(c);
  } else if ((c > 0x20 && c < 0x7f) || (!in_name && c == ' ')) {
    out += static_cast<char>(c);
  } else {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\%03u", c);
    out += buf;
  }
}

// Bounds-checked reads from one message. Each returns false after noting why;
// `ran_out` tells a message that ends too early from one that is wrong.
class MessageReader {
 public:
  explicit MessageReader(Bytes m) : m_(m) {}

  std::size_t size() const { return m_.size(); }
  const std::uint8_t* at(std::size_t pos) const { return m_.data() + pos; }
  const std::string& why() const { return why_; }
  bool ran_out() const { return ran_out_; }

  bool bad(std::string why, bool ran_out = false) {
    why_ = std::move(why);
    ran_out_ = ran_out;
    return false;
  }
  bool need(std::size_t pos, std::size_t n, std::size_t end, const char* what) {
    if (pos <= end && n <= end - pos) return true;
    return bad(std::string(what) + " runs past the end", end == m_.size());
  }
  bool u16(std::size_t& pos, std::size_t end, std::uint16_t& v) {
    if (!need(pos, 2, end, "a 16-bit field")) return false;
    v = static_cast<std::uint16_t>(m_[pos] << 8 | m_[pos + 1]);
    pos += 2;
    return true;
  }
  bool u32(std::size_t& pos, std::size_t end, std::uint32_t& v) {
    if (!need(pos, 4, end, "a 32-bit field")) return false;
    v = static_cast<std::uint32_t>(m_[pos]) << 24 | m_[pos + 1] << 16 | m_[pos + 2] << 8 | m_[pos + 3];
    pos += 4;
    return true;
  }

  // The (possibly compressed) name at pos; pos moves past its inline part.
  // Every pointer must point strictly before the previous jump's target (the
  // name's own start for the first): the targets decrease, so no loop.
  bool name(std::size_t& pos, std::string& out) {
    out.clear();
    std::size_t cur = pos, floor = pos, wire = 0;
    bool jumped = false;
    for (;;) {
      if (cur >= m_.size()) return bad("a name runs past the end", true);
      const std::uint8_t len = m_[cur];
      if ((len & 0xC0) == 0xC0) {
        if (cur + 1 >= m_.size()) return bad("a compression pointer runs past the end", true);
        const std::size_t target = static_cast<std::size_t>(len & 0x3F) << 8 | m_[cur + 1];
        if (!jumped) pos = cur + 2;
        jumped = true;
        if (target < kHeaderSize) return bad("a compression pointer into the header");
        if (target >= floor) return bad("a compression pointer that does not point backwards");
        cur = floor = target;
        continue;
      }
      if (len & 0xC0) return bad("an unsupported label type");
      wire += 1 + static_cast<std::size_t>(len);
      if (wire > kMaxNameWire) return bad("a name longer than 255 bytes");
      if (len == 0) break;
      if (len > m_.size() - cur - 1) return bad("a label runs past the end", true);
      if (!out.empty()) out += '.';
      for (std::size_t i = 1; i <= len; ++i) append_escaped(out, m_[cur + i], true);
      cur += 1 + static_cast<std::size_t>(len);
    }
    if (!jumped) pos = cur + 1;
    if (out.empty()) out = ".";
    return true;
  }

  // A name inside record data that ends at `end`.
  bool name_to(std::size_t& pos, std::size_t end, std::string& out) {
    if (!name(pos, out)) return false;
    return pos <= end || bad("a name runs past its record's data");
  }

 private:
  Bytes m_;
  std::string why_;
  bool ran_out_ = false;
};

// The record data [pos, end) of a record of this type, as text.
bool format_rdata(MessageReader& r, std::uint16_t type, std::size_t pos, std::size_t end, std::string& out) {
  const std::size_t size = end - pos;
  switch (type) {
    case kA:
      if (size != 4) return r.bad("an A record's data is not 4 bytes");
      out = IpAddress::v4_bytes(r.at(pos)).to_string();
      return true;
    case kAAAA:
      if (size != 16) return r.bad("an AAAA record's data is not 16 bytes");
      out = IpAddress::v6_bytes(r.at(pos)).to_string();
      return true;
    case kNS:
    case kCNAME:
    case kPTR:
      if (!r.name_to(pos, end, out)) return false;
      break;
    case kMX: {
      std::uint16_t preference = 0;
      std::string exchange;
      if (!r.u16(pos, end, preference) || !r.name_to(pos, end, exchange)) return false;
      out = std::to_string(preference) + " " + exchange;
      break;
    }
    case kSOA: {
      std::string mname, rname;
      if (!r.name_to(pos, end, mname) || !r.name_to(pos, end, rname)) return false;
      out = mname + " " + rname;
      for (int i = 0; i < 5; ++i) {  // serial refresh retry expire minimum
        std::uint32_t v = 0;
        if (!r.u32(pos, end, v)) return false;
        out += " " + std::to_string(v);
      }
      break;
    }
    case kTXT:
      if (size == 0) return r.bad("a TXT record without a string");
      out.clear();
      while (pos < end) {
        const std::size_t len = *r.at(pos++);
        if (!r.need(pos, len, end, "a TXT string")) return false;
        for (std::size_t i = 0; i < len; ++i) append_escaped(out, *r.at(pos + i), false);
        pos += len;
      }
      break;
    default: {  // RFC 3597
      out = "\\# " + std::to_string(size);
      if (size) out += ' ';
      char hex[3];
      for (; pos < end; ++pos) {
        std::snprintf(hex, sizeof hex, "%02x", *r.at(pos));
        out += hex;
      }
      return true;
    }
  }
  return pos == end || r.bad("record data longer than its contents");
}

bool read_record(MessageReader& r, std::size_t& pos, DnsRecord& rec) {
  std::uint16_t rdlength = 0;
  const std::size_t end = r.size();
  if (!r.name(pos, rec.name) || !r.u16(pos, end, rec.type) || !r.u16(pos, end, rec.rclass) ||
      !r.u32(pos, end, rec.ttl) || !r.u16(pos, end, rdlength) || !r.need(pos, rdlength, end, "record data"))
    return false;
  // Data that does not fit its type is wrong, even where it ends the message.
  if (!format_rdata(r, rec.type, pos, pos + rdlength, rec.data)) return r.bad(r.why());
  pos += rdlength;
  return true;
}

bool same_name(std::string_view parsed, std::string_view asked) {
  return iequals(parsed == "." ? std::string_view() : parsed, asked);
}

std::uint16_t random_id() {
  std::uint16_t id = 0;
  if (getrandom(&id, sizeof id, GRND_NONBLOCK) == static_cast<ssize_t>(sizeof id)) return id;
  return static_cast<std::uint16_t>(std::random_device{}());
}

std::string errno_text(std::string_view what, int err) { return std::string(what) + ": " + std::strerror(err); }

WallTime wall_from(const timespec& ts) {
  return WallTime(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
}

// What the control messages of one recvmsg carry.
struct Ancillary {
  std::optional<WallTime> stamp;  // SCM_TIMESTAMPING's software stamp, or SCM_TIMESTAMPNS
  int ttl = -1;
  std::optional<sock_extended_err> error;
  IpAddress offender;
};

Ancillary read_ancillary(msghdr& msg) {
  Ancillary a;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    const std::size_t data_len = c->cmsg_len - CMSG_LEN(0);
    const void* data = CMSG_DATA(c);
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPING && data_len >= sizeof(scm_timestamping)) {
      scm_timestamping ts;
      std::memcpy(&ts, data, sizeof ts);
      if (ts.ts[0].tv_sec || ts.ts[0].tv_nsec) a.stamp = wall_from(ts.ts[0]);
    } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS && data_len >= sizeof(timespec)) {
      timespec ts;
      std::memcpy(&ts, data, sizeof ts);
      a.stamp = wall_from(ts);
    } else if (((c->cmsg_level == SOL_IP && c->cmsg_type == IP_TTL) ||
                (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)) &&
               data_len >= sizeof(int)) {
      std::memcpy(&a.ttl, data, sizeof(int));
    } else if (((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
                (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)) &&
               data_len >= sizeof(sock_extended_err)) {
      a.error.emplace();
      std::memcpy(&*a.error, data, sizeof(sock_extended_err));
      sockaddr_storage offender{};
      std::memcpy(&offender, static_cast<const std::uint8_t*>(data) + sizeof(sock_extended_err),
                  std::min(data_len - sizeof(sock_extended_err), sizeof offender));
      if (auto addr = IpAddress::from_sockaddr(offender)) a.offender = *addr;
    }
  }
  return a;
}

bool is_unreachable_errno(int err) { return err == ECONNREFUSED || err == EHOSTUNREACH || err == ENETUNREACH; }

}  // namespace

std::optional<std::uint16_t> dns_type_from_name(std::string_view name) {
  for (const auto& t : kTypes)
    if (iequals(t.name, name)) return t.type;
  return std::nullopt;
}

std::string dns_type_name(std::uint16_t type) {
  for (const auto& t : kTypes)
    if (t.type == type) return std::string(t.name);
  return "TYPE" + std::to_string(type);
}

std::string dns_rcode_name(int rcode) {
  static constexpr std::string_view names[] = {"NOERROR",  "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
                                               "YXDOMAIN", "YXRRSET", "NXRRSET",  "NOTAUTH",  "NOTZONE"};
  if (rcode >= 0 && rcode < static_cast<int>(std::size(names))) return std::string(names[rcode]);
  return "RCODE" + std::to_string(rcode);
}

std::optional<std::string> normalize_dns_name(std::string_view name, std::string* error) {
  if (name == ".") return std::string();
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  auto fail = [&](std::string why) -> std::optional<std::string> {
    *error = "bad query name '" + std::string(name) + "': " + why;
    return std::nullopt;
  };
  if (name.empty()) return fail("empty");
  if (name.size() > 253) return fail("longer than 253 characters");
  std::size_t label = 0;
  for (char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '.') {
      if (label == 0) return fail("an empty label");
      label = 0;
    } else if (c < 0x21 || c > 0x7e || c == '\\') {
      return fail("only printable ASCII without spaces or backslashes");
    } else if (++label > 63) {
      return fail("a label longer than 63 characters");
    }
  }
  if (label == 0) return fail("an empty label");
  return std::string(name);
}

std::vector<std::uint8_t> forge_dns_query(std::uint16_t id, const DnsQuestion& question) {
  Tins::DNS dns;
  dns.id(id);
  dns.type(Tins::DNS::QUERY);
  dns.recursion_desired(1);
  dns.add_query(Tins::DNS::query(question.name, static_cast<Tins::DNS::QueryType>(question.type),
                                 static_cast<Tins::DNS::QueryClass>(question.qclass)));
  return dns.serialize();
}

DnsParseResult parse_dns_response(Bytes m, std::uint16_t expected_id, const DnsQuestion& question) {
  auto fail = [](DnsParseError e, std::string detail) { return DnsParseResult{std::nullopt, e, std::move(detail)}; };
  if (m.size() < kHeaderSize)
    return fail(DnsParseError::malformed, "shorter than a DNS header (" + std::to_string(m.size()) + " bytes)");
  MessageReader r(m);
  std::size_t pos = 0;
  std::uint16_t flags = 0;
  std::array<std::uint16_t, 4> counts{};  // question, answer, authority, additional
  DnsResponse resp;
  r.u16(pos, m.size(), resp.id);
  r.u16(pos, m.size(), flags);
  for (auto& c : counts) r.u16(pos, m.size(), c);
  if (resp.id != expected_id) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "id 0x%04x, expected 0x%04x", resp.id, expected_id);
    return fail(DnsParseError::wrong_id, buf);
  }
  if (!(flags & 0x8000)) return fail(DnsParseError::not_a_response, "a query, not a response");
  if (const int opcode = flags >> 11 & 0xF; opcode != 0)
    return fail(DnsParseError::not_a_response, "opcode " + std::to_string(opcode) + ", not QUERY");
  resp.authoritative = flags & 0x0400;
  resp.truncated = flags & 0x0200;
  resp.rcode = flags & 0xF;

  if (counts[0] > 1) return fail(DnsParseError::malformed, std::to_string(counts[0]) + " questions");
  if (counts[0] == 0 && resp.rcode == 0) return fail(DnsParseError::wrong_question, "no question in a NOERROR answer");
  if (counts[0] == 1) {
    std::string name;
    std::uint16_t type = 0, qclass = 0;
    if (!r.name(pos, name) || !r.u16(pos, m.size(), type) || !r.u16(pos, m.size(), qclass))
      return fail(DnsParseError::malformed, "question: " + r.why());
    if (!same_name(name, question.name) || type != question.type || qclass != question.qclass)
      return fail(DnsParseError::wrong_question,
                  "question " + name + " " + dns_type_name(type) + " class " + std::to_string(qclass) + ", expected " +
                      (question.name.empty() ? "." : question.name) + " " + dns_type_name(question.type));
  }
  static constexpr const char* sections[] = {"answer", "authority", "additional"};
  for (int s = 0; s < 3; ++s) {
    for (unsigned i = 0; i < counts[s + 1]; ++i) {
      DnsRecord rec;
      if (!read_record(r, pos, rec)) {
        if (resp.truncated && r.ran_out()) return {std::move(resp), DnsParseError::none, {}};
        return fail(DnsParseError::malformed, std::string(sections[s]) + " record " + std::to_string(i + 1) + " of " +
                                                  std::to_string(counts[s + 1]) + ": " + r.why());
      }
      if (s == 0) resp.answers.push_back(std::move(rec));
    }
  }
  return {std::move(resp), DnsParseError::none, {}};
}

std::string check_dns_expect(const std::vector<std::string>& expect, const DnsAnswerInfo& info) {
  std::vector<std::string> missing;
  for (const auto& want : expect) {
    const bool found = std::any_of(info.answers.begin(), info.answers.end(), [&](const std::string& got) {
      return iequals(strip_final_dot(want), strip_final_dot(got));
    });
    if (!found) missing.push_back(want);
  }
  if (missing.empty()) return {};
  auto list = [](const std::vector<std::string>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
    return s + "]";
  };
  return "expected " + list(missing) + " among the answers, got " + info.rcode + " " + list(info.answers);
}

// ---------------------------------------------------------------- the probe

void keep_kernel_timestamps_on() {
  static const int holder = [] {
    const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fd;
    const int stamping = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &stamping, sizeof stamping);
    // The kernel switches stamps on a moment later (a deferred work item):
    // wait, at most 0.2 s once per process, until a datagram to ourselves on
    // loopback comes stamped. The wait is by the clock, with a pause between
    // tries: an unstamped datagram comes back at once, so a count of tries
    // alone can run out well before the kernel has caught up.
    const timeval wait{0, 2000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    sockaddr_in self{};
    self.sin_family = AF_INET;
    self.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof self;
    if (bind(fd, reinterpret_cast<sockaddr*>(&self), len) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&self), &len) != 0)
      return fd;  // no loopback here: stamps come when they come
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    for (bool first = true; first || std::chrono::steady_clock::now() < deadline; first = false) {
      if (!first) {
        const timespec pause{0, 200'000};
        nanosleep(&pause, nullptr);
      }
      char byte = 0;
      sendto(fd, &byte, 1, 0, reinterpret_cast<sockaddr*>(&self), len);
      char control[256];
      iovec iov{&byte, 1};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      if (recvmsg(fd, &msg, 0) != 1) continue;
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        const auto* ts = reinterpret_cast<const timespec*>(CMSG_DATA(c));
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPING && (ts[0].tv_sec || ts[0].tv_nsec))
          return fd;
      }
    }
    return fd;  // never closed: it holds the kernel's timestamping on
  }();
  (void)holder;
}

DnsProbe::DnsProbe(IpAddress server, DnsProbeSpec spec, Duration timeout)
    : server_(server), spec_(std::move(spec)), timeout_(timeout) {
  keep_kernel_timestamps_on();
  result_.target = server_;
  result_.dns.emplace();
  result_.dns->query = spec_.question.name.empty() ? "." : spec_.question.name;
  result_.dns->qtype = dns_type_name(spec_.question.type);
}

DnsProbe::~DnsProbe() {
  close_fd(tcp_);
  close_fd(udp_);
}

void DnsProbe::close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

bool DnsProbe::open_udp(std::string* error) {
  auto fail = [&](std::string_view what, int err) {
    *error = errno_text(what, err);
    return false;
  };
  const bool v6 = server_.is_v6();
  udp_ = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (udp_ < 0) return fail("UDP socket", errno);
  // Software stamps, TX ones on the error queue without a copy of the packet.
  // Where the kernel refuses, RX stamps only: the send time is then read in
  // user space, and the record says so (rtt_clock).
  const int stamping = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE |
                       SOF_TIMESTAMPING_OPT_TSONLY;
  const int on = 1;
  if (setsockopt(udp_, SOL_SOCKET, SO_TIMESTAMPING, &stamping, sizeof stamping) != 0)
    setsockopt(udp_, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
  // ICMP errors (with who sent them) on the error queue; the answer's TTL.
  setsockopt(udp_, v6 ? SOL_IPV6 : SOL_IP, v6 ? IPV6_RECVERR : IP_RECVERR, &on, sizeof on);
  setsockopt(udp_, v6 ? SOL_IPV6 : SOL_IP, v6 ? IPV6_RECVHOPLIMIT : IP_RECVTTL, &on, sizeof on);
  sockaddr_storage sa{};
  const socklen_t len = server_.to_sockaddr(sa, spec_.port);
  // No bind: connect picks the source address and a random ephemeral port.
  if (connect(udp_, reinterpret_cast<const sockaddr*>(&sa), len) != 0) {
    const int err = errno;
    return fail("connect to " + server_.to_string(), err);
  }
  return true;
}

void DnsProbe::start(ProbeContext& ctx) {
  result_.sent = ctx.wall_now();
  id_ = random_id();
  query_ = forge_dns_query(id_, spec_.question);
  std::string error;
  if (!open_udp(&error)) return finish(ProbeStatus::error, error);
  if (!ctx.watch(udp_, EPOLLIN))
    return finish(ProbeStatus::error, "dns probes need an event loop to watch their socket");
  result_.sent = ctx.wall_now();  // replaced by the kernel's TX stamp when it comes
  if (send(udp_, query_.data(), query_.size(), 0) < 0) {
    const int err = errno;
    ctx.count_socket_send(false);
    return finish(is_unreachable_errno(err) ? ProbeStatus::unreachable : ProbeStatus::error, errno_text("send", err));
  }
  ctx.count_socket_send(true);
  ctx.arm_timeout(timeout_);
}

void DnsProbe::on_ready(ProbeContext& ctx, int fd, std::uint32_t) {
  if (finished_) return;
  if (fd == udp_ && udp_ >= 0) {
    if (truncated_) return drain_udp();  // answered already: TCP is under way
    read_error_queue();
    if (!finished_) read_udp(ctx);
  } else if (fd == tcp_ && tcp_ >= 0) {
    on_tcp_ready();
  }
}

// While TCP is tried: whatever else comes to the UDP socket is dropped, so
// that its readiness does not stay raised.
void DnsProbe::drain_udp() {
  std::array<std::uint8_t, 512> sink;
  while (recv(udp_, sink.data(), sink.size(), MSG_DONTWAIT | MSG_TRUNC) >= 0) {
  }
  while (recv(udp_, sink.data(), sink.size(), MSG_DONTWAIT | MSG_ERRQUEUE) >= 0) {
  }
}

// The error queue: our TX timestamp, and ICMP errors about the query.
void DnsProbe::read_error_queue() {
  for (;;) {
    std::array<std::uint8_t, 512> payload;  // an ICMP error's quote of our query (TX stamps carry none)
    alignas(cmsghdr) std::array<std::uint8_t, 512> control;
    iovec iov{payload.data(), payload.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    if (recvmsg(udp_, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) return;  // EAGAIN: drained
    const Ancillary a = read_ancillary(msg);
    if (!a.error) continue;
    const auto& ee = *a.error;
    if (ee.ee_origin == SO_EE_ORIGIN_TIMESTAMPING) {
      if (a.stamp && !result_.sent_kernel_stamp) {
        result_.sent = *a.stamp;
        result_.sent_kernel_stamp = true;
      }
    } else if (ee.ee_origin == SO_EE_ORIGIN_ICMP || ee.ee_origin == SO_EE_ORIGIN_ICMP6) {
      result_.icmp_type = ee.ee_type;
      result_.icmp_code = ee.ee_code;
      result_.reply_from = a.offender;
      result_.reply_ttl = a.ttl;  // the ICMP error's own TTL (IP_RECVTTL applies to the error queue too)
      if (a.stamp) result_.rtt = *a.stamp - result_.sent;
      const std::uint8_t proto =
          ee.ee_origin == SO_EE_ORIGIN_ICMP ? std::uint8_t{IPPROTO_ICMP} : std::uint8_t{IPPROTO_ICMPV6};
      return finish(ProbeStatus::unreachable, describe_icmp_error(proto, ee.ee_type, ee.ee_code));
    }
  }
}

void DnsProbe::read_udp(ProbeContext& ctx) {
  // One buffer for every probe (the agent is one thread): a fresh 64 KiB
  // vector per answer cost more than the rest of reading it.
  static thread_local std::array<std::uint8_t, 65536> buf;
  while (!finished_ && udp_ >= 0) {
    alignas(cmsghdr) std::array<std::uint8_t, 256> control;
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    const ssize_t n = recvmsg(udp_, &msg, MSG_DONTWAIT);
    if (n < 0) {
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) return;
      return finish(is_unreachable_errno(err) ? ProbeStatus::unreachable : ProbeStatus::error,
                    errno_text("receive", err));
    }
    const Ancillary a = read_ancillary(msg);
    auto parsed = parse_dns_response(Bytes(buf.data(), static_cast<std::size_t>(n)), id_, spec_.question);
    if (!parsed.response) {
      ++result_.dns->ignored;
      result_.dns->last_ignored = std::move(parsed.detail);
      continue;
    }
    on_udp_answer(ctx, *parsed.response, a.stamp, a.ttl);
  }
}

void DnsProbe::on_udp_answer(ProbeContext& ctx, const DnsResponse& response, std::optional<WallTime> rx, int ttl) {
  auto& dns = *result_.dns;
  result_.reply_from = server_;
  result_.reply_ttl = ttl;
  if (result_.sent_kernel_stamp && rx) {
    dns.rtt_clock = "kernel";
  } else {
    // No TX stamp (SO_TIMESTAMPING refused, or it never came): the send time is
    // the wall clock read before send(); the record says so.
    dns.rtt_clock = rx ? "kernel_rx" : "user";
    if (!rx) rx = std::chrono::time_point_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now());
  }
  result_.rtt = *rx - result_.sent;
  if (!response.truncated) return finish_answer(response, "udp");
  dns.truncated = true;
  truncated_ = response;
  start_tcp(ctx);
}

void DnsProbe::start_tcp(ProbeContext& ctx) {
  // The TCP exchange is timed with the steady clock (connect to answer): the
  // record's rtt stays the UDP round trip from kernel stamps.
  tcp_started_ = std::chrono::steady_clock::now();
  tcp_ = socket(server_.is_v6() ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (tcp_ < 0) return give_up_tcp(errno_text("TCP socket", errno));
  sockaddr_storage sa{};
  const socklen_t len = server_.to_sockaddr(sa, spec_.port);
  if (connect(tcp_, reinterpret_cast<const sockaddr*>(&sa), len) != 0 && errno != EINPROGRESS)
    return give_up_tcp(errno_text("TCP connect", errno));
  tcp_out_ = {static_cast<std::uint8_t>(query_.size() >> 8), static_cast<std::uint8_t>(query_.size())};
  tcp_out_.insert(tcp_out_.end(), query_.begin(), query_.end());
  // Edge-triggered: once when the connection is up (and the query goes out),
  // then when the answer comes, without waking for a socket that stays
  // writable meanwhile.
  if (!ctx.watch(tcp_, EPOLLIN | EPOLLOUT | EPOLLET)) return give_up_tcp("no event loop to watch the TCP socket");
}

void DnsProbe::on_tcp_ready() {
  if (tcp_written_ < tcp_out_.size()) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(tcp_, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err)
      return give_up_tcp(errno_text("TCP connect", err));
    const ssize_t n = send(tcp_, tcp_out_.data() + tcp_written_, tcp_out_.size() - tcp_written_, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      return give_up_tcp(errno_text("TCP send", errno));
    }
    tcp_written_ += static_cast<std::size_t>(n);
    if (tcp_written_ < tcp_out_.size()) return;  // the rest when there is room (the next edge)
  }
  for (;;) {
    std::array<std::uint8_t, 4096> chunk;
    const ssize_t n = recv(tcp_, chunk.data(), chunk.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      return give_up_tcp(errno_text("TCP receive", errno));
    }
    if (n == 0) return give_up_tcp("the server closed the TCP connection before the whole answer");
    tcp_in_.insert(tcp_in_.end(), chunk.begin(), chunk.begin() + n);
    if (tcp_in_.size() < 2) continue;
    const std::size_t size = static_cast<std::size_t>(tcp_in_[0] << 8 | tcp_in_[1]);
    if (tcp_in_.size() < 2 + size) continue;
    auto parsed = parse_dns_response(Bytes(tcp_in_.data() + 2, size), id_, spec_.question);
    if (!parsed.response) return give_up_tcp("TCP answer: " + parsed.detail);
    result_.dns->tcp_time = std::chrono::steady_clock::now() - tcp_started_;
    return finish_answer(*parsed.response, "tcp");
  }
}

void DnsProbe::give_up_tcp(std::string why) {
  result_.dns->tcp_error = std::move(why);
  finish_answer(*truncated_, "udp");
}

void DnsProbe::finish_answer(const DnsResponse& response, const char* transport) {
  auto& dns = *result_.dns;
  dns.rcode = dns_rcode_name(response.rcode);
  dns.answers.clear();
  for (const auto& rec : response.answers) dns.answers.push_back(rec.data);
  dns.transport = transport;
  std::string unmet = check_dns_expect(spec_.expect, dns);
  const ProbeStatus status = unmet.empty() ? ProbeStatus::reply : ProbeStatus::error;
  finish(status, std::move(unmet));
}

void DnsProbe::on_timeout() {
  if (finished_) return;
  if (truncated_) return give_up_tcp("no answer over TCP within the timeout");
  finish(ProbeStatus::timeout);
}

void DnsProbe::finish(ProbeStatus status, std::string error) {
  finished_ = true;
  result_.status = status;
  result_.error = std::move(error);
}

}  // namespace outpost
