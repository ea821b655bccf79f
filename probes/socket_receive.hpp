// Receiving without a capture: answers read from raw ICMP sockets (echo
// replies, and the errors that routers and hosts send about any probe) and
// raw TCP ones (the SYN-ACKs and RSTs of TCP probes' ports), and the
// kernel's send stamp of each raw datagram read back from its socket's error
// queue. Each comes out as an IP datagram (DLT_RAW) with its kernel stamp,
// as a capture's frame would.
// A capture (libpcap's) costs a command at the terminal a packet socket,
// its ring and its compiled filter, and a close that waits for the network
// stack's grace period: about 1.5 ms of a one-probe `outpost ping`. Its
// answers come from a ring of its own (answer_ring.hpp), which needs none
// of the kernel's receive stamps; from these sockets where it cannot open,
// or where another socket holds receive stamps on already (then these cost
// less than a ring).
// Leaves to others: what the datagrams mean (engine), routes and sending (wire).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "probe.hpp"

struct cmsghdr;

namespace outpost {

// The kernel's software stamp in one control message (SCM_TIMESTAMPING),
// when it is that and holds one.
std::optional<WallTime> software_stamp(const cmsghdr& c);

// No stamp: the datagram came without the kernel's; the handler times it by
// its own clock, at once.
using DatagramHandler =
    std::function<void(const std::uint8_t* data, std::size_t size, std::optional<WallTime> stamp)>;

// The kernel turns software timestamping on for the whole host when a socket
// asks for it, asynchronously, and off again when the last such socket
// closes: a socket that comes and goes could see its answer arrive before
// stamps are on. This keeps one socket asking, for the process's life, and
// the first call waits (at most 0.2 s) until stamps are on. Whether a
// datagram to itself on loopback came stamped (false without loopback).
// Idempotent.
bool keep_kernel_timestamps_on();

// Whether the kernel's receive stamps are on already, because another
// socket asks for them (or keep_kernel_timestamps_on() did): a datagram to
// ourselves on loopback, on a socket that only reports stamps, comes
// stamped then and only then, so asking this makes the kernel switch
// nothing. False where there is no loopback. Each call looks again.
bool kernel_timestamps_already_on();

// Asks the kernel for a software stamp of each datagram a raw socket sends,
// with the datagram, on the socket's error queue (or no more, when !on).
// False when it will not.
bool ask_send_stamps(int raw_fd, bool on = true);

// A raw socket for ICMP (ICMPv6 when v6) that stamps what it receives, bound
// to `interface` when one is given; -1 with *error.
int open_icmp_receiver(bool v6, const std::string& interface, std::string* error);

// A raw socket that gets a copy of each TCP segment the host receives for a
// destination port of first_port or above (a kernel filter keeps out the
// rest, the host's own connections among them), stamped, bound to
// `interface` when one is given; -1 with *error. The kernel's TCP still
// gets the segment too (and answers a SYN-ACK to no socket of its own with
// a RST, as it does when a capture watches).
int open_tcp_receiver(bool v6, std::uint16_t first_port, const std::string& interface, std::string* error);

// Reads up to max datagrams from a receiver of `protocol` (IPPROTO_ICMP,
// IPPROTO_ICMPV6, IPPROTO_TCP) and hands each on, with an IPv6 header put
// back in front of the message (the kernel keeps it). One
// without a kernel stamp (the kernel switching stamps off and on again for
// another process, between our check and the answer) is handed on as such,
// to be timed by the wall clock (the engine counts it, the record says so):
// an answer lost would be a timeout, a worse error than the user-space
// clock's fraction of a millisecond. How many.
int read_receiver(int fd, bool v6, std::uint8_t protocol, int max, const DatagramHandler& handler);

// Reads up to max send stamps from a raw socket's error queue and hands on
// the datagram each came with. How many.
int read_send_stamps(int raw_fd, int max, const DatagramHandler& handler);

// Where the IP datagram starts in a datagram looped back with its send
// stamp, which comes with the link layer's header in front (none, Ethernet,
// VLAN tags...): the offset at which an IP header's own length reaches the
// end exactly. Empty when there is none.
std::optional<std::size_t> looped_ip_offset(std::span<const std::uint8_t> looped);

// An IPv6 header (payload length, next header, hop limit, addresses)
// written in front of a message of `payload` bytes at out[40...]. out must
// hold 40 + payload bytes.
void write_ipv6_header(std::span<std::uint8_t> out, std::size_t payload, std::uint8_t next_header, int hop_limit,
                       const IpAddress& src, const IpAddress& dst);

}  // namespace outpost
