// outpost's subcommands: run, check, ping, trace, asn and report, each taking its own arguments
// (argv[0] is the subcommand) and returning the process's exit code.
// Leaves to others: the work itself (agent, engine, config loader).
#pragma once

namespace outpost {

int run_command(int argc, char** argv);
int check_command(int argc, char** argv);
int ping_command(int argc, char** argv);
int asn_command(int argc, char** argv);
int trace_command(int argc, char** argv);
int report_command(int argc, char** argv);

// Exit codes shared by the subcommands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;    // invalid config, or (ping) no reply at all
inline constexpr int kExitPrivilege = 2;  // no CAP_NET_RAW
inline constexpr int kExitUsage = 64;     // bad command line
inline constexpr int kExitSoftware = 70;  // an internal failure (after flushing what was measured)

}  // namespace outpost
