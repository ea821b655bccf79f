#include "preflight.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "asn_table.hpp"

namespace outpost {
namespace fs = std::filesystem;

namespace {

// Entries of agent.state_dir looked at, at most; problems listed, at most.
constexpr std::size_t kMaxStateEntries = 10000;
constexpr std::size_t kMaxStateProblems = 5;

std::string user_name(uid_t uid) {
  const passwd* pw = getpwuid(uid);
  return pw ? std::string(pw->pw_name) : std::to_string(uid);
}

std::string group_name(gid_t gid) {
  const group* gr = getgrgid(gid);
  return gr ? std::string(gr->gr_name) : std::to_string(gid);
}

std::string owner_text(const struct stat& st) {
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return "owner " + user_name(st.st_uid) + ":" + group_name(st.st_gid) + ", mode " + mode;
}

bool allowed(const struct stat& st, int rights, const Identity& who) {
  unsigned bits = st.st_mode & 7;
  if (st.st_uid == who.uid) {
    bits = (st.st_mode >> 6) & 7;
  } else if (st.st_gid == who.gid ||
             std::find(who.groups.begin(), who.groups.end(), st.st_gid) != who.groups.end()) {
    bits = (st.st_mode >> 3) & 7;
  }
  // R_OK, W_OK and X_OK are the r, w and x bits.
  return (bits & static_cast<unsigned>(rights)) == static_cast<unsigned>(rights);
}

std::string rights_text(int rights) {
  std::vector<std::string> words;
  if (rights & R_OK) words.push_back("readable");
  if (rights & W_OK) words.push_back("writable");
  if (rights & X_OK) words.push_back("searchable");
  std::string text;  // "readable", "readable and writable", "readable, writable and searchable"
  for (std::size_t i = 0; i < words.size(); ++i)
    text += (i == 0 ? "" : i + 1 == words.size() ? " and " : ", ") + words[i];
  return text;
}

fs::path absolute_path(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::absolute(path, ec);
  return (ec ? fs::path(path) : p).lexically_normal();
}

// The nearest directory at or above p that exists.
fs::path existing_ancestor(fs::path p) {
  std::error_code ec;
  while (!p.empty() && !fs::exists(p, ec) && p != p.root_path()) p = p.parent_path();
  return p;
}

std::string where_of(const Config& config, SourceMark mark, const std::string& key) {
  std::string where = config.path;
  if (mark.line > 0) where += ":" + std::to_string(mark.line) + ":" + std::to_string(mark.col);
  return key.empty() ? where : where + ": " + key;
}

class Preflight {
 public:
  Preflight(const Config& config, const PreflightOptions& options) : config_(config), options_(options) {}

  std::vector<PreflightNote> run() {
    const AgentSection& agent = config_.agent;
    std::optional<Identity> who = current_identity();
    if (!agent.user.empty()) {
      std::string error;
      who.reset();  // whose rights to check stays unknown unless both are found
      if (!look_up_run_as(agent.user, "", &error)) error_at(agent.user_mark, "agent.user", error);
      else if (auto as = look_up_run_as(agent.user, agent.group, &error)) who = identity_of(*as);
      else error_at(agent.group_mark, "agent.group", error);
    } else if (options_.as_root) {
      warn_at({}, "",
              "started as root without agent.user: the agent keeps uid 0 (with CAP_NET_RAW only); set agent.user "
              "to run it as an ordinary user");
    }
    if (who) check_config_readable(*who);
    check_asn(who);
    if (who) {
      check_outputs(*who);
      check_state_dir(*who);
    }
    return std::move(notes_);
  }

 private:
  void error_at(SourceMark mark, const std::string& key, const std::string& message) {
    notes_.push_back({where_of(config_, mark, key), message, false});
  }
  void warn_at(SourceMark mark, const std::string& key, const std::string& message) {
    notes_.push_back({where_of(config_, mark, key), message, true});
  }

  // A reload re-reads the file after the drop.
  void check_config_readable(const Identity& who) {
    if (config_.path.empty()) return;
    if (auto problem = access_problem(config_.path, R_OK, who); !problem.empty())
      warn_at({}, "",
              problem + ": a reload (SIGHUP) will be refused; give the file mode 0640 and the agent's group, or make "
                        "it readable by all");
  }

