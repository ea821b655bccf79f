#include "state_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

namespace outpost {
namespace {

using nlohmann::json;

// Bounds on what a file may hold, beyond its size.
constexpr std::size_t kMaxTargets = 1'000'000;
constexpr std::size_t kMaxMethods = 64;
constexpr std::size_t kMaxChanges = 4096;
constexpr std::size_t kMaxHops = 256;
constexpr std::size_t kMaxMpls = 16;
constexpr std::size_t kMaxText = 4096;

// A file that does not hold what it should: the message names where.
struct Bad : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::int64_t ns(WallTime t) { return t.time_since_epoch().count(); }
json opt_ns(const std::optional<WallTime>& t) { return t ? json(ns(*t)) : json(nullptr); }

const json& field(const json& object, const char* key, const std::string& where) {
  if (!object.is_object()) throw Bad(where + ": not an object");
  auto it = object.find(key);
  if (it == object.end()) throw Bad(where + ": no " + key);
  return *it;
}

bool boolean(const json& object, const char* key, const std::string& where) {
  const json& v = field(object, key, where);
  if (!v.is_boolean()) throw Bad(where + "." + key + ": not true or false");
  return v.get<bool>();
}

std::int64_t integer(const json& v, const std::string& where, std::int64_t lo, std::int64_t hi) {
  if (!v.is_number_integer()) throw Bad(where + ": not an integer");
  std::int64_t x = 0;
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) throw Bad(where + ": out of range");
    x = static_cast<std::int64_t>(u);
  } else {
    x = v.get<std::int64_t>();
  }
  if (x < lo || x > hi) throw Bad(where + ": out of range");
  return x;
}

std::int64_t integer(const json& object, const char* key, const std::string& where, std::int64_t lo,
                     std::int64_t hi) {
  return integer(field(object, key, where), where + "." + key, lo, hi);
}

int small(const json& object, const char* key, const std::string& where, int lo = -1, int hi = 1 << 20) {
  return static_cast<int>(integer(object, key, where, lo, hi));
}

WallTime wall(const json& v, const std::string& where) {
  return WallTime{} + Duration(integer(v, where, std::numeric_limits<std::int64_t>::min(),
                                       std::numeric_limits<std::int64_t>::max()));
}

WallTime wall(const json& object, const char* key, const std::string& where) {
  return wall(field(object, key, where), where + "." + key);
}

std::optional<WallTime> opt_wall(const json& v, const std::string& where) {
  if (v.is_null()) return std::nullopt;
  return wall(v, where);
}

std::string text(const json& object, const char* key, const std::string& where) {
  const json& v = field(object, key, where);
  if (!v.is_string()) throw Bad(where + "." + key + ": not a string");
  auto s = v.get<std::string>();
  if (s.size() > kMaxText) throw Bad(where + "." + key + ": too long");
  return s;
}

const json& array(const json& object, const char* key, const std::string& where, std::size_t max) {
  const json& v = field(object, key, where);
  if (!v.is_array()) throw Bad(where + "." + key + ": not an array");
  if (v.size() > max) throw Bad(where + "." + key + ": more than " + std::to_string(max) + " items");
  return v;
}

IpAddress address(const json& object, const char* key, const std::string& where) {
  const std::string s = text(object, key, where);
  if (s.empty()) return {};
  auto a = IpAddress::parse(s);
  if (!a) throw Bad(where + "." + key + ": not an address");
  return *a;
}

std::string addr_text(const IpAddress& a) { return a ? a.to_string() : std::string(); }

// ---- targets, groups, the vantage point ----

json encode_target(const TargetState& t) {
  json since = json::array();
  for (const auto& s : t.failing_since) since.push_back(opt_ns(s));
  json changes = json::array();
  for (WallTime c : t.changes) changes.push_back(ns(c));
  return {{"name", t.name},
          {"control", t.control},
          {"down", t.down},
          {"fails", t.fails},
          {"goods", t.goods},
          {"streak_start", ns(t.streak_start)},
          {"failing_since", since},
          {"ever_ok", t.ever_ok},
          {"last_ok", opt_ns(t.last_ok)},
          {"recovery_start", ns(t.recovery_start)},
          {"reported_down", t.reported_down},
          {"pending_down", t.pending_down},
          {"down_decided", ns(t.down_decided)},
          {"changes", changes},
          {"flapping", t.flapping}};
}

