//! Snappy block framing around protobuf messages, with the decompressed size checked before
//! anything is allocated.

use bytes::Bytes;
use prost::Message;

use super::budget::{self, Budgeted};
use super::error::DecodeError;
use super::proto::{ReadRequest, ReadResponse, WriteRequest};
use super::v2;
use crate::Error;

/// Bounds on what a decoder allocates for one body.
///
/// The size defaults follow Prometheus: 32 MiB for a decompressed body (`decodeReadLimit` in
/// `storage/remote/codec.go`; VictoriaMetrics' `-maxInsertRequestSize` default is also 32 MiB)
/// and 50 MB for one streamed remote-read frame (`DefaultChunkedReadLimit`). Prometheus has no
/// equivalent of the last two: before prost decodes, the memory the decoded message will hold
/// is estimated from the wire (without allocating) and must stay under both
/// `max_decoded_bytes` and `max_expansion` times the protobuf length (plus 64 KiB). Real
/// requests take 3–8× their protobuf size; two-byte empty sub-messages take up to 150×.
/// Transient peaks (vectors growing by doubling) can reach about twice the estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest decompressed snappy body accepted; checked against the snappy header before
    /// the output buffer is allocated.
    pub max_decompressed_bytes: u64,
    /// Largest frame of a streamed remote-read response.
    pub max_frame_bytes: u64,
    /// Largest estimated in-memory size of one decoded message.
    pub max_decoded_bytes: u64,
    /// Largest ratio of estimated in-memory size to protobuf size.
    pub max_expansion: u64,
}

impl DecodeLimits {
    /// 32 MiB.
    pub const DEFAULT_MAX_DECOMPRESSED_BYTES: u64 = 32 << 20;
    /// 50 MB, as Prometheus' `DefaultChunkedReadLimit`.
    pub const DEFAULT_MAX_FRAME_BYTES: u64 = 50_000_000;
    /// 256 MiB: eight times the decompressed limit.
    pub const DEFAULT_MAX_DECODED_BYTES: u64 = 256 << 20;
    /// 32×: four times what real requests need.
    pub const DEFAULT_MAX_EXPANSION: u64 = 32;
    /// Allowed on top of `max_expansion` times the input, so small messages never trip it.
    pub const EXPANSION_SLACK: u64 = 64 << 10;
}

impl Default for DecodeLimits {
    fn default() -> DecodeLimits {
        DecodeLimits {
            max_decompressed_bytes: DecodeLimits::DEFAULT_MAX_DECOMPRESSED_BYTES,
            max_frame_bytes: DecodeLimits::DEFAULT_MAX_FRAME_BYTES,
            max_decoded_bytes: DecodeLimits::DEFAULT_MAX_DECODED_BYTES,
            max_expansion: DecodeLimits::DEFAULT_MAX_EXPANSION,
        }
    }
}

/// The first chunk of snappy's framed (stream) format, which remote write does not use.
const SNAPPY_STREAM_IDENTIFIER: &[u8] = b"\xff\x06\x00\x00sNaPpY";

/// The most a snappy block can expand: a 3-byte copy element emits at most 64 bytes, every
/// other element less per input byte.
fn max_snappy_expansion(compressed_len: u64) -> u64 {
    compressed_len.saturating_mul(64) / 3
}

/// Decompresses a snappy *block* (not the framed stream format), refusing before allocation a
/// header that announces more than `limits.max_decompressed_bytes` or more than the input could
/// expand to.
pub fn snappy_decompress(body: &[u8], limits: &DecodeLimits) -> Result<Vec<u8>, Error> {
    let decoded_len = checked_decoded_len(body, limits)?;
    let mut out = Vec::new();
    decompress_checked(body, decoded_len, &mut out)?;
    Ok(out)
}

/// [`snappy_decompress`] into `out` (cleared first), so a caller can reuse one buffer across
/// bodies.
pub fn snappy_decompress_into(body: &[u8], limits: &DecodeLimits, out: &mut Vec<u8>) -> Result<(), Error> {
    out.clear();
    let decoded_len = checked_decoded_len(body, limits)?;
    decompress_checked(body, decoded_len, out)
}

