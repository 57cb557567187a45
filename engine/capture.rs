//! Capture reading: legacy pcap and pcapng files, streamed record by record.
//!
//! [`CaptureReader`] wraps pcap-parser's streaming readers. It keeps one
//! bounded buffer, hands out each packet record as a [`Frame`] that borrows
//! from that buffer, and numbers frames from 1 over every packet record of the
//! file, as Wireshark's `frame.number` does. Memory stays constant whatever the
//! file size: the buffer only grows to hold one record, and never beyond
//! [`ReaderLimits::max_record_len`].

use std::fmt;
use std::io::{self, Read};

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};

/// A point in time, in nanoseconds since the Unix epoch.
///
/// Nanoseconds in an `i64` cover ±292 years around 1970, which every capture
/// format's timestamps fit in, and make differences exact integer arithmetic
/// (Wireshark compares times at nanosecond precision too).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Builds a timestamp from whole seconds and nanoseconds.
    pub fn from_parts(secs: i64, nanos: i64) -> Self {
        Timestamp(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
    }

    /// Nanoseconds since the epoch.
    pub fn nanos(self) -> i64 {
        self.0
    }

    /// The signed interval `self - earlier`, in nanoseconds.
    pub fn since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// Seconds since the epoch, as a float (for display only).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

/// A link-layer header type, as numbered by tcpdump.org's LINKTYPE_ values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback: a 4-byte address family in host byte order.
    pub const NULL: LinkType = LinkType(0);
    /// Ethernet II, possibly with 802.1Q / 802.1ad tags.
    pub const ETHERNET: LinkType = LinkType(1);
    /// Raw IP (the value some systems write as DLT_RAW).
    pub const RAW_ALT: LinkType = LinkType(12);
    /// Raw IP, IPv4 or IPv6 from the version nibble.
    pub const RAW: LinkType = LinkType(101);
    /// OpenBSD loopback: a 4-byte address family in network byte order.
    pub const LOOP: LinkType = LinkType(108);
    /// Linux "cooked" capture, version 1.
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux netfilter NFLOG messages.
    pub const NFLOG: LinkType = LinkType(239);
    /// Linux "cooked" capture, version 2.
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            LinkType::NULL => "NULL",
            LinkType::ETHERNET => "ETHERNET",
            LinkType::RAW_ALT | LinkType::RAW => "RAW",
            LinkType::LOOP => "LOOP",
            LinkType::LINUX_SLL => "LINUX_SLL",
            LinkType::IPV4 => "IPV4",
            LinkType::IPV6 => "IPV6",
            LinkType::NFLOG => "NFLOG",
            LinkType::LINUX_SLL2 => "LINUX_SLL2",
            _ => "unknown",
        }
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0, self.name())
    }
}

/// The container format of a capture file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Legacy libpcap format (any byte order, micro- or nanosecond).
    Pcap,
    /// pcapng.
    PcapNg,
}

/// One packet record of a capture, borrowed from the reader's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Frame number, from 1, over every packet record of the file.
    pub number: u64,
    /// Byte offset of the record in the file.
    pub offset: u64,
    /// When the packet was captured.
    pub timestamp: Timestamp,
    /// Link-layer type of the interface the packet was captured on.
    pub link_type: LinkType,
    /// Interface index (always 0 for legacy pcap).
    pub interface: u32,
    /// The captured bytes (possibly fewer than the packet had: see `original_len`).
    pub data: &'a [u8],
    /// Length of the packet on the wire.
    pub original_len: u32,
}

/// Limits that keep reading bounded whatever a file claims.
#[derive(Clone, Copy, Debug)]
pub struct ReaderLimits {
    /// Largest record accepted; a record claiming more is corrupt.
    pub max_record_len: usize,
    /// Initial buffer size.
    pub buffer_len: usize,
}

impl Default for ReaderLimits {
    fn default() -> Self {
        ReaderLimits {
            max_record_len: 16 << 20,
            buffer_len: 256 << 10,
        }
    }
}

