#!/usr/bin/env python3
"""Servers and clients built on real frameworks (aiohttp, websockets).

Usage: apps.py server NAME     (run in the server namespace)
       apps.py client NAME     (run in the client namespace)

Run with the recipe's virtual environment (record.sh makes it from
requirements.txt beside this file); the plain-socket scenarios are in
scenarios.py.  The SSE and http-keep-alive-gzip-chunked clients are curl
(see record.sh).

Environment: SERVER_IP (default 10.99.0.2), READY_FILE (created once the
server listens).
"""
import asyncio
import json
import os
import sys
import zlib

SERVER_IP = os.environ.get("SERVER_IP", "10.99.0.2")

PORTS = {
    "sse-gzip": 8011,
    "sse-plain": 8012,
    "sse-gzip-buffered": 8013,
    "websocket": 8014,
    "websocket-deflate": 8015,
    "http-keep-alive-gzip-chunked": 8016,
}

SSE_EVENTS = 5          # events per stream
SSE_INTERVAL = 0.7      # seconds before each event

# How each SSE capture compresses its response:
#   sse-plain          no compression (events readable on the wire)
#   sse-gzip           gzip by the handler, zlib Z_SYNC_FLUSH after every event:
#                      each event leaves at once, in its own segment, and can be
#                      decompressed on arrival
#   sse-gzip-buffered  aiohttp's own compression (StreamResponse.enable_compression()),
#                      its default behaviour: no flush per write, so the
#                      compressor keeps the events until write_eof()
SSE_MODE = {"sse-plain": "none", "sse-gzip": "sync-flush", "sse-gzip-buffered": "aiohttp"}

# http-keep-alive-gzip-chunked: three resources, one keep-alive connection.
#   /              small HTML page, Content-Length, not compressed
#   /catalog.json  about 4.2 KiB of JSON, compressed by aiohttp
#                  (Response.enable_compression(): the whole body is gzipped
#                  before the head is sent, Content-Length is the compressed size)
#   /progress      text/plain, chunked (StreamResponse, no Content-Length):
#                  the head at once, then one write() per line, PROGRESS_PAUSE
#                  seconds apart, then write_eof() (the last chunk)
PROGRESS_LINES = 4
PROGRESS_PAUSE = 0.25

WS_TEXTS = ["hello", "how is the weather on your side of the veth?", "tell me about TCP"]
WS_BINARY = bytes(range(0, 256, 8))  # 32 bytes
WS_PING = b"are you there?"
WS_CLOSE = (1000, "session over")


def log(*args):
    print(f"[{sys.argv[1]} {sys.argv[2]}]", *args, file=sys.stderr, flush=True)


def ready():
    path = os.environ.get("READY_FILE")
    if path:
        with open(path, "w") as f:
            f.write("ready\n")


def sse_event(i):
    data = json.dumps({"tick": i, "status": "ok", "queue": 17 - 3 * i})
    return f"id: {i}\nevent: tick\ndata: {data}\n\n".encode()


# --- SSE (aiohttp) --------------------------------------------------------------

async def server_sse(name):
    from aiohttp import web

    mode = SSE_MODE[name]
    done = asyncio.Event()

    async def events(request):
        resp = web.StreamResponse(headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
        })
        gz = None
        if mode == "aiohttp":
            resp.enable_compression()  # picks gzip or deflate from Accept-Encoding
        elif mode == "sync-flush" and "gzip" in request.headers.get("Accept-Encoding", ""):
            resp.headers["Content-Encoding"] = "gzip"
            resp.headers["Vary"] = "Accept-Encoding"
            gz = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        await resp.prepare(request)  # aiohttp sends the headers now
        for i in range(1, SSE_EVENTS + 1):
            await asyncio.sleep(SSE_INTERVAL)
            ev = sse_event(i)
            if gz is not None:
                ev = gz.compress(ev) + gz.flush(zlib.Z_SYNC_FLUSH)
            await resp.write(ev)
            log(f"event {i}: wrote {len(ev)} bytes")
        tail = gz.flush(zlib.Z_FINISH) if gz is not None else b""
        await resp.write_eof(tail)  # (gzip trailer and) the last chunk
        done.set()
        return resp

    app = web.Application()
    app.router.add_get("/events", events)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, SERVER_IP, PORTS[name])
    await site.start()
    ready()
    await asyncio.wait_for(done.wait(), 30)
    await asyncio.sleep(1.0)  # the client closes the keep-alive connection meanwhile
    await runner.cleanup()
    log("stream sent")


# --- HTTP keep-alive: plain, gzip, chunked (aiohttp) ----------------------------

def index_html():
    return ("<!doctype html>\n<title>chattcp shop</title>\n"
            "<h1>chattcp shop</h1>\n"
            "<p>See <a href=\"/catalog.json\">the catalog</a> and "
            "<a href=\"/progress\">the import progress</a>.</p>\n")


