// The CLI's text for the terminal: padding as printf's %-Ns and %Ns,
// milliseconds as %.3f, and write_stdout taking everything to the end.

#include <catch2/catch.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "cli_common.hpp"

using namespace outpost;
using namespace std::chrono_literals;

TEST_CASE("terminal output: padding as printf's %-Ns and %Ns, longer text whole", "[cli]") {
  CHECK(left_aligned("198.19.0.2", 16) == "198.19.0.2      ");
  CHECK(right_aligned("4", 3) == "  4");
  CHECK(left_aligned("", 3) == "   ");
  CHECK(left_aligned("2001:db8:ffff::1234:5678", 16) == "2001:db8:ffff::1234:5678");
  CHECK(right_aligned("1234", 3) == "1234");
}

TEST_CASE("terminal output: milliseconds with three decimals, from whole microseconds", "[cli]") {
  CHECK(milliseconds_text(0ns) == "0.000");
  CHECK(milliseconds_text(30668ns) == "0.031");
  CHECK(milliseconds_text(30499ns) == "0.030");
  CHECK(milliseconds_text(30500ns) == "0.031");  // halves up
  CHECK(milliseconds_text(999999ns) == "1.000");
  CHECK(milliseconds_text(1ms + 5us) == "1.005");
  CHECK(milliseconds_text(12345678ns) == "12.346");
  CHECK(milliseconds_text(2s) == "2000.000");
  CHECK(milliseconds_text(-5us) == "0.000");
  // As printf's %8.3f once padded, for the RTTs a trace prints.
  for (const auto d : {17us, 250us, 1234us, 98765us}) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%8.3f", std::chrono::duration<double, std::milli>(d).count());
    CHECK(right_aligned(milliseconds_text(d), 8) == buf);
  }
}

TEST_CASE("terminal output: write_stdout writes all of it", "[cli]") {
  int pipe_fds[2];
  REQUIRE(pipe(pipe_fds) == 0);
  const int saved = dup(STDOUT_FILENO);
  REQUIRE(saved >= 0);
  REQUIRE(dup2(pipe_fds[1], STDOUT_FILENO) == STDOUT_FILENO);
  const std::string text = "trace to 198.18.2.1 (198.18.2.1), icmp paris, max 30 hops\n" + std::string(3000, 'x') + "\n";
  write_stdout(text);
  REQUIRE(dup2(saved, STDOUT_FILENO) == STDOUT_FILENO);
  close(saved);
  close(pipe_fds[1]);
  std::string got;
  char buf[1024];
  for (ssize_t n; (n = read(pipe_fds[0], buf, sizeof buf)) > 0;) got.append(buf, static_cast<std::size_t>(n));
  close(pipe_fds[0]);
  CHECK(got == text);
}
