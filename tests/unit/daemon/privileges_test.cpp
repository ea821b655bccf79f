// Dropping privileges fails closed: over a fake system whose every call can
// fail (or lie), each failed step is named in the error, nothing after it is
// attempted, and a result that is not what was asked for is caught by the
// verification. The real calls are exercised by the lab test
// tests/integration/test_agent_privileges.sh (root).

#include <catch2/catch.hpp>

#include <linux/capability.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "privileges.hpp"

using namespace outpost;

namespace {

constexpr std::uint64_t kNetRaw = std::uint64_t{1} << CAP_NET_RAW;

// A process's credentials, changed by the calls as the kernel would, with
// one call made to fail (by its step name) or to do nothing.
class FakeCalls : public PrivilegeCalls {
 public:
  uid_t ruid = 0, euid = 0, suid = 0;
  gid_t rgid = 0, egid = 0, sgid = 0;
  std::vector<gid_t> groups{0, 4, 27};
  CapabilityMasks caps{~std::uint64_t{0} >> 23, ~std::uint64_t{0} >> 23, 0};  // root: 41 capabilities
  std::uint64_t bounding = ~std::uint64_t{0} >> 23;
  bool keepcaps = false;
  bool nnp = false;
  int kernel_caps = 64;  // capabilities the kernel knows; dropping one beyond is EINVAL
  std::string fail;      // the call that fails with EPERM
  std::string ignore;    // the call that returns 0 and changes nothing (a lie)
  std::vector<std::string> calls;

  bool has_effective(int c) override { return caps.effective >> c & 1; }
  int bound_drop(int c) override {
    if (!step("bound_drop")) return -1;
    if (c >= kernel_caps) {  // as the kernel answers a capability it does not know
      errno = EINVAL;
      return -1;
    }
    if (ignore != "bound_drop") bounding &= ~(std::uint64_t{1} << c);
    return 0;
  }
  int set_keepcaps(bool on) override {
    if (!step(on ? "keepcaps on" : "keepcaps off")) return -1;
    keepcaps = on;
    return 0;
  }
  int set_groups(const std::vector<gid_t>& g) override {
    if (!step("setgroups")) return -1;
    if (ignore != "setgroups") groups = g;
    return 0;
  }
  int set_gid(gid_t g) override {
    if (!step("setgid")) return -1;
    if (ignore != "setgid") rgid = egid = sgid = g;
    return 0;
  }
  int set_uid(uid_t u) override {
    if (!step("setuid")) return -1;
    if (ignore == "setuid") return 0;
    ruid = euid = suid = u;
    if (u != 0) {  // leaving root: the effective set goes; the permitted stays only with keepcaps
      caps.effective = 0;
      if (!keepcaps) caps.permitted = 0;
    }
    return 0;
  }
  int set_capabilities(bool keep) override {
    if (!step("capabilities")) return -1;
    if (ignore == "capabilities") return 0;
    const std::uint64_t want = keep ? kNetRaw : 0;
    if ((want & ~caps.permitted) != 0) {
      errno = EPERM;
      return -1;
    }
    caps = {want, want, 0};
    return 0;
  }
  int clear_ambient() override { return step("ambient") ? 0 : -1; }
  int set_no_new_privs() override {
    if (!step("no_new_privs")) return -1;
    if (ignore != "no_new_privs") nnp = true;
    return 0;
  }
  void get_uids(uid_t* r, uid_t* e, uid_t* s) override { *r = ruid, *e = euid, *s = suid; }
  void get_gids(gid_t* r, gid_t* e, gid_t* s) override { *r = rgid, *e = egid, *s = sgid; }
  std::vector<gid_t> get_groups() override { return groups; }
  CapabilityMasks get_capabilities() override { return caps; }
  bool no_new_privs() override { return nnp; }
  int regain_root() override {
    calls.push_back("regain_root");
    if (ruid == 0 || euid == 0 || suid == 0) return 0;  // a saved uid 0 would let it back
    errno = EPERM;
    return -1;
  }

