// Shared libraries opened when first needed (dlopen), for the ones only some
// commands use: libcurl (http, influx, prometheus_remote_write) and libnats
// (nats) bring some thirty libraries between them, and loading those at
// start took about 11 of the 31 ms any command spent starting, a ping or a
// check included; libsystemd (libsystemd.hpp) brings five. A user's file
// lists the functions it calls (an X-macro), loads them into a table once
// (OUTPOST_SHARED_API) and sends its calls there.
#pragma once

namespace outpost {

// The library (never closed); throws std::runtime_error naming it and why.
void* open_shared_library(const char* soname);
// One of its symbols; throws std::runtime_error naming both.
void* shared_library_symbol(void* library, const char* soname, const char* name);

// One of outpost's own modules (outpost-tins.so, outpost-metrics.so), opened
// from beside the executable (a build tree), else from ../lib/outpost/ next
// to its directory (the package: /usr/lib/outpost), never closed; then its
// one export, `table`, called. Throws std::runtime_error naming the paths
// tried, or the module and why it could not be loaded.
const void* open_outpost_module(const char* file_name, const char* table);

}  // namespace outpost

// Defines struct API, a table with a member per function of LIST (an
// X-macro: LIST(X) calls X(name) for each), typed from the library's
// header, and `const API& ACCESSOR()`, which opens SONAME and fills the
// table on its first call (thread-safe; it throws, and tries again next
// time, when the library or a function is missing).
#define OUTPOST_SHARED_MEMBER(f) decltype(&::f) f = nullptr;
#define OUTPOST_SHARED_LOAD(f) t.f = reinterpret_cast<decltype(t.f)>(::outpost::shared_library_symbol(lib, so, #f));
#define OUTPOST_SHARED_API(API, ACCESSOR, SONAME, LIST) \
  struct API {                                          \
    LIST(OUTPOST_SHARED_MEMBER)                         \
  };                                                    \
  const API& ACCESSOR() {                               \
    static const API table = [] {                       \
      API t;                                            \
      const char* so = SONAME;                          \
      void* lib = ::outpost::open_shared_library(so);   \
      LIST(OUTPOST_SHARED_LOAD)                         \
      return t;                                         \
    }();                                                \
    return table;                                       \
  }
