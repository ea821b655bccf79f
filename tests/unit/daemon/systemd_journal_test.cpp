// Lines for the journal: "<N>message" with the syslog priority of each level
// and nothing else (the journal stamps the time); JOURNAL_STREAM matched
// against the file's device and inode; the log level names.

#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

#include <cstdio>
#include <sstream>
#include <string>

#include "systemd_journal.hpp"

using outpost::is_journal_stream;
using outpost::journal_formatter;
using outpost::journal_priority;
using outpost::log_level_named;

TEST_CASE("journal: each level's syslog priority", "[systemd]") {
  CHECK(journal_priority(spdlog::level::trace) == 7);
  CHECK(journal_priority(spdlog::level::debug) == 7);
  CHECK(journal_priority(spdlog::level::info) == 6);
  CHECK(journal_priority(spdlog::level::warn) == 4);
  CHECK(journal_priority(spdlog::level::err) == 3);
  CHECK(journal_priority(spdlog::level::critical) == 2);
}

TEST_CASE("journal: a line is the priority prefix and the message, no time and no colour", "[systemd]") {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  sink->set_formatter(journal_formatter());
  spdlog::logger logger("journal-test", sink);
  logger.set_level(spdlog::level::debug);
  logger.debug("lookup of {} again", "naenara.com.kp");
  logger.info("outpost agent fra-1 running");
  logger.warn("output vm: send failed");
  logger.error("cannot write /var/lib/outpost/results.jsonl");
  logger.critical("loop failed; flushing and exiting");
  CHECK(out.str() ==
        "<7>lookup of naenara.com.kp again\n"
        "<6>outpost agent fra-1 running\n"
        "<4>output vm: send failed\n"
        "<3>cannot write /var/lib/outpost/results.jsonl\n"
        "<2>loop failed; flushing and exiting\n");
}

TEST_CASE("journal: JOURNAL_STREAM names a file by device and inode", "[systemd]") {
  char path[] = "/tmp/outpost-journal-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  struct stat st {};
  REQUIRE(::fstat(fd, &st) == 0);
  const std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  const std::string other = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1);
  CHECK(is_journal_stream(mine.c_str(), fd));
  CHECK_FALSE(is_journal_stream(other.c_str(), fd));
  CHECK_FALSE(is_journal_stream(nullptr, fd));
  CHECK_FALSE(is_journal_stream("", fd));
  CHECK_FALSE(is_journal_stream("journal", fd));
  CHECK_FALSE(is_journal_stream((mine + "x").c_str(), fd));
  CHECK_FALSE(is_journal_stream(mine.c_str(), -1));
  ::close(fd);
  ::unlink(path);
}

TEST_CASE("journal: the log level names", "[systemd]") {
  CHECK(log_level_named("debug") == spdlog::level::debug);
  CHECK(log_level_named("info") == spdlog::level::info);
  CHECK(log_level_named("warn") == spdlog::level::warn);
  CHECK(log_level_named("error") == spdlog::level::err);
  CHECK_FALSE(log_level_named("verbose"));
  CHECK_FALSE(log_level_named("INFO"));
  CHECK_FALSE(log_level_named(""));
}