TargetState decode_target(const json& j, const std::string& where) {
  TargetState t;
  t.name = text(j, "name", where);
  t.control = boolean(j, "control", where);
  t.down = boolean(j, "down", where);
  t.fails = small(j, "fails", where, 0);
  t.goods = small(j, "goods", where, 0);
  t.streak_start = wall(j, "streak_start", where);
  const json& since = array(j, "failing_since", where, kMaxMethods);
  for (std::size_t i = 0; i < since.size(); ++i)
    t.failing_since.push_back(opt_wall(since[i], where + ".failing_since[" + std::to_string(i) + "]"));
  const json& ever = array(j, "ever_ok", where, kMaxMethods);
  for (const auto& e : ever) {
    if (!e.is_boolean()) throw Bad(where + ".ever_ok: not true or false");
    t.ever_ok.push_back(e.get<bool>());
  }
  t.last_ok = opt_wall(field(j, "last_ok", where), where + ".last_ok");
  t.recovery_start = wall(j, "recovery_start", where);
  t.reported_down = boolean(j, "reported_down", where);
  t.pending_down = boolean(j, "pending_down", where);
  t.down_decided = wall(j, "down_decided", where);
  const json& changes = array(j, "changes", where, kMaxChanges);
  for (std::size_t i = 0; i < changes.size(); ++i)
    t.changes.push_back(wall(changes[i], where + ".changes[" + std::to_string(i) + "]"));
  t.flapping = boolean(j, "flapping", where);
  return t;
}

// ---- traces: what the correlator and the break finder read, and the rest of a hop ----

std::optional<TraceMethod> method_of(const std::string& name) {
  if (name == "icmp") return TraceMethod::icmp;
  if (name == "udp") return TraceMethod::udp;
  if (name == "tcp") return TraceMethod::tcp;
  return std::nullopt;
}

json encode_trace(const TraceResult& r) {
  // A hop is an array (a trace is kept per target: the file's bulk):
  // [ttl, addr, rtt_ns|null, icmp_type, icmp_code, quoted_ttl, reply_ttl, probes_sent, is_target, mpls,
  // reused_from_ns|null] (files before reused hops have the first 10).
  json hops = json::array();
  for (const auto& h : r.hops) {
    json mpls = json::array();
    for (const auto& m : h.mpls) mpls.push_back({m.label, m.exp, m.bottom, m.ttl});
    hops.push_back({h.ttl, addr_text(h.addr), h.rtt ? json(h.rtt->count()) : json(nullptr), h.icmp_type, h.icmp_code,
                    h.quoted_ttl, h.reply_ttl, h.probes_sent, h.is_target, mpls,
                    h.reused_from ? json(ns(*h.reused_from)) : json(nullptr)});
  }
  const TraceSpec& s = r.spec;
  return {{"target", addr_text(r.target)},
          {"spec",
           {{"method", trace_method_name(s.method)},
            {"port", s.port},
            {"first_ttl", s.first_ttl},
            {"max_ttl", s.max_ttl},
            {"attempts", s.attempts},
            {"gap_limit", s.gap_limit},
            {"parallel", s.parallel},
            {"timeout", s.timeout.count()}}},
          {"started", ns(r.started)},
          {"hops", hops},
          {"reached", r.reached},
          {"stop_reason", r.stop_reason},
          {"flow_id", r.flow_id},
          {"error", r.error}};
}

