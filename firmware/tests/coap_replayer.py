#!/usr/bin/env python3
"""An on-path attacker for board_e2e.py: relays UDP datagrams between one
client and TARGET, and records the first 2.05 answer TARGET gives to the
client's CON POST /talk (a talk-resp carrying the client's ticket,
PROTOCOL.md §5.1). From then on it answers each of the client's CON POSTs
to /talk itself with that answer's payload in a new ACK (the request's
message ID and token, RFC 7252 §3: what anyone who recorded the answer can
send) and never relays them. Prints, when it ends, how many it replayed
and how many CON POSTs to /m2m it relayed after the first replay: in a
session the client would start again from a replayed ticket.

usage: coap_replayer.py LISTEN_PORT TARGET_HOST:PORT SECONDS
Exits after SECONDS (bounded) or at SIGTERM.
"""
import signal
import sys

import coapmsg

CONTENT = (2 << 5) | 5  # 2.05


def main():
    port, target, secs = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    tokens, recorded, counts = set(), [], {"replayed": 0, "m2m": 0}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))

    def on_answer(d):
        m = coapmsg.parse(d)
        if not recorded and len(d) >= 4 and d[0] >> 4 == 0x6 and d[1] == CONTENT and m and \
                d[4:4 + (d[0] & 0x0F)] in tokens:
            recorded.append(m[1])

    def on_request(d):
        token = coapmsg.post_token(d, b"talk")
        if token is None or not recorded:
            if token is not None:
                tokens.add(token)
            counts["m2m"] += counts["replayed"] > 0 and coapmsg.post_token(d, b"m2m") is not None
            return None
        counts["replayed"] += 1
        # ACK, 2.05, the request's message ID and token, Content-Format 60 (CBOR), the recorded payload
        cf_cbor = bytes([coapmsg.CONTENT_FORMAT << 4 | 1, 60])
        return bytes([0x60 | len(token), CONTENT]) + d[2:4] + token + cf_cbor + b"\xff" + recorded[0]

    coapmsg.relay(port, target, secs, on_request, lambda: bool(stop), on_answer)
    print(f"replayed {counts['replayed']} answers to /talk; relayed {counts['m2m']} /m2m requests after the first",
          flush=True)


main()
