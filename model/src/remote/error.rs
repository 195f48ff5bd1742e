//! What can be wrong with a remote-write/read body.

use std::fmt;

use thiserror::Error;

/// Why a remote-write or remote-read body (or a message in it) was rejected. Wrapped in
/// [`crate::Error::Remote`]; messages read like Prometheus' and name the offending part.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The snappy header announces more bytes than [`DecodeLimits`](super::DecodeLimits) allow.
    #[error("snappy: decoded length {} exceeds limit {}", ByteSize(*.decoded_len), ByteSize(*.limit))]
    SnappyTooLarge { decoded_len: u64, limit: u64 },
    /// The snappy header announces more bytes than the compressed input could ever expand to.
    #[error(
        "snappy: corrupt input: header announces {} but {} of compressed input expand to at most {}",
        ByteSize(*.decoded_len),
        ByteSize(*.compressed_len),
        ByteSize(*.max_possible)
    )]
    SnappyImpossibleLength { decoded_len: u64, compressed_len: u64, max_possible: u64 },
    /// A body in snappy's framed (stream) format; remote write and read use the block format.
    #[error("snappy: body is in the framed (stream) format, remote write and read use the block format")]
    SnappyFramed,
    /// Snappy block data that does not decode (message from the `snap` crate).
    #[error("snappy: {message}")]
    Snappy { message: String },
    /// Protobuf that does not decode as the expected message (message from prost, with the
    /// field path).
    #[error("protobuf: invalid {message}: {detail}")]
    Protobuf { message: &'static str, detail: String },
    /// Decoding would allocate more than [`DecodeLimits`](super::DecodeLimits) allow (an
    /// estimate made before decoding; `limit` is the smaller of the absolute limit and the
    /// allowed expansion of `wire_len`).
    #[error(
        "protobuf: {message} of {} would take about {} to decode, over the limit of {}",
        ByteSize(*.wire_len),
        ByteSize(*.estimate),
        ByteSize(*.limit)
    )]
    DecodedTooLarge { message: &'static str, estimate: u64, limit: u64, wire_len: u64 },
    /// A streamed remote-read frame larger than the limit.
    #[error("chunked frame at byte {offset}: size {} exceeds limit {}", ByteSize(*.size), ByteSize(*.limit))]
    FrameTooLarge { offset: u64, size: u64, limit: u64 },
    /// The input ends inside a frame: `needed` bytes from `offset`, `available` present.
    #[error("chunked frame at byte {offset}: truncated, needs {needed} bytes, {available} present")]
    FrameTruncated { offset: u64, needed: u64, available: u64 },
    /// The frame's size prefix is not a valid uvarint (longer than 10 bytes or over 64 bits).
    #[error("chunked frame at byte {offset}: invalid uvarint size")]
    FrameBadSize { offset: u64 },
    /// The CRC32-Castagnoli of the frame data differs from the frame header.
    #[error(
        "chunked frame at byte {offset}: checksum mismatch, header says {expected:#010x}, data has {actual:#010x}"
    )]
    FrameChecksum { offset: u64, expected: u32, actual: u32 },
    /// Label names out of order (the remote-write spec requires them sorted).
    #[error("labels not sorted: \"{name}\" (label {index}) comes after \"{previous}\"")]
    UnsortedLabels { index: usize, previous: String, name: String },
    /// A label name or value that is not UTF-8 (`part` is `"name"` or `"value"`).
    #[error("label {index}: {part} is not valid UTF-8 (invalid byte at offset {offset})")]
    InvalidUtf8 { index: usize, part: &'static str, offset: usize },
    /// A label with an empty name.
    #[error("label {index} has an empty name")]
    EmptyLabelName { index: usize },
    /// A series without `__name__` or with an empty one.
    #[error("series {labels} has no metric name")]
    MissingMetricName { labels: String },
    /// A `LabelMatcher.type` outside the four known operators.
    #[error("label matcher for \"{name}\" has unknown type {value}")]
    UnknownMatcherType { name: String, value: i32 },
}

/// Renders a byte count the way people read limits: `32 MiB`, `4 GiB`, `1.5 KiB`, `85 B`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ByteSize(pub(crate) u64);

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        let n = self.0;
        if n < 1024 {
            return write!(f, "{n} B");
        }
        let mut unit_idx = 0;
        let mut scaled = n as f64 / 1024.0;
        while scaled >= 1024.0 && unit_idx + 1 < UNITS.len() {
            scaled /= 1024.0;
            unit_idx += 1;
        }
        if scaled.fract() == 0.0 {
            write!(f, "{scaled} {}", UNITS[unit_idx])
        } else {
            write!(f, "{scaled:.1} {}", UNITS[unit_idx])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ByteSize;

    #[test]
    fn byte_sizes() {
        let check = |n: u64, expected: &str| assert_eq!(ByteSize(n).to_string(), expected, "{n}");
        check(0, "0 B");
        check(85, "85 B");
        check(1023, "1023 B");
        check(1024, "1 KiB");
        check(1536, "1.5 KiB");
        check(32 << 20, "32 MiB");
        check(4 << 30, "4 GiB");
        check(u64::MAX, "16 EiB");
    }
}
