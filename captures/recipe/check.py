#!/usr/bin/env python3
"""Check that a freshly recorded capture tells the story it is meant to tell.

Usage: check.py NAME FILE.pcap

Reads FILE with tshark (empty personal configuration, relative sequence
numbers, TCP sequence analysis on), prints a one-line-per-packet summary and
exits 0 if the capture shows what NAME's scenario should show, 1 otherwise.
record.sh re-records a capture until this passes.
"""
import os
import subprocess
import sys
import tempfile
import zlib

CLIENT = "10.99.0.1"
SERVER = "10.99.0.2"

FIELDS = [
    "frame.number", "frame.time_relative", "ip.src", "tcp.stream", "tcp.flags.str",
    "tcp.seq", "tcp.ack", "tcp.len", "tcp.window_size", "tcp.options.sack_le",
    "tcp.payload",
]
FLAGS = [
    "retransmission", "fast_retransmission", "spurious_retransmission",
    "out_of_order", "lost_segment", "ack_lost_segment", "keep_alive",
    "keep_alive_ack", "duplicate_ack", "zero_window", "zero_window_probe",
    "zero_window_probe_ack", "window_update", "window_full",
]


class Pkt:
    def __init__(self, row):
        vals = dict(zip(FIELDS + ["tcp.analysis." + f for f in FLAGS], row))
        self.no = int(vals["frame.number"])
        self.t = float(vals["frame.time_relative"])
        self.src = vals["ip.src"]
        self.from_client = self.src == CLIENT
        self.stream = int(vals["tcp.stream"])
        s = vals["tcp.flags.str"]
        self.syn, self.fin, self.rst, self.ack = "S" in s, "F" in s, "R" in s, "A" in s
        self.psh = "P" in s
        self.seq = int(vals["tcp.seq"])
        self.acknum = int(vals["tcp.ack"] or 0)
        self.len = int(vals["tcp.len"])
        self.win = int(vals["tcp.window_size"] or 0)
        self.sack = bool(vals["tcp.options.sack_le"])
        self.payload = bytes.fromhex(vals["tcp.payload"].replace(":", "")) if vals["tcp.payload"] else b""
        self.flags = {f for f in FLAGS if vals["tcp.analysis." + f]}

    @property
    def pure_ack(self):
        return self.ack and not (self.syn or self.fin or self.rst) and self.len == 0

    def __str__(self):
        names = "".join(n for n, v in (("S", self.syn), ("F", self.fin), ("R", self.rst),
                                        ("P", self.psh), ("A", self.ack)) if v)
        side = "C>S" if self.from_client else "S>C"
        return (f"{self.no:4d} {self.t:9.6f} {side} {names:5s} seq={self.seq} ack={self.acknum} "
                f"len={self.len} win={self.win}{' SACK' if self.sack else ''} "
                f"{' '.join(sorted(self.flags))}")


def read(path):
    with tempfile.TemporaryDirectory() as cfg:
        env = dict(os.environ, WIRESHARK_CONFIG_DIR=cfg)
        cmd = ["tshark", "-n", "-r", path,
               "-o", "tcp.relative_sequence_numbers:TRUE",
               "-o", "tcp.analyze_sequence_numbers:TRUE",
               "-T", "fields", "-E", "separator=/t", "-Y", "tcp"]
        for f in FIELDS + ["tcp.analysis." + f for f in FLAGS]:
            cmd += ["-e", f]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return [Pkt(line.split("\t")) for line in out.splitlines()]


class Failed(Exception):
    pass


def need(cond, msg):
    if not cond:
        raise Failed(msg)


def with_flag(pkts, flag, from_client=None):
    return [p for p in pkts if flag in p.flags and (from_client is None or p.from_client == from_client)]


def check_handshake(p):
    need(len(p) >= 3 and p[0].syn and not p[0].ack and p[0].from_client, "first packet is not the client's SYN")
    need(p[1].syn and p[1].ack and not p[1].from_client, "second packet is not the SYN-ACK")
    need(p[2].pure_ack and p[2].from_client, "third packet is not the client's ACK")


def check_single_stream(p):
    need(len({x.stream for x in p}) == 1, "more than one TCP stream")


