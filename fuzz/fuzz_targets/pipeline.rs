//! A whole capture through decoding, TCP tracking, reassembly and the
//! application dissectors; the event stream keeps its invariants.
#![no_main]
use chattcp::dissect::Dissector;
use chattcp::pipeline::{self, Limits};
use chattcp_fuzz::CheckingSink;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut sink = Dissector::new(CheckingSink::default());
    let _ = pipeline::run(data, Limits::default(), &mut sink);
});
