// Shared libraries opened when first needed (dlopen), for the ones only some
// outputs use: libcurl (http, influx, prometheus_remote_write) and libnats
// (nats) bring some thirty libraries between them, and loading those at
// start took about 11 of the 31 ms any command spent starting, a ping or a
// check included. A transport's file lists the functions it calls (an
// X-macro), loads them into a table once, and sends its calls there.
#pragma once

namespace outpost {

// The library (never closed); throws std::runtime_error naming it and why.
void* open_shared_library(const char* soname);
// One of its symbols; throws std::runtime_error naming both.
void* shared_library_symbol(void* library, const char* soname, const char* name);

}  // namespace outpost

// Declares a table member per function, typed from the library's header.
#define OUTPOST_SHARED_MEMBER(f) decltype(&::f) f = nullptr;
// Fills one member of table `t` from library `lib` (soname `so`).
#define OUTPOST_SHARED_LOAD(f) t.f = reinterpret_cast<decltype(t.f)>(::outpost::shared_library_symbol(lib, so, #f));
