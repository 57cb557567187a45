//! The capture reader: pcap and pcapng of any shape, read to the end or to
//! the first damage, never a panic, never a record larger than the limit.
#![no_main]
use chattcp::capture::{CaptureReader, ReaderLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = ReaderLimits::default();
    let Ok(mut reader) = CaptureReader::new(data, limits) else {
        return;
    };
    while let Ok(Some(frame)) = reader.next_frame() {
        assert!(frame.data.len() <= limits.max_record_len);
    }
});
