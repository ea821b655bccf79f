// spdlog's compiled part, built into outpost from Debian's headers rather
// than loaded from libspdlog.so: the shared library cost every command 1,200
// symbol lookups and 16 page faults before main (an empty program that logs
// one line started 0.5 ms sooner this way). Every translation unit sees
// spdlog as a compiled library (SPDLOG_COMPILED_LIB: declarations only);
// this one holds the definitions (the -inl.h headers) and the template
// instances outpost uses, as libspdlog.so itself is built. fmt is built in
// the same way (fmt_library.cpp).
#ifndef SPDLOG_COMPILED_LIB
#error spdlog_library.cpp wants SPDLOG_COMPILED_LIB (the outpost_spdlog target)
#endif

#include <mutex>
#include <spdlog/common-inl.h>
#include <spdlog/details/backtracer-inl.h>
#include <spdlog/details/console_globals.h>
#include <spdlog/details/log_msg-inl.h>
#include <spdlog/details/log_msg_buffer-inl.h>
#include <spdlog/details/null_mutex.h>
#include <spdlog/details/os-inl.h>
#include <spdlog/details/periodic_worker-inl.h>
#include <spdlog/details/registry-inl.h>
#include <spdlog/logger-inl.h>
#include <spdlog/pattern_formatter-inl.h>
#include <spdlog/sinks/ansicolor_sink-inl.h>
#include <spdlog/sinks/base_sink-inl.h>
#include <spdlog/sinks/sink-inl.h>
#include <spdlog/sinks/stdout_color_sinks-inl.h>
#include <spdlog/sinks/stdout_sinks-inl.h>
#include <spdlog/spdlog-inl.h>

namespace spdlog {
using details::console_mutex;
using details::console_nullmutex;
using details::null_mutex;

template class sinks::base_sink<std::mutex>;
template class sinks::base_sink<null_mutex>;

template class sinks::ansicolor_sink<console_mutex>;
template class sinks::ansicolor_sink<console_nullmutex>;
template class sinks::ansicolor_stdout_sink<console_mutex>;
template class sinks::ansicolor_stdout_sink<console_nullmutex>;
template class sinks::ansicolor_stderr_sink<console_mutex>;
template class sinks::ansicolor_stderr_sink<console_nullmutex>;
template std::shared_ptr<logger> stderr_color_mt<synchronous_factory>(const std::string&, color_mode);

template class sinks::stdout_sink_base<console_mutex>;
template class sinks::stdout_sink_base<console_nullmutex>;
template class sinks::stderr_sink<console_mutex>;
template class sinks::stderr_sink<console_nullmutex>;
template std::shared_ptr<logger> stderr_logger_mt<synchronous_factory>(const std::string&);
}  // namespace spdlog