def check_no_flags(p, allowed=()):
    bad = [x for x in p if x.flags - set(allowed)]
    need(not bad, f"unexpected analysis flags: {bad[0] if bad else ''}")


def check_three_packet_close(p, first_from_client=True):
    a, b, c = p[-3:]
    need(a.fin and a.from_client == first_from_client, "third-last packet is not the first FIN")
    need(b.fin and b.ack and b.from_client != first_from_client and b.acknum == a.seq + 1,
         "second-last packet is not a FIN carrying the ACK of the first FIN")
    need(c.pure_ack and c.from_client == first_from_client and c.acknum == b.seq + 1,
         "last packet is not the ACK of the second FIN")
    need(sum(x.fin for x in p) == 2, "not exactly two FINs")


def s_handshake_three_packet_close(p):
    check_single_stream(p)
    check_handshake(p)
    need(any(x.len for x in p if x.from_client) and any(x.len for x in p if not x.from_client),
         "no exchange of data")
    check_three_packet_close(p)
    check_no_flags(p)


def s_keep_alive(p):
    check_single_stream(p)
    check_handshake(p)
    kas = with_flag(p, "keep_alive", from_client=True)
    need(len(kas) >= 2, "fewer than two keep-alives from the client")
    for ka in kas:
        nxt = [x for x in p if x.no > ka.no]
        need(nxt and "keep_alive_ack" in nxt[0].flags and not nxt[0].from_client,
             f"keep-alive {ka.no} not answered by a keep-alive ACK")
    gaps = [b.t - a.t for a, b in zip(kas, kas[1:])]
    need(all(14 < g < 16.5 for g in gaps), f"keep-alives not 15 s apart: {gaps}")
    check_three_packet_close(p)
    check_no_flags(p, {"keep_alive", "keep_alive_ack"})


def s_lost_handshake_ack(p, reset=False):
    check_single_stream(p)
    check_handshake(p)
    synacks = [x for x in p if x.syn and x.ack]
    need(len(synacks) >= 3 if not reset else len(synacks) >= 2, "too few SYN-ACK retransmissions")
    for sa in synacks[1:]:
        nxt = [x for x in p if x.no > sa.no]
        need(nxt and nxt[0].pure_ack and nxt[0].from_client and nxt[0].acknum == 1,
             f"retransmitted SYN-ACK {sa.no} not answered by the client's ACK")
    after = [x for x in p if x.no > synacks[-1].no + 1]
    need(after and after[0].from_client and (after[0].len > 0 or after[0].fin),
         "the client's next segment (data or FIN) is missing")
    if reset:
        need(len(after) == 2 and after[1].rst and not after[1].from_client,
             "the client's segment is not answered by a RST")
        need(not any(x.rst for x in p[:-1]), "RST before the end")
    else:
        need(not any(x.rst for x in p), "unexpected RST")
        need(any(x.len > 0 and not x.from_client for x in after), "the server never answers")
        need(sum(x.fin for x in p) == 2 and p[-1].pure_ack, "no orderly close")


def s_four_packet_close(p):
    check_single_stream(p)
    check_handshake(p)
    kas = with_flag(p, "keep_alive", from_client=False)
    need(len(kas) == 1, "not exactly one keep-alive from the server")
    need(14 < kas[0].t - p[0].t < 16.5, "keep-alive not after about 15 s idle")
    a, b, c, d = p[-4:]
    need(a.fin and not a.from_client, "fourth-last packet is not the server's FIN")
    need(b.pure_ack and b.from_client and b.acknum == a.seq + 1, "the client's ACK of the FIN is missing")
    need(c.fin and c.from_client, "second-last packet is not the client's FIN")
    need(0.8 < c.t - b.t < 1.5, "the client's FIN does not follow about 1 s later")
    need(d.pure_ack and not d.from_client and d.acknum == c.seq + 1, "last packet is not the final ACK")
    check_no_flags(p, {"keep_alive", "keep_alive_ack"})


