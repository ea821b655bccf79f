// The YAML loader: one pass over the document that fills Config and collects
// every problem as FILE:LINE:COL: key: message.

#include "outpost_config.hpp"

#include "yaml_tree.hpp"

#include <arpa/inet.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace outpost {

// ---------------------------------------------------------------------------
// Probe methods

std::string ProbeMethod::record_name() const {
  switch (kind) {
    case Kind::icmp: return "icmp";
    case Kind::tcp:
    case Kind::tcp_connect: return "tcp";
    case Kind::dns: return "dns";
  }
  return "icmp";
}

std::string ProbeMethod::text() const {
  switch (kind) {
    case Kind::icmp: return "icmp";
    case Kind::tcp: return "tcp:" + std::to_string(port);
    case Kind::tcp_connect: return "tcp_connect:" + std::to_string(port);
    case Kind::dns: return "dns";
  }
  return "icmp";
}

namespace {

// "443" -> 443; nullopt unless a plain decimal number from 1 to 65535.
std::optional<std::uint16_t> parse_port(std::string_view text) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < 1 || value > 65535) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(value);
}

// For "tcp:443" and the like: the port after "NAME:", with a message naming the method.
std::optional<std::uint16_t> parse_method_port(std::string_view text, std::string_view name,
                                               std::string* error) {
  if (text == name) {
    if (error) *error = "'" + std::string(text) + "' needs a port, e.g. " + std::string(name) + ":443";
    return std::nullopt;
  }
  auto port = parse_port(text.substr(name.size() + 1));
  if (!port && error) {
    *error = "'" + std::string(text) + "': port must be a number from 1 to 65535";
  }
  return port;
}

bool has_method_name(std::string_view text, std::string_view name) {
  return text == name || (text.starts_with(name) && text.size() > name.size() && text[name.size()] == ':');
}

}  // namespace

std::optional<ProbeMethod> parse_probe_method(std::string_view text, std::string* error) {
  using Kind = ProbeMethod::Kind;
  if (text == "icmp") return ProbeMethod{Kind::icmp, 0};
  if (text == "dns") return ProbeMethod{Kind::dns, 0};
  for (auto [name, kind] : {std::pair{std::string_view("tcp"), Kind::tcp},
                            std::pair{std::string_view("tcp_connect"), Kind::tcp_connect}}) {
    if (has_method_name(text, name)) {
      auto port = parse_method_port(text, name, error);
      if (!port) return std::nullopt;
      return ProbeMethod{kind, *port};
    }
  }
  if (error) {
    *error = "unknown probe method '" + std::string(text) +
             "' (expected icmp, tcp:PORT, tcp_connect:PORT or dns)";
  }
  return std::nullopt;
}

std::string_view target_address_problem(const std::uint8_t* bytes, std::size_t size) {
  constexpr std::string_view kUnspecified = "the unspecified address: a target must be one unicast host";
  constexpr std::string_view kMulticast = "a multicast address: a target must be one unicast host";
  if (size == 4) {
    if (std::all_of(bytes, bytes + 4, [](std::uint8_t b) { return b == 0; })) return kUnspecified;
    if ((bytes[0] & 0xf0) == 0xe0) return kMulticast;
    if (std::all_of(bytes, bytes + 4, [](std::uint8_t b) { return b == 0xff; }))
      return "the limited broadcast address: a target must be one unicast host";
    return {};
  }
  if (size != 16) return "not an IPv4 or IPv6 address";
  if (std::all_of(bytes, bytes + 16, [](std::uint8_t b) { return b == 0; })) return kUnspecified;
  if (bytes[0] == 0xff) return kMulticast;
  if (std::all_of(bytes, bytes + 10, [](std::uint8_t b) { return b == 0; }) && bytes[10] == 0xff && bytes[11] == 0xff)
    return "an IPv4-mapped IPv6 address: give its IPv4 address instead";
  if (bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80)
    return "an IPv6 link-local address, which names no interface: give a global address";
  return {};
}

std::string_view family_text(TargetFamily family) {
  switch (family) {
    case TargetFamily::automatic: return "auto";
    case TargetFamily::v4: return "4";
    case TargetFamily::v6: return "6";
    case TargetFamily::both: return "both";
  }
  return "auto";
}

std::string ConfigError::to_string() const {
  if (line == 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + message;
}

// ---------------------------------------------------------------------------
// The loader

namespace {

using Node = yaml::NodeRef;

SourceMark source_mark(const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0) return {};
  return {mark.line + 1, mark.column + 1};
}

// 'text', with control bytes written \xNN so that a value quoted in a
// message cannot act on the terminal that shows it.
std::string quote(std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "'";
  for (char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7f) {
      out += "\\x";
      out += hex[b >> 4];
      out += hex[b & 0xf];
    } else {
      out += c;
    }
  }
  return out + "'";
}

