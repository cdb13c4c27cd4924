#!/usr/bin/env python3
"""An on-path attacker for the harness: relays UDP datagrams between one
client and TARGET, and writes the payload of each request the client sends
(CoAP parsed, RFC 7252 §3) to DIR/1.bin, DIR/2.bin, ... so that a test can
replay it later as a new request (coap-client-notls -f DIR/1.bin).

usage: coap_recorder.py LISTEN_PORT TARGET_HOST:PORT DIR SECONDS
Exits after SECONDS (bounded) or when killed.
"""
import os
import select
import socket
import sys
import time

import coapmsg


def payload(d):
    """The payload of a CoAP request, or None if d is not a request with one."""
    if len(d) < 4 or d[0] >> 6 != 1 or not 1 <= d[1] <= 31:
        return None
    m = coapmsg.parse(d)
    return m[1] if m and m[1] else None


def main():
    port, target, out, secs = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
    host, tport = target.rsplit(":", 1)
    to = (host, int(tport))
    os.makedirs(out, exist_ok=True)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    client, n, end = None, 0, time.monotonic() + secs
    while time.monotonic() < end:
        if not select.select([s], [], [], 0.2)[0]:
            continue
        d, src = s.recvfrom(2048)
        if src == to:
            if client:
                s.sendto(d, client)
            continue
        client = src
        p = payload(d)
        if p is not None:
            n += 1
            with open(os.path.join(out, f"{n}.bin"), "wb") as f:
                f.write(p)
        s.sendto(d, to)


main()
