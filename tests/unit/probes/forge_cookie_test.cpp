// The cookies our probes carry (echo payload, TCP ISN) against a host that
// receives one of our probes and knows every visible field of it: with an
// invertible mix (splitmix64's finaliser) it recovered the key and predicted
// every other cookie; a keyed PRF (SipHash-2-4) leaves it nothing to invert.

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <set>

#include "icmp_echo.hpp"
#include "tcp_syn.hpp"

using outpost::IpAddress;

namespace {

IpAddress addr(const char* text) { return IpAddress::parse(text).value(); }

using Secret = outpost::FlowSecret;
Secret random_secret(std::mt19937_64& rng) {
  Secret key;
  for (auto& byte : key) byte = static_cast<std::uint8_t>(rng());
  return key;
}

// ---- the attacker's side: splitmix64's finaliser and its inverse ----

std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

std::uint64_t inverse_mod_2_64(std::uint64_t a) {  // a odd; Newton's iteration
  std::uint64_t x = a;
  for (int i = 0; i < 6; ++i) x *= 2 - a * x;
  return x;
}

std::uint64_t unxorshift(std::uint64_t y, int shift) {
  std::uint64_t x = y;
  for (int i = 0; i < 64 / shift + 1; ++i) x = y ^ (x >> shift);
  return x;
}

std::uint64_t unmix(std::uint64_t x) {
  x = unxorshift(x, 31);
  x *= inverse_mod_2_64(0x94D049BB133111EBull);
  x = unxorshift(x, 27);
  x *= inverse_mod_2_64(0xBF58476D1CE4E5B9ull);
  return unxorshift(x, 30);
}

// What the old scheme mixed in besides the key, from visible fields only.
std::uint64_t visible(std::uint8_t proto, const IpAddress& remote, std::uint16_t a, std::uint16_t b) {
  return mix(remote.hash()) ^ (static_cast<std::uint64_t>(proto) << 32 | static_cast<std::uint64_t>(a) << 16 | b);
}

// The attacker received an echo request to itself (`self`, ident, sequence,
// and the cookie in its payload) and computes the key the old scheme used.
std::uint64_t recover_key(const IpAddress& self, std::uint16_t ident, std::uint16_t sequence, std::uint64_t cookie) {
  return unmix(cookie) ^ visible(0, self, ident, sequence);
}

const IpAddress kAttacker = addr("203.0.113.66");
const IpAddress kDeadTarget = addr("198.18.0.1");

}  // namespace

TEST_CASE("forge: the inverted splitmix finaliser predicted every cookie from one captured echo", "[forge]") {
  // The attack itself, against the old formula: it works, so the next test means something.
  std::mt19937_64 rng(11);
  for (int i = 0; i < 16; ++i) {
    const std::uint64_t key = rng();
    const std::uint64_t captured = mix(key ^ visible(0, kAttacker, 0x1234, 7));
    const std::uint64_t recovered = recover_key(kAttacker, 0x1234, 7, captured);
    CHECK(recovered == key);
    CHECK(mix(recovered ^ visible(0, kDeadTarget, 0x1234, 8)) == mix(key ^ visible(0, kDeadTarget, 0x1234, 8)));
  }
}

TEST_CASE("forge: a captured echo request no longer predicts the next cookie or ISN", "[forge]") {
  std::mt19937_64 rng(12);
  int echo_hits = 0, isn_hits = 0;
  for (int i = 0; i < 64; ++i) {
    const Secret secret = random_secret(rng);
    const std::uint64_t captured = outpost::echo_cookie(secret, kAttacker, 0x1234, 7);
    const std::uint64_t recovered = recover_key(kAttacker, 0x1234, 7, captured);
    const std::uint64_t predicted_echo = mix(recovered ^ visible(0, kDeadTarget, 0x1234, 8));
    const std::uint64_t predicted_isn = mix(recovered ^ visible(1, kDeadTarget, 62001, 80));
    echo_hits += predicted_echo == outpost::echo_cookie(secret, kDeadTarget, 0x1234, 8);
    isn_hits += static_cast<std::uint32_t>(predicted_isn) == outpost::tcp_syn_cookie(secret, kDeadTarget, 62001, 80);
  }
  CHECK(echo_hits == 0);
  CHECK(isn_hits == 0);
}

// Whatever the attacker does with two cookies whose visible fields it knows,
// the result must depend on the key: if it did not (a constant for those
// fields), one cookie and the fields would give the other.
TEST_CASE("forge: cookies of two probes to one target are not related by their visible fields alone", "[forge]") {
  std::mt19937_64 rng(13);
  std::set<std::uint64_t> xors, differences, unmixed_xors, isn_differences;
  constexpr int kKeys = 64;
  for (int i = 0; i < kKeys; ++i) {
    const Secret secret = random_secret(rng);
    const std::uint64_t a = outpost::echo_cookie(secret, kDeadTarget, 0x1234, 7);
    const std::uint64_t b = outpost::echo_cookie(secret, kDeadTarget, 0x1234, 8);
    xors.insert(a ^ b);
    differences.insert(a - b);
    unmixed_xors.insert(unmix(a) ^ unmix(b));
    isn_differences.insert(outpost::tcp_syn_cookie(secret, kDeadTarget, 62001, 80) -
                           outpost::tcp_syn_cookie(secret, kDeadTarget, 62002, 80));
  }
  CHECK(xors.size() == kKeys);
  CHECK(differences.size() == kKeys);
  CHECK(unmixed_xors.size() == kKeys);
  CHECK(isn_differences.size() >= kKeys - 1);
}

TEST_CASE("forge: cookies are keyed: another key, another cookie", "[forge]") {
  std::mt19937_64 rng(14);
  const Secret one = random_secret(rng), two = random_secret(rng);
  CHECK(outpost::echo_cookie(one, kDeadTarget, 1, 2) == outpost::echo_cookie(one, kDeadTarget, 1, 2));
  CHECK(outpost::echo_cookie(one, kDeadTarget, 1, 2) != outpost::echo_cookie(two, kDeadTarget, 1, 2));
  CHECK(outpost::tcp_syn_cookie(one, kDeadTarget, 62000, 443) != outpost::tcp_syn_cookie(two, kDeadTarget, 62000, 443));
}
