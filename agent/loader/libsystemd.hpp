// libsystemd, opened when first needed (shared_library.hpp): only the agent
// under systemd (NOTIFY_SOCKET set) calls it, and loading it at start, with
// the libgcrypt, libgpg-error, liblzma, libzstd and liblz4 it links, took a
// quarter of the start-up of `outpost ping` (the libpcap archive linked here
// brings libdbus, and libdbus calls libsystemd: see libsystemd.cpp).
// Leaves to others: what is sent (systemd_notify.hpp).
#pragma once

#include <cstdint>

namespace outpost {

// The functions of sd-daemon(3) outpost calls.
struct SystemdDaemonApi {
  int (*notify)(int unset_environment, const char* state) = nullptr;
  int (*watchdog_enabled)(int unset_environment, std::uint64_t* usec) = nullptr;
  int (*listen_fds)(int unset_environment) = nullptr;
  int (*is_socket)(int fd, int family, int type, int listening) = nullptr;
};

// The table, loaded on the first call; throws std::runtime_error naming the
// library and why when it cannot be loaded (and tries again next time).
const SystemdDaemonApi& systemd_daemon();

}  // namespace outpost