/// Why a capture could not be read (further).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The operating system refused to read.
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
    /// The file holds no bytes at all.
    #[error("the file is empty (0 bytes): not a pcap or pcapng capture")]
    Empty,
    /// The first bytes are not a pcap or pcapng magic number.
    #[error("not a pcap or pcapng capture: it starts with {found}")]
    NotACapture {
        /// The first bytes, described.
        found: String,
    },
    /// A header we recognise but cannot use.
    #[error("unsupported capture header at offset {offset}: {detail}")]
    Unsupported {
        /// Byte offset of the header.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// The file ends in the middle of a record.
    #[error("the file is cut short at offset {offset}, in the middle of frame {frame}: {detail}")]
    Truncated {
        /// Number the frame would have had.
        frame: u64,
        /// Byte offset of the incomplete record.
        offset: u64,
        /// How much was missing.
        detail: String,
    },
    /// A record is malformed or claims an absurd size.
    #[error("corrupt record at offset {offset} (frame {frame}): {detail}")]
    Corrupt {
        /// Number the frame would have had.
        frame: u64,
        /// Byte offset of the bad record.
        offset: u64,
        /// What was wrong.
        detail: String,
    },
}

impl CaptureError {
    /// True when reading stopped because the file ends early; everything
    /// before the cut was read and is good.
    pub fn is_truncation(&self) -> bool {
        matches!(self, CaptureError::Truncated { .. })
    }
}

const PCAPNG_SHB: u32 = 0x0A0D_0D0A;
const PCAPNG_BOM: u32 = 0x1A2B_3C4D;

/// Per-interface facts a pcapng IDB gives.
#[derive(Clone, Copy, Debug)]
struct Interface {
    link_type: LinkType,
    snaplen: u32,
    /// Timestamp units per second.
    units_per_sec: u64,
    /// Seconds added to every timestamp (if_tsoffset).
    offset_secs: i64,
}

/// Streams frames out of a pcap or pcapng file.
pub struct CaptureReader<'r> {
    inner: Box<dyn PcapReaderIterator + Send + 'r>,
    format: CaptureFormat,
    limits: ReaderLimits,
    /// Bytes of the block handed out last, consumed on the next call.
    pending: usize,
    /// Frames handed out so far.
    frames: u64,
    state: FormatState,
    buffer_len: usize,
    finished: bool,
}

impl fmt::Debug for CaptureReader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureReader")
            .field("format", &self.format)
            .field("frames", &self.frames)
            .finish()
    }
}

