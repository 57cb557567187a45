//! Shared pieces of the fuzz targets: the input formats that turn fuzzer
//! bytes into what each stage eats, and a sink that checks the event stream.
//!
//! Two formats besides raw captures:
//! - **turns**: one side's bytes, a gap or an end, in order, for the
//!   application dissectors (HTTP, event-stream, WebSocket);
//! - **conversation**: a small TCP conversation (flags, sequence and
//!   acknowledgement moves, payloads, times) written out as a pcap, so that
//!   the fuzzer explores TCP tracking and the script host with packets that
//!   parse, instead of spending its time on checksums and header lengths.

use chattcp::events::{Event, EventSink};
use chattcp::tracking::Direction;

/// One step of a stream fed to an application dissector.
#[derive(Debug)]
pub enum Turn<'a> {
    /// Bytes from one side.
    Data(Direction, &'a [u8]),
    /// `len` bytes of one side that the capture lost.
    Gap(Direction, u64),
    /// One side ended (FIN).
    End(Direction),
}

/// Reads turns: a tag byte (bit 0: server to client; bits 1-2: 0 data,
/// 1 gap, 2 end), then for data a 2-byte little-endian length and the bytes,
/// for a gap a 4-byte little-endian length.
pub fn turns(mut input: &[u8]) -> Vec<Turn<'_>> {
    let mut out = Vec::new();
    while let Some((&tag, rest)) = input.split_first() {
        input = rest;
        let dir = if tag & 1 == 0 {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        };
        match (tag >> 1) & 3 {
            0 => {
                let Some(len) = input.get(..2) else { break };
                let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
                let bytes = &input[2..];
                let bytes = &bytes[..len.min(bytes.len())];
                input = &input[2 + bytes.len()..];
                out.push(Turn::Data(dir, bytes));
            }
            1 => {
                let Some(len) = input.get(..4) else { break };
                out.push(Turn::Gap(
                    dir,
                    u64::from(u32::from_le_bytes([len[0], len[1], len[2], len[3]])),
                ));
                input = &input[4..];
            }
            _ => out.push(Turn::End(dir)),
        }
    }
    out
}

/// Writes turns in the format [`turns`] reads (for seeds).
pub fn encode_turn(out: &mut Vec<u8>, turn: &Turn<'_>) {
    let side = |d: &Direction| u8::from(*d == Direction::ServerToClient);
    match turn {
        Turn::Data(d, bytes) => {
            for piece in bytes.chunks(u16::MAX as usize) {
                out.push(side(d));
                out.extend_from_slice(&(piece.len() as u16).to_le_bytes());
                out.extend_from_slice(piece);
            }
        }
        Turn::Gap(d, len) => {
            out.push(side(d) | 2);
            out.extend_from_slice(&(*len as u32).to_le_bytes());
        }
        Turn::End(d) => out.push(side(d) | 4),
    }
}

#[path = "../../tests/common/pcap_writer.rs"]
#[allow(dead_code)]
pub mod pcap_writer;

use pcap_writer::{write_segment, Segment};

/// Protocol text the conversation payloads draw on, so that the fuzzer
/// reaches the HTTP, event-stream and WebSocket paths quickly.
const WORDS: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"5\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\n\r\n",
    b"data: x\n\n",
    b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
    b"\x81\x05hello",
    b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03",
    b"Content-Length: 100000000000000000000\r\n",
    b"\n",
];

/// Turns fuzzer bytes into a pcap of TCP conversations between two hosts,
/// on up to four port pairs. Each packet takes six bytes: flags and side,
/// a sequence move, an acknowledgement move, a payload choice, a time step
/// and a window; payloads are protocol words or bytes of the input.
pub fn conversation_pcap(input: &[u8]) -> Vec<u8> {
    let mut pcap = pcap_writer::pcap_header().to_vec();
    let client = [10, 0, 0, 1];
    let server = [10, 0, 0, 2];
    // Per port pair and side: the next sequence number.
    let mut next = [[1000u32, 9000u32]; 4];
    let mut micros = 1_000_000u64;
    let mut rest = input;
    let mut packets = 0;
    while rest.len() >= 6 && packets < 4096 {
        let (head, tail) = rest.split_at(6);
        rest = tail;
        packets += 1;
        let flags = head[0] & 0x3f | if head[0] & 0x40 != 0 { 0x10 } else { 0 };
        let side = usize::from(head[0] >> 7);
        let pair = usize::from(head[5] & 3);
        let port = 40000 + pair as u16;
        let seq_move = i32::from(head[1] as i8) * if head[1] & 0x80 != 0 { 1 } else { 1460 };
        let seq = next[pair][side].wrapping_add(seq_move as u32);
        let ack = next[pair][1 - side].wrapping_add(i32::from(head[2] as i8) as u32);
        let payload: &[u8] = match head[3] {
            0..=127 => &[],
            128..=191 => WORDS[usize::from(head[3] - 128) % WORDS.len()],
            _ => {
                let n = usize::from(head[3] - 191).min(rest.len());
                let (p, t) = rest.split_at(n);
                rest = t;
                p
            }
        };
        micros += u64::from(head[4]) * u64::from(head[4]) * 100;
        let window = u16::from(head[5] >> 2) << 10;
        let (src, dst) = if side == 0 {
            ((client, port), (server, 80))
        } else {
            ((server, 80), (client, port))
        };
        let segment = Segment {
            src,
            dst,
            seq,
            ack,
            flags,
            window,
            payload,
        };
        // Writing to a vector cannot fail.
        let _ = write_segment(&mut pcap, micros, &segment);
        let used = payload.len() as u32 + u32::from(flags & 0x03 != 0);
        next[pair][side] = seq.wrapping_add(used);
    }
    pcap
}

/// A sink that checks what holds for every event stream: connections open
/// before anything names them, are summarised once, and the end comes last.
#[derive(Default)]
pub struct CheckingSink {
    opened: u64,
    closed: u64,
    ended: bool,
}

impl EventSink for CheckingSink {
    fn event(&mut self, event: &Event<'_>) -> std::io::Result<()> {
        assert!(!self.ended, "an event after the end");
        match event {
            Event::Opened(info) => {
                assert_eq!(info.conn, self.opened, "connections numbered in order");
                self.opened += 1;
            }
            Event::Packet(p) => assert!(p.conn < self.opened, "packet of an unopened connection"),
            Event::Closed(c) => {
                assert!(c.conn < self.opened, "summary of an unopened connection");
                self.closed += 1;
            }
            Event::End(summary) => {
                assert_eq!(summary.connections, self.opened);
                assert_eq!(self.closed, self.opened, "every connection summarised");
                self.ended = true;
            }
            _ => {}
        }
        Ok(())
    }
}