/// The announced decompressed length, refused when over the limit or impossible.
fn checked_decoded_len(body: &[u8], limits: &DecodeLimits) -> Result<usize, Error> {
    if body.starts_with(SNAPPY_STREAM_IDENTIFIER) {
        return Err(DecodeError::SnappyFramed.into());
    }
    let decoded_len = snap::raw::decompress_len(body).map_err(snappy_error)?;
    let decoded_len_u64 = decoded_len as u64;
    if decoded_len_u64 > limits.max_decompressed_bytes {
        return Err(
            DecodeError::SnappyTooLarge { decoded_len: decoded_len_u64, limit: limits.max_decompressed_bytes }.into()
        );
    }
    let compressed_len = body.len() as u64;
    let max_possible = max_snappy_expansion(compressed_len);
    if decoded_len_u64 > max_possible {
        return Err(
            DecodeError::SnappyImpossibleLength { decoded_len: decoded_len_u64, compressed_len, max_possible }.into()
        );
    }
    Ok(decoded_len)
}

fn decompress_checked(body: &[u8], decoded_len: usize, out: &mut Vec<u8>) -> Result<(), Error> {
    out.resize(decoded_len, 0);
    match snap::raw::Decoder::new().decompress(body, out) {
        Ok(written) => {
            out.truncate(written);
            Ok(())
        }
        Err(err) => {
            out.clear();
            Err(snappy_error(err))
        }
    }
}

/// Compresses `data` as one snappy block, as remote write and remote read send it. Fails only
/// for input over the block format's 4 GiB limit.
pub fn snappy_compress(data: &[u8]) -> Result<Vec<u8>, Error> {
    snap::raw::Encoder::new().compress_vec(data).map_err(snappy_error)
}

fn snappy_error(err: snap::Error) -> Error {
    let message = err.to_string();
    let message = message.strip_prefix("snappy: ").map(str::to_owned).unwrap_or(message);
    DecodeError::Snappy { message }.into()
}

/// The short name of a message type, for error messages.
fn message_name<M>() -> &'static str {
    let full = std::any::type_name::<M>();
    full.rsplit("::").next().unwrap_or(full)
}

/// Decodes one protobuf message (no compression) within `limits`, naming the message in the
/// error.
pub fn decode_protobuf<M: Budgeted>(data: impl Into<Bytes>, limits: &DecodeLimits) -> Result<M, Error> {
    let data = data.into();
    let message = message_name::<M>();
    budget::check::<M>(&data, limits, message)?;
    M::decode(data).map_err(|err| DecodeError::Protobuf { message, detail: err.to_string() }.into())
}

/// Decodes a snappy-block-compressed protobuf message within `limits`.
pub fn decode_snappy<M: Budgeted>(body: &[u8], limits: &DecodeLimits) -> Result<M, Error> {
    decode_protobuf(snappy_decompress(body, limits)?, limits)
}

/// Encodes a message as protobuf compressed in one snappy block.
pub fn encode_snappy<M: Message>(message: &M) -> Result<Vec<u8>, Error> {
    snappy_compress(&message.encode_to_vec())
}

/// Decodes a remote-write 1.0 HTTP body (snappy block of a `WriteRequest`) with the default
/// [`DecodeLimits`].
pub fn decode_write_request(body: &[u8]) -> Result<WriteRequest, Error> {
    decode_snappy(body, &DecodeLimits::default())
}

/// The remote-write 1.0 HTTP body for `request`.
pub fn encode_write_request(request: &WriteRequest) -> Result<Vec<u8>, Error> {
    encode_snappy(request)
}

/// Decodes a remote-write 2.0 HTTP body (snappy block of an `io.prometheus.write.v2.Request`)
/// with the default [`DecodeLimits`].
pub fn decode_write_request_v2(body: &[u8]) -> Result<v2::Request, Error> {
    decode_snappy(body, &DecodeLimits::default())
}

/// The remote-write 2.0 HTTP body for `request`.
pub fn encode_write_request_v2(request: &v2::Request) -> Result<Vec<u8>, Error> {
    encode_snappy(request)
}

/// Decodes a remote-read request body (snappy block of a `ReadRequest`) with the default
/// [`DecodeLimits`].
pub fn decode_read_request(body: &[u8]) -> Result<ReadRequest, Error> {
    decode_snappy(body, &DecodeLimits::default())
}

/// The remote-read request body for `request`.
pub fn encode_read_request(request: &ReadRequest) -> Result<Vec<u8>, Error> {
    encode_snappy(request)
}

/// Decodes a `SAMPLES` remote-read response body (snappy block of a `ReadResponse`) with the
/// default [`DecodeLimits`].
pub fn decode_read_response(body: &[u8]) -> Result<ReadResponse, Error> {
    decode_snappy(body, &DecodeLimits::default())
}

/// The `SAMPLES` remote-read response body for `response`.
pub fn encode_read_response(response: &ReadResponse) -> Result<Vec<u8>, Error> {
    encode_snappy(response)
}