/// Reads until `buf` is full or the source ends; returns the bytes read.
fn read_fully(source: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match source.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn describe_magic(bytes: &[u8]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let text_like = bytes
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    let hint = if bytes.starts_with(&[0x1f, 0x8b]) {
        " (a gzip file: decompress it first)"
    } else if bytes.starts_with(b"PK") {
        " (a zip archive)"
    } else if text_like {
        " (looks like text)"
    } else {
        ""
    };
    format!("bytes {}{}", hex.join(" "), hint)
}

impl<'r> CaptureReader<'r> {
    /// Opens a capture from any byte source (a file, stdin, a pipe).
    ///
    /// Only the file header is read here; frames are read on demand, so a
    /// live `tcpdump -w -` pipe yields each packet as it arrives.
    pub fn new<R: Read + Send + 'r>(
        mut source: R,
        limits: ReaderLimits,
    ) -> Result<Self, CaptureError> {
        // Read the header ourselves: pcap-parser's constructors make a single
        // `read` call, which a pipe may answer with fewer bytes than a header.
        let mut magic = [0u8; 4];
        let got = read_fully(&mut source, &mut magic)?;
        if got == 0 {
            return Err(CaptureError::Empty);
        }
        if got < 4 {
            return Err(CaptureError::NotACapture {
                found: format!("only {} byte(s), {}", got, describe_magic(&magic[..got])),
            });
        }
        let magic_le = u32::from_le_bytes(magic);
        let mut prefix = magic.to_vec();
        let format = match magic_le {
            PCAPNG_SHB => {
                let mut rest = [0u8; 8];
                let got = read_fully(&mut source, &mut rest)?;
                if got < 8 {
                    return Err(CaptureError::Truncated {
                        frame: 1,
                        offset: 0,
                        detail: "the pcapng section header block is incomplete".into(),
                    });
                }
                let bom_le = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
                let big_endian = if bom_le == PCAPNG_BOM {
                    false
                } else if bom_le.swap_bytes() == PCAPNG_BOM {
                    true
                } else {
                    return Err(CaptureError::Unsupported {
                        offset: 8,
                        detail: format!(
                            "pcapng byte-order magic is {bom_le:#010x}, expected 0x1a2b3c4d"
                        ),
                    });
                };
                let len_bytes = [rest[0], rest[1], rest[2], rest[3]];
                let block_len = if big_endian {
                    u32::from_be_bytes(len_bytes)
                } else {
                    u32::from_le_bytes(len_bytes)
                } as usize;
                if block_len < 28 || block_len % 4 != 0 || block_len > limits.max_record_len {
                    return Err(CaptureError::Unsupported {
                        offset: 0,
                        detail: format!(
                            "pcapng section header claims an invalid length of {block_len} bytes"
                        ),
                    });
                }
                prefix.extend_from_slice(&rest);
                let mut body = vec![0u8; block_len - 12];
                let got = read_fully(&mut source, &mut body)?;
                if got < body.len() {
                    return Err(CaptureError::Truncated {
                        frame: 1,
                        offset: 0,
                        detail: format!(
                            "the pcapng section header block needs {block_len} bytes, the file has {}",
                            12 + got
                        ),
                    });
                }
                prefix.extend_from_slice(&body);
                CaptureFormat::PcapNg
            }
            0xA1B2_C3D4 | 0xD4C3_B2A1 | 0xA1B2_3C4D | 0x4D3C_B2A1 | 0xA1B2_CD34 | 0x34CD_B2A1 => {
                let mut rest = [0u8; 20];
                let got = read_fully(&mut source, &mut rest)?;
                if got < 20 {
                    return Err(CaptureError::Truncated {
                        frame: 1,
                        offset: 0,
                        detail: format!(
                            "the pcap file header needs 24 bytes, the file has {}",
                            4 + got
                        ),
                    });
                }
                prefix.extend_from_slice(&rest);
                CaptureFormat::Pcap
            }
            _ => {
                return Err(CaptureError::NotACapture {
                    found: describe_magic(&magic),
                })
            }
        };

        let buffer_len = limits.buffer_len.max(prefix.len() * 2).max(4096);
        let chained = io::Cursor::new(prefix).chain(source);
        let inner = pcap_parser::create_reader(buffer_len, chained).map_err(|e| {
            CaptureError::Unsupported {
                offset: 0,
                detail: format!("the file header could not be parsed ({e})"),
            }
        })?;
        let mut reader = CaptureReader {
            inner,
            format,
            limits,
            pending: 0,
            frames: 0,
            state: FormatState {
                legacy_link: LinkType::ETHERNET,
                legacy_nanos: false,
                interfaces: Vec::new(),
                big_endian: false,
                legacy_plain: false,
            },
            buffer_len,
            finished: false,
        };
        reader.read_legacy_header()?;
        Ok(reader)
    }

    /// The container format.
    pub fn format(&self) -> CaptureFormat {
        self.format
    }

    /// Frames read so far.
    pub fn frames_read(&self) -> u64 {
        self.frames
    }

    /// Bytes of the file consumed so far.
    pub fn bytes_read(&self) -> u64 {
        (self.inner.consumed() + self.pending) as u64
    }

    fn read_legacy_header(&mut self) -> Result<(), CaptureError> {
        if self.format != CaptureFormat::Pcap {
            return Ok(());
        }
        let header = match self.inner.next() {
            Ok((n, PcapBlockOwned::LegacyHeader(h))) => {
                self.pending = n;
                h
            }
            _ => {
                return Err(CaptureError::Unsupported {
                    offset: 0,
                    detail: "the pcap file header could not be parsed".into(),
                })
            }
        };
        if header.version_major != 2 {
            return Err(CaptureError::Unsupported {
                offset: 4,
                detail: format!(
                    "pcap version {}.{} (only 2.x exists)",
                    header.version_major, header.version_minor
                ),
            });
        }
        let network = header.network.0 as u32;
        // The upper bits carry an FCS length flag (bits 26-31) and reserved
        // bits (16-25); only the low 16 bits name the link type.
        if network & 0x03FF_0000 != 0 {
            return Err(CaptureError::Unsupported {
                offset: 20,
                detail: format!(
                    "pcap link-type field {network:#010x} has reserved bits set (link type {})",
                    network & 0xFFFF
                ),
            });
        }
        self.state.legacy_link = LinkType(network & 0xFFFF);
        self.state.legacy_nanos = header.is_nanosecond_precision();
        self.state.big_endian = header.is_bigendian();
        self.state.legacy_plain = !header.is_modified_format();
        Ok(())
    }

    /// Offset in the file of the block about to be parsed.
    fn next_offset(&self) -> u64 {
        (self.inner.consumed() + self.pending) as u64
    }

    /// Claimed length of the record at the head of the buffer, if its header
    /// is there.
    fn claimed_record_len(&self) -> Option<u64> {
        let data = self.inner.data();
        // Legacy: 16-byte record header whose third word is caplen.
        // pcapng: the second word of every block is its total length.
        let (at, header) = match self.format {
            CaptureFormat::Pcap => (8, 16),
            CaptureFormat::PcapNg => (4, 0),
        };
        let b = data.get(at..at + 4)?;
        let word = [b[0], b[1], b[2], b[3]];
        let value = if self.state.big_endian {
            u32::from_be_bytes(word)
        } else {
            u32::from_le_bytes(word)
        };
        Some(header + u64::from(value))
    }

    fn corrupt(&self, detail: String) -> CaptureError {
        CaptureError::Corrupt {
            frame: self.frames + 1,
            offset: self.next_offset(),
            detail,
        }
    }

    /// Reads the next packet record, skipping every other kind of block.
    ///
    /// Returns `Ok(None)` at the end of the file.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        if self.finished {
            return Ok(None);
        }
        // Where, inside `inner.data()`, the packet bytes lie; computed while
        // the parsed block is alive, used after it is dropped.
        let (found_start, found_len, timestamp, link_type, interface, original_len): Coordinates = loop {
            if self.pending > 0 {
                // Without a shift: moving the rest of the buffer to its
                // start after every record copies it again and again; the
                // refill shifts once, when the buffer runs dry.
                self.inner.consume_noshift(self.pending);
                self.pending = 0;
            }
            if let Some(found) = self.state.whole_legacy_record(self.inner.data()) {
                self.pending = 16 + found.1;
                break found;
            }
            let offset = self.next_offset();
            let frame_no = self.frames + 1;
            let base = self.inner.data().as_ptr() as usize;
            let step = match self.inner.next() {
                Ok((n, block)) => {
                    Step::Block(n, self.state.classify(block, base, offset, frame_no)?)
                }
                Err(PcapError::Eof) => Step::End,
                Err(PcapError::Incomplete(_)) => Step::Refill,
                Err(PcapError::BufferTooSmall) => Step::Grow,
                Err(PcapError::UnexpectedEof) => Step::CutShort,
                Err(e) => Step::Bad(format!("{e}")),
            };
            match step {
                Step::Block(n, None) => {
                    self.pending = n;
                }
                Step::Block(n, Some(found)) => {
                    self.pending = n;
                    break found;
                }
                Step::End => {
                    self.finished = true;
                    return Ok(None);
                }
                Step::Refill => {
                    let before = self.inner.data().len();
                    self.inner
                        .refill()
                        .map_err(|e| CaptureError::Io(io::Error::other(e.to_string())))?;
                    if self.inner.data().len() == before && self.inner.reader_exhausted() {
                        self.finished = true;
                        if before == 0 {
                            return Ok(None);
                        }
                        return Err(self.cut_short());
                    }
                }
                Step::Grow => {
                    let claimed = self.claimed_record_len().unwrap_or(0);
                    if claimed > self.limits.max_record_len as u64 {
                        self.finished = true;
                        return Err(self.corrupt(format!(
                            "the record claims {claimed} bytes, more than the limit of {} bytes",
                            self.limits.max_record_len
                        )));
                    }
                    let want = (claimed as usize + 4096).max(self.buffer_len * 2);
                    let want = want.min(self.limits.max_record_len + 4096);
                    if want <= self.buffer_len || !self.inner.grow(want) {
                        self.finished = true;
                        return Err(self.corrupt(format!(
                            "the record claims {claimed} bytes, which cannot be buffered"
                        )));
                    }
                    self.buffer_len = want;
                    self.inner
                        .refill()
                        .map_err(|e| CaptureError::Io(io::Error::other(e.to_string())))?;
                }
                Step::CutShort => {
                    self.finished = true;
                    return Err(self.cut_short());
                }
                Step::Bad(detail) => {
                    self.finished = true;
                    // A parse failure with too few bytes left is a cut, not damage.
                    if self.inner.reader_exhausted() {
                        if let Some(claimed) = self.claimed_record_len() {
                            if claimed > self.inner.data().len() as u64 {
                                return Err(self.cut_short());
                            }
                        }
                    }
                    return Err(self.corrupt(format!("the block could not be parsed ({detail})")));
                }
            }
        };
        self.frames += 1;
        let data = self.inner.data();
        let end = found_start.saturating_add(found_len).min(data.len());
        let start = found_start.min(end);
        Ok(Some(Frame {
            number: self.frames,
            offset: self.next_offset(),
            timestamp,
            link_type,
            interface,
            data: &data[start..end],
            original_len,
        }))
    }

    fn cut_short(&self) -> CaptureError {
        let have = self.inner.data().len();
        if let Some(claimed) = self.claimed_record_len() {
            if claimed > self.limits.max_record_len as u64 {
                return self.corrupt(format!(
                    "the record claims {claimed} bytes, more than the limit of {} bytes",
                    self.limits.max_record_len
                ));
            }
        }
        let detail = match self.claimed_record_len() {
            Some(claimed) => format!("the record needs {claimed} bytes, only {have} remain"),
            None => format!("only {have} byte(s) of a record header remain"),
        };
        CaptureError::Truncated {
            frame: self.frames + 1,
            offset: self.next_offset(),
            detail,
        }
    }
}

