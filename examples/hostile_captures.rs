//! Writes the hostile captures of `tests/hostile.rs` into a folder at a
//! given scale, for `benches/hostile.sh` (time must grow linearly with the
//! scale) and for trying chattcp on them by hand:
//! `cargo run --release --example hostile_captures -- DIR SCALE`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

#[path = "../tests/common/mod.rs"]
mod common;

use common::hostile;

fn write(
    dir: &Path,
    name: &str,
    make: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    let mut out = BufWriter::new(File::create(dir.join(name))?);
    make(&mut out)?;
    out.flush()
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), scale) = (args.next(), args.next()) else {
        eprintln!("usage: hostile_captures DIR [SCALE]");
        std::process::exit(2);
    };
    let scale: u64 = scale.and_then(|s| s.parse().ok()).unwrap_or(1);
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir)?;
    write(dir, "syn-flood.pcap", |o| {
        hostile::syn_flood(o, 250_000 * scale)
    })?;
    write(dir, "refused-connections.pcap", |o| {
        hostile::refused_connections(o, 250_000 * scale)
    })?;
    write(dir, "sequence-jumps.pcap", |o| {
        hostile::sequence_jumps(o, 100_000 * scale)
    })?;
    write(dir, "tiny-out-of-order.pcap", |o| {
        hostile::tiny_out_of_order(o, 500_000 * scale)
    })?;
    write(dir, "http-gzip-bomb.pcap", |o| {
        hostile::http_gzip_bomb(o, 2_500_000_000 * scale)
    })?;
    write(dir, "websocket-deflate-bomb.pcap", |o| {
        hostile::websocket_deflate_bomb(o, 2_500_000_000 * scale)
    })?;
    write(dir, "http-endless-headers.pcap", |o| {
        hostile::http_endless_headers(o, 250_000 * scale)
    })?;
    write(dir, "websocket-huge-frame.pcap", |o| {
        hostile::websocket_huge_frame(o, (1 << 63) - 1, 5_000_000 * scale as usize)
    })?;
    write(dir, "http-chunk-overflow.pcap", |o| {
        hostile::http_chunk_overflow(o, 5_000_000 * scale as usize)
    })?;
    write(dir, "http-content-length-overflow.pcap", |o| {
        hostile::http_content_length_overflow(o, 5_000_000 * scale as usize)
    })?;
    Ok(())
}