TraceResult decode_trace(const json& j, const std::string& where) {
  TraceResult r;
  r.target = address(j, "target", where);
  const json& s = field(j, "spec", where);
  const std::string sw = where + ".spec";
  const auto method = method_of(text(s, "method", sw));
  if (!method) throw Bad(sw + ".method: not icmp, udp or tcp");
  r.spec.method = *method;
  r.spec.port = static_cast<std::uint16_t>(integer(s, "port", sw, 0, 65535));
  r.spec.first_ttl = small(s, "first_ttl", sw, 1, 255);
  r.spec.max_ttl = small(s, "max_ttl", sw, 1, 255);
  r.spec.attempts = small(s, "attempts", sw, 1, 1000);
  r.spec.gap_limit = small(s, "gap_limit", sw, 1, 255);
  r.spec.parallel = small(s, "parallel", sw, 1, 255);
  r.spec.timeout = Duration(integer(s, "timeout", sw, 0, std::numeric_limits<std::int64_t>::max()));
  r.started = wall(j, "started", where);
  const json& hops = array(j, "hops", where, kMaxHops);
  for (std::size_t i = 0; i < hops.size(); ++i) {
    const std::string hw = where + ".hops[" + std::to_string(i) + "]";
    const json& h = hops[i];
    if (!h.is_array() || (h.size() != 10 && h.size() != 11)) throw Bad(hw + ": not a hop of 10 or 11 fields");
    TraceHop hop;
    hop.ttl = static_cast<int>(integer(h[0], hw + ".ttl", 0, 255));
    if (!h[1].is_string() || h[1].get_ref<const std::string&>().size() > kMaxText) throw Bad(hw + ".addr: not a string");
    if (const auto& a = h[1].get_ref<const std::string&>(); !a.empty()) {
      auto parsed = IpAddress::parse(a);
      if (!parsed) throw Bad(hw + ".addr: not an address");
      hop.addr = *parsed;
    }
    if (!h[2].is_null()) hop.rtt = Duration(integer(h[2], hw + ".rtt", 0, std::numeric_limits<std::int64_t>::max()));
    hop.icmp_type = static_cast<int>(integer(h[3], hw + ".icmp_type", -1, 255));
    hop.icmp_code = static_cast<int>(integer(h[4], hw + ".icmp_code", -1, 255));
    hop.quoted_ttl = static_cast<int>(integer(h[5], hw + ".quoted_ttl", -1, 255));
    hop.reply_ttl = static_cast<int>(integer(h[6], hw + ".reply_ttl", -1, 255));
    hop.probes_sent = static_cast<int>(integer(h[7], hw + ".probes_sent", 0, 1 << 16));
    if (!h[8].is_boolean()) throw Bad(hw + ".is_target: not true or false");
    hop.is_target = h[8].get<bool>();
    const json& mpls = h[9];
    if (!mpls.is_array() || mpls.size() > kMaxMpls) throw Bad(hw + ".mpls: not an array of at most 16");
    for (const auto& m : mpls) {
      if (!m.is_array() || m.size() != 4 || !m[2].is_boolean()) throw Bad(hw + ".mpls: not [label, exp, bottom, ttl]");
      MplsEntry e;
      e.label = static_cast<std::uint32_t>(integer(m[0], hw + ".mpls", 0, (1 << 20) - 1));
      e.exp = static_cast<std::uint8_t>(integer(m[1], hw + ".mpls", 0, 7));
      e.bottom = m[2].get<bool>();
      e.ttl = static_cast<std::uint8_t>(integer(m[3], hw + ".mpls", 0, 255));
      hop.mpls.push_back(e);
    }
    if (h.size() == 11 && !h[10].is_null())
      hop.reused_from = WallTime(Duration(integer(h[10], hw + ".reused_from", 0, std::numeric_limits<std::int64_t>::max())));
    r.hops.push_back(std::move(hop));
  }
  r.reached = boolean(j, "reached", where);
  r.stop_reason = text(j, "stop_reason", where);
  r.flow_id = static_cast<std::uint32_t>(integer(j, "flow_id", where, 0, std::numeric_limits<std::uint32_t>::max()));
  r.error = text(j, "error", where);
  return r;
}

