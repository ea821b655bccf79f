#include "host_resolver.hpp"

#include "resolve.hpp"

#include <algorithm>
#include <atomic>
#include <memory>
#include <thread>

namespace outpost {

HostAddresses lookup_host(const std::string& name) {
  HostAddresses out;
  const auto both = resolve_target(name, TargetFamily::both);  // IPv4, then IPv6
  if (both.size() == 2) {
    out.v4 = both[0].address;
    out.error4 = both[0].error;
    out.v6 = both[1].address;
    out.error6 = both[1].error;
  }
  return out;
}

SystemResolver::SystemResolver(EventLoop& loop) : worker_(loop) {}

std::vector<HostAddresses> SystemResolver::lookup_now(const std::vector<std::string>& names) {
  constexpr std::size_t kParallel = 16;
  std::vector<HostAddresses> out(names.size());
  std::atomic<std::size_t> next{0};
  auto work = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < names.size();) out[i] = lookup_host(names[i]);
  };
  const std::size_t threads = std::min(kParallel, names.size());
  std::vector<std::thread> pool;
  for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  return out;
}

void SystemResolver::lookup(const std::string& name, Done done) {
  auto answer = std::make_shared<HostAddresses>();
  worker_.run([answer, name] { *answer = lookup_host(name); },
              [answer, done = std::move(done)] { done(*answer); });
}

HostAddresses TableResolver::find(const std::string& name) {
  ++lookups_;
  auto it = table_.find(name);
  if (it != table_.end()) return it->second;
  HostAddresses none;
  none.error4 = none.error6 = "cannot resolve host '" + name + "': Name or service not known";
  return none;
}

std::vector<HostAddresses> TableResolver::lookup_now(const std::vector<std::string>& names) {
  std::vector<HostAddresses> out;
  out.reserve(names.size());
  for (const auto& n : names) out.push_back(find(n));
  return out;
}

void TableResolver::lookup(const std::string& name, Done done) {
  loop_.after(Duration::zero(), [answer = find(name), done = std::move(done)] { done(answer); });
}

}  // namespace outpost
