//! Tracker rules, each tested on a short synthetic conversation.

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::decode::flags::PSH;
use crate::decode::TcpHeader;

/// One packet as a test sees it.
struct Shown {
    conn: u64,
    seq: u32,
    ack: u32,
    analysis: AnalysisFlags,
    state: TcpState,
    completeness_before: u8,
    dir: Direction,
    win: u64,
}

/// What a test conversation produced.
#[derive(Default)]
struct Seen {
    packets: Vec<Shown>,
    opened: Vec<ConnectionInfo>,
    summaries: Vec<ConnectionSummary>,
    /// For each summary, how many packets had been seen before it.
    summary_after_packets: Vec<usize>,
    handshakes: Vec<u64>,
    data: Vec<(u64, Direction, Vec<u8>)>,
}

impl EventSink for Seen {
    fn event(&mut self, event: &Event<'_>) -> std::io::Result<()> {
        match event {
            Event::Packet(p) => self.packets.push(Shown {
                conn: p.conn,
                seq: p.seq,
                ack: p.ack,
                analysis: p.analysis,
                state: p.state,
                completeness_before: p.completeness_before,
                dir: p.dir,
                win: p.win,
            }),
            Event::Opened(i) => self.opened.push(**i),
            Event::Closed(c) => {
                self.summary_after_packets.push(self.packets.len());
                self.summaries.push((*c).clone());
            }
            Event::Handshake(h) => self.handshakes.push(h.frame),
            Event::Data(d) => {
                if let crate::reassembly::Chunk::Data { bytes, .. } = d.chunk {
                    self.data.push((d.conn, d.dir, bytes.to_vec()));
                }
            }
            Event::End(_) | Event::App(_) | Event::Overview(_) => {}
        }
        Ok(())
    }
}

const CLIENT: (IpAddr, u16) = (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40000);
const SERVER: (IpAddr, u16) = (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);

/// One packet of a test conversation.
struct Pkt {
    from_client: bool,
    flags: u16,
    seq: u32,
    ack: u32,
    payload: &'static [u8],
    window: u16,
    wscale: Option<u8>,
    ms: i64,
    /// Sent from another client address (another connection).
    other_client: bool,
}

fn pkt(from_client: bool, flags: u16, seq: u32, ack: u32, ms: i64) -> Pkt {
    Pkt {
        from_client,
        flags,
        seq,
        ack,
        payload: b"",
        window: 1000,
        wscale: None,
        ms,
        other_client: false,
    }
}

fn header_bytes(p: &Pkt) -> Vec<u8> {
    let (sport, dport) = if p.from_client {
        (CLIENT.1, SERVER.1)
    } else {
        (SERVER.1, CLIENT.1)
    };
    let opts: Vec<u8> = match p.wscale {
        Some(s) => vec![1, 3, 3, s],
        None => vec![],
    };
    let words = (20 + opts.len()) / 4;
    let mut h = Vec::new();
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&dport.to_be_bytes());
    h.extend_from_slice(&p.seq.to_be_bytes());
    h.extend_from_slice(&p.ack.to_be_bytes());
    h.push((words as u8) << 4 | ((p.flags >> 8) as u8 & 1));
    h.push(p.flags as u8);
    h.extend_from_slice(&p.window.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 0]);
    h.extend_from_slice(&opts);
    h.extend_from_slice(p.payload);
    h
}

fn run(conversation: &[Pkt]) -> Seen {
    run_with(conversation, TrackerConfig::default())
}

/// The default tracker, but for its close delay.
fn with_close_delay(close_delay_ns: i64) -> TrackerConfig {
    TrackerConfig {
        close_delay_ns,
        ..TrackerConfig::default()
    }
}

fn run_with(conversation: &[Pkt], config: TrackerConfig) -> Seen {
    let mut tracker = Tracker::new(config);
    let mut seen = Seen::default();
    for (i, p) in conversation.iter().enumerate() {
        let bytes = header_bytes(p);
        let header = TcpHeader::new(&bytes).expect("header");
        let hl = header.header_len();
        let client = if p.other_client {
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9))
        } else {
            CLIENT.0
        };
        let (src, dst) = if p.from_client {
            (client, SERVER.0)
        } else {
            (SERVER.0, client)
        };
        let seg = TcpSegment {
            src,
            dst,
            header,
            payload: &bytes[hl..],
            payload_len: Some(p.payload.len() as u32),
            vlan: None,
            ip_id: None,
            in_icmp_error: false,
        };
        tracker
            .process(i as u64 + 1, Timestamp(p.ms * 1_000_000), &seg, &mut seen)
            .expect("process");
    }
    tracker.finish(&mut seen).expect("finish");
    seen
}

fn handshake() -> Vec<Pkt> {
    vec![
        pkt(true, SYN, 100, 0, 0),
        pkt(false, SYN | ACK, 900, 101, 10),
        pkt(true, ACK, 101, 901, 20),
    ]
}

