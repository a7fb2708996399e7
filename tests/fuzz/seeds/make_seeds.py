#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets (tests/fuzz/seeds/<target>/): real requests,
bodies, peer frames and a real peer handshake, in each target's input format (see the
target's doc comment). The seeds are committed; run this again when a format changes:

    python3 tests/fuzz/seeds/make_seeds.py
"""

import hashlib
import hmac
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent


def write(target, name, data):
    folder = HERE / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


# --- http_head: request heads (and what follows them) as clients send them -----------------

SET_BODY = b'{"key":"ping","value":"pong"}'
HEADS = {
    "curl-set": b"POST /mostdb/set HTTP/1.1\r\nHost: 127.0.0.1:5000\r\nUser-Agent: curl/8.5.0\r\n"
    b"Accept: */*\r\nContent-Type: application/json\r\nContent-Length: 29\r\n\r\n" + SET_BODY,
    "get-query": b"GET /mostdb/get?x=1&key=%E9%94%AE+a%2Bb HTTP/1.1\r\nHost: db\r\n\r\n",
    "chunked-expect": b"POST /mostdb/get HTTP/1.1\r\nHost: db\r\nTransfer-Encoding: chunked\r\n"
    b"Expect: 100-continue\r\n\r\n",
    "http10-close": b"POST /mostdb/del HTTP/1.0\r\nConnection: close\r\nContent-Length: 12\r\n\r\n"
    b'{"key":"k1"}',
    "healthz-pipelined": b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\nHEAD /readyz HTTP/1.1\r\n"
    b"Host: a\r\n\r\n",
    "options-apikey": b"OPTIONS /mostdb/set HTTP/1.1\r\nHost: a\r\nX-MOSTDB-AUTH: mostdb\r\n"
    b"Connection: keep-alive, close\r\n\r\n",
}

# --- chunked: one byte (split and prefix) then the bytes after the head ---------------------

CHUNKED = {
    "one-chunk": b"\x07" + b"1d\r\n" + SET_BODY + b"\r\n0\r\n\r\n",
    "pieces-ext-trailers": b"\x2a" + b"a;name=v\r\n" + SET_BODY[:10] + b"\r\n13\r\n"
    + SET_BODY[10:] + b"\r\n0\r\nX-Trailer: 1\r\n\r\nGET / HTTP/1.1\r\n\r\n",
    "uppercase-hex": b"\x03" + b"1D\r\n" + SET_BODY + b"\r\n000\r\n\r\n",
}

# --- json_body: the API's bodies ----------------------------------------------------------

JSON = {
    "set": SET_BODY,
    "get": b'{"key":"ping"}',
    "cases": b'{"KEY":"kcase","VaLuE":"vv","key":"d2","extra":{"a":[1,2.5e3,null,true]}}',
    "escapes": b'{"key":"\\u952e\\ud83d\\udd11","value":"a\\u003cb \\"q\\" \\\\ \\n\\t \xe5\x80\xbc"}',
    "invalid-utf8": b'{"key":"bad8","value":"\xff\xfe"}',
    "nested-at-limit": b'{"key":"k","x":' + b"[" * 31 + b"1" + b"]" * 31 + b"}",
    "numbers": b'{"key":"n","value":-0.0e-0,"n":[123456789012345678901234567890,1e999]}',
}

# --- peer_frame: one byte (value limit) then frames as a link reads them --------------------


def frame(kind, ident, payload):
    body = bytes([kind]) + struct.pack("<Q", ident) + payload
    return struct.pack("<I", len(body)) + body


def key(k):
    return struct.pack("<I", len(k)) + k


def version(hlc, origin):
    return struct.pack(">QQ", hlc, origin)


def value(v):
    return b"\x01" if v is None else b"\x00" + struct.pack("<I", len(v)) + v


V = version(0x0001_8C2B_3D4E_5F60, 0x2222_2222_2222_2201)
FRAMES = {
    "put": frame(1, 1, b"\x01" + key(b"ping") + V + value(b"pong")),
    "read": frame(1, 2, b"\x02" + key(b"ping")),
    "repair-tombstone": frame(1, 3, b"\x03" + key(b"ping") + V + value(None)),
    "copy": frame(1, 4, b"\x04" + key(b"k") + V + value(b"")),
    "reply-accepted": frame(2, 1, b"\x01"),
    "reply-rejected": frame(2, 1, b"\x02" + V),
    "reply-read": frame(2, 2, b"\x03" + V + value(b"pong")),
    "reply-repair-rejected": frame(2, 3, b"\x05" + V + value(None)),
    "reply-digests": frame(2, 5, b"\x07" + struct.pack("<I", 2) + struct.pack("<QQQQ", 1, 2, 3, 4)),
    "reply-key-page": frame(2, 6, b"\x08" + struct.pack("<I", 2) + key(b"a") + V + key(b"b") + V
                            + b"\x01" + key(b"\x00\x00\x00\x01b")),
    "reply-status": frame(2, 7, b"\x09\x02" + struct.pack("<Q", 42)),
    "unavailable": frame(3, 9, b""),
    "ping-pong": frame(4, 10, struct.pack("<QQ", 123, 456)) + frame(5, 10, struct.pack("<QQ", 123, 789)),
    "sync-bucket-keys": frame(6, 11, b"\x02" + struct.pack("<IIII", 3, 0, 5, 1023) + key(b"")),
    "sync-digests-status": frame(6, 12, b"\x01") + frame(6, 13, b"\x03"),
}

# --- handshake: two bytes of status, a head, an answer body ----------------------------------

PROTOCOL = b"mostdb-peer/1"
SECRET = b"fuzz-secret"
NONCE_HEX = b"0123456789abcdef".hex().encode()
DIALLER, RESPONDER = b"1111111111111111", b"2222222222222222"
CLUSTER, EPOCH, MEMBERS = b"fuzz", b"7", b"3"


def mac(role, fields):
    m = hmac.new(SECRET, digestmod=hashlib.sha256)
    m.update(PROTOCOL)
    m.update(role)
    for f in fields:
        m.update(struct.pack("<Q", len(f)))
        m.update(f)
    return m.hexdigest().encode()


def identity_lines(node, proof):
    return (b"X-Mostdb-Node: " + node + b"\r\nX-Mostdb-Cluster: " + CLUSTER
            + b"\r\nX-Mostdb-Epoch: " + EPOCH + b"\r\nX-Mostdb-Members: " + MEMBERS
            + b"\r\n" + proof)


def handshake_seeds():
    dial = mac(b"dial", [DIALLER, CLUSTER, EPOCH, MEMBERS, NONCE_HEX, b""])
    accept = mac(b"accept", [RESPONDER, CLUSTER, EPOCH, MEMBERS, NONCE_HEX, DIALLER])
    status = struct.pack("<H", 101)
    request = (b"GET /_mostdb/peer HTTP/1.1\r\nHost: 10.0.0.2:5000\r\nConnection: Upgrade\r\n"
               b"Upgrade: mostdb-peer/1\r\n"
               + identity_lines(DIALLER, b"X-Mostdb-Nonce: " + NONCE_HEX + b"\r\n")
               + b"X-Mostdb-Proof: " + dial + b"\r\n\r\n")
    answer = (b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: mostdb-peer/1\r\n"
              + identity_lines(RESPONDER, b"X-Mostdb-Proof: " + accept + b"\r\n") + b"\r\n")
    refusal = struct.pack("<H", 403) + b"GET / HTTP/1.1\r\n\r\nsecret: node 1111111111111111 " \
        b"does not hold this cluster's secret"
    return {"dial-request": status + request, "accept-answer": status + answer,
            "refusal": refusal}


def main():
    for name, data in HEADS.items():
        write("http_head", name, data)
    for name, data in CHUNKED.items():
        write("chunked", name, data)
    for name, data in JSON.items():
        write("json_body", name, data)
    for name, data in FRAMES.items():
        write("peer_frame", name, b"\x00" + data)
    for name, data in handshake_seeds().items():
        write("handshake", name, data)


if __name__ == "__main__":
    main()
