// How the daemon looks up its targets' host names: all at once and blocking
// at start-up and reload, or one at a time off the loop while running. An
// interface, so the whole Agent runs in tests over a table of names.
// Leaves to others: when to look a name up again (host_refresher), what to do with it (plan).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "async_worker.hpp"
#include "event_loop.hpp"
#include "ip_address.hpp"

namespace outpost {

// A name's first IPv4 and first IPv6 address, each looked up on its own:
// an empty one has its error (the name has none of that family, or no
// answer at all).
struct HostAddresses {
  IpAddress v4;
  IpAddress v6;
  std::string error4;
  std::string error6;
};

// getaddrinfo for both families (a literal address is taken as it is).
HostAddresses lookup_host(const std::string& name);

class HostResolver {
 public:
  using Done = std::function<void(const HostAddresses&)>;
  virtual ~HostResolver() = default;
  // Blocking, side by side: the answers in the names' order.
  virtual std::vector<HostAddresses> lookup_now(const std::vector<std::string>& names) = 0;
  // Off the loop; done runs on the loop's thread, later.
  virtual void lookup(const std::string& name, Done done) = 0;
};

// getaddrinfo: on up to 16 threads at start-up, on a worker thread while running.
class SystemResolver final : public HostResolver {
 public:
  explicit SystemResolver(EventLoop& loop);
  std::vector<HostAddresses> lookup_now(const std::vector<std::string>& names) override;
  void lookup(const std::string& name, Done done) override;

 private:
  AsyncWorker worker_;
};

// A fixed table of names (tests, simulations); answers come on the next turn of the loop.
class TableResolver final : public HostResolver {
 public:
  explicit TableResolver(EventLoop& loop) : loop_(loop) {}
  void set(const std::string& name, HostAddresses addresses) { table_[name] = std::move(addresses); }
  std::vector<HostAddresses> lookup_now(const std::vector<std::string>& names) override;
  void lookup(const std::string& name, Done done) override;

 private:
  HostAddresses find(const std::string& name);
  EventLoop& loop_;
  std::unordered_map<std::string, HostAddresses> table_;
};

}  // namespace outpost
