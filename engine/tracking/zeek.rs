//! Zeek's connection verdict: `conn_state` and the `history` string.
//!
//! `conn_state` is derived exactly as Zeek's `conn/main.zeek` derives it from
//! the two endpoint states; the endpoint states follow Zeek's TCP analyzer in
//! outline (documented in `docs/analysis.md`): a SYN moves an inactive
//! endpoint to SYN_SENT, a SYN-ACK to SYN_ACK_SENT, the first non-SYN
//! segment to ESTABLISHED after a SYN or to PARTIAL without one, FIN to
//! CLOSED and RST to RESET. History letters follow Zeek's rules: upper case
//! for the originator; `a`, `d` once per side; `s`, `h`, `f`, `r` again only
//! when the sequence number differs; `t`, `w`, `g` logarithmically (again at
//! 10, 100, ... occurrences). Bad checksums (`c`) are not checked.

use crate::decode::flags::{ACK, FIN, RST, SYN};

/// Zeek's per-endpoint TCP state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ZeekEndpoint {
    /// Nothing sent yet.
    #[default]
    Inactive,
    /// Sent a SYN.
    SynSent,
    /// Sent a SYN-ACK.
    SynAckSent,
    /// Sent traffic without a SYN.
    Partial,
    /// Handshake seen through.
    Established,
    /// Sent a FIN.
    Closed,
    /// Sent a RST.
    Reset,
}

impl ZeekEndpoint {
    fn inactive(self) -> bool {
        matches!(self, ZeekEndpoint::Inactive | ZeekEndpoint::Partial)
    }
}

/// Longest history kept; Zeek's strings stay short, a crafted capture's must too.
const MAX_HISTORY: usize = 64;

/// Accumulates Zeek's view of one connection.
#[derive(Clone, Debug, Default)]
pub struct ZeekTracker {
    /// Endpoint states: [originator, responder].
    pub endpoints: [ZeekEndpoint; 2],
    history: String,
    once_seen: [u8; 2],
    last_seq: [[Option<u32>; 4]; 2],
    log_counts: [[u32; 3]; 2],
    log_next: [[u32; 3]; 2],
    bytes: [u64; 2],
    flipped: bool,
}

const ONCE_A: u8 = 1;
const ONCE_D: u8 = 2;
const ONCE_I: u8 = 4;
const ONCE_Q: u8 = 8;

/// Letters counted logarithmically.
#[derive(Clone, Copy, Debug)]
pub enum Repeated {
    /// `t`: retransmitted payload.
    Retransmission = 0,
    /// `w`: zero window advertised.
    ZeroWindow = 1,
    /// `g`: content gap.
    Gap = 2,
}

impl ZeekTracker {
    /// A tracker; `flipped` when the originator is not the first packet's
    /// sender (Zeek writes `^` first then).
    pub fn new(flipped: bool) -> Self {
        let mut t = ZeekTracker {
            flipped,
            log_next: [[1; 3]; 2],
            ..ZeekTracker::default()
        };
        if flipped {
            t.history.push('^');
        }
        t
    }

    fn push(&mut self, orig: bool, letter: char) {
        if self.history.len() < MAX_HISTORY {
            self.history.push(if orig {
                letter.to_ascii_uppercase()
            } else {
                letter
            });
        }
    }

    fn once(&mut self, orig: bool, bit: u8, letter: char) {
        let side = usize::from(!orig);
        if self.once_seen[side] & bit == 0 {
            self.once_seen[side] |= bit;
            self.push(orig, letter);
        }
    }

    fn by_seq(&mut self, orig: bool, slot: usize, seq: u32, letter: char) {
        let side = usize::from(!orig);
        if self.last_seq[side][slot] != Some(seq) {
            self.last_seq[side][slot] = Some(seq);
            self.push(orig, letter);
        }
    }

    /// Counts one occurrence of a logarithmic letter.
    pub fn repeated(&mut self, orig: bool, what: Repeated) {
        let side = usize::from(!orig);
        let i = what as usize;
        self.log_counts[side][i] = self.log_counts[side][i].saturating_add(1);
        if self.log_counts[side][i] >= self.log_next[side][i] {
            self.log_next[side][i] = self.log_next[side][i].saturating_mul(10);
            let letter = match what {
                Repeated::Retransmission => 't',
                Repeated::ZeroWindow => 'w',
                Repeated::Gap => 'g',
            };
            self.push(orig, letter);
        }
    }

