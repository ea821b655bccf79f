#include "batch.hpp"

namespace outpost {

std::string_view to_string(RecordClass c) {
  switch (c) {
    case RecordClass::probe: return "probe";
    case RecordClass::series: return "series";
    case RecordClass::event: return "event";
  }
  return "probe";
}

}  // namespace outpost
