// `outpost check` checks what `run` will open, as the user the agent will be
// after the drop: files on temporary directories, checked for identities
// that are not the test's own (no root needed, none used), and the configs
// check used to pass while run then failed on them. Also the ping interval
// rule for users other than root.

#include <catch2/catch.hpp>

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cli_common.hpp"
#include "commands.hpp"
#include "preflight.hpp"

using namespace outpost;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// A temporary directory, removed with everything in it.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "outpost-preflight.XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path = pattern;
    ::chmod(path.c_str(), 0755);
  }
  ~TempDir() {
    std::error_code ec;
    // Give back the rights the tests took away, so that everything goes.
    for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
      ::chmod(it->path().c_str(), 0700);
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name, const std::string& text = "", mode_t mode = 0644) const {
    const fs::path p = path / name;
    std::ofstream(p) << text;
    ::chmod(p.c_str(), mode);
    return p.string();
  }
  std::string dir(const std::string& name, mode_t mode = 0755) const {
    const fs::path p = path / name;
    fs::create_directories(p);
    ::chmod(p.c_str(), mode);
    return p.string();
  }
};

// The test's own user, and one that owns nothing here (nor is in its group).
Identity me() { return current_identity(); }
Identity stranger() {
  Identity who = me();
  who.uid += 4242;
  who.gid += 4242;
  who.groups = {who.gid};
  who.name = "stranger (uid " + std::to_string(who.uid) + ")";
  return who;
}
std::string my_user_name() { return getpwuid(geteuid())->pw_name; }

Config config_from(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  ConfigLoad load = load_config_file(path);
  for (const auto& e : load.errors) UNSCOPED_INFO(e.to_string());
  REQUIRE(load.errors.empty());
  return *load.config;
}

std::string groups_yaml() { return "groups: [ { name: g, targets: [ { name: t, address: 192.0.2.1 } ] } ]\n"; }

std::vector<std::string> lines(const std::vector<PreflightNote>& notes) {
  std::vector<std::string> out;
  for (const auto& n : notes) out.push_back(n.to_string());
  return out;
}

struct Outcome {
  int code = -1;
  std::string out, err;
};

// outpost check -c PATH, its standard output and error captured.
Outcome check(const std::string& path) {
  std::vector<std::string> args{"check", "-c", path};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::ostringstream out, err;
  std::streambuf* saved_out = std::cout.rdbuf(out.rdbuf());
  std::streambuf* saved_err = std::cerr.rdbuf(err.rdbuf());
  Outcome o;
  o.code = check_command(static_cast<int>(args.size()), argv.data());
  std::cout.rdbuf(saved_out);
  std::cerr.rdbuf(saved_err);
  o.out = out.str();
  o.err = err.str();
  return o;
}

}  // namespace

TEST_CASE("preflight: access is judged by the mode bits for owner, group and others", "[cli][preflight]") {
  TempDir t;
  const std::string open = t.file("open.txt", "x", 0644);
  const std::string group_rw = t.file("group.txt", "x", 0660);
  CHECK(access_problem(open, R_OK | W_OK, me()) == "");
  CHECK(access_problem(open, R_OK, stranger()) == "");
  const std::string denied = access_problem(open, R_OK | W_OK, stranger());
  CHECK_THAT(denied, Catch::Matchers::StartsWith(open + ": not readable and writable by stranger (uid "));
  CHECK_THAT(denied, Catch::Matchers::EndsWith(", mode 0644"));
  // The group's bits apply to a member of the file's group.
  Identity member = stranger();
  member.groups.push_back(me().gid);
  CHECK(access_problem(group_rw, R_OK | W_OK, member) == "");
  CHECK(access_problem(group_rw, R_OK, stranger()) != "");
  // The owner's bits alone apply to the owner, even when others may do more.
  const std::string odd = t.file("odd.txt", "x", 0066);
  CHECK(access_problem(odd, R_OK, me()) != "");
  CHECK(access_problem(odd, R_OK, stranger()) == "");
}