SavedState decode(const json& j) {
  if (!j.is_object()) throw Bad("not a JSON object");
  SavedState s;
  s.written = wall(j, "written", "state");
  const json& targets = array(j, "targets", "state", kMaxTargets);
  s.detector.targets.reserve(targets.size());
  for (std::size_t i = 0; i < targets.size(); ++i)
    s.detector.targets.push_back(decode_target(targets[i], "targets[" + std::to_string(i) + "]"));
  const json& groups = array(j, "groups", "state", kMaxTargets);
  for (std::size_t i = 0; i < groups.size(); ++i) {
    const std::string gw = "groups[" + std::to_string(i) + "]";
    s.detector.groups.push_back(
        {text(groups[i], "name", gw), boolean(groups[i], "control", gw), boolean(groups[i], "down", gw),
         wall(groups[i], "start", gw)});
  }
  const json& v = field(j, "vantage", "state");
  s.detector.vantage_down = boolean(v, "down", "vantage");
  s.detector.vantage_start = wall(v, "start", "vantage");
  s.detector.last_control_ok = opt_wall(field(v, "last_control_ok", "vantage"), "vantage.last_control_ok");
  s.detector.check_wanted = boolean(v, "check_wanted", "vantage");
  const json& good = field(j, "last_good", "state");
  if (!good.is_object()) throw Bad("last_good: not an object");
  if (good.size() > kMaxTargets) throw Bad("last_good: too many traces");
  for (auto it = good.begin(); it != good.end(); ++it) {
    const std::string& key = it.key();
    if (key.size() > kMaxText) throw Bad("last_good: a key too long");
    s.last_good.emplace(key, decode_trace(it.value(), "last_good[" + key + "]"));
  }
  return s;
}

std::string errno_text(const std::string& what, int err) { return what + ": " + std::strerror(err); }

// Writes all of `data` to fd; false and *error otherwise.
bool write_all(int fd, std::string_view data, const std::string& path, std::string* error) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      *error = errno_text("write " + path, errno);
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

}  // namespace

namespace {

// One value's text; invalid UTF-8 in a name cannot stop a save: it is replaced.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

// The traces and targets are written one at a time: as one JSON document,
// 100,000 of each held several hundred megabytes while a save ran.
namespace {

// {"KEY":TRACE,...} from each(add), which calls add(key, trace) in key order.
template <class Each>
std::string encode_trace_object(Each&& each) {
  std::string text = "{";
  each([&](const std::string& key, const TraceResult& trace) {
    if (text.size() > 1) text += ',';
    text += dump(json(key));
    text += ':';
    text += dump(encode_trace(trace));
  });
  text += '}';
  return text;
}

}  // namespace

std::string encode_traces(const std::map<std::string, TraceResult>& traces) {
  return encode_trace_object([&](const auto& add) {
    for (const auto& [key, trace] : traces) add(key, trace);
  });
}

std::string encode_traces(const TraceStore& traces) {
  return encode_trace_object([&](const auto& add) { traces.for_each(add); });
}

std::string encode_state(const SavedState& state) { return encode_state(state, encode_traces(state.last_good)); }

std::string encode_state(const SavedState& state, std::string_view traces_json) {
  json groups = json::array();
  for (const auto& g : state.detector.groups)
    groups.push_back({{"name", g.name}, {"control", g.control}, {"down", g.down}, {"start", ns(g.start)}});
  const json j = {{"version", kStateVersion},
                  {"written", ns(state.written)},
                  {"groups", std::move(groups)},
                  {"vantage",
                   {{"down", state.detector.vantage_down},
                    {"start", ns(state.detector.vantage_start)},
                    {"last_control_ok", opt_ns(state.detector.last_control_ok)},
                    {"check_wanted", state.detector.check_wanted}}}};
  std::string text = dump(j);
  text.pop_back();  // the closing brace: the targets and the traces go last
  text += ",\"targets\":[";
  bool first = true;
  for (const auto& t : state.detector.targets) {
    if (!first) text += ',';
    first = false;
    text += dump(encode_target(t));
  }
  text += "],\"last_good\":";
  text += traces_json;
  text += "}\n";
  return text;
}

std::optional<SavedState> decode_state(std::string_view text, std::string* error) {
  try {
    if (text.size() > kStateMaxBytes) throw Bad("larger than " + std::to_string(kStateMaxBytes) + " bytes");
    const json j = json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded()) throw Bad("not JSON (cut short, or damaged)");
    if (!j.is_object()) throw Bad("not a JSON object");
    const auto version = integer(j, "version", "state", 0, std::numeric_limits<std::int64_t>::max());
    if (version > kStateVersion)
      throw Bad("written by a newer outpost (format " + std::to_string(version) + ", this one reads " +
                std::to_string(kStateVersion) + ")");
    if (version < 1) throw Bad("format " + std::to_string(version) + " is unknown");
    return decode(j);
  } catch (const std::exception& e) {
    *error = e.what();
    return std::nullopt;
  }
}