// "a map", "'fast'", "nothing": how a value that was not what we wanted looks.
std::string describe(const Node& node) {
  switch (node.kind()) {
    case yaml::Kind::map: return node.size() == 0 ? "an empty map" : "a map";
    case yaml::Kind::sequence: return node.size() == 0 ? "an empty list" : "a list";
    case yaml::Kind::scalar: return quote(node.Scalar());
    case yaml::Kind::null: break;
  }
  return "nothing";
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                  std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The known key nearest to a typo, or empty when none is close.
std::string_view nearest_key(std::string_view typo, std::initializer_list<std::string_view> known) {
  std::string_view best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (std::string_view key : known) {
    std::size_t distance = edit_distance(typo, key);
    if (distance <= std::max<std::size_t>(1, key.size() / 3) && distance < best_distance) {
      best = key;
      best_distance = distance;
    }
  }
  return best;
}

// Host name syntax (RFC 1123, with '_' allowed): dot-separated labels of 1..63
// letters, digits, '-' or '_', not starting or ending with '-'; at most 253
// characters; one trailing dot allowed; the last label not all digits (that
// would be a mistyped address).
bool is_host_name(std::string_view name) {
  if (name.ends_with('.')) name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return false;
  std::string_view label;
  while (!name.empty()) {
    std::size_t dot = name.find('.');
    label = name.substr(0, dot);
    name = dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
    }
    if (dot != std::string_view::npos && name.empty()) return false;  // "a..b" or "a.."
  }
  return !std::all_of(label.begin(), label.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// The address's bytes (4 or 16), or 0 when it is not an IPv4 or IPv6 literal.
std::size_t ip_address_bytes(const std::string& text, unsigned char (&buffer)[16]) {
  if (inet_pton(AF_INET, text.c_str(), buffer) == 1) return 4;
  if (inet_pton(AF_INET6, text.c_str(), buffer) == 1) return 16;
  return 0;
}

bool is_ip_address(const std::string& text) {
  unsigned char buffer[16];
  return ip_address_bytes(text, buffer) != 0;
}

// --- Value parsers: a YAML value to T, or nullopt and a message. ------------

template <class T>
using Parsed = std::optional<T>;

Parsed<std::string> scalar_or(const Node& node, std::string_view expected, std::string& error) {
  if (node.IsScalar()) return std::string(node.Scalar());
  error = "expected " + std::string(expected) + ", got " + describe(node);
  return std::nullopt;
}

Parsed<std::string> string_value(const Node& node, std::string& error) {
  auto text = scalar_or(node, "a string", error);
  if (text && text->empty()) {
    error = "expected a non-empty string, got ''";
    return std::nullopt;
  }
  return text;
}

Parsed<bool> bool_value(const Node& node, std::string& error) {
  if (auto value = yaml::parse_bool(node.Scalar()); node.IsScalar() && value) return *value;
  error = "expected true or false, got " + describe(node);
  return std::nullopt;
}

template <class T>
auto integer_value(long long low, long long high, std::string expected) {
  return [low, high, expected](const Node& node, std::string& error) -> Parsed<T> {
    long long value = 0;
    if (node.IsScalar()) {
      const std::string_view text = node.Scalar();
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (ec == std::errc{} && end == text.data() + text.size() && value >= low && value <= high) {
        return static_cast<T>(value);
      }
    }
    error = "expected " + expected + ", got " + describe(node);
    return std::nullopt;
  };
}

template <class T>
auto integer_in(long long low, long long high) {
  return integer_value<T>(low, high, "an integer from " + std::to_string(low) + " to " + std::to_string(high));
}

Parsed<double> positive_number_value(const Node& node, std::string& error) {
  double value = 0;
  if (node.IsScalar()) {
    const std::string_view text = node.Scalar();
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec == std::errc{} && end == text.data() + text.size() && std::isfinite(value) && value > 0) {
      return value;
    }
  }
  error = "expected a number greater than 0, got " + describe(node);
  return std::nullopt;
}

// A rate such as agent.max_pps: a plain decimal number from `low` to `high`.
auto number_in(double low, double high, std::string expected) {
  return [low, high, expected](const Node& node, std::string& error) -> Parsed<double> {
    double value = 0;
    if (node.IsScalar()) {
      const std::string_view text = node.Scalar();
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (ec == std::errc{} && end == text.data() + text.size() && value >= low && value <= high) return value;
    }
    error = "expected " + expected + ", got " + describe(node);
    return std::nullopt;
  };
}

Parsed<double> fraction_value(const Node& node, std::string& error) {
  auto value = positive_number_value(node, error);
  if (value && *value <= 1) return value;
  error = "expected a fraction greater than 0 and at most 1, got " + describe(node);
  return std::nullopt;
}

Parsed<Duration> duration_value(const Node& node, std::string& error) {
  auto text = scalar_or(node, "a duration such as 500ms, 2s, 5m or 1h", error);
  if (!text) return std::nullopt;
  return parse_duration(*text, &error);
}

auto size_value(std::uint64_t low, std::uint64_t high) {
  return [low, high](const Node& node, std::string& error) -> Parsed<std::uint64_t> {
    if (!node.IsScalar()) {
      error = "expected a size such as 64MiB, got " + describe(node);
      return std::nullopt;
    }
    auto size = parse_size(node.Scalar(), &error);
    if (!size) return std::nullopt;
    if (*size < low || *size > high) {
      error = "size " + quote(node.Scalar()) + " out of range (" + std::to_string(low) + " to " +
              std::to_string(high) + " bytes)";
      return std::nullopt;
    }
    return size;
  };
}

// A name that is safe as a file name and a NATS subject token: letters,
// digits, '-' and '_', at most 64 characters.
Parsed<std::string> name_value(const Node& node, std::string& error) {
  auto text = string_value(node, error);
  if (!text) return std::nullopt;
  const bool good = !text->empty() && text->size() <= 64 &&
                    std::all_of(text->begin(), text->end(), [](unsigned char c) {
                      return std::isalnum(c) || c == '-' || c == '_';
                    });
  if (!good) {
    error = "expected a name of letters, digits, '-' and '_' (at most 64), got " + quote(*text);
    return std::nullopt;
  }
  return text;
}

// A user or group name as Debian's adduser takes them: a letter or '_'
// first, then letters, digits, '_', '-' and '.', at most 32 characters. A
// number is not a name: agent.user names an account, never a bare uid.
Parsed<std::string> account_name_value(const Node& node, std::string& error) {
  auto text = string_value(node, error);
  if (!text) return std::nullopt;
  const auto first = static_cast<unsigned char>(text->front());
  const bool good = text->size() <= 32 && (std::isalpha(first) || first == '_') &&
                    std::all_of(text->begin(), text->end(), [](unsigned char c) {
                      return std::isalnum(c) || c == '-' || c == '_' || c == '.';
                    });
  if (!good) {
    error = "expected a user or group name (a letter or '_', then letters, digits, '-', '_' or '.', at most 32), got " +
            quote(*text);
    return std::nullopt;
  }
  return text;
}

// agent.metrics: IPV4ADDRESS:PORT, or a bare PORT on 127.0.0.1; kept as
// ADDRESS:PORT. IPv4 only: Debian's civetweb, which serves it, is built
// without IPv6.
Parsed<std::string> listen_value(const Node& node, std::string& error) {
  auto text = scalar_or(node, "ADDRESS:PORT", error);
  if (!text) return std::nullopt;
  std::string address = "127.0.0.1";
  std::string port_text = *text;
  if (text->find('[') != std::string::npos || std::count(text->begin(), text->end(), ':') > 1) {
    error = "the /metrics endpoint listens on IPv4 only, got " + quote(*text);
    return std::nullopt;
  }
  if (const std::size_t colon = text->find(':'); colon != std::string::npos) {
    address = text->substr(0, colon);
    port_text = text->substr(colon + 1);
    if (!is_ip_address(address)) {
      error = "expected ADDRESS:PORT such as 127.0.0.1:9464, or a PORT, got " + quote(*text);
      return std::nullopt;
    }
  }
  auto port = parse_port(port_text);
  if (!port) {
    const bool digits = !port_text.empty() && std::all_of(port_text.begin(), port_text.end(),
                                                          [](unsigned char c) { return std::isdigit(c); });
    error = digits ? "port must be a number from 1 to 65535, got " + quote(*text)
                   : "expected ADDRESS:PORT such as 127.0.0.1:9464, or a PORT, got " + quote(*text);
    return std::nullopt;
  }
  return address + ":" + std::to_string(*port);
}

// NATS subject tokens separated by '.': each a name as above.
Parsed<std::string> subject_value(const Node& node, std::string& error) {
  auto text = string_value(node, error);
  if (!text) return std::nullopt;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = text->find('.', start);
    const std::string token = text->substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const bool good = !token.empty() && std::all_of(token.begin(), token.end(), [](unsigned char c) {
      return std::isalnum(c) || c == '-' || c == '_';
    });
    if (!good) {
      error = "expected a NATS subject such as outpost or metrics.outpost, got " + quote(*text);
      return std::nullopt;
    }
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return text;
}

Parsed<std::string> address_value(const Node& node, std::string& error) {
  auto text = scalar_or(node, "an IPv4 or IPv6 address", error);
  if (!text) return std::nullopt;
  unsigned char bytes[16];
  const std::size_t size = ip_address_bytes(*text, bytes);
  if (size == 0) {
    error = quote(*text) + " is not an IPv4 or IPv6 address";
    return std::nullopt;
  }
  if (auto problem = target_address_problem(bytes, size); !problem.empty()) {
    error = quote(*text) + " is " + std::string(problem);
    return std::nullopt;
  }
  return text;
}

// `family:` 4 | 6 | both | auto.
Parsed<TargetFamily> family_value(const Node& node, std::string& error) {
  if (node.IsScalar()) {
    for (TargetFamily family : {TargetFamily::automatic, TargetFamily::v4, TargetFamily::v6, TargetFamily::both}) {
      if (node.Scalar() == family_text(family)) return family;
    }
  }
  error = "expected 4, 6, both or auto, got " + describe(node);
  return std::nullopt;
}

Parsed<std::string> log_level_value(const Node& node, std::string& error) {
  if (node.IsScalar()) {
    for (const char* level : kLogLevels) {
      if (node.Scalar() == level) return std::string(node.Scalar());
    }
  }
  error = "expected debug, info, warn or error, got " + describe(node);
  return std::nullopt;
}

Parsed<std::string> host_value(const Node& node, std::string& error) {
  auto text = scalar_or(node, "a host name", error);
  if (text && !is_host_name(*text)) {
    error = quote(*text) + " is not a valid host name";
    return std::nullopt;
  }
  return text;
}

Parsed<std::string> dns_name_value(const Node& node, std::string& error) {
  auto text = scalar_or(node, "a domain name", error);
  if (text && *text != "." && !is_host_name(*text)) {
    error = quote(*text) + " is not a valid domain name";
    return std::nullopt;
  }
  return text;
}

Parsed<std::string> dns_type_value(const Node& node, std::string& error) {
  static constexpr std::string_view types[] = {"A", "AAAA", "NS", "SOA", "TXT", "CNAME", "MX", "PTR"};
  auto text = scalar_or(node, "a query type", error);
  if (!text) return std::nullopt;
  std::string upper = *text;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (std::find(std::begin(types), std::end(types), upper) != std::end(types)) return upper;
  error = "unknown query type " + quote(*text) + " (expected A, AAAA, NS, SOA, TXT, CNAME, MX or PTR)";
  return std::nullopt;
}

Parsed<ProbeMethod> probe_method_value(const Node& node, std::string& error) {
  auto text = scalar_or(node, "a probe method", error);
  if (!text) return std::nullopt;
  return parse_probe_method(*text, &error);
}

// Traceroute: icmp | udp | tcp:PORT, kept as text in its normal form.
Parsed<std::string> traceroute_method_value(const Node& node, std::string& error) {
  auto text = scalar_or(node, "a traceroute method", error);
  if (!text) return std::nullopt;
  if (*text == "icmp" || *text == "udp") return text;
  if (has_method_name(*text, "tcp")) {
    auto port = parse_method_port(*text, "tcp", &error);
    if (!port) return std::nullopt;
    return "tcp:" + std::to_string(*port);
  }
  error = "unknown traceroute method " + quote(*text) + " (expected icmp, udp or tcp:PORT)";
  return std::nullopt;
}

// --- Where values are, and where problems go. --------------------------------

// One value in the document: a map entry's value or a list item.
struct Field {
  std::string path;  // "groups[0].targets[1].address"
  SourceMark at;     // the key, or the item itself
  Node value;

  // The value's own position; the key's when the value is empty (yaml-cpp
  // places an empty value at the next token, often on the next line).
  SourceMark mark() const {
    SourceMark own = source_mark(value.Mark());
    return value.IsNull() || own.line == 0 ? at : own;
  }
};

std::string child_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

class ErrorList {
 public:
  explicit ErrorList(std::string file) : file_(std::move(file)) {}

  // Records "PATH: message" at `mark` (just "message" at the top level);
  // beyond kMaxConfigErrors, only counts it.
  void add(SourceMark mark, const std::string& path, const std::string& message) {
    if (errors_.size() >= kMaxConfigErrors) {
      ++not_kept_;
      return;
    }
    errors_.push_back({file_, mark.line, mark.col, path.empty() ? message : path + ": " + message});
  }

  // Errors in file order (those without a position first); stable otherwise.
  // A last line counts those not kept.
  std::vector<ConfigError> take() {
    std::stable_sort(errors_.begin(), errors_.end(), [](const ConfigError& a, const ConfigError& b) {
      return std::pair(a.line, a.col) < std::pair(b.line, b.col);
    });
    if (not_kept_ > 0) errors_.push_back({file_, 0, 0, "and " + std::to_string(not_kept_) + " more problems"});
    return std::move(errors_);
  }

 private:
  std::string file_;
  std::vector<ConfigError> errors_;
  std::size_t not_kept_ = 0;
};

// A YAML map checked against the keys it may have: unknown keys, repeated
// keys and keys that are not names are recorded as it is built.
class MapView {
 public:
  MapView(ErrorList& errors, const Node& map, std::string path, SourceMark mark,
          std::initializer_list<std::string_view> known)
      : errors_(errors), path_(std::move(path)), mark_(mark) {
    if (!map.IsMap()) return;  // null: an empty map
    for (std::size_t i = 0; i < map.size(); ++i) {
      const Node key_node = map.key(i);
      SourceMark key_mark = source_mark(key_node.Mark());
      if (!key_node.IsScalar()) {
        errors_.add(key_mark, path_, "expected a key name, got " + describe(key_node));
        continue;
      }
      const std::string_view key = key_node.Scalar();
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        std::string message = "unknown key " + quote(key);
        if (auto near = nearest_key(key, known); !near.empty()) message += " (did you mean " + quote(near) + "?)";
        errors_.add(key_mark, path_, message);
      } else if (const Field* first = find(key)) {  // yaml-cpp keeps both
        errors_.add(key_mark, path_,
                    "duplicate key " + quote(key) + " (first at line " + std::to_string(first->at.line) + ")");
      } else {
        fields_.emplace_back(std::string(key), Field{child_path(path_, key), key_mark, map.value(i)});
      }
    }
  }

  const std::string& path() const { return path_; }
  SourceMark mark() const { return mark_; }

  std::optional<Field> get(std::string_view key) const {
    if (const Field* field = find(key)) return *field;
    return std::nullopt;
  }

  // As get(), and records "missing required key" when absent.
  std::optional<Field> require(std::string_view key) const {
    auto field = get(key);
    if (!field) errors_.add(mark_, path_, "missing required key " + quote(key));
    return field;
  }

 private:
  const Field* find(std::string_view key) const {
    for (const auto& [name, field] : fields_) {
      if (name == key) return &field;
    }
    return nullptr;
  }

  ErrorList& errors_;
  std::string path_;
  SourceMark mark_;
  std::vector<std::pair<std::string, Field>> fields_;  // known keys, first occurrence, in file order
};

