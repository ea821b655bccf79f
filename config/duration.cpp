// Durations as written in the config and on the command line: "500ms", "2s", "1.5s".

#include <array>
#include <charconv>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <string_view>

#include "outpost_config.hpp"

namespace outpost {
namespace {

struct Unit {
  std::string_view name;
  std::int64_t ns;
};

// Largest first, so that format_duration picks the shortest form.
constexpr std::array<Unit, 6> units{{
    {"h", 3'600'000'000'000},
    {"m", 60'000'000'000},
    {"s", 1'000'000'000},
    {"ms", 1'000'000},
    {"us", 1'000},
    {"ns", 1},
}};

constexpr std::string_view unit_list = "ns, us, ms, s, m or h";

const Unit* find_unit(std::string_view name) {
  for (const Unit& unit : units) {
    if (unit.name == name) return &unit;
  }
  return nullptr;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string_view take_digits(std::string_view text, std::size_t& pos) {
  std::size_t start = pos;
  while (pos < text.size() && is_digit(text[pos])) ++pos;
  return text.substr(start, pos - start);
}

std::optional<Duration> fail(std::string* error, std::string message) {
  if (error) *error = std::move(message);
  return std::nullopt;
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text, std::string* error) {
  const std::string quoted = "'" + std::string(text) + "'";
  if (text.empty()) return fail(error, "empty duration (expected e.g. 500ms, 2s, 5m, 1h)");

  // [sign] digits [. digits] unit
  std::size_t pos = 0;
  bool negative = false;
  if (text[0] == '-' || text[0] == '+') {
    negative = text[0] == '-';
    ++pos;
  }
  std::string_view whole = take_digits(text, pos);
  std::string_view fraction;
  bool has_point = pos < text.size() && text[pos] == '.';
  if (has_point) {
    ++pos;
    fraction = take_digits(text, pos);
  }
  if (whole.empty() || (has_point && fraction.empty())) {
    return fail(error, quoted + " is not a duration (expected e.g. 500ms, 2s, 5m, 1h)");
  }
  std::string_view unit_name = text.substr(pos);
  if (unit_name.empty()) {
    return fail(error, quoted + " has no unit (expected " + std::string(unit_list) + ", e.g. " +
                           std::string(text) + "s)");
  }
  const Unit* unit = find_unit(unit_name);
  if (!unit) {
    return fail(error, quoted + ": unknown unit '" + std::string(unit_name) + "' (expected " +
                           std::string(unit_list) + ")");
  }

  const std::string too_large =
      quoted + " is too long (at most " + format_duration(kMaxDuration) + ", a year)";
  std::int64_t whole_value = 0;
  auto [end, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), whole_value);
  std::int64_t ns = 0;
  if (ec != std::errc{} || __builtin_mul_overflow(whole_value, unit->ns, &ns)) {
    return fail(error, too_large);
  }

  // The fraction must come out as whole nanoseconds: it is exact when
  // 10^digits / gcd(fraction, 10^digits) divides the unit. No unit has more than
  // 13 factors of 2 or 11 of 5 (1h = 2^13 * 3^2 * 5^11 ns), so a fraction of more
  // than 13 significant digits never is.
  while (!fraction.empty() && fraction.back() == '0') fraction.remove_suffix(1);
  if (!fraction.empty()) {
    if (fraction.size() > 13) return fail(error, quoted + " is finer than a nanosecond");
    std::int64_t numerator = 0;
    std::int64_t denominator = 1;
    for (char c : fraction) {
      numerator = numerator * 10 + (c - '0');
      denominator *= 10;
    }
    const std::int64_t common = std::gcd(numerator, denominator);
    const std::int64_t step = denominator / common;
    if (unit->ns % step != 0) return fail(error, quoted + " is finer than a nanosecond");
    if (__builtin_add_overflow(ns, numerator / common * (unit->ns / step), &ns)) return fail(error, too_large);
  }

  if (negative || ns == 0) return fail(error, quoted + ": a duration must be greater than zero");
  // Bounded so that any duration added to any clock reading stays far from overflow.
  if (Duration(ns) > kMaxDuration) return fail(error, too_large);
  return Duration(ns);
}

std::string format_duration(Duration d) {
  std::int64_t ns = d.count();
  if (ns == 0) return "0s";
  if (ns < 0) {
    if (ns == std::numeric_limits<std::int64_t>::min()) return std::to_string(ns) + "ns";
    return "-" + format_duration(Duration(-ns));
  }
  for (const Unit& unit : units) {
    if (ns % unit.ns == 0) return std::to_string(ns / unit.ns) + std::string(unit.name);
  }
  return std::to_string(ns) + "ns";  // not reached: every count is a whole number of ns
}

}  // namespace outpost
