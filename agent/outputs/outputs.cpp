#include "outputs.hpp"

#include "json_lines.hpp"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace outpost {

JsonlFile::JsonlFile(const std::string& path) : path_(path) {
  if (path == "-") {
    file_ = stdout;
    return;
  }
  file_ = std::fopen(path.c_str(), "a");
  if (!file_) throw std::runtime_error("cannot open output " + path + ": " + std::strerror(errno));
  owned_ = true;
}

JsonlFile::~JsonlFile() {
  flush();
  if (owned_) std::fclose(file_);
}

void JsonlFile::write(const Record& record) {
  const std::string line = to_json_line(record);
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size()) {
    if (!failed_) spdlog::error("writing {}: {}", path_, std::strerror(errno));
    failed_ = true;
    return;
  }
  failed_ = false;
  ++written_;
}

void JsonlFile::flush() {
  if (file_ && std::fflush(file_) != 0 && !failed_) {
    spdlog::error("flushing {}: {}", path_, std::strerror(errno));
    failed_ = true;
  }
}

}  // namespace outpost
