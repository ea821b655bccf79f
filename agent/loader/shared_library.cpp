#include "shared_library.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <stdexcept>
#include <string>
#include <vector>

namespace outpost {

void* open_shared_library(const char* soname) {
  // RTLD_LOCAL: its symbols stay its own; RTLD_NOW: a missing one shows here.
  void* library = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* why = dlerror();
    throw std::runtime_error(std::string("cannot load ") + soname + ": " + (why ? why : "dlopen failed"));
  }
  return library;
}

void* shared_library_symbol(void* library, const char* soname, const char* name) {
  dlerror();
  void* symbol = dlsym(library, name);
  if (symbol == nullptr) {
    const char* why = dlerror();
    throw std::runtime_error(std::string(soname) + " has no " + name + (why ? std::string(": ") + why : ""));
  }
  return symbol;
}

namespace {

// Where a module may be: beside the executable, then in ../lib/outpost.
std::vector<std::string> module_paths(const std::string& file_name) {
  char exe[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return {};
  std::string dir(exe, static_cast<std::size_t>(n));
  dir.erase(dir.rfind('/') + 1);
  return {dir + file_name, dir + "../lib/outpost/" + file_name};
}

}  // namespace

const void* open_outpost_module(const char* file_name, const char* table) {
  std::string tried;
  for (const std::string& path : module_paths(file_name)) {
    if (::access(path.c_str(), R_OK) != 0) {
      tried += (tried.empty() ? "" : ", ") + path;
      continue;
    }
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      const char* why = ::dlerror();
      throw std::runtime_error("cannot load " + path + ": " + (why ? why : "dlopen failed"));
    }
    using TableFn = const void* (*)();
    auto get = reinterpret_cast<TableFn>(::dlsym(handle, table));
    if (!get) throw std::runtime_error(path + " is not outpost's module " + file_name + " (no " + table + ")");
    return get();
  }
  throw std::runtime_error(std::string("cannot find ") + file_name + " (looked for " +
                           (tried.empty() ? "/proc/self/exe" : tried) + ")");
}

}  // namespace outpost
