// Untrusted text (AS names, table lines, DNS answers, network errors) made safe for a terminal or a log.
// Leaves to others: what the text means, and where it is printed.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace outpost {

// The text with every byte a terminal could act on written as a visible
// escape "\xNN" (lowercase hex): C0 controls but tab (ESC, CR, LF, BEL, ...), DEL,
// UTF-8 C1 controls (U+0080..U+009F, such as CSI), the bidirectional
// overrides and isolates (U+200E, U+200F, U+202A..U+202E, U+2066..U+2069),
// and each byte of a sequence that is not valid UTF-8. Printable ASCII and
// other valid UTF-8 pass unchanged. At most `max_bytes` bytes come out: the
// text is cut before the first character or escape that would not fit, never
// inside one.
std::string terminal_safe(std::string_view text, std::size_t max_bytes = std::string::npos);

}  // namespace outpost