def s_retransmissions(p):
    check_single_stream(p)
    check_handshake(p)
    fast = with_flag(p, "fast_retransmission", from_client=False)
    retr = with_flag(p, "retransmission", from_client=False)
    dups = with_flag(p, "duplicate_ack", from_client=True)
    need(len(fast) >= 2, f"only {len(fast)} fast retransmissions")
    need(len(retr) >= 3, f"only {len(retr)} retransmissions")
    need(len(dups) >= 6, f"only {len(dups)} duplicate ACKs")
    need(sum(x.sack for x in dups) >= 3, "no SACK blocks in the duplicate ACKs")
    need(not any(x.rst for x in p), "unexpected RST")
    need(sum(x.fin for x in p) == 2, "no orderly close")


def s_zero_window(p):
    check_single_stream(p)
    check_handshake(p)
    zw = with_flag(p, "zero_window", from_client=True)
    probes = [x for x in p if not x.from_client and x.len == 0 and not x.fin
              and x.seq > 1 and any(z.no < x.no for z in zw)
              and "keep_alive" in x.flags]
    upd = with_flag(p, "window_update", from_client=True)
    need(zw, "the client never announces a zero window")
    need(len(probes) >= 2, "fewer than two zero-window probes")
    need(upd and upd[0].no > probes[-1].no, "no window update after the probes")
    need(max(x.seq + x.len for x in p if not x.from_client) >= 48 * 1024, "transfer incomplete")
    need(sum(x.fin for x in p) == 2 and not any(x.rst for x in p), "no orderly close")


def s_connection_refused(p):
    need(len(p) == 2, f"{len(p)} packets, expected 2")
    need(p[0].syn and p[0].from_client, "first packet is not the SYN")
    need(p[1].rst and p[1].ack and not p[1].from_client, "second packet is not RST,ACK")


def s_syn_unanswered(p):
    check_single_stream(p)
    need(len(p) >= 3 and all(x.syn and not x.ack and x.from_client for x in p),
         "not only SYNs from the client")
    need(len(with_flag(p, "retransmission")) == len(p) - 1, "retries not flagged as retransmissions")


def s_http_keep_alive(p):
    check_single_stream(p)
    check_handshake(p)
    reqs = [x for x in p if x.from_client and x.payload.startswith(b"GET ")]
    resps = [x for x in p if not x.from_client and x.payload.startswith(b"HTTP/1.1 200")]
    need(len(reqs) == 3 and len(resps) == 3, f"{len(reqs)} requests, {len(resps)} responses")
    need(sum(x.fin for x in p) == 2 and p[-1].pure_ack, "no orderly close")
    check_no_flags(p)


# --- application-level checks (HTTP, SSE, WebSocket) --------------------------------

def data_segments(p, from_client):
    """Data-carrying segments of one side, in sequence order, retransmissions dropped."""
    seen, out = set(), []
    for x in sorted((x for x in p if x.from_client == from_client and x.len > 0), key=lambda x: x.seq):
        if x.seq not in seen:
            seen.add(x.seq)
            out.append(x)
    return out


def stream_bytes(p, from_client):
    return b"".join(x.payload for x in data_segments(p, from_client))


def check_orderly_close(p, first_fin_from_client=None):
    fins = [x for x in p if x.fin]
    need(len(fins) == 2 and not any(x.rst for x in p), "no orderly close (two FINs, no RST)")
    if first_fin_from_client is not None:
        need(fins[0].from_client == first_fin_from_client,
             f"the {'client' if first_fin_from_client else 'server'} does not close first")
    need(p[-1].pure_ack and p[-1].acknum == fins[-1].seq + 1, "the last FIN is not ACKed")


def s_http_header_newline(p):
    check_single_stream(p)
    check_handshake(p)
    req = stream_bytes(p, True)
    need(b"\r\nX-Note: first line\nsecond part\r\n" in req, "the request has no bare LF in X-Note")
    need(req.count(b"\n") - req.count(b"\r\n") == 2, "not exactly one bare LF in the head (+ one ending the body)")
    need(len([x for x in p if x.from_client and x.len > 0]) == 1, "the request is not one segment")
    resp = stream_bytes(p, False)
    need(resp.startswith(b"HTTP/1.1 200 "), "the first answer is not 200")
    need(b"body: 0 bytes" in resp, "the server did not see an empty body")
    # The body, read as the next request line, gets http.server's 400 page in
    # HTTP/0.9 style (no status line, no headers: a one-word request line
    # leaves request_version at HTTP/0.9), then the server closes.
    need(resp.count(b"HTTP/1.1 ") == 1, "more than one status line")
    need(b"Error code: 400" in resp and b"Bad request syntax ('note=hello')" in resp,
         "no 400 error page naming the body as the request line")
    check_orderly_close(p, first_fin_from_client=False)
    check_no_flags(p)


