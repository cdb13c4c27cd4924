#!/usr/bin/env python3
"""An on-path attacker for the harness: relays UDP datagrams between one
client and TARGET, and writes the payload of each request the client sends
(CoAP parsed, RFC 7252 §3) to DIR/1.bin, DIR/2.bin, ... so that a test can
replay it later as a new request (coap-client-notls -f DIR/1.bin).

usage: coap_recorder.py LISTEN_PORT TARGET_HOST:PORT DIR SECONDS
Exits after SECONDS (bounded) or when killed.
"""
import os
import sys

import coapmsg


def payload(d):
    """The payload of a CoAP request, or None if d is not a request with one."""
    if len(d) < 4 or d[0] >> 6 != 1 or not 1 <= d[1] <= 31:
        return None
    m = coapmsg.parse(d)
    return m[1] if m and m[1] else None


def main():
    port, target, out, secs = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
    os.makedirs(out, exist_ok=True)
    n = [0]

    def on_request(d):
        p = payload(d)
        if p is not None:
            n[0] += 1
            with open(os.path.join(out, f"{n[0]}.bin"), "wb") as f:
                f.write(p)
        return None  # relayed as it is

    coapmsg.relay(port, target, secs, on_request)


main()
