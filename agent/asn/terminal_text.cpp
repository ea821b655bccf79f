#include "terminal_text.hpp"

#include <cstdint>

namespace outpost {
namespace {

// The length of the valid UTF-8 sequence at text[i] (2..4), or 0 when it is
// not one (stray or missing continuation bytes, overlong forms, surrogates,
// past U+10FFFF). `code` gets the code point.
std::size_t utf8_sequence(std::string_view text, std::size_t i, std::uint32_t& code) {
  const auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(text[k]); };
  const std::uint8_t lead = byte(i);
  std::size_t length = 0;
  std::uint32_t lowest = 0;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2, code = lead & 0x1fu, lowest = 0x80;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3, code = lead & 0x0fu, lowest = 0x800;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4, code = lead & 0x07u, lowest = 0x10000;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xc0u) != 0x80u) return 0;
    code = code << 6 | (byte(i + k) & 0x3fu);
  }
  if (code < lowest || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return 0;
  return length;
}

// Code points above ASCII that a terminal acts on or that reorder what is shown.
bool is_hidden_control(std::uint32_t code) {
  return (code >= 0x80 && code <= 0x9f) || code == 0x200e || code == 0x200f || (code >= 0x202a && code <= 0x202e) ||
         (code >= 0x2066 && code <= 0x2069);
}

void append_escaped(std::string& out, std::string_view bytes) {
  static constexpr char hex[] = "0123456789abcdef";
  for (char c : bytes) {
    const auto b = static_cast<std::uint8_t>(c);
    out += "\\x";
    out += hex[b >> 4];
    out += hex[b & 0xfu];
  }
}

}  // namespace

std::string terminal_safe(std::string_view text, std::size_t max_bytes) {
  std::string out;
  std::string piece;
  for (std::size_t i = 0; i < text.size();) {
    piece.clear();
    const auto b = static_cast<std::uint8_t>(text[i]);
    std::size_t length = 1;
    if ((b >= 0x20 && b < 0x7f) || b == '\t') {
      piece += text[i];
    } else if (b < 0x80) {
      append_escaped(piece, text.substr(i, 1));
    } else {
      std::uint32_t code = 0;
      length = utf8_sequence(text, i, code);
      if (length == 0) {
        length = 1;
        append_escaped(piece, text.substr(i, 1));
      } else if (is_hidden_control(code)) {
        append_escaped(piece, text.substr(i, length));
      } else {
        piece.append(text.substr(i, length));
      }
    }
    if (max_bytes != std::string::npos && piece.size() > max_bytes - out.size()) break;
    out += piece;
    i += length;
  }
  return out;
}

}  // namespace outpost
