// parse_probe_method and ProbeMethod's two spellings.

#include <catch2/catch.hpp>

#include <string>

#include "outpost_config.hpp"

using outpost::parse_probe_method;
using outpost::ProbeMethod;
using Kind = outpost::ProbeMethod::Kind;

TEST_CASE("parse_probe_method reads the four methods", "[probe_method]") {
  std::string error;
  CHECK(parse_probe_method("icmp", &error) == ProbeMethod{Kind::icmp, 0});
  CHECK(parse_probe_method("dns", &error) == ProbeMethod{Kind::dns, 0});
  CHECK(parse_probe_method("tcp:443", &error) == ProbeMethod{Kind::tcp, 443});
  CHECK(parse_probe_method("tcp:1", &error) == ProbeMethod{Kind::tcp, 1});
  CHECK(parse_probe_method("tcp_connect:65535", &error) == ProbeMethod{Kind::tcp_connect, 65535});
  CHECK(error.empty());
}

TEST_CASE("parse_probe_method names what is wrong", "[probe_method]") {
  auto message = [](const char* text) {
    std::string error;
    CHECK_FALSE(parse_probe_method(text, &error).has_value());
    return error;
  };
  CHECK(message("icmpp") == "unknown probe method 'icmpp' (expected icmp, tcp:PORT, tcp_connect:PORT or dns)");
  CHECK(message("") == "unknown probe method '' (expected icmp, tcp:PORT, tcp_connect:PORT or dns)");
  CHECK(message("udp:53") == "unknown probe method 'udp:53' (expected icmp, tcp:PORT, tcp_connect:PORT or dns)");
  CHECK(message("tcp443") == "unknown probe method 'tcp443' (expected icmp, tcp:PORT, tcp_connect:PORT or dns)");
  CHECK(message("icmp:1") == "unknown probe method 'icmp:1' (expected icmp, tcp:PORT, tcp_connect:PORT or dns)");
  CHECK(message("tcp") == "'tcp' needs a port, e.g. tcp:443");
  CHECK(message("tcp_connect") == "'tcp_connect' needs a port, e.g. tcp_connect:443");
  CHECK(message("tcp:") == "'tcp:': port must be a number from 1 to 65535");
  CHECK(message("tcp:0") == "'tcp:0': port must be a number from 1 to 65535");
  CHECK(message("tcp:65536") == "'tcp:65536': port must be a number from 1 to 65535");
  CHECK(message("tcp:+80") == "'tcp:+80': port must be a number from 1 to 65535");
  CHECK(message("tcp_connect:8o") == "'tcp_connect:8o': port must be a number from 1 to 65535");
  CHECK_FALSE(parse_probe_method("nope", nullptr).has_value());
}

TEST_CASE("ProbeMethod spells itself for records and for configs", "[probe_method]") {
  CHECK(ProbeMethod{Kind::icmp, 0}.text() == "icmp");
  CHECK(ProbeMethod{Kind::dns, 0}.text() == "dns");
  CHECK(ProbeMethod{Kind::tcp, 443}.text() == "tcp:443");
  CHECK(ProbeMethod{Kind::tcp_connect, 80}.text() == "tcp_connect:80");
  CHECK(ProbeMethod{Kind::icmp, 0}.record_name() == "icmp");
  CHECK(ProbeMethod{Kind::dns, 0}.record_name() == "dns");
  CHECK(ProbeMethod{Kind::tcp, 443}.record_name() == "tcp");
  CHECK(ProbeMethod{Kind::tcp_connect, 80}.record_name() == "tcp");
  for (const char* text : {"icmp", "dns", "tcp:22", "tcp_connect:8080"}) {
    CHECK(parse_probe_method(text, nullptr)->text() == text);
  }
}
