#!/usr/bin/env python3
"""Independent protocol vectors for the firmware tests.

Computes, with Python's `cryptography` package and a separate small CBOR
encoder, the bytes PROTOCOL.md prescribes for fixed inputs, and writes them as
C arrays to selfvectors.h. The C tests compare the firmware's output with
these. Run once by hand (`python3 tests/selfvectors.py > tests/selfvectors.h`);
the shared JSON vectors in testdata/vectors/ are replayed as well.
"""
import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def head(mt, n):
    if n < 24:
        return bytes([mt << 5 | n])
    for ai, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([mt << 5 | ai]) + n.to_bytes(size, "big")
    raise ValueError


def cbor(v):
    if isinstance(v, bool):
        raise TypeError
    if isinstance(v, int):
        return head(0, v) if v >= 0 else head(1, -1 - v)
    if isinstance(v, bytes):
        return head(2, len(v)) + v
    if isinstance(v, str):
        b = v.encode()
        return head(3, len(b)) + b
    if isinstance(v, list):
        return head(4, len(v)) + b"".join(cbor(x) for x in v)
    if isinstance(v, dict):
        items = sorted((cbor(k), cbor(x)) for k, x in v.items())  # RFC 8949 4.2.1
        return head(5, len(v)) + b"".join(k + x for k, x in items)
    if isinstance(v, Raw):
        return v.b
    raise TypeError(type(v))


class Raw:
    def __init__(self, b):
        self.b = b


def hkdf(salt, ikm, info, n):
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:n]


def point(priv):
    n = priv.public_key().public_numbers()
    return n.x.to_bytes(32, "big"), n.y.to_bytes(32, "big")


def cose_key(priv):
    x, y = point(priv)
    return {1: 2, 3: -7, -1: 1, -2: x, -3: y}


def thumb(priv):
    x, y = point(priv)
    return hashlib.sha256(cbor({1: 2, -1: 1, -2: x, -3: y})).digest()