def dechunk_prefix(body):
    """Decode as much of a chunked body as is complete; (data, ended)."""
    out, i = b"", 0
    while True:
        j = body.find(b"\r\n", i)
        if j < 0:
            return out, False
        size = int(body[i:j].split(b";")[0], 16)
        if size == 0:
            return out, body[j + 2:j + 4] == b"\r\n"
        if len(body) < j + 2 + size + 2:
            return out, False
        out += body[j + 2:j + 2 + size]
        i = j + 2 + size + 2


def sse_progress(p):
    """For each server data segment: (segment, events complete after it, head)."""
    segs = data_segments(p, False)
    acc, rows, head = b"", [], None
    for x in segs:
        acc += x.payload
        n = 0
        if b"\r\n\r\n" in acc:
            head, body = acc.split(b"\r\n\r\n", 1)
            data, _ = dechunk_prefix(body)
            if b"content-encoding: gzip" in head.lower():
                data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)
            n = data.count(b"\n\n")
        rows.append((x, n, head))
    return rows


def s_sse(p, mode):
    """mode: plain, sync-flush (gzip, one event per segment), buffered (gzip, all at the end)."""
    check_single_stream(p)
    check_handshake(p)
    req = stream_bytes(p, True)
    need(req.startswith(b"GET /events HTTP/1.1") and b"Accept-Encoding: gzip" in req, "no SSE request")
    rows = sse_progress(p)
    need(rows and rows[0][2] is not None, "no response head")
    head = rows[0][2].lower()
    need(head.startswith(b"http/1.1 200") and b"content-type: text/event-stream" in head, "no text/event-stream answer")
    need(rows[0][1] == 0, "the head segment already holds an event")
    gz = b"content-encoding: gzip" in head
    need(gz == (mode != "plain"), f"Content-Encoding gzip {'missing' if not gz else 'unexpected'}")
    counts = [n for _, n, _ in rows]
    need(counts[-1] == 5, f"{counts[-1]} events in the stream, expected 5")
    raw = stream_bytes(p, False)
    if mode == "plain":
        need(raw.count(b"event: tick") == 5, "events not readable on the wire")
    else:
        need(b"event: tick" not in raw, "event text readable in a compressed stream")
    if mode in ("plain", "sync-flush"):
        steps = [(x, n) for (x, n, _), prev in zip(rows[1:], counts) if n != prev]
        need(len(steps) == 5 and all(n == i + 1 for i, (_, n) in enumerate(steps)),
             f"events do not arrive one per segment: {counts}")
        gaps = [b.t - a.t for (a, _), (b, _) in zip(steps, steps[1:])]
        need(all(0.5 <= g <= 1.0 for g in gaps), f"events not 0.5-1 s apart: {gaps}")
    else:
        need(counts[-2] == 0 if len(counts) >= 2 else False,
             f"events decodable before the end: {counts}")
        first = next(x for x, n, _ in rows if n)
        need(first.t - rows[0][0].t > 3.0, "the events are not held back until the end")
    check_orderly_close(p)
    check_no_flags(p)


