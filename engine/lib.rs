//! chattcp: reads packet captures as chats between client and server.
//!
//! The engine is a one-way pipeline, one module per stage:
//! [`capture`] reads pcap and pcapng records → [`decode`] finds each TCP
//! segment → [`tracking`] follows connections and analyses every packet as
//! Wireshark does, with [`reassembly`] putting each direction's bytes back
//! in order → one ordered stream of [`events`] → renderers ([`render`]).
//! [`pipeline::run`] drives one pass.

#![warn(missing_docs)]

pub mod capture;
pub mod conn_table;
pub mod decode;
pub mod dissect;
pub mod events;
pub mod parallel;
pub mod pipeline;
pub mod progress;
pub mod reassembly;
pub mod render;
pub mod scripting;
pub mod tracking;
