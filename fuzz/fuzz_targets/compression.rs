//! gzip and deflate bodies cut anywhere: decoding stops at the size limit,
//! never past it.
#![no_main]
use chattcp::dissect::compression::{ContentDecoder, DecodeLimits, Encoding};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, data)) = data.split_first() else {
        return;
    };
    let encoding = if choice & 1 == 0 {
        Encoding::Gzip
    } else {
        Encoding::Deflate
    };
    let limits = DecodeLimits {
        max_decoded: 1 << 20,
        ..DecodeLimits::default()
    };
    let mut decoder = ContentDecoder::new(encoding, limits);
    let mut decoded = 0u64;
    let step = usize::from(choice >> 1).max(1);
    for piece in data.chunks(step) {
        let result = decoder.feed(piece, &mut |out| decoded += out.len() as u64);
        assert!(decoded <= limits.max_decoded, "decoded past the limit");
        if result.is_err() {
            break;
        }
    }
});
