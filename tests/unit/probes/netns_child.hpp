// Tests that run in a network namespace of their own, in a forked child: as
// root, a new network namespace; otherwise a new user namespace too, where
// the child is root of its own (and may open raw and packet sockets there).
#pragma once

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <string>

namespace outpost::test {

inline bool write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  f.close();
  return static_cast<bool>(f);
}

// In the child: a namespace of its own, or "skip: why".
inline std::string enter_namespace() {
  if (geteuid() == 0) return unshare(CLONE_NEWNET) == 0 ? "" : "skip: unshare(CLONE_NEWNET) failed";
  const uid_t uid = geteuid();
  const gid_t gid = getegid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) return "skip: not root, and no user namespaces here";
  if (!write_file("/proc/self/setgroups", "deny") ||
      !write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1") ||
      !write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1"))
    return "skip: cannot map the user namespace";
  return "";
}

// Runs a shell command, quietly; whether it succeeded.
inline bool run(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()) == 0; }

// Runs `checks` in a forked child and checks its "ok" (a "skip: why" warns
// and checks nothing: Catch2 v2 has no skip).
inline void run_in_child(std::string (*checks)(), const char* name) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    close(fds[0]);
    const std::string result = checks();
    [[maybe_unused]] auto w = write(fds[1], result.data(), result.size());
    _exit(0);
  }
  close(fds[1]);
  std::string result;
  char buf[512];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) result.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  if (result.rfind("skip: ", 0) == 0) {
    WARN(name << " skipped: " << result.substr(6));
    return;
  }
  CHECK(result == "ok");
}

}  // namespace outpost::test