def http_responses(data):
    """Split a server's byte stream into responses: list of dicts with head
    (str, lower-case), start offset of the body, the body's raw bytes, the
    decoded body (de-chunked, gunzipped) and, for a chunked body, the stream
    offsets (start, end) of each data chunk."""
    out, i = [], 0
    while i < len(data):
        j = data.find(b"\r\n\r\n", i)
        need(j >= 0, f"incomplete response head at byte {i}")
        head = data[i:j].decode("latin-1").lower()
        fields = dict(l.split(": ", 1) for l in head.split("\r\n")[1:])
        start = k = j + 4
        chunks = []
        if fields.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                e = data.find(b"\r\n", k)
                need(e >= 0, "incomplete chunk size line")
                size = int(data[k:e].split(b";")[0], 16)
                if size == 0:
                    need(data[e + 2:e + 4] == b"\r\n", "no CRLF after the last chunk")
                    k = e + 4
                    break
                chunks.append((k, e + 2 + size + 2))
                body += data[e + 2:e + 2 + size]
                need(data[e + 2 + size:e + 4 + size] == b"\r\n", "no CRLF after a chunk")
                k = e + 2 + size + 2
        else:
            need("content-length" in fields, "response without Content-Length or chunked")
            k = start + int(fields["content-length"])
            need(k <= len(data), "response body shorter than its Content-Length")
            body = data[start:k]
        decoded = body
        if fields.get("content-encoding") == "gzip":
            decoded = zlib.decompress(body, 16 + zlib.MAX_WBITS)
        out.append({"head": head, "fields": fields, "raw": data[start:k], "body": decoded,
                    "chunks": chunks, "start": i})
        i = k
    return out


def s_http_keep_alive_gzip_chunked(p):
    """curl fetches /, /catalog.json and /progress from aiohttp on one connection:
    plain with Content-Length; gzip with Content-Length; chunked, one chunk per
    segment with pauses between them.  The client closes."""
    check_single_stream(p)
    check_handshake(p)
    req = stream_bytes(p, True)
    need(req.count(b"GET ") == 3, f"{req.count(b'GET ')} requests, expected 3")
    need(b"Accept-Encoding: gzip" in req, "the requests do not accept gzip")
    segs = data_segments(p, False)
    down = stream_bytes(p, False)
    resps = http_responses(down)
    need(len(resps) == 3, f"{len(resps)} responses, expected 3")
    need(all(r["head"].startswith("http/1.1 200 ") for r in resps), "not three 200 responses")
    plain, gz, chunked = (r["fields"] for r in resps)
    need("content-length" in plain and "content-encoding" not in plain, "the first response is not plain with Content-Length")
    need(resps[0]["body"].startswith(b"<!doctype html>"), "the first response is not the HTML page")
    need(gz.get("content-encoding") == "gzip" and "content-length" in gz
         and "transfer-encoding" not in gz, "the second response is not gzip with Content-Length")
    need(len(resps[1]["body"]) >= 2048 and len(resps[1]["raw"]) < len(resps[1]["body"]) // 2,
         "the gzip body is too short or hardly compressed")
    need(resps[1]["body"].lstrip().startswith(b"{"), "the gzip body is not JSON")
    need(chunked.get("transfer-encoding") == "chunked", "the third response is not chunked")
    need(resps[2]["body"].count(b"\n") >= 3, "the chunked body has fewer than three lines")
    # Each data chunk in a segment of its own, the chunks well apart in time.
    offs, o = [], 0
    for x in segs:
        offs.append((o, o + x.len, x))
        o += x.len
    head3 = down.find(b"\r\n\r\n", resps[2]["start"]) + 4
    need(any(a == resps[2]["start"] and b == head3 for a, b, _ in offs),
         "the chunked response's head does not travel alone")
    times = []
    for a, b in resps[2]["chunks"]:
        seg = [x for s0, s1, x in offs if s0 == a and s1 == b]
        need(seg, f"chunk at stream byte {a} is not a segment of its own")
        times.append(seg[0].t)
    need(len(times) >= 3, f"{len(times)} data chunks, expected at least 3")
    gaps = [b - a for a, b in zip(times, times[1:])]
    need(all(0.1 <= g <= 1.0 for g in gaps), f"chunks not 0.1-1 s apart: {gaps}")
    check_orderly_close(p, first_fin_from_client=True)
    check_no_flags(p)


def ws_frames(data, skip_head):
    """Parse WebSocket frames: list of (fin, rsv1, opcode, masked, payload)."""
    if skip_head:
        need(b"\r\n\r\n" in data, "no HTTP head before the frames")
        data = data.split(b"\r\n\r\n", 1)[1]
    out, i = [], 0
    while i + 2 <= len(data):
        b0, b1 = data[i], data[i + 1]
        n, i = b1 & 0x7F, i + 2
        if n == 126:
            n, i = int.from_bytes(data[i:i + 2], "big"), i + 2
        elif n == 127:
            n, i = int.from_bytes(data[i:i + 8], "big"), i + 8
        key = None
        if b1 & 0x80:
            key, i = data[i:i + 4], i + 4
        payload = data[i:i + n]
        need(len(payload) == n, "truncated frame")
        if key:
            payload = bytes(c ^ key[k % 4] for k, c in enumerate(payload))
        out.append((bool(b0 & 0x80), bool(b0 & 0x40), b0 & 0x0F, key is not None, payload))
        i += n
    need(i == len(data), "trailing bytes after the last frame")
    return out


