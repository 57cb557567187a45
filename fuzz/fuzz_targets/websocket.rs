//! The WebSocket frame dissector, with permessage-deflate in any of its
//! negotiated forms (the first byte chooses), fed both sides cut anywhere.
#![no_main]
use chattcp::capture::Timestamp;
use chattcp::dissect::compression::DecodeLimits;
use chattcp::dissect::websocket::{Deflate, WebSocketConn};
use chattcp::dissect::At;
use chattcp_fuzz::{turns, Turn};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, data)) = data.split_first() else {
        return;
    };
    let deflate = (choice & 1 != 0).then_some(Deflate {
        server_no_context_takeover: choice & 2 != 0,
        client_no_context_takeover: choice & 4 != 0,
    });
    let limits = DecodeLimits {
        max_decoded: 1 << 20,
        ..DecodeLimits::default()
    };
    let mut ws = WebSocketConn::with_limits(0, deflate, limits);
    let mut out = Vec::new();
    for (i, turn) in turns(data).into_iter().enumerate() {
        let at = At {
            frame: i as u64 + 1,
            time: Timestamp::from_parts(i as i64, 0),
        };
        match turn {
            Turn::Data(dir, bytes) => ws.data(dir, bytes, at, &mut out),
            Turn::Gap(dir, len) => ws.gap(dir, len, at, &mut out),
            Turn::End(dir) => ws.end(dir, at, &mut out),
        }
        out.clear();
    }
});