/// What the headers seen so far say about how to read records.
struct FormatState {
    /// Legacy pcap: link type and nanosecond flag.
    legacy_link: LinkType,
    legacy_nanos: bool,
    /// pcapng: the interfaces of the current section.
    interfaces: Vec<Interface>,
    /// Byte order of record headers (legacy file, or current pcapng section).
    big_endian: bool,
    /// Legacy pcap with 16-byte record headers (not the "modified" format):
    /// records can be read straight from the buffer.
    legacy_plain: bool,
}

type Coordinates = (usize, usize, Timestamp, LinkType, u32, u32);

impl FormatState {
    /// A legacy record read straight from `data` when all of it is there:
    /// what pcap-parser's parser gives for it, without its generic
    /// machinery on every frame. `None` sends the reader the general way
    /// (another format, the header, a record not wholly buffered yet).
    fn whole_legacy_record(&self, data: &[u8]) -> Option<Coordinates> {
        if !self.legacy_plain {
            return None;
        }
        let header = data.get(..16)?;
        let word = |at: usize| {
            let b = [header[at], header[at + 1], header[at + 2], header[at + 3]];
            if self.big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let caplen = word(8) as usize;
        if data.len() - 16 < caplen {
            return None;
        }
        let (ts_sec, ts_frac) = (word(0), word(4));
        let frac = if self.legacy_nanos {
            i64::from(ts_frac)
        } else {
            i64::from(ts_frac) * 1000
        };
        Some((
            16,
            caplen,
            Timestamp::from_parts(i64::from(ts_sec), frac),
            self.legacy_link,
            0,
            word(12),
        ))
    }

    /// Turns a parsed block into packet coordinates, or updates reader state
    /// for a non-packet block (returning `None`).
    fn classify(
        &mut self,
        block: PcapBlockOwned<'_>,
        base: usize,
        offset: u64,
        frame_no: u64,
    ) -> Result<Option<Coordinates>, CaptureError> {
        let rel = |s: &[u8]| (s.as_ptr() as usize).saturating_sub(base);
        match block {
            PcapBlockOwned::LegacyHeader(_) => Ok(None),
            PcapBlockOwned::Legacy(b) => {
                let frac = if self.legacy_nanos {
                    i64::from(b.ts_usec)
                } else {
                    i64::from(b.ts_usec) * 1000
                };
                let ts = Timestamp::from_parts(i64::from(b.ts_sec), frac);
                Ok(Some((
                    rel(b.data),
                    b.data.len(),
                    ts,
                    self.legacy_link,
                    0,
                    b.origlen,
                )))
            }
            PcapBlockOwned::NG(block) => match block {
                Block::SectionHeader(shb) => {
                    self.interfaces.clear();
                    self.big_endian = shb.big_endian();
                    Ok(None)
                }
                Block::InterfaceDescription(idb) => {
                    let units_per_sec =
                        ts_units_per_sec(idb.if_tsresol).ok_or_else(|| CaptureError::Corrupt {
                            frame: frame_no,
                            offset,
                            detail: format!(
                                "interface {} has an unusable timestamp resolution {:#04x}",
                                self.interfaces.len(),
                                idb.if_tsresol
                            ),
                        })?;
                    self.interfaces.push(Interface {
                        link_type: LinkType(u32::from(idb.linktype.0 as u16)),
                        snaplen: idb.snaplen,
                        units_per_sec,
                        offset_secs: idb.if_tsoffset,
                    });
                    Ok(None)
                }
                Block::EnhancedPacket(epb) => {
                    let iface = self
                        .interfaces
                        .get(epb.if_id as usize)
                        .copied()
                        .ok_or_else(|| CaptureError::Corrupt {
                            frame: frame_no,
                            offset,
                            detail: format!(
                                "packet names interface {} but the section describes {}",
                                epb.if_id,
                                self.interfaces.len()
                            ),
                        })?;
                    let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                    let ts = iface_timestamp(&iface, units);
                    let caplen = (epb.caplen as usize).min(epb.data.len());
                    Ok(Some((
                        rel(epb.data),
                        caplen,
                        ts,
                        iface.link_type,
                        epb.if_id,
                        epb.origlen,
                    )))
                }
                Block::SimplePacket(spb) => {
                    let iface =
                        self.interfaces
                            .first()
                            .copied()
                            .ok_or_else(|| CaptureError::Corrupt {
                                frame: frame_no,
                                offset,
                                detail: "simple packet block before any interface description"
                                    .into(),
                            })?;
                    let mut caplen = (spb.origlen as usize).min(spb.data.len());
                    if iface.snaplen > 0 {
                        caplen = caplen.min(iface.snaplen as usize);
                    }
                    Ok(Some((
                        rel(spb.data),
                        caplen,
                        Timestamp(0),
                        iface.link_type,
                        0,
                        spb.origlen,
                    )))
                }
                Block::Unknown(u) if u.block_type == 2 => {
                    // Obsolete Packet Block: interface id (u16), drops (u16),
                    // ts high, ts low, caplen, origlen, data.
                    self.obsolete_packet(u.data, base, offset, frame_no)
                }
                _ => Ok(None),
            },
        }
    }

    fn obsolete_packet(
        &self,
        body: &[u8],
        base: usize,
        offset: u64,
        frame_no: u64,
    ) -> Result<Option<Coordinates>, CaptureError> {
        let bad = |detail: &str| CaptureError::Corrupt {
            frame: frame_no,
            offset,
            detail: detail.to_string(),
        };
        if body.len() < 20 {
            return Err(bad("obsolete packet block is too short"));
        }
        // The section's byte order: try little endian first, as every writer
        // of this long-obsolete block was.
        let if_id = u16::from_le_bytes([body[0], body[1]]);
        let word = |i: usize| u32::from_le_bytes([body[i], body[i + 1], body[i + 2], body[i + 3]]);
        let iface = self
            .interfaces
            .get(usize::from(if_id))
            .copied()
            .ok_or_else(|| bad("obsolete packet block names an undescribed interface"))?;
        let units = (u64::from(word(4)) << 32) | u64::from(word(8));
        let caplen = (word(12) as usize).min(body.len() - 20);
        let data = &body[20..20 + caplen];
        Ok(Some((
            (data.as_ptr() as usize).saturating_sub(base),
            caplen,
            iface_timestamp(&iface, units),
            iface.link_type,
            u32::from(if_id),
            word(16),
        )))
    }
}

enum Step {
    Block(usize, Option<Coordinates>),
    End,
    Refill,
    Grow,
    CutShort,
    Bad(String),
}

/// Timestamp units per second from a pcapng `if_tsresol` byte: a power of 10,
/// or of 2 when the top bit is set.
fn ts_units_per_sec(tsresol: u8) -> Option<u64> {
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(u32::from(tsresol))
    } else {
        1u64.checked_shl(u32::from(tsresol & 0x7f))
    }
}