enum class Need { optional, required };

// What Loader::read() found: the field when present, and whether its value was valid.
struct Found {
  std::optional<Field> field;
  bool valid = false;
};

// Interval, timeout, probes and family in force at one level (defaults, group, target).
struct Settings {
  Duration interval;
  Duration timeout;
  std::vector<ProbeMethod> probes;
  TargetFamily family;
};

// kind-XXXXXXXX: the kind and 32 bits of the target's FNV-1a hash, stable
// across restarts so the spool is found again.
std::string default_output_name(const OutputSpec& spec) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : spec.target) h = (h ^ c) * 1099511628211ull;
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", static_cast<unsigned>(h ^ (h >> 32)));
  std::string kind = spec.kind_name();
  if (kind == "prometheus_remote_write") kind = "remote_write";
  return kind + "-" + hex;
}

class Loader {
 public:
  explicit Loader(const std::string& name) : errors_(name) { config_.path = name; }

  ConfigLoad load(const std::string& text) {
    if (text.size() > kMaxConfigBytes) {
      return fail({}, "larger than " + std::to_string(kMaxConfigBytes >> 20) + " MiB: not a config");
    }
    yaml::Tree tree;
    try {
      tree = yaml::Tree::parse(text, kMaxConfigValues, kMaxConfigExpandedBytes);
    } catch (const yaml::YamlRefused& refused) {
      return fail(source_mark(refused.mark), refused.message);
    }
    const std::vector<Node> documents = tree.documents();
    if (documents.empty()) {
      errors_.add({}, "", "the config is empty (expected a map with 'agent' and 'groups')");
    } else if (documents.size() > 1) {
      errors_.add(source_mark(documents[1].Mark()), "",
                  "expected one YAML document, found " + std::to_string(documents.size()));
    } else {
      read_root(documents[0]);
    }
    return finish();
  }