    /// Records one segment; `orig` is true when the originator sent it.
    pub fn segment(&mut self, orig: bool, flags: u16, seq: u32, len: u32) {
        let me = usize::from(!orig);
        let peer = 1 - me;
        let syn = flags & SYN != 0;
        let fin = flags & FIN != 0;
        let rst = flags & RST != 0;
        let ack = flags & ACK != 0;
        if syn && (fin || rst) {
            self.once(orig, ONCE_Q, 'q');
        }
        if fin && rst {
            self.once(orig, ONCE_I, 'i');
        }
        if syn {
            if ack {
                self.by_seq(orig, 1, seq, 'h');
            } else {
                self.by_seq(orig, 0, seq, 's');
            }
        }
        if len > 0 {
            self.once(orig, ONCE_D, 'd');
            self.bytes[me] = self.bytes[me].saturating_add(u64::from(len));
        } else if ack && !syn && !fin && !rst {
            self.once(orig, ONCE_A, 'a');
        }
        if fin {
            self.by_seq(orig, 2, seq, 'f');
        }
        if rst {
            self.by_seq(orig, 3, seq, 'r');
        }

        let [mut state, mut peer_state] = [self.endpoints[me], self.endpoints[peer]];
        if rst {
            state = ZeekEndpoint::Reset;
        } else if fin {
            if state != ZeekEndpoint::Reset {
                state = ZeekEndpoint::Closed;
            }
        } else if syn {
            if state == ZeekEndpoint::Inactive {
                state = if ack {
                    ZeekEndpoint::SynAckSent
                } else {
                    ZeekEndpoint::SynSent
                };
            }
        } else {
            let peer_opening =
                matches!(peer_state, ZeekEndpoint::SynSent | ZeekEndpoint::SynAckSent);
            match state {
                ZeekEndpoint::SynSent | ZeekEndpoint::SynAckSent if ack => {
                    state = ZeekEndpoint::Established;
                    if peer_opening {
                        peer_state = ZeekEndpoint::Established;
                    }
                }
                ZeekEndpoint::Inactive if peer_opening => {
                    state = ZeekEndpoint::Established;
                    peer_state = ZeekEndpoint::Established;
                }
                ZeekEndpoint::Inactive => state = ZeekEndpoint::Partial,
                _ => {}
            }
        }
        self.endpoints[me] = state;
        self.endpoints[peer] = peer_state;
    }

    /// The history string.
    pub fn history(&self) -> &str {
        &self.history
    }

    /// The history string, moved out (the tracker is spent afterwards).
    pub fn take_history(&mut self) -> String {
        std::mem::take(&mut self.history)
    }

    /// Gives a fresh tracker the buffer of a spent one's history.
    pub fn reuse_history(&mut self, mut buffer: String) {
        if self.history.is_empty() && self.history.capacity() == 0 {
            buffer.clear();
            self.history = buffer;
        }
    }

    /// Zeek's `conn_state`, derived as `conn/main.zeek` does.
    pub fn conn_state(&self) -> &'static str {
        use ZeekEndpoint::*;
        let [o, r] = self.endpoints;
        if r == Reset {
            if matches!(o, SynSent | SynAckSent)
                || (o == Reset && self.bytes[0] == 0 && self.bytes[1] == 0)
            {
                return "REJ";
            }
            return if o.inactive() { "RSTRH" } else { "RSTR" };
        }
        if o == Reset {
            if r.inactive() {
                return if self.rst_after_syn_only() {
                    "RSTOS0"
                } else {
                    "OTH"
                };
            }
            return "RSTO";
        }
        if o == Closed && r == Closed {
            return "SF";
        }
        if o == Closed {
            return if r.inactive() { "SH" } else { "S2" };
        }
        if r == Closed {
            return if o.inactive() { "SHR" } else { "S3" };
        }
        if o == SynSent && r == Inactive {
            return "S0";
        }
        if o == Established && r == Established {
            return "S1";
        }
        "OTH"
    }

    /// Zeek's `^?S[^HAFGIQ]*R.*` test on the history.
    fn rst_after_syn_only(&self) -> bool {
        let h = self.history.strip_prefix('^').unwrap_or(&self.history);
        let Some(rest) = h.strip_prefix('S') else {
            return false;
        };
        for c in rest.chars() {
            match c {
                'R' => return true,
                'H' | 'A' | 'F' | 'G' | 'I' | 'Q' => return false,
                _ => {}
            }
        }
        false
    }

    /// Whether the originator was decided against the first packet's sender.
    pub fn flipped(&self) -> bool {
        self.flipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_normal_connection_is_sf_with_the_classic_history() {
        let mut z = ZeekTracker::new(false);
        z.segment(true, SYN, 1, 0);
        z.segment(false, SYN | ACK, 9, 0);
        z.segment(true, ACK, 2, 0);
        z.segment(true, ACK, 2, 10);
        z.segment(false, ACK, 10, 20);
        z.segment(true, ACK | FIN, 12, 0);
        z.segment(false, ACK | FIN, 30, 0);
        z.segment(true, ACK, 13, 0);
        assert_eq!(z.history(), "ShADdFf");
        assert_eq!(z.conn_state(), "SF");
    }

    #[test]
    fn syn_answered_by_rst_is_rej() {
        let mut z = ZeekTracker::new(false);
        z.segment(true, SYN, 1, 0);
        z.segment(false, RST | ACK, 0, 0);
        assert_eq!(z.conn_state(), "REJ");
        assert_eq!(z.history(), "Sr");
    }

    #[test]
    fn an_unanswered_syn_is_s0_and_repeats_only_with_a_new_seq() {
        let mut z = ZeekTracker::new(false);
        z.segment(true, SYN, 1, 0);
        z.segment(true, SYN, 1, 0);
        assert_eq!((z.conn_state(), z.history()), ("S0", "S"));
    }

    #[test]
    fn retransmissions_are_logarithmic() {
        let mut z = ZeekTracker::new(false);
        for _ in 0..100 {
            z.repeated(true, Repeated::Retransmission);
        }
        assert_eq!(z.history(), "TTT");
    }
}