fn iface_timestamp(iface: &Interface, units: u64) -> Timestamp {
    let per = u128::from(iface.units_per_sec.max(1));
    let secs = u128::from(units) / per;
    let frac = u128::from(units) % per;
    let nanos = frac * 1_000_000_000 / per;
    let secs = i64::try_from(secs).unwrap_or(i64::MAX / 2_000_000_000);
    Timestamp::from_parts(secs.saturating_add(iface.offset_secs), nanos as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy_header(magic: u32, link: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&magic.to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&4u16.to_le_bytes());
        v.extend_from_slice(&0i32.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&65535u32.to_le_bytes());
        v.extend_from_slice(&link.to_le_bytes());
        v
    }

    fn legacy_record(v: &mut Vec<u8>, sec: u32, frac: u32, data: &[u8], orig: u32) {
        v.extend_from_slice(&sec.to_le_bytes());
        v.extend_from_slice(&frac.to_le_bytes());
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(&orig.to_le_bytes());
        v.extend_from_slice(data);
    }

    #[test]
    fn reads_legacy_records_and_numbers_them_from_one() {
        let mut file = legacy_header(0xA1B2_C3D4, 1);
        legacy_record(&mut file, 10, 500_000, &[1, 2, 3], 3);
        legacy_record(&mut file, 11, 0, &[4, 5], 60);
        let mut r = CaptureReader::new(&file[..], ReaderLimits::default()).unwrap();
        let f = r.next_frame().unwrap().unwrap();
        assert_eq!((f.number, f.data, f.original_len), (1, &[1u8, 2, 3][..], 3));
        assert_eq!(f.timestamp, Timestamp(10_500_000_000));
        let f = r.next_frame().unwrap().unwrap();
        assert_eq!((f.number, f.data.len(), f.original_len), (2, 2, 60));
        assert!(r.next_frame().unwrap().is_none());
    }

    #[test]
    fn nanosecond_magic_keeps_nanoseconds() {
        let mut file = legacy_header(0xA1B2_3C4D, 101);
        legacy_record(&mut file, 1, 7, &[0x45], 1);
        let mut r = CaptureReader::new(&file[..], ReaderLimits::default()).unwrap();
        let f = r.next_frame().unwrap().unwrap();
        assert_eq!(f.timestamp, Timestamp(1_000_000_007));
        assert_eq!(f.link_type, LinkType::RAW);
    }

    #[test]
    fn empty_and_foreign_files_are_named_as_such() {
        assert!(matches!(
            CaptureReader::new(&b""[..], ReaderLimits::default()),
            Err(CaptureError::Empty)
        ));
        let err = CaptureReader::new(&b"GET / HTTP/1.1\r\n"[..], ReaderLimits::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("looks like text"), "{err}");
    }

    #[test]
    fn a_cut_record_is_reported_with_its_frame_and_offset() {
        let mut file = legacy_header(0xA1B2_C3D4, 1);
        legacy_record(&mut file, 1, 0, &[9; 10], 10);
        legacy_record(&mut file, 2, 0, &[9; 10], 10);
        file.truncate(file.len() - 4);
        let mut r = CaptureReader::new(&file[..], ReaderLimits::default()).unwrap();
        assert!(r.next_frame().unwrap().is_some());
        let err = r.next_frame().unwrap_err();
        assert!(err.is_truncation());
        let text = err.to_string();
        assert!(
            text.contains("frame 2") && text.contains("offset 50"),
            "{text}"
        );
    }

    #[test]
    fn an_absurd_caplen_is_corruption_not_an_allocation() {
        let mut file = legacy_header(0xA1B2_C3D4, 1);
        file.extend_from_slice(&1u32.to_le_bytes());
        file.extend_from_slice(&0u32.to_le_bytes());
        file.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        file.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        file.extend_from_slice(&[0u8; 64]);
        let mut r = CaptureReader::new(&file[..], ReaderLimits::default()).unwrap();
        let err = r.next_frame().unwrap_err().to_string();
        assert!(
            err.contains("claims 4294967296 bytes") || err.contains("claims"),
            "{err}"
        );
        assert!(err.contains("frame 1"), "{err}");
    }

    #[test]
    fn pcapng_binary_resolution_is_honoured() {
        assert_eq!(ts_units_per_sec(6), Some(1_000_000));
        assert_eq!(ts_units_per_sec(0x80 | 10), Some(1024));
        let iface = Interface {
            link_type: LinkType::ETHERNET,
            snaplen: 0,
            units_per_sec: 1024,
            offset_secs: 0,
        };
        assert_eq!(
            iface_timestamp(&iface, 1024 + 512),
            Timestamp(1_500_000_000)
        );
    }
}
