// A nats-server with JetStream for tests: Debian's binary on a free
// 127.0.0.1 port, its store and log in a temp dir; started, stopped, killed
// and started again on the same store and port. The destructor kills it and
// removes the dir, so a failing test leaves nothing behind.
// Leaves to others: what the tests publish and read (nats_stream.hpp).
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace outpost::testing {

// A port nothing listens on right now (bound once, then let go).
inline int free_loopback_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) close(fd);
    throw std::runtime_error("no free loopback port");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

class NatsServer {
 public:
  // The nats-server binary, or "" when it is not installed.
  static std::string binary() {
    for (const char* p : {"/usr/sbin/nats-server", "/usr/bin/nats-server"}) {
      if (access(p, X_OK) == 0) return p;
    }
    return "";
  }

  // Makes the dir and picks the port; starts nothing. `extra_args` go on the
  // command line (e.g. {"--auth", "secret"}).
  explicit NatsServer(std::vector<std::string> extra_args = {})
      : extra_args_(std::move(extra_args)), port_(free_loopback_port()) {
    auto tmp = std::filesystem::temp_directory_path() / "outpost-nats-XXXXXX";
    std::string pattern = tmp.string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
  }
  ~NatsServer() {
    kill();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  // Starts the server (again, on the same store and port, after stop() or
  // kill()) and waits until it greets a client; false (see log()) when it
  // does not within 15 s.
  bool start() {
    if (running()) return true;
    std::vector<std::string> args = {binary(), "-js", "-a", "127.0.0.1", "-p", std::to_string(port_),
                                     "-sd", store_dir(), "-l", log_path()};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives the test
      int null = open("/dev/null", O_RDWR);
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
      execv(argv[0], argv.data());
      _exit(127);
    }
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < until) {
      if (greets()) return true;
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill();
    return false;
  }
  // SIGTERM: a clean shutdown (SIGKILL after 10 s).
  void stop() { end(SIGTERM); }
  // SIGKILL: the server dies on the spot.
  void kill() { end(SIGKILL); }
  bool running() const { return pid_ > 0; }

  int port() const { return port_; }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  std::string dir() const { return dir_.string(); }
  std::string store_dir() const { return (dir_ / "store").string(); }
  std::string log_path() const { return (dir_ / "server.log").string(); }
  std::string log() const {
    std::ifstream in(log_path());
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
  }

 private:
  // Connects and reads the server's INFO line.
  bool greets() const {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port_));
    bool ok = false;
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      pollfd p{fd, POLLIN, 0};
      char buf[5] = {};
      ok = poll(&p, 1, 2000) == 1 && recv(fd, buf, 4, MSG_WAITALL) == 4 && std::string(buf) == "INFO";
    }
    close(fd);
    return ok;
  }

  void end(int signo) {
    if (pid_ <= 0) return;
    ::kill(pid_, signo);
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > until) {
        ::kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
  }

  std::vector<std::string> extra_args_;
  int port_;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
};

}  // namespace outpost::testing
