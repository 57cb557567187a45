//! Decompression bombs made cheaply: gigabytes of zeros as gzip or raw
//! deflate, produced piece by piece without compressing gigabytes.
//! Shared by path (`#[path]`) between the tests that need them.

/// A raw deflate stream of `total` zero bytes, produced piece by piece:
/// zeros are compressed in 1 MiB steps with a sync flush; once the window
/// holds only zeros every step compresses to the same bytes, which are
/// repeated instead of compressing 10 GB again. `sink` gets each piece.
pub fn deflate_zeros(total: u64, sink: &mut dyn FnMut(&[u8])) {
    use flate2::{Compress, Compression, FlushCompress};
    const STEP: u64 = 1 << 20;
    let zeros = vec![0u8; STEP as usize];
    let mut c = Compress::new(Compression::best(), false);
    let step = |c: &mut Compress, input: &[u8], flush: FlushCompress| -> Vec<u8> {
        let mut out = Vec::with_capacity(64 << 10);
        let mut input = input;
        loop {
            let before = c.total_in();
            c.compress_vec(input, &mut out, flush).expect("compress");
            input = &input[(c.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                return out;
            }
            out.reserve(64 << 10);
        }
    };
    let whole_steps = total / STEP;
    let rest = (total % STEP) as usize;
    let mut previous: Option<Vec<u8>> = None;
    let mut same = 0;
    let mut done = 0;
    while done < whole_steps {
        if same >= 2 {
            // The compressor's state no longer changes: repeat its output.
            let block = previous.as_deref().unwrap_or_default();
            sink(block);
        } else {
            let block = step(&mut c, &zeros, FlushCompress::Sync);
            if previous.as_deref() == Some(&block[..]) {
                same += 1;
            } else {
                same = 0;
            }
            sink(&block);
            previous = Some(block);
        }
        done += 1;
    }
    // The remainder and the final block: the real compressor's state is
    // equivalent to where the repeated blocks left the stream.
    let tail = step(&mut c, &zeros[..rest], FlushCompress::Finish);
    sink(&tail);
}

/// The gzip trailer of `total` zeros: CRC-32 and size mod 2^32.
pub fn gzip_trailer_of_zeros(total: u64) -> [u8; 8] {
    // CRC-32 of zeros by doubling with flate2's combine.
    let mut acc: Option<flate2::Crc> = None;
    let mut power = flate2::Crc::new();
    power.update(&[0]);
    let mut n = total;
    while n > 0 {
        if n & 1 == 1 {
            match acc.as_mut() {
                Some(a) => a.combine(&power),
                None => {
                    let mut a = flate2::Crc::new();
                    a.combine(&power);
                    acc = Some(a);
                }
            }
        }
        let copy = {
            let mut c = flate2::Crc::new();
            c.combine(&power);
            c
        };
        power.combine(&copy);
        n >>= 1;
    }
    let crc = acc.map_or(0, |a| a.sum());
    let mut t = [0u8; 8];
    t[..4].copy_from_slice(&crc.to_le_bytes());
    t[4..].copy_from_slice(&(total as u32).to_le_bytes());
    t
}

/// A gzip stream of `total` zeros, piece by piece.
pub fn gzip_zeros(total: u64, sink: &mut dyn FnMut(&[u8])) {
    sink(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255]);
    deflate_zeros(total, sink);
    sink(&gzip_trailer_of_zeros(total));
}
