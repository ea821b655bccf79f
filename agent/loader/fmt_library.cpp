// fmt's compiled part, built into outpost from Debian's headers rather than
// loaded from libfmt.so (as spdlog is: spdlog_library.cpp). With both built
// in, no shared library of outpost's needs libstdc++'s, which the
// executable then links from its archive (agent/cli/CMakeLists.txt). This
// unit holds fmt's definitions (format-inl.h) and the instances that its
// headers declare without defining.
#include <fmt/format-inl.h>

FMT_BEGIN_NAMESPACE
namespace detail {
template auto dragonbox::to_decimal(float x) noexcept -> dragonbox::decimal_fp<float>;
template auto dragonbox::to_decimal(double x) noexcept -> dragonbox::decimal_fp<double>;
template locale_ref::locale_ref(const std::locale& loc);
template auto locale_ref::get<std::locale>() const -> std::locale;
template auto thousands_sep_impl(locale_ref) -> thousands_sep_result<char>;
template auto thousands_sep_impl(locale_ref) -> thousands_sep_result<wchar_t>;
template auto decimal_point_impl(locale_ref) -> char;
template auto decimal_point_impl(locale_ref) -> wchar_t;
}  // namespace detail
FMT_END_NAMESPACE
