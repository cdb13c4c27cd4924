#!/usr/bin/env python3
"""Floods a device listener's /talk with hellos that carry a well-formed,
fresh, made-up talk proof for it (the kind a listener forwards to its CH),
one CoAP CON request at a time, each waiting for its answer (at most 5 s).
Prints one line: the count of each answer code and the seconds it took, e.g.
`4.01=5 4.29=15 seconds=0.21`.

usage: talk_flood.py PORT INITIATOR RESPONDER N
"""
import os
import socket
import sys
import time


def tstr(s):
    b = s.encode()
    return bytes([0x60 + len(b)]) + b  # IDs here are shorter than 24 bytes


def hello(initiator, responder):
    proof = (b"\x83\x4c" + os.urandom(12) + b"\x1a" + int(time.time()).to_bytes(4, "big") +
             b"\x50" + os.urandom(16))
    return b"\xa3\x01" + tstr(initiator) + b"\x02" + tstr(responder) + b"\x03" + proof


def main():
    port, initiator, responder, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    counts = {}
    start = time.monotonic()
    for i in range(n):
        mid = (0x4000 + i).to_bytes(2, "big")
        token = os.urandom(4)
        # CON POST, Uri-Path "talk" (11), Content-Format 60 (12), payload
        msg = b"\x44\x02" + mid + token + b"\xb4talk" + b"\x11\x3c" + b"\xff" + hello(initiator, responder)
        s.sendto(msg, ("127.0.0.1", port))
        while True:
            d, _ = s.recvfrom(2048)
            if d[2:4] == mid or d[4:8] == token:
                break
        if d[1] == 0:  # an empty ACK: the answer follows separately
            d, _ = s.recvfrom(2048)
        code = f"{d[1] >> 5}.{d[1] & 31:02d}"
        counts[code] = counts.get(code, 0) + 1
    took = time.monotonic() - start
    print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())) + f" seconds={took:.2f}")


main()
