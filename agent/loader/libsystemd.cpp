#include "libsystemd.hpp"

#include <systemd/sd-daemon.h>

#include <cerrno>

#include "shared_library.hpp"

namespace outpost {

namespace {
#define OUTPOST_SYSTEMD_FUNCTIONS(X) \
  X(sd_notify)                       \
  X(sd_watchdog_enabled)             \
  X(sd_listen_fds)                   \
  X(sd_is_socket)
OUTPOST_SHARED_API(SdApi, sd_api, OUTPOST_SYSTEMD_SONAME, OUTPOST_SYSTEMD_FUNCTIONS)
#undef OUTPOST_SYSTEMD_FUNCTIONS
}  // namespace

const SystemdDaemonApi& systemd_daemon() {
  static const SystemdDaemonApi api = [] {
    const SdApi& sd = sd_api();
    SystemdDaemonApi a;
    a.notify = sd.sd_notify;
    a.watchdog_enabled = sd.sd_watchdog_enabled;
    a.listen_fds = sd.sd_listen_fds;
    a.is_socket = sd.sd_is_socket;
    return a;
  }();
  return api;
}

}  // namespace outpost

// libpcap is linked from its archive (CMakeLists.txt), and with it libdbus's,
// whose unix socket code calls these two of libsystemd to take sockets that
// systemd passes to a bus daemon. A capture never gets there; should it, the
// call reaches libsystemd all the same, loaded then. Without libsystemd,
// sd_listen_fds says no socket was passed (0) and sd_is_socket -ENOSYS.
extern "C" int sd_listen_fds(int unset_environment) {
  try {
    return outpost::systemd_daemon().listen_fds(unset_environment);
  } catch (...) {
    return 0;
  }
}

extern "C" int sd_is_socket(int fd, int family, int type, int listening) {
  try {
    return outpost::systemd_daemon().is_socket(fd, family, type, listening);
  } catch (...) {
    return -ENOSYS;
  }
}