  // Records a problem that stopped the load before any YAML was read.
  ConfigLoad fail(SourceMark mark, const std::string& message) {
    errors_.add(mark, "", message);
    return finish();
  }

 private:
  ConfigLoad finish() {
    ConfigLoad result;
    result.errors = errors_.take();
    if (result.errors.empty()) result.config = std::move(config_);
    return result;
  }

  // --- helpers ---

  // Parses a field's value into `out`, or records the parser's message at it.
  template <class T, class Parse>
  bool convert(const Field& field, T& out, Parse parse) {
    std::string error;
    auto value = parse(field.value, error);
    if (!value) {
      errors_.add(field.mark(), field.path, error);
      return false;
    }
    out = std::move(*value);
    return true;
  }

  // Reads map[key] into `out` when present; records an error when invalid, or
  // when absent and required.
  template <class T, class Parse>
  Found read(const MapView& map, std::string_view key, T& out, Parse parse, Need need = Need::optional) {
    Found found{need == Need::required ? map.require(key) : map.get(key)};
    found.valid = found.field && convert(*found.field, out, parse);
    return found;
  }

  // The field's value as a map with these keys; an empty value is an empty
  // map unless `need` is required.
  std::optional<MapView> open_map(const Field& field, std::initializer_list<std::string_view> known,
                                  Need need = Need::optional) {
    if (field.value.IsMap() || (field.value.IsNull() && need == Need::optional)) {
      return MapView(errors_, field.value, field.path, field.mark(), known);
    }
    errors_.add(field.mark(), field.path, "expected a map, got " + describe(field.value));
    return std::nullopt;
  }

