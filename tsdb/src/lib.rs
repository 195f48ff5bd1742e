//! Sextant's time-series database (not started yet).
//!
//! This crate will hold the head (in-memory series in Gorilla XOR chunks with roaring-bitmap
//! postings), the write-ahead log, persisted blocks, compaction, retention, snapshots and
//! import. It will implement `sextant_model`'s `Appendable` and `Queryable`. Nothing here works
//! yet; see the TSDB issues.