 private:
  bool step(const std::string& name) {
    calls.push_back(name);
    if (fail != name) return true;
    errno = EPERM;
    return false;
  }
};

RunAs nobody() { return {"nobody", "nogroup", 65534, 65534}; }

bool called(const FakeCalls& f, const std::string& name) {
  return std::find(f.calls.begin(), f.calls.end(), name) != f.calls.end();
}

}  // namespace

TEST_CASE("privileges: root switches to agent.user keeping CAP_NET_RAW alone", "[privileges]") {
  FakeCalls f;
  CHECK(drop_privileges(nobody(), true, f) == "");
  CHECK(f.ruid == 65534);
  CHECK(f.euid == 65534);
  CHECK(f.suid == 65534);
  CHECK(f.egid == 65534);
  CHECK(f.groups == std::vector<gid_t>{65534});
  CHECK(f.caps.effective == kNetRaw);
  CHECK(f.caps.permitted == kNetRaw);
  CHECK(f.caps.inheritable == 0);
  CHECK(f.bounding == kNetRaw);
  CHECK(f.nnp);
  CHECK_FALSE(f.keepcaps);
  CHECK(called(f, "regain_root"));
  // The order that works: groups and gid while root, the uid last, then the capabilities.
  const std::vector<std::string> order{"keepcaps on", "setgroups", "setgid", "setuid", "capabilities", "ambient",
                                       "keepcaps off", "no_new_privs"};
  std::vector<std::string> seen;
  for (const auto& c : f.calls)
    if (std::find(order.begin(), order.end(), c) != order.end()) seen.push_back(c);
  CHECK(seen == order);
}

TEST_CASE("privileges: a failed step is an error naming it, and nothing after it is tried", "[privileges]") {
  struct Case {
    const char* call;
    const char* error;
    const char* not_after;
  };
  const Case cases[] = {
      {"bound_drop", "capability bounding set: Operation not permitted", "setuid"},
      {"keepcaps on", "keepcaps: Operation not permitted", "setgroups"},
      {"setgroups", "setgroups: Operation not permitted", "setgid"},
      {"setgid", "setgid: Operation not permitted", "setuid"},
      {"setuid", "setuid: Operation not permitted", "capabilities"},
      {"capabilities", "capabilities: Operation not permitted", "no_new_privs"},
      {"ambient", "ambient capabilities: Operation not permitted", "no_new_privs"},
      {"keepcaps off", "keepcaps: Operation not permitted", "no_new_privs"},
      {"no_new_privs", "no_new_privs: Operation not permitted", "regain_root"},
  };
  for (const Case& c : cases) {
    FakeCalls f;
    f.fail = c.call;
    INFO("failing " << c.call);
    CHECK(drop_privileges(nobody(), true, f) == c.error);
    CHECK_FALSE(called(f, c.not_after));
  }
}

TEST_CASE("privileges: a call that says it worked and did not is caught by the verification", "[privileges]") {
  SECTION("setuid left the uids at root") {
    FakeCalls f;
    f.ignore = "setuid";
    CHECK(drop_privileges(nobody(), true, f) == "verify: real/effective/saved uid are 0/0/0, expected 65534");
  }
  SECTION("setgid left the gids") {
    FakeCalls f;
    f.ignore = "setgid";
    CHECK(drop_privileges(nobody(), true, f) == "verify: real/effective/saved gid are 0/0/0, expected 65534");
  }
  SECTION("setgroups left root's groups") {
    FakeCalls f;
    f.ignore = "setgroups";
    CHECK(drop_privileges(nobody(), true, f) == "verify: 3 supplementary groups left, expected only 65534");
  }
  SECTION("the capabilities stayed") {
    FakeCalls f;
    f.ignore = "capabilities";
    CHECK_THAT(drop_privileges(nobody(), true, f), Catch::Matchers::StartsWith("verify: capabilities effective 0000000000000000 permitted 000001ffffffffff"));
  }
  SECTION("no_new_privs not set") {
    FakeCalls f;
    f.ignore = "no_new_privs";
    CHECK(drop_privileges(nobody(), true, f) == "verify: no_new_privs is not set");
  }
  SECTION("a saved uid of root would let setuid(0) back") {
    FakeCalls f;
    f.suid = 0;
    f.ignore = "setuid";
    f.ruid = f.euid = 65534;  // only the saved uid is root's
    CHECK(drop_privileges(nobody(), true, f) == "verify: real/effective/saved uid are 65534/65534/0, expected 65534");
  }
}