def s_websocket(p, deflate):
    check_single_stream(p)
    check_handshake(p)
    up = stream_bytes(p, True)
    down = stream_bytes(p, False)
    need(up.startswith(b"GET /chat HTTP/1.1") and b"Upgrade: websocket" in up, "no upgrade request")
    need(down.startswith(b"HTTP/1.1 101 "), "no 101 Switching Protocols")
    head = down.split(b"\r\n\r\n", 1)[0].lower()
    need((b"permessage-deflate" in head) == deflate,
         f"permessage-deflate {'not ' if deflate else ''}negotiated")
    cf, sf = ws_frames(up, True), ws_frames(down, True)
    need(all(m for *_, m, _ in cf) and not any(m for *_, m, _ in sf),
         "client frames not all masked or server frames masked")
    def ops(frames, op):
        return [f for f in frames if f[2] == op]
    need(len(ops(cf, 1)) >= 3 and len(ops(sf, 1)) >= 3, "fewer than three text messages each way")
    need(len(ops(cf, 2)) == 1, "not one binary message from the client")
    need(len(ops(cf, 9)) == 1 and len(ops(sf, 10)) == 1 and ops(cf, 9)[0][4] == ops(sf, 10)[0][4],
         "no ping / matching pong")
    data = ops(cf, 1) + ops(cf, 2) + ops(sf, 1)
    need(all(f[1] for f in data) if deflate else not any(f[1] for f in data),
         "RSV1 (compressed) bit does not match the negotiation")
    need(cf[-1][2] == 8 and sf[-1][2] == 8, "the last frame each way is not a close frame")
    for f in (cf[-1], sf[-1]):
        need(len(f[4]) > 2 and int.from_bytes(f[4][:2], "big") == 1000, "close frame without code 1000 and reason")
    check_orderly_close(p, first_fin_from_client=False)
    check_no_flags(p)


CHECKS = {
    "handshake-three-packet-close": s_handshake_three_packet_close,
    "keep-alive": s_keep_alive,
    "lost-handshake-ack": s_lost_handshake_ack,
    "lost-handshake-ack-reset": lambda p: s_lost_handshake_ack(p, reset=True),
    "four-packet-close": s_four_packet_close,
    "retransmissions": s_retransmissions,
    "zero-window": s_zero_window,
    "connection-refused": s_connection_refused,
    "syn-unanswered": s_syn_unanswered,
    "http-keep-alive": s_http_keep_alive,
    "http-header-newline": s_http_header_newline,
    "http-keep-alive-gzip-chunked": s_http_keep_alive_gzip_chunked,
    "sse-plain": lambda p: s_sse(p, "plain"),
    "sse-gzip": lambda p: s_sse(p, "sync-flush"),
    "sse-gzip-buffered": lambda p: s_sse(p, "buffered"),
    "websocket": lambda p: s_websocket(p, deflate=False),
    "websocket-deflate": lambda p: s_websocket(p, deflate=True),
}


def main():
    name, path = sys.argv[1], sys.argv[2]
    pkts = read(path)
    quiet = os.environ.get("CHECK_QUIET")
    if not quiet:
        interesting = [x for x in pkts if x.flags or x.syn or x.fin or x.rst or len(pkts) <= 40]
        for x in interesting:
            print("   ", x, file=sys.stderr)
        if len(interesting) < len(pkts):
            print(f"    ({len(pkts) - len(interesting)} unflagged data/ACK packets not shown)", file=sys.stderr)
    try:
        need(pkts, "empty capture")
        CHECKS[name](pkts)
    except Failed as e:
        print(f"check {name}: FAILED: {e}", file=sys.stderr)
        return 1
    print(f"check {name}: ok ({len(pkts)} packets)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