  // Calls each(item) for every item of a list field; `what` names the items
  // in the message when the value is not a list (or is empty when `need` is
  // required). An empty value is an empty list unless required.
  template <class Each>
  void for_each_item(const Field& list, std::string_view what, Need need, Each each) {
    const bool required = need == Need::required;
    if (!list.value.IsSequence() || (required && list.value.size() == 0)) {
      if (list.value.IsNull() && !required) return;
      errors_.add(list.mark(), list.path,
                  std::string(required ? "expected a non-empty list of " : "expected a list of ") +
                      std::string(what) + ", got " + describe(list.value));
      return;
    }
    for (std::size_t index = 0; index < list.value.size(); ++index) {
      const Node item = list.value.item(index);
      Field field{list.path + "[" + std::to_string(index) + "]", source_mark(item.Mark()), item};
      if (field.at.line == 0) field.at = list.mark();
      each(field);
    }
  }

  // Records a duplicate name (across the whole config) at its field.
  void check_unique(std::map<std::string, int>& seen, const std::string& name, const Field& field,
                    std::string_view what) {
    auto [it, inserted] = seen.emplace(name, field.mark().line);
    if (!inserted) {
      errors_.add(field.mark(), field.path,
                  "duplicate " + std::string(what) + " name " + quote(name) + " (first at line " +
                      std::to_string(it->second) + ")");
    }
  }

  // --- sections ---

  void read_root(const Node& root) {
    if (!root.IsMap()) {
      errors_.add(source_mark(root.Mark()), "",
                  "expected a map with 'agent' and 'groups' at the top level, got " + describe(root));
      return;
    }
    MapView map(errors_, root, "", source_mark(root.Mark()),
                {"agent", "defaults", "asn_table", "asn_names", "groups", "detect", "traceroute", "report"});
    if (auto agent = map.require("agent")) read_agent(*agent);

    Settings defaults{config_.defaults.interval, config_.defaults.timeout, config_.defaults.probes,
                      config_.defaults.family};
    if (auto field = map.get("defaults")) {
      if (auto section = open_map(*field, {"interval", "timeout", "probes", "family"})) {
        defaults = read_settings(*section, defaults);
      }
    }
    config_.defaults = {defaults.interval, defaults.timeout, defaults.probes, defaults.family};

    config_.asn_table_mark = mark_of(read(map, "asn_table", config_.asn_table, string_value));
    config_.asn_names_mark = mark_of(read(map, "asn_names", config_.asn_names, string_value));
    if (auto groups = map.require("groups")) {
      for_each_item(*groups, "groups", Need::required, [&](const Field& item) { read_group(item, defaults); });
    }
    if (auto detect = map.get("detect")) read_detect(*detect);
    if (auto traceroute = map.get("traceroute")) read_traceroute(*traceroute);
    if (auto report = map.get("report")) read_report(*report);
  }

