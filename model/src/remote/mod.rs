//! Prometheus remote write and remote read on the wire, without IO.
//!
//! - The protobuf messages of package `prometheus` ([`WriteRequest`], [`TimeSeries`],
//!   [`Label`], [`Sample`], [`Exemplar`], [`Histogram`], [`MetricMetadata`], [`ReadRequest`],
//!   [`Query`], [`LabelMatcher`], [`ReadResponse`], [`ChunkedReadResponse`], [`Chunk`], …) and
//!   of remote write 2.0 ([`v2::Request`]), derived with prost by hand: same field numbers and
//!   types as upstream `prompb`, no `protoc` at build time.
//! - HTTP bodies: protobuf in one snappy *block* ([`decode_write_request`],
//!   [`encode_write_request`], the read request/response twins, the generic [`decode_snappy`]),
//!   with the announced decompressed size checked against [`DecodeLimits`] before allocating,
//!   and the memory the decoded message will take estimated from the wire before prost runs
//!   (two-byte empty sub-messages cannot turn a small body into gigabytes of structs).
//!   [`Label`] names and values are [`bytes::Bytes`] sharing the decompressed body.
//! - [`WriteRequestReader`]: a remote-write 1.0 body read in place, series by series
//!   ([`TimeSeriesView`]: label pairs and samples borrowed from the body, the label bytes as a
//!   cache key), with prost's acceptance rules and no allocation; the receiver's hot path.
//! - The streamed remote-read framing (uvarint size, big-endian CRC32-Castagnoli, data):
//!   [`encode_chunked_frame`] and the [`ChunkedFrames`] iterator.
//! - Conversions to the model: [`series_labels_from_proto`] (sorted, unique, named),
//!   [`matcher_from_proto`], and back.
//!
//! ```
//! use sextant_model::remote::{self, Label, Sample, TimeSeries, WriteRequest};
//!
//! let request = WriteRequest {
//!     timeseries: vec![TimeSeries {
//!         labels: vec![
//!             Label { name: "__name__".into(), value: "up".into() },
//!             Label { name: "job".into(), value: "node".into() },
//!         ],
//!         samples: vec![Sample { value: 1.0, timestamp: 1_700_000_000_000 }],
//!         ..Default::default()
//!     }],
//!     ..Default::default()
//! };
//! let body = remote::encode_write_request(&request)?;
//! let decoded = remote::decode_write_request(&body)?;
//! assert_eq!(decoded, request);
//! let labels = remote::series_labels_from_proto(&decoded.timeseries[0].labels)?;
//! assert_eq!(labels.to_string(), r#"{__name__="up", job="node"}"#);
//!
//! // A hostile header is refused before anything is allocated.
//! let mut bomb = vec![0xff, 0xff, 0xff, 0xff, 0x0f];
//! bomb.extend_from_slice(&[0; 16]);
//! let err = remote::decode_write_request(&bomb).unwrap_err();
//! assert_eq!(err.to_string(), "snappy: decoded length 4.0 GiB exceeds limit 32 MiB");
//! # Ok::<(), sextant_model::Error>(())
//! ```

mod budget;
mod chunked;
mod codec;
mod convert;
mod error;
mod proto;
mod reader;
pub mod v2;

pub use budget::Budgeted;
pub use chunked::{crc32c, encode_chunked_frame, ChunkedFrames, Frame};
pub use codec::{
    decode_protobuf, decode_read_request, decode_read_response, decode_snappy, decode_write_request,
    decode_write_request_v2, encode_read_request, encode_read_response, encode_snappy, encode_write_request,
    encode_write_request_v2, snappy_compress, snappy_decompress, snappy_decompress_into, DecodeLimits,
};
pub use convert::{labels_from_proto, labels_to_proto, matcher_from_proto, matcher_to_proto, series_labels_from_proto};
pub use error::DecodeError;
/// The prost trait the messages implement (`encode_to_vec`, `decode`, `encoded_len`).
pub use prost::Message;
pub use proto::{
    BucketSpan, Chunk, ChunkEncoding, ChunkedReadResponse, ChunkedSeries, Exemplar, Histogram, HistogramCount,
    HistogramZeroCount, Label, LabelMatcher, LabelSet, MatcherType, MetricMetadata, MetricType, Query, QueryResult,
    ReadHints, ReadRequest, ReadResponse, ResetHint, ResponseType, Sample, TimeSeries, WriteRequest,
};
pub use reader::{LabelPairs, Samples, TimeSeriesView, WriteRequestReader};

#[cfg(test)]
mod tests;
