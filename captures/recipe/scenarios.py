#!/usr/bin/env python3
"""Client and server programs for the example captures (see ../record.sh).

Usage: scenarios.py server NAME     (run in the server namespace)
       scenarios.py client NAME     (run in the client namespace)

Everything here is plain blocking Python sockets on the real Linux TCP stack;
the programs only decide *when* the application reads, writes and closes, so
that the kernel produces the packet story each capture is meant to tell.

Environment:
  SERVER_IP   address of the server (default 10.99.0.2)
  READY_FILE  the server creates this file once it is listening
  BEFORE_SEND shell command the lost-handshake-ack client runs just before it
              sends its data (record.sh uses it to stop dropping ACKs)
  WWW_DIR     directory served by the http-keep-alive server

The scenarios that need third-party packages (aiohttp, websockets: SSE and
WebSocket captures) are in apps.py, run with the recipe's virtual environment.
"""
import http.server
import os
import socket
import subprocess
import sys
import time

SERVER_IP = os.environ.get("SERVER_IP", "10.99.0.2")

PORTS = {
    "handshake-three-packet-close": 8001,
    "keep-alive": 8002,
    "lost-handshake-ack": 8003,
    "lost-handshake-ack-reset": 8004,
    "four-packet-close": 8005,
    "retransmissions": 8006,
    "zero-window": 8007,
    "connection-refused": 8008,  # nothing listens here
    "syn-unanswered": 8009,      # the server namespace drops these SYNs
    "http-keep-alive": 8080,
    "http-header-newline": 8010,
}

BULK_BYTES = 128 * 1024        # retransmissions: size of the download
ZW_BYTES = 48 * 1024           # zero-window: size of the download
ZW_RCVBUF = 8192               # zero-window: receiver's SO_RCVBUF (kernel doubles it)
ZW_PAUSE = 3.0                 # zero-window: seconds the receiver does not read


def log(*args):
    print(f"[{sys.argv[1]} {sys.argv[2]}]", *args, file=sys.stderr, flush=True)


def listen(name):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((SERVER_IP, PORTS[name]))
    s.listen(8)
    ready()
    return s


def ready():
    path = os.environ.get("READY_FILE")
    if path:
        with open(path, "w") as f:
            f.write("ready\n")


def connect(name, **opts):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    for (level, opt), value in opts.get("sockopts", {}).items():
        s.setsockopt(level, opt, value)
    s.connect((SERVER_IP, PORTS[name]))
    return s


def recv_line(s):
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def drain(s):
    total = 0
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return total
        total += len(chunk)


def keepalive_opts(idle=15, intvl=15):
    # Go's net.Dialer default: SO_KEEPALIVE with 15 s idle time and interval.
    return {
        (socket.SOL_SOCKET, socket.SO_KEEPALIVE): 1,
        (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE): idle,
        (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL): intvl,
    }


# --- servers -----------------------------------------------------------------

def server_echo_then_close_on_eof(name, keepalive=False):
    """Answer one line, then close the moment the peer's FIN is read."""
    ls = listen(name)
    c, _ = ls.accept()
    if keepalive:
        for (level, opt), value in keepalive_opts().items():
            c.setsockopt(level, opt, value)
    line = recv_line(c)
    c.sendall(b"ECHO " + line)
    rest = drain(c)  # returns when the client's FIN arrives
    c.close()        # at once: our FIN carries the ACK of theirs
    log(f"closed after EOF ({rest} further bytes)")


def server_four_packet_close(name):
    """Answer one line, stay idle long enough for one keep-alive, then close first."""
    ls = listen(name)
    c, _ = ls.accept()
    for (level, opt), value in keepalive_opts().items():
        c.setsockopt(level, opt, value)
    line = recv_line(c)
    c.sendall(b"ECHO " + line)
    time.sleep(17.0)  # one keep-alive probe at 15 s idle
    c.close()
    log("closed first")


def server_lost_ack_reset(name):
    """Listen but never get the connection: the half-open request times out."""
    ls = listen(name)
    ls.settimeout(20)
    try:
        c, _ = ls.accept()
        log("unexpected: connection accepted")
        c.close()
        sys.exit(1)
    except socket.timeout:
        log("no connection completed (as intended)")


def server_bulk(name, nbytes):
    ls = listen(name)
    c, _ = ls.accept()
    recv_line(c)
    payload = bytes((i * 7 + 13) & 0xFF for i in range(nbytes))
    c.sendall(payload)
    c.shutdown(socket.SHUT_WR)
    drain(c)
    c.close()
    log(f"sent {nbytes} bytes")


def server_http(name):
    directory = os.environ.get("WWW_DIR", ".")

    class Handler(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, Content-Length on every response

        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=directory, **kwargs)

        def log_message(self, fmt, *args):
            log(fmt % args)

    httpd = http.server.HTTPServer((SERVER_IP, PORTS[name]), Handler)
    ready()
    httpd.handle_request()  # one connection, as many requests as the client sends
    httpd.server_close()


