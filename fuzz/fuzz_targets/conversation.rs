//! TCP conversations made from fuzzer bytes (always well-formed packets,
//! any flags, sequence and acknowledgement moves, payloads and times)
//! through tracking, reassembly and the dissectors, with tight limits so
//! that eviction and the reassembly caps are exercised too.
#![no_main]
use chattcp::dissect::Dissector;
use chattcp::pipeline::{self, Limits};
use chattcp_fuzz::{conversation_pcap, CheckingSink};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let pcap = conversation_pcap(data);
    let mut limits = Limits {
        max_open: 2,
        max_finished: 2,
        ..Limits::default()
    };
    limits.reassembly.per_direction = 4096;
    limits.reassembly.total = 8192;
    let mut sink = Dissector::new(CheckingSink::default());
    let _ = pipeline::run(&pcap[..], limits, &mut sink);
    let mut sink = Dissector::new(CheckingSink::default());
    let _ = pipeline::run(&pcap[..], Limits::default(), &mut sink);
});
