"""CoAP message parsing and an on-path relay, shared by the harness's Python
tools (RFC 7252 §3)."""
import select
import socket
import time

URI_PATH, CONTENT_FORMAT = 11, 12  # option numbers


def parse(d):
    """The options of CoAP message d as (number, value) pairs, and its
    payload (b"" when it has none); None when d is not well formed."""
    if len(d) < 4:
        return None
    opts, num, i = [], 0, 4 + (d[0] & 0x0F)
    while i < len(d):
        b = d[i]
        i += 1
        if b == 0xFF:
            return opts, d[i:]
        nibbles = [b >> 4, b & 0x0F]  # option delta, option length
        for k, v in enumerate(nibbles):
            if v == 13:
                nibbles[k] = 13 + d[i]
                i += 1
            elif v == 14:
                nibbles[k] = 269 + int.from_bytes(d[i:i + 2], "big")
                i += 2
            elif v == 15:
                return None
        num += nibbles[0]
        if i + nibbles[1] > len(d):
            return None
        opts.append((num, d[i:i + nibbles[1]]))
        i += nibbles[1]
    return opts, b""


def post_token(d, path):
    """The token of d when d is a CON POST to /path (bytes), else None."""
    if len(d) < 4 or d[0] >> 4 != 0x4 or d[1] != 2:  # version 1, CON; POST
        return None
    m = parse(d)
    if not m or [v for n, v in m[0] if n == URI_PATH] != [path]:
        return None
    return d[4:4 + (d[0] & 0x0F)]


def relay(port, target, secs, on_request, stopped=lambda: False, on_answer=lambda d: None):
    """Relays UDP datagrams between one client and target ("host:port") on
    127.0.0.1:port, for secs seconds (bounded) or until stopped(): each
    datagram from target is shown to on_answer(d) and goes back to the client
    as it is; each datagram from the client goes to on_request(d), which
    returns what to do with it: None to relay it, or bytes to send the
    client in its place."""
    host, tport = target.rsplit(":", 1)
    to = (host, int(tport))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    client, end = None, time.monotonic() + secs
    while time.monotonic() < end and not stopped():
        try:
            if not select.select([s], [], [], 0.2)[0]:
                continue
        except InterruptedError:
            continue
        d, src = s.recvfrom(2048)
        if src == to:
            on_answer(d)
            if client:
                s.sendto(d, client)
            continue
        client = src
        answer = on_request(d)
        if answer is None:
            s.sendto(d, to)
        else:
            s.sendto(answer, client)