StateStore::StateStore(std::string dir)
    : dir_(std::move(dir)), path_(dir_ + "/state.json"), temp_path_(dir_ + "/state.json.tmp") {}

std::optional<SavedState> StateStore::load(std::string* problem) const {
  problem->clear();
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT) *problem = errno_text(path_, errno);
    return std::nullopt;
  }
  std::string text;
  struct stat st {};
  bool ok = ::fstat(fd, &st) == 0;
  if (!ok) {
    *problem = errno_text(path_, errno);
  } else if (!S_ISREG(st.st_mode)) {
    *problem = path_ + ": not a regular file";
    ok = false;
  } else if (static_cast<std::uint64_t>(st.st_size) > kStateMaxBytes) {
    *problem = path_ + ": larger than " + std::to_string(kStateMaxBytes) + " bytes";
    ok = false;
  }
  char buf[65536];
  while (ok) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *problem = errno_text(path_, errno);
      ok = false;
    } else if (n == 0) {
      break;
    } else if (text.size() + static_cast<std::size_t>(n) > kStateMaxBytes) {
      *problem = path_ + ": larger than " + std::to_string(kStateMaxBytes) + " bytes";  // it grew while read
      ok = false;
    } else {
      text.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  if (!ok) return std::nullopt;
  std::string error;
  auto state = decode_state(text, &error);
  if (!state) *problem = path_ + ": " + error;
  return state;
}

bool StateStore::save(const SavedState& state, std::string* error) const {
  try {
    return save(state, encode_traces(state.last_good), error);
  } catch (const std::exception& e) {
    *error = path_ + ": " + e.what();
    return false;
  }
}

bool StateStore::save(const SavedState& state, std::string_view traces_json, std::string* error) const {
  std::string text;
  try {
    text = encode_state(state, traces_json);
  } catch (const std::exception& e) {
    *error = path_ + ": " + e.what();
    return false;
  }
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) {
    *error = dir_ + ": " + ec.message();
    return false;
  }
  const int fd = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    *error = errno_text(temp_path_, errno);
    return false;
  }
  bool ok = write_all(fd, text, temp_path_, error);
  if (ok && ::fsync(fd) != 0) {
    *error = errno_text("fsync " + temp_path_, errno);
    ok = false;
  }
  if (::close(fd) != 0 && ok) {
    *error = errno_text("close " + temp_path_, errno);
    ok = false;
  }
  if (ok && ::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    *error = errno_text("rename to " + path_, errno);
    ok = false;
  }
  if (!ok) {
    ::unlink(temp_path_.c_str());
    return false;
  }
  // The rename itself lasts only once the directory is on disk.
  const int dir = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) {
    *error = errno_text(dir_, errno);
    return false;
  }
  ok = ::fsync(dir) == 0;
  if (!ok) *error = errno_text("fsync " + dir_, errno);
  ::close(dir);
  return ok;
}

}  // namespace outpost
