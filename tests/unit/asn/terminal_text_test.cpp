// terminal_safe: what a terminal could act on comes out as visible \xNN.

#include <catch2/catch.hpp>

#include <string>

#include "terminal_text.hpp"

using outpost::terminal_safe;

TEST_CASE("terminal_safe keeps printable text as it is", "[terminal]") {
  CHECK(terminal_safe("CHINA169-BACKBONE CHINA UNICOM China169 Backbone, CN") ==
        "CHINA169-BACKBONE CHINA UNICOM China169 Backbone, CN");
  CHECK(terminal_safe("Zürich, 東京, Ελλάδα 😀") == "Zürich, 東京, Ελλάδα 😀");
  CHECK(terminal_safe("back\\slash ~") == "back\\slash ~");
  CHECK(terminal_safe("").empty());
}

TEST_CASE("terminal_safe escapes C0 controls (not tab), DEL, C1 controls and bidi overrides", "[terminal]") {
  CHECK(terminal_safe("a\x1b[31mred\x1b[0m") == "a\\x1b[31mred\\x1b[0m");
  CHECK(terminal_safe("\x1b]0;title\x07") == "\\x1b]0;title\\x07");
  CHECK(terminal_safe(std::string("nul\0cr\rlf\ntab\t", 14)) == "nul\\x00cr\\x0dlf\\x0atab\t");
  CHECK(terminal_safe("del\x7f") == "del\\x7f");
  CHECK(terminal_safe("csi\xc2\x9b" "2J") == "csi\\xc2\\x9b2J");           // U+009B, an 8-bit CSI
  CHECK(terminal_safe("a\xe2\x80\xae" "cba") == "a\\xe2\\x80\\xaecba");   // U+202E right-to-left override
  CHECK(terminal_safe("\xe2\x81\xa6x\xe2\x81\xa9") == "\\xe2\\x81\\xa6x\\xe2\\x81\\xa9");  // U+2066, U+2069
}

TEST_CASE("terminal_safe escapes each byte that is not valid UTF-8", "[terminal]") {
  CHECK(terminal_safe("\xff\xfe") == "\\xff\\xfe");
  CHECK(terminal_safe("\x80x") == "\\x80x");                     // a lone continuation byte
  CHECK(terminal_safe("\xc3") == "\\xc3");                       // cut short
  CHECK(terminal_safe("\xc3(") == "\\xc3(");
  CHECK(terminal_safe("\xc0\xaf") == "\\xc0\\xaf");              // overlong '/'
  CHECK(terminal_safe("\xed\xa0\x80") == "\\xed\\xa0\\x80");     // a surrogate
  CHECK(terminal_safe("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");  // past U+10FFFF
}

TEST_CASE("terminal_safe cuts at a bound, never inside a character or an escape", "[terminal]") {
  CHECK(terminal_safe("abcdef", 3) == "abc");
  CHECK(terminal_safe("ab\x1b", 5) == "ab");      // the escape needs 4 bytes, 3 are left
  CHECK(terminal_safe("ab\x1b", 6) == "ab\\x1b");
  CHECK(terminal_safe("aü", 2) == "a");           // ü is two bytes
  CHECK(terminal_safe("aü", 3) == "aü");
  CHECK(terminal_safe(std::string(1000, 'x'), 255).size() == 255);
}