/// A handshake and a graceful close by the client, finished at 50 ms.
fn closed_by_the_client() -> Vec<Pkt> {
    let mut c = handshake();
    c.push(pkt(true, FIN | ACK, 101, 901, 30));
    c.push(pkt(false, FIN | ACK, 901, 102, 40));
    c.push(pkt(true, ACK, 102, 902, 50));
    c
}

#[test]
fn a_new_isn_on_a_used_four_tuple_is_a_new_connection() {
    let mut c = closed_by_the_client();
    c.push(pkt(true, SYN, 5000, 0, 60_000));
    let seen = run(&c);
    let last = seen.packets.last().expect("packets");
    assert_eq!(last.conn, 1, "second connection");
    assert!(last.analysis.has(Flag::ReusedPorts));
    assert_eq!(seen.opened.len(), 2);
    assert!(seen.opened[1].reused_ports);
}

#[test]
fn the_same_syn_again_is_the_same_connection_and_a_retransmission() {
    let seen = run(&[pkt(true, SYN, 100, 0, 0), pkt(true, SYN, 100, 0, 1000)]);
    let second = &seen.packets[1];
    assert_eq!(second.conn, 0);
    assert!(second.analysis.has(Flag::Retransmission));
    assert_eq!(seen.summaries[0].handshake, HandshakeOutcome::SynUnanswered);
    assert_eq!(seen.summaries[0].conn_state, "S0");
}

#[test]
fn completeness_is_printed_before_the_packet_updates_it() {
    let seen = run(&handshake());
    let before: Vec<u8> = seen.packets.iter().map(|p| p.completeness_before).collect();
    assert_eq!(before, [0, 1, 3]);
    assert_eq!(seen.summaries[0].completeness, 7);
}

#[test]
fn a_first_packet_that_is_not_a_syn_adds_nothing_to_completeness() {
    let seen = run(&[pkt(false, ACK, 900, 101, 0), pkt(true, ACK, 101, 901, 1)]);
    assert_eq!(seen.summaries[0].completeness, 4);
    assert_eq!(
        seen.summaries[0].handshake,
        HandshakeOutcome::StartedBeforeCapture
    );
}

#[test]
fn relative_numbers_start_at_one_without_a_syn() {
    let seen = run(&[pkt(true, ACK | PSH, 5000, 7000, 0)]);
    assert_eq!((seen.packets[0].seq, seen.packets[0].ack), (1, 1));
}

#[test]
fn windows_are_scaled_once_both_syns_carried_the_option() {
    let mut c = handshake();
    c[0].wscale = Some(7);
    c[1].wscale = Some(8);
    c.push(pkt(false, ACK, 901, 101, 30));
    let seen = run(&c);
    let wins: Vec<u64> = seen.packets.iter().map(|p| p.win).collect();
    // SYNs are never scaled; the client's ACK by 128, the server's by 256.
    assert_eq!(wins, [1000, 1000, 128_000, 256_000]);
}

#[test]
fn roles_follow_the_syn_ack_when_the_syn_is_missing() {
    let seen = run(&[
        pkt(false, SYN | ACK, 900, 101, 0),
        pkt(true, ACK, 101, 901, 1),
    ]);
    assert_eq!(seen.opened[0].client.port, 40000);
    assert_eq!(seen.opened[0].roles, RoleEvidence::SynAck);
    assert_eq!(seen.packets[0].dir, Direction::ServerToClient);
}

#[test]
fn roles_follow_the_service_port_mid_stream() {
    let seen = run(&[pkt(false, ACK | PSH, 900, 101, 0)]);
    assert_eq!(seen.opened[0].server.port, 80);
    assert_eq!(seen.opened[0].roles, RoleEvidence::Ports);
}

#[test]
fn a_three_packet_close_is_recognised() {
    let c = closed_by_the_client();
    let seen = run(&c);
    let s = &seen.summaries[0];
    assert_eq!(
        (s.close, s.closed_by),
        (CloseStyle::ThreePacket, Some(Role::Client))
    );
    assert_eq!(s.handshake, HandshakeOutcome::Complete);
    assert_eq!(s.conn_state, "SF");
    assert_eq!(seen.handshakes, [3]);
}

#[test]
fn a_four_packet_close_by_the_server_is_recognised() {
    let mut c = handshake();
    c.push(pkt(false, FIN | ACK, 901, 101, 30));
    c.push(pkt(true, ACK, 101, 902, 40));
    c.push(pkt(true, FIN | ACK, 101, 902, 50));
    c.push(pkt(false, ACK, 902, 102, 60));
    let seen = run(&c);
    let s = &seen.summaries[0];
    assert_eq!(
        (s.close, s.closed_by),
        (CloseStyle::FourPacket, Some(Role::Server))
    );
    assert_eq!(s.final_states, [TcpState::Closed, TcpState::TimeWait]);
}

#[test]
fn a_syn_answered_by_rst_is_refused() {
    let seen = run(&[pkt(true, SYN, 100, 0, 0), pkt(false, RST | ACK, 0, 101, 1)]);
    let s = &seen.summaries[0];
    assert_eq!(s.handshake, HandshakeOutcome::Refused);
    assert_eq!(
        (s.close, s.reset_by, s.reset_after),
        (CloseStyle::Reset, Some(Role::Server), Some("syn"))
    );
    assert_eq!(s.conn_state, "REJ");
}