def sign1(priv, kid, aad, payload):
    prot = cbor({1: -7})
    tbs = cbor(["Signature1", prot, aad, payload])
    der = priv.sign(tbs, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    r, s = decode_dss_signature(der)
    return cbor([prot, {4: kid}, payload, r.to_bytes(32, "big") + s.to_bytes(32, "big")])


def enc0(key, nonce, unprot, ext_aad, pt):
    prot = cbor({1: 1})
    aad = cbor(["Encrypt0", prot, ext_aad])
    return cbor([prot, unprot, AESGCM(key).encrypt(nonce, pt, aad)])


def piv(seq):
    b = seq.to_bytes(8, "big").lstrip(b"\0")
    return b or b"\0"


def nonce(iv, seq):
    return bytes(a ^ b for a, b in zip(iv, seq.to_bytes(12, "big")))


DEV = ec.derive_private_key(0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721, ec.SECP256R1())
CH = ec.derive_private_key(0x7D7DC5F71EB29DDAF80D6214632EEAE03D9058AF1FB6D22ED80BADB62BC1A534, ec.SECP256R1())
CLUSTER, ID, PEER = "lab-1", "m1", "m2"
ND = bytes(range(16))
NCH = bytes(range(16, 32))
ECHO = bytes.fromhex("0102030405060708090a0b0c")

out = {}
out["DEV_PRIV"] = (0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721).to_bytes(32, "big")
out["CH_PRIV"] = (0x7D7DC5F71EB29DDAF80D6214632EEAE03D9058AF1FB6D22ED80BADB62BC1A534).to_bytes(32, "big")
out["CH_THUMB"] = thumb(CH)

# join request with an echo (deterministic ECDSA, RFC 6979)
payload = cbor({1: CLUSTER, 2: ID, 3: cose_key(DEV), 4: 52520000, 5: -1930000, 6: ND, 7: ECHO})
out["JOIN_REQ"] = sign1(DEV, ID.encode(), b"iotguard join-req", payload)

# join response
resp = cbor({1: CLUSTER, 2: cose_key(CH), 3: thumb(CH), 4: ID, 5: ND, 6: NCH, 7: 7,
             8: bytes([0xAB]) * 32, 9: 1900000000})
out["JOIN_RESP"] = sign1(CH, thumb(CH), b"iotguard join-resp", resp)

# K_m and member keys
z = DEV.exchange(ec.ECDH(), CH.public_key())
kminfo = cbor(["iotguard K_m", CLUSTER, ID, thumb(CH)])
km = hkdf(ND + NCH, z, kminfo, 32)
out["KM"] = km
req_key = hkdf(b"", km, b"iotguard req key", 16)
resp_key = hkdf(b"", km, b"iotguard resp key", 16)
civ = hkdf(b"", km, b"iotguard common iv", 12)
tkey = hkdf(b"", km, b"iotguard ticket key", 16)
out["REQ_KEY"], out["RESP_KEY"], out["COMMON_IV"], out["TICKET_KEY"] = req_key, resp_key, civ, tkey
talk_key = hkdf(b"", km, b"iotguard talk key", 16)
out["TALK_KEY"] = talk_key

# m1's talk proof to m2 (PROTOCOL.md 5.1): the tag of an empty plaintext
TNONCE = bytes(range(0xA0, 0xAC))
TTIME = 1800000000
tag = AESGCM(talk_key).encrypt(TNONCE, b"", cbor(["Encrypt0", cbor({1: 1}),
                                                  cbor(["iotguard talk", CLUSTER, ID, PEER, TNONCE, TTIME])]))
proof = [TNONCE, TTIME, tag]
out["TALK_TAG"] = tag
out["HELLO"] = cbor({1: ID, 2: PEER, 3: proof})
# m2's /session plaintext forwarding it, and the CH's warning answer about m1 (left)
out["SESSION_PT_PROOF"] = cbor({1: ID, 2: proof})
out["SESSION_RESP_WARN"] = cbor({3: {1: ID, 2: 2, 3: 7, 4: bytes([0xCD]) * 32, 5: 1900000000}})

# protected /verify request (seq 5) and its response
seq = 5
ext = cbor(["iotguard", CLUSTER, ID.encode(), piv(seq), "verify"])
out["VERIFY_REQ"] = enc0(req_key, nonce(civ, seq), {4: ID.encode(), 6: piv(seq)}, ext,
                         cbor({1: PEER}))
out["VERIFY_RESP"] = enc0(resp_key, nonce(civ, seq), {}, ext,
                          cbor({1: PEER, 2: 0, 3: 9, 4: bytes([0xCD]) * 32, 5: 1900000000}))
# session request with an echo after a CH restart (seq 256)
seq = 256
ext = cbor(["iotguard", CLUSTER, ID.encode(), piv(seq), "session"])
out["SESSION_REQ"] = enc0(req_key, nonce(civ, seq), {4: ID.encode(), 6: piv(seq)}, ext,
                          cbor({1: PEER, 9: ECHO}))

# ticket for m1 (initiator) from a session m2 asked for
SID = bytes(range(0x40, 0x50))
SK = bytes(range(0x60, 0x70))
TIV = bytes(range(0x80, 0x8C))
EXP = 1800000000
text = cbor(["iotguard ticket", CLUSTER, SID, EXP, ID, PEER, ID])
box = Raw(enc0(tkey, TIV, {5: TIV}, text, SK))
out["TICKET"] = cbor({1: SID, 2: EXP, 3: ID, 4: PEER, 5: ID, 6: box})
out["SK"], out["SID"] = SK, SID

# M2M: m1 -> m2 seq 0 "hello m2", and m2's reply seq 3 "ok"
def m2m_keys(sender):
    return (hkdf(SID, SK, cbor(["iotguard m2m key", sender]), 16),
            hkdf(SID, SK, cbor(["iotguard m2m iv", sender]), 12))
k1, iv1 = m2m_keys(ID)
k2, iv2 = m2m_keys(PEER)
out["M2M_KEY_M1"], out["M2M_IV_M1"] = k1, iv1
out["M2M_1TO2"] = enc0(k1, nonce(iv1, 0), {4: ID.encode(), 6: piv(0), 10: SID},
                       cbor(["iotguard m2m", SID, ID, PEER]), b"hello m2")
out["M2M_2TO1"] = enc0(k2, nonce(iv2, 3), {4: PEER.encode(), 6: piv(3), 10: SID},
                       cbor(["iotguard m2m", SID, PEER, ID]), b"ok")

print("/* Generated by tests/selfvectors.py (Python cryptography + its own CBOR"
      " encoder). Do not edit. */")
for k, v in out.items():
    body = ",".join(f"0x{c:02x}" for c in v)
    print(f"static const uint8_t SV_{k}[{len(v)}] = {{{body}}};")
