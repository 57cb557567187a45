//! Code shared by the integration tests (and, by path, the benchmarks,
//! examples and fuzz targets).
#![allow(dead_code)]

pub mod bombs;
pub mod hostile;
pub mod measured;
pub mod pcap_writer;
pub mod rng;
