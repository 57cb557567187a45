//! Every built-in lesson and diagnosis run over event streams made from
//! fuzzer bytes (TCP conversations carrying HTTP, event-stream and
//! WebSocket words): a script may report an error, the host may not panic.
#![no_main]
use std::sync::OnceLock;

use chattcp::events::EventSink;
use chattcp::pipeline::Limits;
use chattcp::scripting::host::ScriptLimits;
use chattcp::scripting::run::run_with;
use chattcp::scripting::script::Script;
use chattcp::scripting::load_scripts;
use chattcp_fuzz::{conversation_pcap, CheckingSink};
use libfuzzer_sys::fuzz_target;

fn scripts() -> &'static [Script] {
    static SCRIPTS: OnceLock<Vec<Script>> = OnceLock::new();
    SCRIPTS.get_or_init(|| load_scripts(None, None, &ScriptLimits::default()).unwrap_or_default())
}

fuzz_target!(|data: &[u8]| {
    let pcap = conversation_pcap(data);
    let mut check = CheckingSink::default();
    let extra: &mut dyn EventSink = &mut check;
    let _ = run_with(
        &pcap[..],
        scripts(),
        Limits::default(),
        ScriptLimits::default(),
        None,
        extra,
    );
});
