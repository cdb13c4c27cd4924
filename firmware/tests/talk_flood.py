#!/usr/bin/env python3
"""Floods a device listener's /talk with hellos that carry a well-formed,
fresh, made-up talk proof for it (the kind a listener forwards to its CH),
one CoAP CON request at a time, each waiting for its answer (at most 5 s).
The flooder first proves its address as any peer does (PROTOCOL.md §2): its
first hello, without an Echo option, must draw 4.01 with one, which the N
hellos then carry. Prints one line: the count of each answer code to the N
hellos (`challenged` for a 4.01 with an Echo option) and the seconds they
took, e.g. `4.01=5 4.29=15 seconds=0.21`; exits 1 when the first hello was
not challenged.

usage: talk_flood.py PORT INITIATOR RESPONDER N
"""
import os
import socket
import sys
import time

import coapmsg

ECHO = 252


def tstr(s):
    b = s.encode()
    return bytes([0x60 + len(b)]) + b  # IDs here are shorter than 24 bytes


def hello(initiator, responder):
    proof = (b"\x83\x4c" + os.urandom(12) + b"\x1a" + int(time.time()).to_bytes(4, "big") +
             b"\x50" + os.urandom(16))
    return b"\xa3\x01" + tstr(initiator) + b"\x02" + tstr(responder) + b"\x03" + proof


def options(d):
    """The options of CoAP message d as (number, value) pairs."""
    m = coapmsg.parse(d)
    return m[0] if m else []


def post(s, port, i, body, echo):
    """One CON POST /talk, message ID 0x4000 + i, and its answer."""
    mid = (0x4000 + i).to_bytes(2, "big")
    token = os.urandom(4)
    # CON POST, Uri-Path "talk" (11), Content-Format 60 (12), [Echo (252): delta 240], payload
    msg = b"\x44\x02" + mid + token + b"\xb4talk" + b"\x11\x3c"
    if echo:
        msg += bytes([0xD0 | len(echo), 240 - 13]) + echo  # an Echo is 1-40 bytes; here under 13
    msg += b"\xff" + body
    s.sendto(msg, ("127.0.0.1", port))
    while True:
        d, _ = s.recvfrom(2048)
        if d[2:4] == mid or d[4:8] == token:
            break
    if d[1] == 0:  # an empty ACK: the answer follows separately
        d, _ = s.recvfrom(2048)
    return d


def main():
    port, initiator, responder, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    d = post(s, port, n, hello(initiator, responder), None)
    echo = [v for num, v in options(d) if num == ECHO]
    if d[1] != (4 << 5 | 1) or len(echo) != 1 or not 1 <= len(echo[0]) <= 12:
        print(f"the first hello, without an Echo, was not challenged: code {d[1] >> 5}.{d[1] & 31:02d}")
        sys.exit(1)
    counts = {}
    start = time.monotonic()
    for i in range(n):
        d = post(s, port, i, hello(initiator, responder), echo[0])
        code = f"{d[1] >> 5}.{d[1] & 31:02d}"
        if any(num == ECHO for num, _ in options(d)):
            code = "challenged"  # the Echo did not verify the address (it is not counted as 4.01)
        counts[code] = counts.get(code, 0) + 1
    took = time.monotonic() - start
    print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())) + f" seconds={took:.2f}")


main()
