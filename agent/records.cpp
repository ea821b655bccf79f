#include "records.hpp"

#include <cstdio>
#include <ctime>

namespace outpost {

std::string rfc3339(WallTime t) {
  const auto ns = t.time_since_epoch().count();
  std::time_t secs = static_cast<std::time_t>(ns / 1000000000);
  long micros = static_cast<long>((ns % 1000000000) / 1000);
  if (micros < 0) {
    micros += 1000000;
    secs -= 1;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
  return buf;
}

double to_ms(Duration d) { return static_cast<double>(d.count()) / 1e6; }

namespace {

nlohmann::json base_record(const ProbeLabels& labels, const std::string& address, WallTime time) {
  nlohmann::json j;
  j["type"] = "probe";
  j["agent"] = labels.agent;
  j["time"] = rfc3339(time);
  j["target"] = labels.target;
  j["group"] = labels.group;
  j["address"] = address;
  j["method"] = labels.method;
  if (labels.method == "tcp") j["port"] = labels.port;
  return j;
}

}  // namespace

nlohmann::json probe_record(const ProbeLabels& labels, const ProbeResult& r) {
  nlohmann::json j = base_record(labels, r.target.to_string(), r.sent);
  j["status"] = std::string(to_string(r.status));
  if (r.rtt) j["rtt_ms"] = to_ms(*r.rtt);
  if (r.status == ProbeStatus::error) j["error"] = r.error.empty() ? "unknown error" : r.error;
  if (r.reply_from) {
    j["reply_from"] = r.reply_from.to_string();
    j["reply_ttl"] = r.reply_ttl;
  }
  if (r.status == ProbeStatus::unreachable) {
    j["icmp_type"] = r.icmp_type;
    j["icmp_code"] = r.icmp_code;
    j["detail"] = r.error;
  }
  if (labels.method == "icmp" && r.status != ProbeStatus::error) j["seq"] = r.sequence;
  return j;
}

nlohmann::json probe_error_record(const ProbeLabels& labels, const std::string& address, WallTime time,
                                  const std::string& error) {
  nlohmann::json j = base_record(labels, address, time);
  j["status"] = "error";
  j["error"] = error;
  return j;
}

}  // namespace outpost
