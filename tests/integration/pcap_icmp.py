"""The ICMP echoes of a capture: what the lab tests and scripts/bench compare
RTTs with. Reads a little-endian nanosecond pcap of Ethernet frames (tcpdump
--time-stamp-precision=nano) and yields, for each IPv4 echo request and echo
reply in it, (icmp_type, ident, seq, stamp_ns) in the capture's order."""
import struct


def echo_frames(path):
    data = open(path, "rb").read()
    if len(data) < 24 or struct.unpack("<I", data[:4])[0] != 0xA1B23C4D:
        raise ValueError(f"{path}: not a little-endian nanosecond pcap")
    off = 24
    while off + 16 <= len(data):
        sec, nsec, caplen, _ = struct.unpack("<IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + caplen]
        off += 16 + caplen
        if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00":
            continue
        ihl = (frame[14] & 0x0F) * 4
        icmp = frame[14 + ihl:]
        if len(icmp) < 8 or icmp[0] not in (0, 8):
            continue
        ident, seq = struct.unpack("!HH", icmp[4:8])
        yield icmp[0], ident, seq, sec * 10**9 + nsec