  void read_agent(const Field& field) {
    auto map = open_map(field, {"id", "max_pps", "interface", "resolve_interval", "state_dir", "user", "group",
                         "log_level", "metrics"},
                        Need::required);
    if (!map) return;
    AgentSection& agent = config_.agent;
    read(*map, "id", agent.id, string_value, Need::required);
    read(*map, "max_pps", agent.max_pps, number_in(kMaxPpsLowest, kMaxPpsHighest, "a number from 0.001 to 10000000"));
    read(*map, "interface", agent.interface, string_value);
    read(*map, "resolve_interval", agent.resolve_interval, duration_value);
    agent.state_dir_mark = mark_of(read(*map, "state_dir", agent.state_dir, string_value));
    // Whether the user and the group exist is a question for the system the
    // agent runs on: `outpost check` and `outpost run` ask it.
    const Found user = read(*map, "user", agent.user, account_name_value);
    const Found group = read(*map, "group", agent.group, account_name_value);
    agent.user_mark = mark_of(user);
    agent.group_mark = mark_of(group);
    if (group.field && !user.field)
      errors_.add(group.field->mark(), group.field->path,
                  "needs agent.user (the group is taken when the agent switches to that user)");
    read(*map, "log_level", agent.log_level, log_level_value);
    read(*map, "metrics", agent.metrics, listen_value);
  }

  static SourceMark mark_of(const Found& found) { return found.field ? found.field->mark() : SourceMark{}; }

  // Reads interval, timeout, probes and family given at this level over those
  // inherited. A timeout may be longer than the interval: probes then overlap.
  Settings read_settings(const MapView& map, const Settings& inherited) {
    Settings settings = inherited;
    read(map, "interval", settings.interval, duration_value);
    read(map, "timeout", settings.timeout, duration_value);
    if (auto probes = map.get("probes")) settings.probes = read_probes(*probes);
    read(map, "family", settings.family, family_value);
    return settings;
  }

  std::vector<ProbeMethod> read_probes(const Field& list) {
    std::vector<ProbeMethod> probes;
    for_each_item(list, "probe methods such as [icmp, tcp:443]", Need::required, [&](const Field& item) {
      ProbeMethod method;
      if (!convert(item, method, probe_method_value)) return;
      if (std::find(probes.begin(), probes.end(), method) != probes.end()) {
        errors_.add(item.mark(), item.path, "duplicate probe method " + quote(method.text()));
      } else {
        probes.push_back(method);
      }
    });
    return probes;
  }

  void read_group(const Field& field, const Settings& defaults) {
    auto map = open_map(field, {"name", "upstream_asn", "control", "interval", "timeout", "probes", "family",
                                "targets"},
                        Need::required);
    if (!map) return;
    Group group;
    group.mark = map->mark();
    if (Found name = read(*map, "name", group.name, string_value, Need::required); name.valid) {
      check_unique(group_names_, group.name, *name.field, "group");
    }
    read(*map, "upstream_asn", group.upstream_asn, integer_in<std::uint32_t>(0, 4294967295));
    read(*map, "control", group.control, bool_value);
    Settings settings = read_settings(*map, defaults);
    if (auto targets = map->require("targets")) {
      for_each_item(*targets, "targets", Need::required,
                    [&](const Field& item) { read_target(item, settings, group); });
    }
    config_.groups.push_back(std::move(group));
  }

  void read_target(const Field& field, const Settings& inherited, Group& group) {
    auto map = open_map(field, {"name", "address", "host", "probes", "interval", "timeout", "family", "dns"},
                        Need::required);
    if (!map) return;
    Target target;
    target.mark = map->mark();
    if (Found name = read(*map, "name", target.name, string_value, Need::required); name.valid) {
      check_unique(target_names_, target.name, *name.field, "target");
    }
    Found address = read(*map, "address", target.address, address_value);
    Found host = read(*map, "host", target.host, host_value);
    if (address.field && host.field) {
      errors_.add(host.field->at, map->path(), "give either 'address' or 'host', not both");
    } else if (!address.field && !host.field) {
      errors_.add(map->mark(), map->path(), "missing required key 'address' or 'host'");
    }

    Settings settings = read_settings(*map, inherited);
    target.probes = settings.probes;
    target.interval = settings.interval;
    target.timeout = settings.timeout;
    target.family = settings.family;
    if (address.valid) target.family = literal_family(*map, target.address);

    auto dns = map->get("dns");
    if (dns) target.dns = read_dns(*dns);
    bool probes_dns = std::any_of(target.probes.begin(), target.probes.end(),
                                  [](const ProbeMethod& m) { return m.kind == ProbeMethod::Kind::dns; });
    if (probes_dns && !dns) {
      errors_.add(map->mark(), map->path(), "probe method 'dns' needs a 'dns' block with a query");
    }
    group.targets.push_back(std::move(target));
  }

  // A literal address's own family; records an error when the target's own
  // `family` says otherwise (one inherited from the group or defaults is
  // for host names and does not apply).
  TargetFamily literal_family(const MapView& target, const std::string& address) {
    const bool v4 = address.find(':') == std::string::npos;
    const TargetFamily own = v4 ? TargetFamily::v4 : TargetFamily::v6;
    if (auto field = target.get("family")) {
      std::string ignored;  // an invalid value was reported by read_settings
      auto written = family_value(field->value, ignored);
      if (written && *written != TargetFamily::automatic && *written != own) {
        errors_.add(field->mark(), field->path,
                    quote(family_text(*written)) + " contradicts address " + address + ", an IPv" + (v4 ? "4" : "6") +
                        " address (family is for targets given by 'host')");
      }
    }
    return own;
  }