TEST_CASE("preflight: a directory above that the user cannot search stops it", "[cli][preflight]") {
  TempDir t;
  const std::string closed = t.dir("closed", 0700);
  const std::string inside = t.file("closed/inside.txt", "x", 0666);
  CHECK(access_problem(inside, R_OK, me()) == "");
  CHECK_THAT(access_problem(inside, R_OK, stranger()),
             Catch::Matchers::StartsWith(inside + ": directory " + closed + " is not searchable by stranger"));
  CHECK(access_problem(t.path.string() + "/missing/file", R_OK, me()) ==
        t.path.string() + "/missing/file: No such file or directory");
}

TEST_CASE("check: an asn_table that is not there is refused (check passed it, run then failed)", "[cli][preflight]") {
  TempDir t;
  const std::string path = t.file("c.yaml");
  std::ofstream(path) << "agent: { id: a }\nasn_table: " << t.path.string() << "/pfx2as.txt\n" << groups_yaml();
  const Outcome o = check(path);
  CHECK(o.code == kExitFailure);
  CHECK(o.err == path + ":2:12: asn_table: " + t.path.string() + "/pfx2as.txt: No such file or directory\n");
  CHECK(o.out.find(": ok:") == std::string::npos);
}

TEST_CASE("check: an ASN names file the loader refuses is refused", "[cli][preflight]") {
  TempDir t;
  const std::string names = t.file("names.json", "this is not JSON");
  const std::string path = t.file("c.yaml");
  std::ofstream(path) << "agent: { id: a }\nasn_table: " << OUTPOST_FIXTURES << "/netlab-pfx2as.txt\nasn_names: "
                      << names << "\n" << groups_yaml();
  const Outcome o = check(path);
  CHECK(o.code == kExitFailure);
  CHECK_THAT(o.err, Catch::Matchers::StartsWith(path + ":3:12: asn_names: "));
  // Both present and good: ok.
  std::ofstream(names) << R"({"64500": "CARRIER-AS"})";
  CHECK(check(path).code == kExitOk);
}

TEST_CASE("check: an unknown agent.user or agent.group is an error at its key", "[cli][preflight]") {
  TempDir t;
  const std::string path = t.file("c.yaml");
  std::ofstream(path) << "agent:\n  id: a\n  user: outpost-no-such-user\n" << groups_yaml();
  Outcome o = check(path);
  CHECK(o.code == kExitFailure);
  CHECK(o.err == path + ":3:9: agent.user: no user 'outpost-no-such-user' on this system\n");
  std::ofstream(path) << "agent:\n  id: a\n  user: " << my_user_name() << "\n  group: outpost-no-such-group\n"
                      << groups_yaml();
  o = check(path);
  CHECK(o.code == kExitFailure);
  CHECK(o.err == path + ":4:10: agent.group: no group 'outpost-no-such-group' on this system\n");
}

TEST_CASE("preflight: output files need a directory the user may write", "[cli][preflight]") {
  TempDir t;
  const std::string out = t.dir("out", 0755);
  const std::string existing = t.file("out/old.jsonl", "{}\n", 0444);
  const Config c = config_from(t.path / "c.yaml",
                               "agent: { id: a, user: " + my_user_name() + ", state_dir: " + t.path.string() +
                                   "/state }\n" + groups_yaml() + "report:\n  outputs:\n" + "    - file: " + out +
                                   "/new.jsonl\n" + "    - file: " + existing + "\n" + "    - file: " +
                                   t.path.string() + "/nowhere/x.jsonl\n" + "    - file: " + t.path.string() +
                                   "/state/in-state-dir.jsonl\n");
  const auto notes = lines(preflight(c, {}));
  REQUIRE(notes.size() == 2);
  // An existing file the user may not write; a directory that is not there.
  CHECK_THAT(notes[0], Catch::Matchers::StartsWith(c.path + ":6:7: report.outputs[1].file: " + existing +
                                                   ": not readable and writable by " + my_user_name()));
  CHECK(notes[1] == c.path + ":7:7: report.outputs[2].file: " + t.path.string() + "/nowhere/x.jsonl: directory " +
                        t.path.string() + "/nowhere does not exist");
  // A file straight in agent.state_dir is fine: run creates that first.
}

