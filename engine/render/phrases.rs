//! How chattcp says things, shared by the text chat and the HTML report:
//! durations, and the analysis flags and insights of a packet.

use crate::tracking::{Flag, Insight, PacketRecord};

/// Seconds for people: `41 µs`, `12.3 ms`, `1.009 s`.
pub fn duration(ns: i64) -> String {
    let a = ns.unsigned_abs();
    if a < 1_000_000 {
        format!("{} µs", ns / 1000)
    } else if a < 1_000_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.3} s", ns as f64 / 1e9)
    }
}

/// Analysis flag `f` of packet `p` in words; `None` when another flag of
/// the packet says it better (a fast or spurious retransmission is not
/// also called a retransmission).
pub fn flag(p: &PacketRecord<'_>, f: Flag) -> Option<String> {
    let d = &p.details;
    Some(match f {
        Flag::Retransmission
            if p.analysis.has(Flag::FastRetransmission)
                || p.analysis.has(Flag::SpuriousRetransmission) =>
        {
            return None;
        }
        Flag::Retransmission if d.rto_frame != 0 => format!(
            "retransmission of frame {} (after {})",
            d.rto_frame,
            duration(d.rto_ns)
        ),
        Flag::Retransmission => "retransmission".into(),
        Flag::FastRetransmission => "fast retransmission (after duplicate ACKs)".into(),
        Flag::SpuriousRetransmission => "spurious retransmission (already acknowledged)".into(),
        Flag::OutOfOrder => "out of order".into(),
        Flag::LostSegment => "previous segment not captured".into(),
        Flag::AckLostSegment => "acknowledges a segment never captured".into(),
        Flag::KeepAlive => "keep-alive".into(),
        Flag::KeepAliveAck => "keep-alive ACK".into(),
        Flag::DuplicateAck => format!(
            "duplicate ACK #{} of frame {}",
            d.dup_ack_num, d.dup_ack_frame
        ),
        Flag::ZeroWindow => "zero window".into(),
        Flag::ZeroWindowProbe => "zero-window probe".into(),
        Flag::ZeroWindowProbeAck => "zero-window probe ACK".into(),
        Flag::WindowUpdate => "window update".into(),
        Flag::WindowFull => "window full".into(),
        Flag::ReusedPorts => "port numbers reused".into(),
    })
}

/// What chattcp knows better than the flag tshark would set.
pub fn insight(i: Insight) -> &'static str {
    match i {
        Insight::ZeroWindowProbe => "really a zero-window probe",
        Insight::ZeroWindowProbeAck => "really a zero-window probe ACK",
        Insight::DuplicateCapture => "really the same packet captured twice",
        Insight::RetransmissionWithoutDuplicateAcks => "really a plain retransmission",
        Insight::AnalysisHiddenBySnaplen => "headers cut by the snaplen",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(duration(41_000), "41 µs");
        assert_eq!(duration(12_300_000), "12.3 ms");
        assert_eq!(duration(1_009_000_000), "1.009 s");
    }
}
