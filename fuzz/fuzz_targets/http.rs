//! The HTTP/1.x dissector fed both sides' bytes, gaps and ends in any
//! order and cut anywhere.
#![no_main]
use chattcp::capture::Timestamp;
use chattcp::dissect::compression::DecodeLimits;
use chattcp::dissect::http::HttpConn;
use chattcp::dissect::At;
use chattcp_fuzz::{turns, Turn};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits {
        max_decoded: 1 << 20,
        ..DecodeLimits::default()
    };
    let mut http = HttpConn::new(0, limits);
    let mut out = Vec::new();
    let mut offsets = [0u64; 2];
    for (i, turn) in turns(data).into_iter().enumerate() {
        let at = At {
            frame: i as u64 + 1,
            time: Timestamp::from_parts(i as i64, 0),
        };
        match turn {
            Turn::Data(dir, bytes) => {
                http.data(dir, offsets[dir.index()], bytes, at, &mut out);
                offsets[dir.index()] += bytes.len() as u64;
            }
            Turn::Gap(dir, len) => {
                http.gap(dir, len, at, &mut out);
                offsets[dir.index()] += len;
            }
            Turn::End(dir) => http.end(dir, at, &mut out),
        }
        out.clear();
    }
});
