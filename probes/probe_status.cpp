#include "probe.hpp"

namespace outpost {

std::string_view to_string(ProbeStatus status) {
  switch (status) {
    case ProbeStatus::reply: return "reply";
    case ProbeStatus::timeout: return "timeout";
    case ProbeStatus::unreachable: return "unreachable";
    case ProbeStatus::refused: return "refused";
    case ProbeStatus::error: return "error";
  }
  return "error";
}

}  // namespace outpost