  void check_asn(const std::optional<Identity>& who) {
    if (config_.asn_table.empty()) return;
    if (who) {
      bool unreadable = false;
      if (auto p = access_problem(config_.asn_table, R_OK, *who); !p.empty()) {
        error_at(config_.asn_table_mark, "asn_table", p);
        unreadable = true;
      }
      if (!config_.asn_names.empty())
        if (auto p = access_problem(config_.asn_names, R_OK, *who); !p.empty()) {
          error_at(config_.asn_names_mark, "asn_names", p);
          unreadable = true;
        }
      if (unreadable) return;
    }
    if (!options_.load_asn) return;
    AsnLoadReport report;
    std::string error;
    auto table = AsnTable::load(config_.asn_table, &report, &error);
    if (!table) {
      error_at(config_.asn_table_mark, "asn_table", error);
      return;
    }
    if (!config_.asn_names.empty() && !table->load_names(config_.asn_names, &error))
      error_at(config_.asn_names_mark, "asn_names", error);
  }

  void check_outputs(const Identity& who) {
    const fs::path state_dir = config_.agent.state_dir.empty() ? fs::path() : absolute_path(config_.agent.state_dir);
    for (std::size_t i = 0; i < config_.report.outputs.size(); ++i) {
      const OutputSpec& spec = config_.report.outputs[i];
      const std::string key = "report.outputs[" + std::to_string(i) + "]";
      if (spec.kind == OutputSpec::Kind::file && spec.target != "-") {
        const fs::path file = absolute_path(spec.target);
        const fs::path dir = file.parent_path();
        std::error_code ec;
        if (!fs::exists(dir, ec)) {
          // Run creates agent.state_dir (the file output's spool lives
          // there) before it opens the file.
          if (dir != state_dir)
            error_at(spec.mark, key + ".file", spec.target + ": directory " + dir.string() + " does not exist");
        } else if (auto p = access_problem(dir.string(), W_OK | X_OK, who); !p.empty()) {
          // Also for an existing file: after logrotate moves it, run creates it again.
          error_at(spec.mark, key + ".file", spec.target + ": " + p);
        } else if (fs::exists(file, ec)) {
          if (auto p2 = access_problem(file.string(), R_OK | W_OK, who); !p2.empty())
            error_at(spec.mark, key + ".file", p2);
        }
      }
      if (!spec.ca_file.empty())
        if (auto p = access_problem(spec.ca_file, R_OK, who); !p.empty()) error_at(spec.mark, key + ".ca_file", p);
      if (!spec.token_file.empty())
        if (auto p = access_problem(spec.token_file, R_OK, who); !p.empty())
          error_at(spec.mark, key + ".token_file", p);
    }
  }

  void check_state_dir(const Identity& who) {
    const AgentSection& agent = config_.agent;
    if (agent.state_dir.empty()) return;
    const SourceMark mark = agent.state_dir_mark;
    const fs::path dir = absolute_path(agent.state_dir);
    std::error_code ec;
    const auto status = fs::status(dir, ec);
    if (!fs::exists(status)) {
      // Created by run: as root before the drop when there is an agent.user
      // (then given to it), else after the drop by the agent itself.
      const fs::path parent = existing_ancestor(dir);
      const bool root_creates = !agent.user.empty() && options_.as_root;
      const Identity creator = root_creates ? current_identity() : who;
      std::string p;
      if (!fs::is_directory(parent, ec)) p = parent.string() + ": not a directory";
      else if (root_creates) p = read_only(parent) ? parent.string() + ": on a read-only file system" : "";
      else p = access_problem(parent.string(), W_OK | X_OK, creator);
      if (!p.empty()) error_at(mark, "agent.state_dir", agent.state_dir + " cannot be created: " + p);
      return;
    }
    if (!fs::is_directory(status)) {
      error_at(mark, "agent.state_dir", agent.state_dir + ": not a directory");
      return;
    }
    if (auto p = access_problem(dir.string(), R_OK | W_OK | X_OK, who); !p.empty()) {
      error_at(mark, "agent.state_dir", p);
      return;
    }
    // What earlier runs left (spools, state.json) must be the user's too:
    // an agent that ran as root before leaves root's files behind.
    std::size_t seen = 0, problems = 0;
    for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::none, ec);
         !ec && it != fs::recursive_directory_iterator() && seen < kMaxStateEntries; it.increment(ec), ++seen) {
      const fs::file_status s = it->symlink_status(ec);
      if (ec) break;
      int rights = 0;
      if (fs::is_directory(s)) rights = R_OK | W_OK | X_OK;
      else if (fs::is_regular_file(s)) rights = R_OK | W_OK;
      else continue;
      struct stat st {};
      if (::lstat(it->path().c_str(), &st) != 0 || allowed(st, rights, who)) continue;
      if (++problems <= kMaxStateProblems)
        error_at(mark, "agent.state_dir",
                 it->path().string() + ": not " + rights_text(rights) + " by " + who.name + ": " + owner_text(st));
    }
    if (problems > kMaxStateProblems)
      error_at(mark, "agent.state_dir",
               "and " + std::to_string(problems - kMaxStateProblems) + " more entries the agent could not use");
  }