CATALOG_WORDS = ["oak", "pine", "slate", "copper", "linen", "wool", "glass", "clay", "brass", "cedar"]
CATALOG_KINDS = ["lamp", "chair", "shelf", "mug", "rug", "clock", "vase", "bench"]


def catalog_json():
    """About 4.2 KiB of JSON: a product list (deterministic, no randomness)."""
    items = []
    for i in range(1, 37):
        w = CATALOG_WORDS[(i * 7) % len(CATALOG_WORDS)]
        k = CATALOG_KINDS[(i * 3) % len(CATALOG_KINDS)]
        items.append({
            "id": 1000 + i,
            "name": f"{w.capitalize()} {k}",
            "sku": f"{w[:3].upper()}-{k[:3].upper()}-{i:03d}",
            "price": round(9.5 + (i * 37 % 90) + (i % 4) * 0.25, 2),
            "stock": (i * 13) % 41,
            "tags": [w, k] + (["sale"] if i % 5 == 0 else []),
        })
    # One product per line, as a hand-tuned API writes it (compact but readable).
    return ('{"shop": "chattcp", "currency": "EUR", "count": %d, "items": [\n' % len(items)
            + ",\n".join("  " + json.dumps(item) for item in items) + "\n]}\n")


def progress_line(i):
    done = 25 * i
    return (f"step {i}/{PROGRESS_LINES}: imported {done * 12} of 1200 rows "
            f"({done}%), batch {i} checked\n").encode()


async def server_http_gzip_chunked(name):
    from aiohttp import web

    done = asyncio.Event()
    served = []

    async def index(request):
        served.append(request.path)
        return web.Response(text=index_html(), content_type="text/html")

    async def catalog(request):
        served.append(request.path)
        resp = web.Response(text=catalog_json(), content_type="application/json")
        resp.enable_compression()  # gzip or deflate, from Accept-Encoding
        return resp

    async def progress(request):
        served.append(request.path)
        resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await resp.prepare(request)  # no Content-Length: chunked; the head leaves now
        for i in range(1, PROGRESS_LINES + 1):
            await asyncio.sleep(PROGRESS_PAUSE)
            line = progress_line(i)
            await resp.write(line)  # one chunk
            log(f"progress {i}: wrote {len(line)} bytes")
        await resp.write_eof()  # the last chunk, 0\r\n\r\n
        done.set()
        return resp

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/catalog.json", catalog)
    app.router.add_get("/progress", progress)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, SERVER_IP, PORTS[name])
    await site.start()
    ready()
    await asyncio.wait_for(done.wait(), 30)
    await asyncio.sleep(1.0)  # the client closes the keep-alive connection meanwhile
    await runner.cleanup()
    log(f"served {served}")


# --- WebSocket (websockets) --------------------------------------------------------

def ws_compression(name):
    return "deflate" if name == "websocket-deflate" else None


async def server_websocket(name):
    from websockets.asyncio.server import serve

    done = asyncio.Event()

    async def handler(ws):
        async for msg in ws:  # ends when the client's close frame arrives
            if isinstance(msg, str):
                await ws.send(f"echo: {msg}")
            else:
                await ws.send(f"got {len(msg)} binary bytes")
        await ws.wait_closed()
        log(f"closed: code {ws.close_code} reason {ws.close_reason!r}")
        done.set()

    async with serve(handler, SERVER_IP, PORTS[name], compression=ws_compression(name),
                     ping_interval=None):
        ready()
        await asyncio.wait_for(done.wait(), 30)
        await asyncio.sleep(0.5)


async def client_websocket(name):
    from websockets.asyncio.client import connect

    uri = f"ws://{SERVER_IP}:{PORTS[name]}/chat"
    async with connect(uri, compression=ws_compression(name), ping_interval=None) as ws:
        for text in WS_TEXTS:
            await ws.send(text)
            log("got", repr(await ws.recv()))
            await asyncio.sleep(0.3)
        await ws.send(WS_BINARY)
        log("got", repr(await ws.recv()))
        await asyncio.sleep(0.3)
        pong = await ws.ping(WS_PING)
        latency = await pong
        log(f"pong after {latency * 1000:.2f} ms")
        await asyncio.sleep(0.3)
        await ws.close(*WS_CLOSE)
    log("closed")


SERVERS = {
    "sse-gzip": server_sse,
    "sse-plain": server_sse,
    "sse-gzip-buffered": server_sse,
    "websocket": server_websocket,
    "websocket-deflate": server_websocket,
    "http-keep-alive-gzip-chunked": server_http_gzip_chunked,
}

CLIENTS = {
    "websocket": client_websocket,
    "websocket-deflate": client_websocket,
}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("server", "client"):
        sys.exit(__doc__)
    role, name = sys.argv[1], sys.argv[2]
    table = SERVERS if role == "server" else CLIENTS
    if name not in table:
        sys.exit(f"no {role} for {name!r}")
    asyncio.run(table[name](name))


if __name__ == "__main__":
    main()
