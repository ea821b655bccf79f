// The syncer: fdatasync on its own thread of a duplicate of the caller's fd,
// failures counted, and the warning limiter it shares with the spool.

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "spool.hpp"
#include "syncer.hpp"

using outpost::Syncer;

namespace {

class TempDir {
 public:
  TempDir() {
    std::string templ = "/tmp/outpost-syncer-XXXXXX";
    REQUIRE(mkdtemp(templ.data()) != nullptr);
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string sub(const std::string& name) const { return (path_ / name).string(); }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

int open_fds() {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    (void)e;
    ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("syncer: syncs a file whose descriptor the caller closed at once", "[syncer]") {
  TempDir dir;
  const int fds_before = open_fds();
  {
    Syncer syncer;
    for (int i = 0; i < 5; ++i) {
      const int fd = ::open(dir.sub("f" + std::to_string(i)).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      REQUIRE(fd >= 0);
      REQUIRE(::write(fd, "data\n", 5) == 5);
      syncer.sync(fd);
      ::close(fd);  // the syncer holds its own duplicate
    }
    syncer.drain();
    CHECK(syncer.synced() + syncer.folded() == 5);
    CHECK(syncer.synced() == 5);  // five different files: nothing to fold
    CHECK(syncer.failures() == 0);
  }
  // Every duplicate was closed, and the thread is gone with the syncer.
  CHECK(open_fds() == fds_before);
}

TEST_CASE("syncer: failures are counted, not thrown", "[syncer]") {
  Syncer syncer;
  syncer.sync(-1);  // no such descriptor: the dup fails
  int pipe_fds[2];
  REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
  syncer.sync(pipe_fds[1]);  // fdatasync of a pipe: EINVAL
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  syncer.drain();
  CHECK(syncer.failures() == 2);
  CHECK(syncer.synced() == 0);
}

TEST_CASE("syncer: requests still queued at destruction are finished, their duplicates closed", "[syncer]") {
  TempDir dir;
  const int fds_before = open_fds();
  {
    Syncer syncer;
    for (int i = 0; i < 20; ++i) {
      const int fd = ::open(dir.sub("g" + std::to_string(i)).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      REQUIRE(fd >= 0);
      syncer.sync(fd);
      ::close(fd);
    }
    // Destroyed without drain().
  }
  CHECK(open_fds() == fds_before);
}

TEST_CASE("syncer: the spool asks it to sync what it wrote", "[syncer]") {
  TempDir dir;
  Syncer syncer;
  outpost::Spool spool(dir.str(), 1 << 30, &syncer);
  outpost::Batch b;
  b.id = "b1";
  b.payload = "x";
  spool.append(b);
  spool.sync();
  syncer.drain();
  // The segment and the directories that gained files.
  CHECK(syncer.synced() >= 2);
  CHECK(syncer.failures() == 0);
  const auto before = syncer.synced() + syncer.folded();
  spool.sync();  // nothing new written: nothing asked
  syncer.drain();
  CHECK(syncer.synced() + syncer.folded() == before);
}