def server_http_header_newline(name):
    """Python's http.server answering POSTs with what it parsed.

    An echo endpoint, as one writes for debugging: it reads the body as
    Content-Length says (0 when there is none, the usual idiom) and answers
    200 with the header fields and the body it saw.  http.server reads header
    lines with readline(), so a bare LF ends a line; the header block is then
    parsed by the email package, which stops at the first line that is not a
    header ("second part") and files everything after it (Content-Type,
    Content-Length) as a message body that nobody reads.
    """

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            n = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(n)
            lines = [f"{k}: {v}" for k, v in self.headers.items()]
            log(f"parsed headers {self.headers.items()!r}, "
                f"{len(self.headers.defects)} defect(s) {self.headers.defects!r}, body {body!r}")
            out = ("parsed headers:\n" + "".join(f"  {l}\n" for l in lines)
                   + f"body: {len(body)} bytes {body!r}\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, fmt, *args):
            log(fmt % args)

    httpd = http.server.HTTPServer((SERVER_IP, PORTS[name]), Handler)
    ready()
    httpd.handle_request()  # one connection, as many requests as it reads
    httpd.server_close()


SERVERS = {
    "handshake-three-packet-close": lambda n: server_echo_then_close_on_eof(n),
    "keep-alive": lambda n: server_echo_then_close_on_eof(n),
    "lost-handshake-ack": lambda n: server_echo_then_close_on_eof(n),
    "lost-handshake-ack-reset": server_lost_ack_reset,
    "four-packet-close": server_four_packet_close,
    "retransmissions": lambda n: server_bulk(n, BULK_BYTES),
    "zero-window": lambda n: server_bulk(n, ZW_BYTES),
    "http-keep-alive": server_http,
    "http-header-newline": server_http_header_newline,
}


# --- clients -----------------------------------------------------------------

def client_three_packet_close(name):
    s = connect(name)
    s.sendall(b"HELLO\n")
    log("got", recv_line(s))
    s.close()


def client_keep_alive(name):
    s = connect(name, sockopts=keepalive_opts())
    s.sendall(b"HELLO\n")
    log("got", recv_line(s))
    time.sleep(37.0)  # idle: keep-alive probes at 15 s and 30 s
    s.close()


def client_lost_handshake_ack(name):
    # connect() returns as soon as our ACK has left; the server's firewall
    # drops it (and our answers to the retransmitted SYN-ACKs).
    s = connect(name)
    time.sleep(4.5)
    cmd = os.environ.get("BEFORE_SEND")
    if cmd:
        subprocess.run(cmd, shell=True, check=True)
    s.sendall(b"HELLO\n")  # carries the ACK: the server completes the handshake now
    log("got", recv_line(s))
    s.close()


def client_lost_handshake_ack_reset(name):
    s = connect(name)
    time.sleep(float(os.environ.get("RESET_WAIT", "9")))  # the server gives up meanwhile
    s.close()  # our FIN reaches a listener that no longer knows us: RST


def client_four_packet_close(name):
    s = connect(name)
    s.sendall(b"HELLO\n")
    log("got", recv_line(s))
    rest = drain(s)  # returns when the server's FIN arrives
    time.sleep(1.0)  # our kernel ACKs the FIN on its own meanwhile
    s.close()
    log(f"closed second ({rest} further bytes)")


def client_download(name):
    s = connect(name)
    s.sendall(b"GET\n")
    n = drain(s)
    s.close()
    log(f"received {n} bytes")


def client_zero_window(name):
    s = connect(name, sockopts={(socket.SOL_SOCKET, socket.SO_RCVBUF): ZW_RCVBUF})
    s.sendall(b"GET\n")
    time.sleep(ZW_PAUSE)  # not reading: the receive buffer fills, window 0
    n = drain(s)
    s.close()
    log(f"received {n} bytes")


def client_refused(name):
    try:
        connect(name)
    except ConnectionRefusedError:
        log("connection refused (as intended)")
        return
    sys.exit("unexpected: connected")


def client_syn_unanswered(name):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(60)
    t = time.monotonic()
    try:
        s.connect((SERVER_IP, PORTS[name]))
    except (TimeoutError, socket.timeout, OSError) as e:
        log(f"gave up after {time.monotonic() - t:.1f} s: {e}")
        return
    sys.exit("unexpected: connected")


# http-header-newline: the exact request bytes.  The X-Note value carries a
# bare LF (no CR) in the middle; every other line ends in CRLF and
# Content-Length is right for the body.
HHN_BODY = b"note=hello\n"
HHN_REQUEST = (
    b"POST /notes HTTP/1.1\r\n"
    b"Host: 10.99.0.2:8010\r\n"
    b"User-Agent: chattcp-recipe\r\n"
    b"X-Note: first line\nsecond part\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: " + str(len(HHN_BODY)).encode() + b"\r\n"
    b"\r\n" + HHN_BODY
)


def client_http_header_newline(name):
    """Send HHN_REQUEST raw in one write, read the reply until EOF, close."""
    s = connect(name)
    s.settimeout(10)
    s.sendall(HHN_REQUEST)
    reply = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        reply += chunk
    log(f"sent {HHN_REQUEST!r}")
    log(f"got {reply!r} then EOF")
    s.close()


CLIENTS = {
    "handshake-three-packet-close": client_three_packet_close,
    "keep-alive": client_keep_alive,
    "lost-handshake-ack": client_lost_handshake_ack,
    "lost-handshake-ack-reset": client_lost_handshake_ack_reset,
    "four-packet-close": client_four_packet_close,
    "retransmissions": client_download,
    "zero-window": client_zero_window,
    "connection-refused": client_refused,
    "syn-unanswered": client_syn_unanswered,
    "http-header-newline": client_http_header_newline,
}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("server", "client"):
        sys.exit(__doc__)
    role, name = sys.argv[1], sys.argv[2]
    table = SERVERS if role == "server" else CLIENTS
    if name not in table:
        sys.exit(f"no {role} for {name!r}")
    table[name](name)


if __name__ == "__main__":
    main()