TEST_CASE("privileges: without keepcaps the switch would lose CAP_NET_RAW, and says so", "[privileges]") {
  // keepcaps "succeeds" but has no effect: the capabilities step cannot raise what is gone.
  struct NoKeep : FakeCalls {
    int set_keepcaps(bool) override { return 0; }
  } g;
  CHECK(drop_privileges(nobody(), true, g) == "capabilities: Operation not permitted");
}

TEST_CASE("privileges: already agent.user (systemd User=, AmbientCapabilities=): only the capabilities go",
          "[privileges]") {
  FakeCalls f;
  f.ruid = f.euid = f.suid = 65534;
  f.rgid = f.egid = f.sgid = 65534;
  f.groups = {65534, 100};  // set by whoever started it; kept (changing them needs CAP_SETGID)
  f.caps = {kNetRaw, kNetRaw, 0};
  f.bounding = kNetRaw | 1;  // no CAP_SETPCAP: the bounding set is left to no_new_privs
  CHECK(drop_privileges(nobody(), true, f) == "");
  CHECK_FALSE(called(f, "setgroups"));
  CHECK_FALSE(called(f, "setuid"));
  CHECK_FALSE(called(f, "bound_drop"));
  CHECK(f.nnp);
}

TEST_CASE("privileges: capabilities the kernel does not know are not in its bounding set: no error",
          "[privileges]") {
  FakeCalls f;
  f.kernel_caps = 38;  // an older kernel than the capability count asked for
  f.bounding &= (std::uint64_t{1} << 38) - 1;
  CHECK(drop_privileges(nobody(), true, f) == "");
  CHECK(f.bounding == kNetRaw);
}

TEST_CASE("privileges: another user without CAP_SETGID cannot become agent.user: fatal at setgroups",
          "[privileges]") {
  FakeCalls f;
  f.ruid = f.euid = f.suid = 1000;
  f.rgid = f.egid = f.sgid = 1000;
  f.caps = {kNetRaw, kNetRaw, 0};
  f.fail = "setgroups";  // EPERM, as the kernel answers without CAP_SETGID
  CHECK(drop_privileges(nobody(), true, f) == "setgroups: Operation not permitted");
}

TEST_CASE("privileges: without agent.user root keeps its uid and only CAP_NET_RAW, or nothing", "[privileges]") {
  FakeCalls f;
  CHECK(drop_privileges(std::nullopt, true, f) == "");
  CHECK(f.euid == 0);
  CHECK(f.caps.effective == kNetRaw);
  CHECK_FALSE(called(f, "setuid"));
  CHECK_FALSE(called(f, "regain_root"));
  FakeCalls none;
  CHECK(drop_privileges(std::nullopt, false, none) == "");
  CHECK(none.caps.permitted == 0);
  CHECK(none.bounding == 0);
}

TEST_CASE("privileges: agent.user and agent.group are looked up", "[privileges]") {
  std::string error;
  auto root = look_up_run_as("root", "", &error);
  REQUIRE(root);
  CHECK(root->uid == 0);
  CHECK(root->gid == 0);
  CHECK(root->group == "root");
  CHECK_FALSE(look_up_run_as("outpost-no-such-user", "", &error));
  CHECK(error == "no user 'outpost-no-such-user' on this system");
  CHECK_FALSE(look_up_run_as("root", "outpost-no-such-group", &error));
  CHECK(error == "no group 'outpost-no-such-group' on this system");
}
