//! The event stream: the one interface between TCP tracking and everything
//! downstream (dissectors, the script host, renderers).
//!
//! Events arrive in capture order. For each TCP packet: [`Event::Opened`]
//! when it starts a connection, then [`Event::Packet`], then
//! [`Event::Handshake`] when it completes the three-way handshake, then the
//! [`Event::Data`] chunks its bytes made deliverable. [`Event::Closed`]
//! carries a connection's summary once the connection is retired (at the end
//! of the capture at the latest); [`Event::End`] comes last. Events borrow
//! from the packet being processed: a consumer that keeps anything copies it.

use crate::capture::Timestamp;
use crate::dissect::AppEvent;
use crate::reassembly::Chunk;
use crate::tracking::{ConnectionInfo, ConnectionSummary, Direction, PacketRecord, RunSummary};

/// One event of the stream.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// A new connection (tshark's next `tcp.stream` number).
    Opened(&'a ConnectionInfo),
    /// A TCP packet, analysed.
    Packet(&'a PacketRecord<'a>),
    /// The three-way handshake completed with this packet.
    Handshake(&'a Handshake),
    /// Reassembled bytes (or a gap) of one direction.
    Data(&'a DataChunk<'a>),
    /// Something an application dissector found (only in a stream that went
    /// through a [`crate::dissect::Dissector`]).
    App(&'a AppEvent),
    /// What a connection carried at the application layer, in a few
    /// numbers, from a [`crate::dissect::Dissector`] asked for overviews:
    /// just before its summary, or, when asked so, as soon as it is final
    /// ([`crate::dissect::Dissector::with_overviews_when_final`]).
    Overview(&'a crate::dissect::AppOverview),
    /// A connection's summary; no more events name it.
    Closed(&'a ConnectionSummary),
    /// The end of the capture.
    End(&'a RunSummary),
}

/// The completion of a three-way handshake.
#[derive(Clone, Copy, Debug)]
pub struct Handshake {
    /// Connection number.
    pub conn: u64,
    /// Frame of the client's final ACK.
    pub frame: u64,
    /// Its capture time.
    pub time: Timestamp,
    /// Frames of the SYN and SYN-ACK.
    pub syn_frame: u64,
    /// Frame of the SYN-ACK.
    pub syn_ack_frame: u64,
    /// Initial RTT (Wireshark's iRTT: SYN to first ACK), nanoseconds.
    pub irtt_ns: Option<i64>,
}

/// Bytes of one direction, in stream order.
#[derive(Clone, Copy, Debug)]
pub struct DataChunk<'a> {
    /// Connection number.
    pub conn: u64,
    /// Which way the bytes flow.
    pub dir: Direction,
    /// The bytes, or a gap.
    pub chunk: Chunk<'a>,
    /// Frame that carried them (for a gap: the frame that revealed it).
    pub frame: u64,
    /// Its capture time.
    pub time: Timestamp,
}

/// A consumer of events.
pub trait EventSink {
    /// Receives one event. Errors stop the run (a closed output pipe, say).
    fn event(&mut self, event: &Event<'_>) -> std::io::Result<()>;

    /// The events that follow belong to frame `frame` (a TCP packet's frame;
    /// [`AT_END`] for the summaries of the end of the capture). Most sinks
    /// do not care; a shard of a parallel run files what it retires under
    /// the frame that caused it.
    fn frame_start(&mut self, _frame: u64) {}

    /// A connection's summary, already shared (a parallel run's merge
    /// holds it so): a sink that keeps summaries, like the script host,
    /// takes a reference instead of a copy. Otherwise it is
    /// `Event::Closed`.
    fn closed_shared(
        &mut self,
        summary: &std::sync::Arc<crate::tracking::ConnectionSummary>,
    ) -> std::io::Result<()> {
        self.event(&Event::Closed(summary))
    }

    /// A connection's summary handed over by the tracker: a sink that
    /// keeps summaries, like a shard of a parallel run, takes it as it is
    /// instead of a copy, and may hand back the lists of one it is done
    /// with, which the tracker fills again for a later connection.
    /// Otherwise it is `Event::Closed`, and its own lists come back.
    fn closed_owned(
        &mut self,
        mut summary: crate::tracking::ConnectionSummary,
    ) -> std::io::Result<Option<crate::tracking::SummaryLists>> {
        self.event(&Event::Closed(&summary))?;
        Ok(Some(summary.take_lists()))
    }

    /// An application event handed over by its maker: a sink that keeps
    /// events, like a shard of a parallel run, takes it as it is instead
    /// of a copy. Otherwise it is `Event::App`.
    fn app_owned(&mut self, app: crate::dissect::AppEvent) -> std::io::Result<()> {
        self.event(&Event::App(&app))
    }

    /// Connection `conn`'s summary as `conns` prints it, rendered by the
    /// worker thread that tracked it, all but its number (which only the
    /// merging thread knows): instead of `Event::Closed` and the
    /// `Event::Overview` before it, for a sink that asked a parallel run
    /// for its blocks so ([`crate::parallel::WorkerRendering`]). A sink
    /// that did not ask never gets one.
    fn closed_rendered(&mut self, conn: u64, _block: &[u8]) -> std::io::Result<()> {
        Err(std::io::Error::other(format!(
            "connection {conn} came rendered to a consumer that renders its own"
        )))
    }
}

/// A sink borrowed: what it is lent to (a [`crate::dissect::Dissector`]
/// in front of it, say) reaches it with every method it overrides.
impl<S: EventSink + ?Sized> EventSink for &mut S {
    fn event(&mut self, event: &Event<'_>) -> std::io::Result<()> {
        (**self).event(event)
    }

    fn frame_start(&mut self, frame: u64) {
        (**self).frame_start(frame);
    }

    fn closed_shared(
        &mut self,
        summary: &std::sync::Arc<crate::tracking::ConnectionSummary>,
    ) -> std::io::Result<()> {
        (**self).closed_shared(summary)
    }

    fn closed_owned(
        &mut self,
        summary: crate::tracking::ConnectionSummary,
    ) -> std::io::Result<Option<crate::tracking::SummaryLists>> {
        (**self).closed_owned(summary)
    }

    fn app_owned(&mut self, app: crate::dissect::AppEvent) -> std::io::Result<()> {
        (**self).app_owned(app)
    }

    fn closed_rendered(&mut self, conn: u64, block: &[u8]) -> std::io::Result<()> {
        (**self).closed_rendered(conn, block)
    }
}

/// The "frame" of the summaries emitted at the end of the capture.
pub const AT_END: u64 = u64::MAX;