#[test]
fn a_syn_ack_repeated_after_the_clients_ack_means_the_ack_was_lost() {
    let mut c = handshake();
    c.push(pkt(false, SYN | ACK, 900, 101, 1000));
    c.push(pkt(true, ACK, 101, 901, 1001));
    c.push(pkt(true, FIN | ACK, 101, 901, 2000));
    c.push(pkt(false, RST, 901, 0, 2001));
    let seen = run(&c);
    let s = &seen.summaries[0];
    assert_eq!(s.handshake, HandshakeOutcome::FinalAckLost);
    assert_eq!(
        (s.close, s.reset_by, s.reset_after),
        (CloseStyle::Reset, Some(Role::Server), Some("fin"))
    );
    assert_eq!(seen.packets[3].state, TcpState::SynReceived);
}

#[test]
fn in_order_bytes_reach_the_data_events() {
    let mut c = handshake();
    let mut data = pkt(true, ACK | PSH, 101, 901, 30);
    data.payload = b"GET / HTTP/1.1\r\n\r\n";
    c.push(data);
    let seen = run(&c);
    assert_eq!(
        seen.data,
        [(
            0,
            Direction::ClientToServer,
            b"GET / HTTP/1.1\r\n\r\n".to_vec()
        )]
    );
}

#[test]
fn a_finished_connection_is_summarised_after_it_goes_quiet() {
    let mut c = closed_by_the_client();
    // Another connection, 20 s later: the first one's summary comes out as
    // that packet is processed, before the end of the capture.
    c.push(Pkt {
        other_client: true,
        ..pkt(true, ACK, 1, 1, 20_050)
    });
    let seen = run(&c);
    let conns: Vec<u64> = seen.summaries.iter().map(|s| s.conn).collect();
    assert_eq!(conns, [0, 1]);
    assert_eq!(
        seen.summary_after_packets[0], 6,
        "after the quiet period, not at the end"
    );
}

/// A graceful close whose last FIN the server sends again 1 s later (its
/// peer's ACK lost on the way), and another connection 20 s later.
fn close_then_late_fin() -> Vec<Pkt> {
    let mut c = closed_by_the_client();
    c.push(pkt(false, FIN | ACK, 901, 102, 1_050));
    c.push(pkt(true, ACK, 102, 902, 1_051));
    c.push(Pkt {
        other_client: true,
        ..pkt(true, ACK, 1, 1, 20_050)
    });
    c
}

#[test]
fn a_late_packet_within_the_close_delay_counts_in_the_summary() {
    let seen = run(&close_then_late_fin());
    let s = &seen.summaries[0];
    assert_eq!(s.packets, [5, 3], "the resent FIN and its ACK are in");
    assert_eq!(seen.summary_after_packets[0], 8);
    // The late packets are still analysed as tshark does.
    assert!(seen.packets[6].analysis.has(Flag::Retransmission));
}

#[test]
fn with_no_close_delay_the_summary_comes_at_the_next_packet() {
    let seen = run_with(&close_then_late_fin(), with_close_delay(0));
    let s = &seen.summaries[0];
    assert_eq!(s.packets, [4, 2]);
    assert_eq!(
        seen.summary_after_packets[0], 6,
        "at the resent FIN, before it is counted"
    );
    // Summarised or not, the connection keeps its number and its analysis.
    assert_eq!(seen.packets[6].conn, 0);
    assert!(seen.packets[6].analysis.has(Flag::Retransmission));
}

#[test]
fn a_full_table_summarises_a_finished_connection_first_and_remembers_it() {
    // Room for one connection: the second one's SYN needs the first one's
    // place while it waits out its close delay.
    let mut c = closed_by_the_client();
    c.push(Pkt {
        other_client: true,
        ..pkt(true, SYN, 5000, 0, 100)
    });
    // The server's last FIN again, 1 s after the close.
    c.push(pkt(false, FIN | ACK, 901, 102, 1_050));
    let seen = run_with(
        &c,
        TrackerConfig {
            max_open: 1,
            ..TrackerConfig::default()
        },
    );
    assert_eq!(seen.summaries[0].conn, 0);
    assert_eq!(
        seen.summary_after_packets[0], 6,
        "summarised when the second connection came, not 2 s later"
    );
    assert_eq!(
        seen.summaries[0].packets,
        [4, 2],
        "the late FIN counts in no summary"
    );
    // Still remembered: the late FIN is connection 0's, analysed as tshark
    // does, not a third connection.
    assert_eq!(seen.packets[7].conn, 0);
    assert!(seen.packets[7].analysis.has(Flag::Retransmission));
    assert_eq!(seen.opened.len(), 2);
}

#[test]
fn a_close_delay_below_a_second_is_honoured() {
    // 0.5 s: the resent FIN, 1 s after the close, comes too late.
    let seen = run_with(&close_then_late_fin(), with_close_delay(500_000_000));
    assert_eq!(seen.summary_after_packets[0], 6);
    assert_eq!(seen.summaries[0].packets, [4, 2]);
}
