"""CoAP message parsing shared by the harness's Python tools (RFC 7252 §3)."""


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