  std::optional<DnsQuery> read_dns(const Field& field) {
    auto map = open_map(field, {"query", "type", "expect"}, Need::required);
    if (!map) return std::nullopt;
    DnsQuery dns;
    read(*map, "query", dns.query, dns_name_value, Need::required);
    read(*map, "type", dns.type, dns_type_value);
    if (auto expect = map->get("expect")) {
      for_each_item(*expect, "expected answers", Need::optional, [&](const Field& item) {
        std::string answer;
        if (convert(item, answer, string_value)) dns.expect.push_back(std::move(answer));
      });
    }
    return dns;
  }

  void read_detect(const Field& field) {
    auto map = open_map(field, {"down_after", "up_after", "group_fraction", "suspect_interval", "flap_count",
                                "flap_window"});
    if (!map) return;
    auto& d = config_.detect;
    read(*map, "down_after", d.down_after, integer_in<int>(1, kMaxProbeCount));
    read(*map, "up_after", d.up_after, integer_in<int>(1, kMaxProbeCount));
    read(*map, "group_fraction", d.group_fraction, fraction_value);
    read(*map, "suspect_interval", d.suspect_interval, duration_value);
    read(*map, "flap_count", d.flap_count, integer_in<int>(2, kMaxProbeCount));
    read(*map, "flap_window", d.flap_window, duration_value);
  }

  void read_traceroute(const Field& field) {
    auto map = open_map(field, {"method", "max_ttl", "attempts", "gap_limit", "parallel", "timeout",
                                "baseline_interval", "reuse_hops", "max_failure_traces", "max_queued_failures"});
    if (!map) return;
    auto& t = config_.traceroute;
    read(*map, "method", t.method, traceroute_method_value);
    read(*map, "max_ttl", t.max_ttl, integer_in<int>(1, kTraceMaxTtl));
    read(*map, "attempts", t.attempts, integer_in<int>(1, kTraceMaxAttempts));
    read(*map, "gap_limit", t.gap_limit, integer_in<int>(1, kTraceMaxTtl));
    read(*map, "parallel", t.parallel, integer_in<int>(1, kTraceMaxTtl));
    read(*map, "timeout", t.timeout, duration_value);
    read(*map, "baseline_interval", t.baseline_interval, duration_value);
    read(*map, "reuse_hops", t.reuse_hops, bool_value);
    read(*map, "max_failure_traces", t.max_failure_traces, integer_in<int>(1, 1000));
    read(*map, "max_queued_failures", t.max_queued_failures, integer_in<int>(0, 1000000));
  }

  void read_report(const Field& field) {
    auto map = open_map(field, {"window", "outputs"});
    if (!map) return;
    read(*map, "window", config_.report.window, duration_value);
    if (auto outputs = map->get("outputs")) {
      std::map<std::string, int> names;
      for_each_item(*outputs, "outputs such as { file: PATH }", Need::optional, [&](const Field& item) {
        if (auto spec = read_output(item)) {
          check_unique(names, spec->name, item, "output");
          config_.report.outputs.push_back(std::move(*spec));
        }
      });
    }
  }

  // `- file: PATH`, `- influx: URL`, ... or the same key with options beside it.
  std::optional<OutputSpec> read_output(const Field& item) {
    static constexpr std::pair<std::string_view, OutputSpec::Kind> kinds[] = {
        {"file", OutputSpec::Kind::file},
        {"http", OutputSpec::Kind::http},
        {"influx", OutputSpec::Kind::influx},
        {"prometheus_remote_write", OutputSpec::Kind::prometheus_remote_write},
        {"nats", OutputSpec::Kind::nats}};
    auto map = open_map(item,
                        {"file", "http", "influx", "prometheus_remote_write", "nats", "name", "fsync",
                         "flush_interval", "timeout", "batch_age", "batch_bytes", "spool_bytes", "retry_min",
                         "retry_max", "ca_file", "token_file", "gzip", "stream", "subject"},
                        Need::required);
    if (!map) return std::nullopt;
    OutputSpec spec;
    spec.mark = item.mark();
    std::vector<std::string_view> present;
    std::optional<Field> target;
    for (const auto& [key, kind] : kinds) {
      if (auto f = map->get(key)) {
        present.push_back(key);
        spec.kind = kind;
        target = f;
      }
    }
    if (present.size() != 1) {
      errors_.add(item.mark(), item.path,
                  present.empty() ? "an output needs one of file, http, influx, prometheus_remote_write or nats"
                                  : "an output has one kind, found " + quote(present[0]) + " and " + quote(present[1]));
      return std::nullopt;
    }
    if (!convert(*target, spec.target, string_value)) return std::nullopt;
    const bool file = spec.kind == OutputSpec::Kind::file;
    bool ok = true;
    if (!file) {
      const std::string_view scheme = spec.kind == OutputSpec::Kind::nats ? "nats://" : "http";
      const bool good = spec.kind == OutputSpec::Kind::nats
                            ? spec.target.rfind("nats://", 0) == 0 || spec.target.rfind("tls://", 0) == 0
                            : spec.target.rfind("http://", 0) == 0 || spec.target.rfind("https://", 0) == 0;
      if (!good) {
        errors_.add(target->mark(), target->path,
                    "expected a URL starting with " +
                        std::string(scheme == "http" ? "http:// or https://" : "nats:// or tls://") + ", got " +
                        quote(spec.target));
        ok = false;
      }
    }
    // Options that mean nothing for this kind are errors, not silently ignored.
    auto only_for = [&](std::string_view key, bool allowed, std::string_view which) {
      if (auto f = map->get(key); f && !allowed) {
        errors_.add(f->at, f->path, quote(key) + " is for " + std::string(which) + " outputs only");
        ok = false;
      }
    };
    only_for("fsync", file, "file");
    only_for("flush_interval", file, "file");
    for (auto key : {"timeout", "batch_age", "batch_bytes", "retry_min", "retry_max"})
      only_for(key, !file, "collector");
    const bool http = !file && spec.kind != OutputSpec::Kind::nats;
    only_for("ca_file", http, "http, influx and prometheus_remote_write");
    only_for("token_file", !file, "collector");
    only_for("gzip", spec.kind == OutputSpec::Kind::http || spec.kind == OutputSpec::Kind::influx,
             "http and influx");
    only_for("stream", spec.kind == OutputSpec::Kind::nats, "nats");
    only_for("subject", spec.kind == OutputSpec::Kind::nats, "nats");

    read(*map, "fsync", spec.fsync, bool_value);
    read(*map, "flush_interval", spec.flush_interval, duration_value);
    read(*map, "timeout", spec.timeout, duration_value);
    read(*map, "batch_age", spec.batch_age, duration_value);
    read(*map, "batch_bytes", spec.batch_bytes, size_value(1024, 64ull << 20));
    read(*map, "spool_bytes", spec.spool_bytes, size_value(1ull << 20, 1ull << 50));
    read(*map, "retry_min", spec.retry_min, duration_value);
    read(*map, "retry_max", spec.retry_max, duration_value);
    read(*map, "ca_file", spec.ca_file, string_value);
    read(*map, "token_file", spec.token_file, string_value);
    bool gzip = false;
    if (read(*map, "gzip", gzip, bool_value).valid) spec.gzip = gzip;
    read(*map, "stream", spec.stream, name_value);
    read(*map, "subject", spec.subject, subject_value);
    if (spec.retry_max < spec.retry_min) {
      errors_.add(item.mark(), item.path, "retry_max is shorter than retry_min");
      ok = false;
    }
    if (Found name = read(*map, "name", spec.name, name_value); !name.field) spec.name = default_output_name(spec);
    return ok ? std::optional(std::move(spec)) : std::nullopt;
  }

