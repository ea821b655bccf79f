// The capture drain's bound: a capture that holds a flood of frames hands on
// at most kMaxFramesPerWake of them per readiness, so the loop turns to its
// timers between. A savefile stands in for the live capture (no root).

#include "wire.hpp"

#include <pcap/pcap.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

// A savefile of `frames` Ethernet frames, each 60 bytes; removed when done.
class FloodFile {
 public:
  explicit FloodFile(int frames) {
    char name[] = "/tmp/outpost-bounds-wire-XXXXXX";
    const int fd = mkstemp(name);
    REQUIRE(fd >= 0);
    close(fd);
    path_ = name;
    pcap_t* dead = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 512, PCAP_TSTAMP_PRECISION_NANO);
    REQUIRE(dead);
    pcap_dumper_t* out = pcap_dump_open(dead, path_.c_str());
    REQUIRE(out);
    std::vector<u_char> frame(60, 0);
    for (int i = 0; i < frames; ++i) {
      pcap_pkthdr header{};
      header.ts.tv_sec = 1419264900;
      header.ts.tv_usec = i;
      header.caplen = header.len = static_cast<bpf_u_int32>(frame.size());
      frame[0] = static_cast<u_char>(i);
      pcap_dump(reinterpret_cast<u_char*>(out), &header, frame.data());
    }
    pcap_dump_close(out);
    pcap_close(dead);
  }
  ~FloodFile() { unlink(path_.c_str()); }
  FloodFile(const FloodFile&) = delete;
  FloodFile& operator=(const FloodFile&) = delete;

  pcap_t* open() const {
    char errbuf[PCAP_ERRBUF_SIZE] = {};
    pcap_t* p = pcap_open_offline_with_tstamp_precision(path_.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
    INFO(errbuf);
    REQUIRE(p);
    return p;
  }

 private:
  std::string path_;
};

}  // namespace

TEST_CASE("wire bounds: one readiness hands on at most 256 frames of a flood", "[wire][bounds]") {
  const int flood = 1000;
  FloodFile file(flood);
  outpost::FakeClock clock;
  outpost::RawWire wire(clock, {}, {});
  std::vector<int> watched;
  wire.set_fd_watcher([&](int fd) { watched.push_back(fd); });
  int frames = 0;
  int link_type = -1;
  wire.set_frame_handler([&](int link, const std::uint8_t*, std::size_t size, outpost::WallTime) {
    ++frames;
    link_type = link;
    CHECK(size == 60);
  });
  REQUIRE(wire.adopt_capture(file.open(), "flood0"));
  REQUIRE(watched.size() == 1);
  REQUIRE(watched[0] >= 0);

  CHECK(wire.on_readable(watched[0]) == outpost::kMaxFramesPerWake);
  CHECK(frames == outpost::kMaxFramesPerWake);
  CHECK(link_type == DLT_EN10MB);
  // Each further turn takes the next share, until the capture is empty.
  int turns = 1;
  while (wire.on_readable(watched[0]) > 0) ++turns;
  CHECK(frames == flood);
  CHECK(turns == (flood + outpost::kMaxFramesPerWake - 1) / outpost::kMaxFramesPerWake);
  // A second capture on the same interface is refused (and closed).
  CHECK_FALSE(wire.adopt_capture(file.open(), "flood0"));
  CHECK(watched.size() == 1);
}
