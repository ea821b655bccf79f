#include "shared_library.hpp"

#include <dlfcn.h>

#include <stdexcept>
#include <string>

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

}  // namespace outpost