  ErrorList errors_;
  Config config_;
  std::map<std::string, int> group_names_;   // name -> line of the first
  std::map<std::string, int> target_names_;  // name -> line of the first
};

ConfigLoad load_guarded(const std::string& name, const std::string* text, const std::string* path) {
  try {
    Loader loader(name);
    try {
      if (text) return loader.load(*text);
      std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path->c_str(), "rb"), std::fclose);
      if (!file) return loader.fail({}, std::string("cannot open: ") + std::strerror(errno));
      std::string content;
      char buffer[65536];
      std::size_t n;
      // Reads one byte past the limit at most, so that /dev/zero is refused, not read forever.
      while (content.size() <= kMaxConfigBytes &&
             (n = std::fread(buffer, 1, std::min(sizeof buffer, kMaxConfigBytes + 1 - content.size()), file.get())) > 0)
        content.append(buffer, n);
      if (std::ferror(file.get())) return loader.fail({}, std::string("cannot read: ") + std::strerror(errno));
      return loader.load(content);
    } catch (const YAML::DeepRecursion& e) {
      // yaml-cpp's own message for this is "bad file".
      return loader.fail(source_mark(e.mark), "YAML nested too deep: lists and maps " +
                                                  std::to_string(e.depth()) + " levels inside each other");
    } catch (const YAML::ParserException& e) {
      return loader.fail(source_mark(e.mark), "YAML syntax error: " + e.msg);
    }
  } catch (const std::exception& e) {
    return ConfigLoad{std::nullopt, {ConfigError{name, 0, 0, std::string("cannot load: ") + e.what()}}};
  } catch (...) {
    return ConfigLoad{std::nullopt, {ConfigError{name, 0, 0, "cannot load: unknown error"}}};
  }
}

}  // namespace

std::string OutputSpec::kind_name() const {
  switch (kind) {
    case Kind::file: return "file";
    case Kind::http: return "http";
    case Kind::influx: return "influx";
    case Kind::prometheus_remote_write: return "prometheus_remote_write";
    case Kind::nats: return "nats";
  }
  return "file";
}

std::optional<std::uint64_t> parse_size(std::string_view text, std::string* error) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const std::string_view unit = text.substr(digits);
  static constexpr std::pair<std::string_view, std::uint64_t> units[] = {
      {"", 1},           {"B", 1},           {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30},
      {"KB", 1000},      {"MB", 1000000},    {"GB", 1000000000}};
  std::uint64_t scale = 0;
  for (const auto& [name, value] : units)
    if (unit == name) scale = value;
  std::uint64_t number = 0;
  bool overflow = digits == 0 || digits > 19;
  for (std::size_t i = 0; i < digits && !overflow; ++i) number = number * 10 + static_cast<unsigned>(text[i] - '0');
  if (scale == 0 || overflow || number > std::numeric_limits<std::uint64_t>::max() / scale) {
    if (error)
      *error = "expected a size such as 1048576, 512KiB, 64MiB or 2GiB, got '" + std::string(text) + "'";
    return std::nullopt;
  }
  return number * scale;
}

ConfigLoad load_config_file(const std::string& path) { return load_guarded(path, nullptr, &path); }

ConfigLoad load_config_string(const std::string& text, const std::string& name) {
  return load_guarded(name, &text, nullptr);
}

}  // namespace outpost
