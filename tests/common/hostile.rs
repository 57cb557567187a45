//! Hostile captures, generated rather than committed: each one attacks a
//! limit (the connection table, reassembly, a decoder, a parser's buffer).
//! Every generator streams its capture to a writer and takes a `scale`, so
//! the tests run them at one size and the benchmark at several (to show the
//! time grows linearly). Shared by path (`#[path]`).

use std::io::{self, Write};

use super::bombs::{deflate_zeros, gzip_zeros};
use super::pcap_writer::{flags::*, pcap_header, write_segment, Endpoint, Segment};

const CLIENT: Endpoint = ([10, 0, 0, 1], 40000);
const SERVER: Endpoint = ([10, 0, 0, 2], 80);
const CLIENT_ISN: u32 = 1000;
const SERVER_ISN: u32 = 5000;
/// Payload per segment for bulk transfers.
pub const MSS: usize = 1448;

/// A writer of one client-server conversation, keeping sequence numbers.
pub struct Conversation<'w, W: Write> {
    out: &'w mut W,
    micros: u64,
    next: [u32; 2],
}

impl<'w, W: Write> Conversation<'w, W> {
    /// Writes the pcap header and a three-way handshake.
    pub fn open(out: &'w mut W) -> io::Result<Self> {
        out.write_all(&pcap_header())?;
        let mut c = Conversation {
            out,
            micros: 1_000_000,
            next: [CLIENT_ISN, SERVER_ISN],
        };
        c.raw(0, SYN, CLIENT_ISN, 0, &[])?;
        c.raw(1, SYN | ACK, SERVER_ISN, CLIENT_ISN + 1, &[])?;
        c.next = [CLIENT_ISN + 1, SERVER_ISN + 1];
        c.raw(0, ACK, CLIENT_ISN + 1, SERVER_ISN + 1, &[])?;
        Ok(c)
    }

    /// One segment from `side` (0 client, 1 server) as given.
    fn raw(
        &mut self,
        side: usize,
        flags: u8,
        seq: u32,
        ack: u32,
        payload: &[u8],
    ) -> io::Result<()> {
        self.micros += 10;
        let (src, dst) = if side == 0 {
            (CLIENT, SERVER)
        } else {
            (SERVER, CLIENT)
        };
        let seg = Segment {
            src,
            dst,
            seq,
            ack,
            flags,
            window: 65535,
            payload,
        };
        write_segment(self.out, self.micros, &seg)
    }

    /// A pure ACK from `side` of everything the other side sent.
    pub fn ack(&mut self, side: usize) -> io::Result<()> {
        let (seq, ack) = (self.next[side], self.next[1 - side]);
        self.raw(side, ACK, seq, ack, &[])
    }

    /// Sends `bytes` from `side` in order, in segments of at most [`MSS`].
    pub fn send(&mut self, side: usize, bytes: &[u8]) -> io::Result<()> {
        for piece in bytes.chunks(MSS) {
            let (seq, ack) = (self.next[side], self.next[1 - side]);
            self.raw(side, PSH | ACK, seq, ack, piece)?;
            self.next[side] = seq.wrapping_add(piece.len() as u32);
        }
        Ok(())
    }

    /// Sends a stream produced piece by piece, re-cut into segments.
    fn send_stream(
        &mut self,
        side: usize,
        produce: impl FnOnce(&mut dyn FnMut(&[u8])),
    ) -> io::Result<()> {
        let mut pending = Vec::with_capacity(4 * MSS);
        let mut result = Ok(());
        produce(&mut |piece| {
            pending.extend_from_slice(piece);
            let whole = pending.len() / MSS * MSS;
            if whole > 0 && result.is_ok() {
                result = self.send(side, &pending[..whole]);
                pending.drain(..whole);
            }
        });
        result?;
        self.send(side, &pending)
    }
}

/// The SYN of client number `i` (a distinct address and port for each) to
/// the server.
fn syn_of_client(i: u64) -> Segment<'static> {
    Segment {
        src: (
            [10, (i >> 24) as u8 | 128, (i >> 16) as u8, (i >> 8) as u8],
            1024 + (i % 60000) as u16,
        ),
        dst: SERVER,
        seq: i as u32,
        ack: 0,
        flags: SYN,
        window: 64240,
        payload: &[],
    }
}

/// `n` SYNs from distinct clients that never answer: a SYN flood.
pub fn syn_flood(out: &mut impl Write, n: u64) -> io::Result<()> {
    out.write_all(&pcap_header())?;
    for i in 0..n {
        write_segment(out, 1_000_000 + i, &syn_of_client(i))?;
    }
    Ok(())
}

/// `n` connections refused one after another, as a port scan meets closed
/// ports: a SYN from a distinct client, answered by a RST. Each finishes (a
/// reset), so each is summarised and then remembered for its late packets.
pub fn refused_connections(out: &mut impl Write, n: u64) -> io::Result<()> {
    out.write_all(&pcap_header())?;
    for i in 0..n {
        let syn = syn_of_client(i);
        write_segment(out, 1_000_000 + 40 * i, &syn)?;
        let reset = Segment {
            src: SERVER,
            dst: syn.src,
            seq: 0,
            ack: syn.seq.wrapping_add(1),
            flags: RST | ACK,
            window: 0,
            payload: &[],
        };
        write_segment(out, 1_000_000 + 40 * i + 20, &reset)?;
    }
    Ok(())
}

