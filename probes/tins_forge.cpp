#include "tins_forge.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <stdexcept>

namespace outpost {
namespace {

constexpr const char* kModule = "outpost-tins.so";

// Where the module may be: beside the executable, then in ../lib/outpost.
std::vector<std::string> module_paths() {
  char exe[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return {};
  std::string dir(exe, static_cast<std::size_t>(n));
  dir.erase(dir.rfind('/') + 1);
  return {dir + kModule, dir + "../lib/outpost/" + kModule};
}

const TinsForge* load() {
  if (outpost_tins_forge_table) return outpost_tins_forge_table();
  std::string tried;
  for (const std::string& path : module_paths()) {
    if (::access(path.c_str(), R_OK) != 0) {
      tried += (tried.empty() ? "" : ", ") + path;
      continue;
    }
    // Never closed: the forgers stay for the life of the process.
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      const char* why = ::dlerror();
      throw std::runtime_error("cannot load " + path + ": " + (why ? why : "dlopen failed"));
    }
    using TableFn = const TinsForge* (*)();
    auto table = reinterpret_cast<TableFn>(::dlsym(handle, "outpost_tins_forge_table"));
    if (!table) throw std::runtime_error(path + " is not outpost's packet module (no outpost_tins_forge_table)");
    return table();
  }
  throw std::runtime_error(std::string("cannot find ") + kModule + " (looked for " +
                           (tried.empty() ? "/proc/self/exe" : tried) + ")");
}

}  // namespace

const TinsForge& tins_forge() {
  static const TinsForge* table = load();  // a throw leaves it for the next call to try again
  return *table;
}

std::string load_tins_forge() {
  try {
    (void)tins_forge();
    return {};
  } catch (const std::exception& e) {
    return e.what();
  }
}

}  // namespace outpost
