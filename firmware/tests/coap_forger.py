#!/usr/bin/env python3
"""An on-path attacker for board_e2e.py: relays UDP datagrams between one
client and TARGET, except the client's CON POSTs to /PATH, which it answers
itself with a forged ACK, 4.03 "not a member: forged" in plain text (what
any on-path attacker can send, RFC 7252 §3), and never relays. Prints how
many it forged when it ends.

usage: coap_forger.py LISTEN_PORT TARGET_HOST:PORT PATH SECONDS
Exits after SECONDS (bounded) or at SIGTERM.
"""
import signal
import sys

import coapmsg

FORBIDDEN = (4 << 5) | 3  # 4.03


def forged_answer(d, path):
    """The forged ACK to d when d is a CON POST to /path, else None."""
    token = coapmsg.post_token(d, path.encode())
    if token is None:
        return None
    head = bytes([0x60 | len(token), FORBIDDEN]) + d[2:4] + token  # ACK, same message ID and token
    return head + bytes([coapmsg.CONTENT_FORMAT << 4]) + b"\xffnot a member: forged"  # Content-Format 0 (text)


def main():
    port, target, path, secs = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
    forged = []
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))

    def on_request(d):
        a = forged_answer(d, path)
        if a is not None:
            forged.append(a)
        return a

    coapmsg.relay(port, target, secs, on_request, lambda: bool(stop))
    print(f"forged {len(forged)} answers to /{path}", flush=True)


main()