  static bool read_only(const fs::path& p) {
    struct statvfs v {};
    return ::statvfs(p.c_str(), &v) == 0 && (v.f_flag & ST_RDONLY);
  }

  const Config& config_;
  const PreflightOptions& options_;
  std::vector<PreflightNote> notes_;
};

}  // namespace

Identity current_identity() {
  Identity who;
  who.uid = geteuid();
  who.gid = getegid();
  const int n = getgroups(0, nullptr);
  if (n > 0) {
    who.groups.resize(static_cast<std::size_t>(n));
    who.groups.resize(static_cast<std::size_t>(std::max(0, getgroups(n, who.groups.data()))));
  }
  who.name = user_name(who.uid) + " (uid " + std::to_string(who.uid) + ")";
  return who;
}

Identity identity_of(const RunAs& run_as) {
  return {run_as.user + " (uid " + std::to_string(run_as.uid) + ")", run_as.uid, run_as.gid, {run_as.gid}};
}

std::string access_problem(const std::string& path, int rights, const Identity& who) {
  const fs::path p = absolute_path(path);
  struct stat st {};
  // The search right on each directory above.
  fs::path dir = p.root_path();
  for (auto it = p.begin(); it != p.end(); ++it) {
    if (std::next(it) == p.end()) break;
    if (it != p.begin()) dir /= *it;
    if (::stat(dir.c_str(), &st) != 0) return p.string() + ": " + std::strerror(errno);
    if (!S_ISDIR(st.st_mode)) return p.string() + ": " + dir.string() + " is not a directory";
    if (!allowed(st, X_OK, who))
      return p.string() + ": directory " + dir.string() + " is not searchable by " + who.name + ": " + owner_text(st);
  }
  if (::stat(p.c_str(), &st) != 0) return p.string() + ": " + std::strerror(errno);
  if (!allowed(st, rights, who)) return p.string() + ": not " + rights_text(rights) + " by " + who.name + ": " + owner_text(st);
  struct statvfs v {};
  if ((rights & W_OK) && ::statvfs(p.c_str(), &v) == 0 && (v.f_flag & ST_RDONLY))
    return p.string() + ": on a read-only file system";
  return {};
}

std::string PreflightNote::to_string() const { return where + ": " + (warning ? "warning: " : "") + message; }

std::vector<PreflightNote> preflight(const Config& config, const PreflightOptions& options) {
  return Preflight(config, options).run();
}

std::string make_state_dir(const std::string& dir, const RunAs& run_as) {
  std::error_code ec;
  if (fs::exists(dir, ec)) return {};
  fs::create_directories(dir, ec);
  if (ec) return "agent.state_dir " + dir + ": cannot create it: " + ec.message();
  if (::chmod(dir.c_str(), 0750) != 0) return "agent.state_dir " + dir + ": chmod 0750: " + std::strerror(errno);
  if (::chown(dir.c_str(), run_as.uid, run_as.gid) != 0)
    return "agent.state_dir " + dir + ": chown " + run_as.user + ":" + run_as.group + ": " + std::strerror(errno);
  return {};
}

}  // namespace outpost