TEST_CASE("preflight: agent.state_dir and what earlier runs left in it must be the user's", "[cli][preflight]") {
  TempDir t;
  const std::string state = t.dir("state", 0750);
  t.dir("state/spool/file-1234", 0500);
  t.file("state/state.json", "{}", 0400);
  t.file("state/spool/fine", "", 0600);
  const Config c =
      config_from(t.path / "c.yaml", "agent:\n  id: a\n  user: " + my_user_name() + "\n  state_dir: " + state + "\n" +
                                         groups_yaml());
  const auto notes = lines(preflight(c, {}));
  REQUIRE(notes.size() == 2);
  const std::string at = c.path + ":4:14: agent.state_dir: ";
  CHECK_THAT(notes[0] + notes[1], Catch::Matchers::Contains(at + state + "/spool/file-1234: not readable, "
                                                                         "writable and searchable by " + my_user_name()));
  CHECK_THAT(notes[0] + notes[1],
             Catch::Matchers::Contains(at + state + "/state.json: not readable and writable by " + my_user_name()));
  CHECK_THAT(notes[0] + notes[1], Catch::Matchers::Contains("mode 0400"));
}

TEST_CASE("preflight: a missing agent.state_dir must be creatable", "[cli][preflight]") {
  TempDir t;
  const std::string file = t.file("plain", "x");
  Config c = config_from(t.path / "c.yaml", "agent: { id: a, state_dir: " + t.path.string() + "/new/state }\n" +
                                                groups_yaml());
  CHECK(preflight(c, {}).empty());  // its parent is ours to write
  c = config_from(t.path / "c.yaml", "agent: { id: a, state_dir: " + file + "/state }\n" + groups_yaml());
  const auto notes = lines(preflight(c, {}));
  REQUIRE(notes.size() == 1);
  CHECK(notes[0] == c.path + ":1:28: agent.state_dir: " + file + "/state cannot be created: " + file +
                        ": not a directory");
}

TEST_CASE("preflight: as root without agent.user, a warning, and a config the user cannot read, a warning",
          "[cli][preflight]") {
  TempDir t;
  Config c = config_from(t.path / "c.yaml", "agent: { id: a }\n" + groups_yaml());
  PreflightOptions root;
  root.as_root = true;
  auto notes = preflight(c, root);
  REQUIRE(notes.size() == 1);
  CHECK(notes[0].warning);
  CHECK(notes[0].to_string() ==
        c.path + ": warning: started as root without agent.user: the agent keeps uid 0 (with CAP_NET_RAW only); "
                 "set agent.user to run it as an ordinary user");
  CHECK(preflight(c, {}).empty());
  // A config the agent cannot read again after the drop: reloads will be refused.
  c = config_from(t.path / "c.yaml", "agent: { id: a, user: " + my_user_name() + " }\n" + groups_yaml());
  ::chmod(c.path.c_str(), 0200);
  notes = preflight(c, {});
  REQUIRE(notes.size() == 1);
  CHECK(notes[0].warning);
  CHECK_THAT(notes[0].to_string(), Catch::Matchers::Contains("a reload (SIGHUP) will be refused"));
}

TEST_CASE("make_state_dir creates a missing agent.state_dir for the user, and leaves an existing one",
          "[cli][preflight]") {
  TempDir t;
  std::string error;
  const auto as = look_up_run_as(my_user_name(), "", &error);
  REQUIRE(as);
  const std::string dir = t.path.string() + "/a/b/state";
  CHECK(make_state_dir(dir, *as) == "");
  struct stat st {};
  REQUIRE(::stat(dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0750);
  CHECK(st.st_uid == as->uid);
  CHECK(st.st_gid == as->gid);
  ::chmod(dir.c_str(), 0700);
  CHECK(make_state_dir(dir, *as) == "");
  REQUIRE(::stat(dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
}

TEST_CASE("ping: an interval below 10ms is for root alone", "[cli][privileges]") {
  CHECK(ping_interval_refusal(5ms, 1000) ==
        "--interval 5ms: below 10ms only root may ping (a flood); ask for 10ms or more");
  CHECK(ping_interval_refusal(9999us, 65534) != "");
  CHECK(ping_interval_refusal(10ms, 1000) == "");
  CHECK(ping_interval_refusal(1ms, 0) == "");
  CHECK(ping_interval_refusal(1s, 1000) == "");
}
