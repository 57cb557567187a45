#!/usr/bin/env python3
"""Turn off segmentation/receive offloads and tx checksum offload on a network
interface with the legacy SIOCETHTOOL ioctls (ethtool is not installed).

Usage: offloads.py IFNAME   (run inside the interface's network namespace)

Without this, veth captures hold 64 KB "super-segments" (TSO/GSO/GRO) and
packets with unfilled checksums (tx checksum offload).
"""
import array
import fcntl
import socket
import struct
import sys

SIOCETHTOOL = 0x8946
ETHTOOL_STXCSUM = 0x00000017  # tx checksum offload
ETHTOOL_SSG = 0x00000019      # scatter-gather
ETHTOOL_STSO = 0x0000001F     # TCP segmentation offload
ETHTOOL_SGSO = 0x00000024     # generic segmentation offload
ETHTOOL_SGRO = 0x0000002C     # generic receive offload
ETHTOOL_GTXCSUM = 0x00000016
ETHTOOL_GSG = 0x00000018
ETHTOOL_GTSO = 0x0000001E
ETHTOOL_GGSO = 0x00000023
ETHTOOL_GGRO = 0x0000002B


def ethtool_value(sock, ifname, cmd, value=0):
    buf = array.array("B", struct.pack("II", cmd, value))
    addr, _ = buf.buffer_info()
    ifreq = struct.pack("16sP", ifname.encode(), addr)
    fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)
    return struct.unpack("II", buf.tobytes())[1]


def main():
    ifname = sys.argv[1]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # Order matters: TSO depends on SG and tx checksumming, so switch the
    # dependants off first.
    for name, scmd in (("tso", ETHTOOL_STSO), ("gso", ETHTOOL_SGSO),
                       ("gro", ETHTOOL_SGRO), ("sg", ETHTOOL_SSG),
                       ("tx-checksum", ETHTOOL_STXCSUM)):
        ethtool_value(s, ifname, scmd, 0)
    state = {name: ethtool_value(s, ifname, gcmd)
             for name, gcmd in (("tso", ETHTOOL_GTSO), ("gso", ETHTOOL_GGSO),
                                ("gro", ETHTOOL_GGRO), ("sg", ETHTOOL_GSG),
                                ("tx-checksum", ETHTOOL_GTXCSUM))}
    print(f"{ifname}: " + " ".join(f"{k}={'on' if v else 'off'}" for k, v in state.items()))
    if any(state.values()):
        sys.exit(f"{ifname}: could not turn every offload off")


if __name__ == "__main__":
    main()
