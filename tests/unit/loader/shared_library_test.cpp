// Libraries opened at run time: a missing library or symbol is an error that
// names it (an output's setup reports it), a present one is found; a
// module of outpost's that is missing names the paths looked in.

#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "shared_library.hpp"

using outpost::open_shared_library;
using outpost::shared_library_symbol;

TEST_CASE("shared library: a library that is not there names itself", "[shared_library]") {
  try {
    open_shared_library("libno-such-outpost-library.so.7");
    FAIL("no exception");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("cannot load libno-such-outpost-library.so.7") != std::string::npos);
  }
}

TEST_CASE("shared library: a symbol is found, a missing one named", "[shared_library]") {
  void* libc = open_shared_library("libc.so.6");
  REQUIRE(libc != nullptr);
  auto* length = reinterpret_cast<decltype(&std::strlen)>(shared_library_symbol(libc, "libc.so.6", "strlen"));
  CHECK(length("outpost") == 7);
  try {
    shared_library_symbol(libc, "libc.so.6", "no_such_outpost_symbol");
    FAIL("no exception");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("libc.so.6 has no no_such_outpost_symbol") != std::string::npos);
  }
}

TEST_CASE("shared library: a module of outpost's that is not there names where it was looked for",
          "[shared_library]") {
  // Beside this executable, then in ../lib/outpost/ from its directory.
  const std::string exe_dir = std::filesystem::canonical("/proc/self/exe").parent_path().string() + "/";
  try {
    outpost::open_outpost_module("outpost-no-such-module.so", "outpost_no_such_table");
    FAIL("no exception");
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    CHECK(what.find("cannot find outpost-no-such-module.so") != std::string::npos);
    CHECK(what.find(exe_dir + "outpost-no-such-module.so") != std::string::npos);
    CHECK(what.find(exe_dir + "../lib/outpost/outpost-no-such-module.so") != std::string::npos);
  }
}
