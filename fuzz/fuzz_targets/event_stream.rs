//! The event-stream parser fed decoded text cut anywhere, then finished.
#![no_main]
use chattcp::capture::Timestamp;
use chattcp::dissect::sse::SseParser;
use chattcp::dissect::At;
use chattcp_fuzz::{turns, Turn};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let at = |i: usize| At {
        frame: i as u64 + 1,
        time: Timestamp::from_parts(i as i64, 0),
    };
    let mut sse = SseParser::new(0, 0, None, at(0));
    let mut out = Vec::new();
    for (i, turn) in turns(data).into_iter().enumerate() {
        if let Turn::Data(_, bytes) = turn {
            sse.feed_decoded(bytes.len(), bytes, at(i), &mut out);
            out.clear();
        }
    }
    sse.finish(at(usize::MAX >> 1), &mut out);
});