/// One connection whose client jumps hundreds of megabytes to gigabytes
/// ahead at every segment, and whose server acknowledges each jump: every
/// segment opens a hole that is never filled.
pub fn sequence_jumps(out: &mut impl Write, n: u64) -> io::Result<()> {
    let mut c = Conversation::open(out)?;
    let payload = [b'x'; 100];
    let mut seq = CLIENT_ISN + 1;
    for i in 0..n {
        let jump: u32 = if i % 2 == 0 { 512 << 20 } else { 3 << 30 };
        seq = seq.wrapping_add(jump);
        c.raw(0, PSH | ACK, seq, SERVER_ISN + 1, &payload)?;
        c.raw(1, ACK, SERVER_ISN + 1, seq.wrapping_add(100), &[])?;
    }
    Ok(())
}

/// `n` one-byte segments from the client, each block of 65,536 sent last
/// byte first: every segment but one per block arrives out of order.
pub fn tiny_out_of_order(out: &mut impl Write, n: u64) -> io::Result<()> {
    let mut c = Conversation::open(out)?;
    const BLOCK: u64 = 1 << 16;
    let base = CLIENT_ISN + 1;
    let mut start = 0;
    while start < n {
        let len = BLOCK.min(n - start);
        for k in (0..len).rev() {
            let seq = base.wrapping_add((start + k) as u32);
            c.raw(0, ACK, seq, SERVER_ISN + 1, b"a")?;
        }
        start += len;
    }
    Ok(())
}

/// An HTTP response whose gzip body decodes to `total` zero bytes.
pub fn http_gzip_bomb(out: &mut impl Write, total: u64) -> io::Result<()> {
    let mut c = Conversation::open(out)?;
    c.send(
        0,
        b"GET /bomb HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n",
    )?;
    let mut size = 0u64;
    gzip_zeros(total, &mut |b| size += b.len() as u64);
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\nContent-Length: {size}\r\n\r\n"
    );
    c.send(1, head.as_bytes())?;
    c.send_stream(1, |sink| gzip_zeros(total, sink))
}

const WS_REQUEST: &[u8] =
    b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
const WS_RESPONSE: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n";

/// A WebSocket message, permessage-deflate compressed, that decodes to
/// `total` zero bytes.
pub fn websocket_deflate_bomb(out: &mut impl Write, total: u64) -> io::Result<()> {
    let mut c = Conversation::open(out)?;
    c.send(0, WS_REQUEST)?;
    c.send(1, WS_RESPONSE)?;
    let mut len = 0u64;
    deflate_zeros(total, &mut |b| len += b.len() as u64);
    let mut header = vec![0x80 | 0x40 | 0x02, 127];
    header.extend_from_slice(&len.to_be_bytes());
    c.send(1, &header)?;
    c.send_stream(1, |sink| deflate_zeros(total, sink))
}

/// A WebSocket frame whose header claims `claimed` payload bytes (2^63 - 1
/// is the most the format allows; more sets the reserved top bit), followed
/// by `sent` bytes.
pub fn websocket_huge_frame(out: &mut impl Write, claimed: u64, sent: usize) -> io::Result<()> {
    let mut c = Conversation::open(out)?;
    c.send(0, WS_REQUEST)?;
    c.send(1, WS_RESPONSE)?;
    let mut header = vec![0x82, 127];
    header.extend_from_slice(&claimed.to_be_bytes());
    c.send(1, &header)?;
    c.send(1, &vec![b'z'; sent])
}

/// A chunked response whose chunk size does not fit in 64 bits, then
/// `sent` bytes.
pub fn http_chunk_overflow(out: &mut impl Write, sent: usize) -> io::Result<()> {
    let mut c = Conversation::open(out)?;
    c.send(0, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")?;
    c.send(
        1,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFFFFFF\r\n",
    )?;
    c.send(1, &vec![b'c'; sent])
}

/// A request whose header block never ends: `lines` header lines and no
/// empty line.
pub fn http_endless_headers(out: &mut impl Write, lines: u64) -> io::Result<()> {
    let mut c = Conversation::open(out)?;
    c.send(0, b"GET / HTTP/1.1\r\nHost: x\r\n")?;
    let line = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    c.send_stream(0, |sink| {
        for _ in 0..lines {
            sink(line);
        }
    })
}

/// A response declaring a Content-Length of 10^20 (more than 2^64), then
/// `sent` bytes.
pub fn http_content_length_overflow(out: &mut impl Write, sent: usize) -> io::Result<()> {
    let mut c = Conversation::open(out)?;
    c.send(0, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")?;
    c.send(
        1,
        b"HTTP/1.1 200 OK\r\nContent-Length: 100000000000000000000\r\n\r\n",
    )?;
    c.send(1, &vec![b'b'; sent])
}

/// A capture whose second record claims a 4 GiB caplen.
pub fn huge_caplen(out: &mut impl Write) -> io::Result<()> {
    let mut c = Conversation::open(out)?;
    c.send(0, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let mut record = [0u8; 16];
    record[0..4].copy_from_slice(&9u32.to_le_bytes());
    record[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    record[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    c.out.write_all(&record)?;
    c.out.write_all(&[0u8; 4096])
}
