#include "tins_forge.hpp"

#include <stdexcept>

#include "shared_library.hpp"

namespace outpost {
namespace {

const TinsForge* load() {
  if (outpost_tins_forge_table) return outpost_tins_forge_table();
  return static_cast<const TinsForge*>(open_outpost_module("outpost-tins.so", "outpost_tins_forge_table"));
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
