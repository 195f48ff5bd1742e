//! An allocation budget for protobuf decoding. prost allocates as it decodes, and two bytes of
//! wire (an empty sub-message) can become a struct of a few hundred bytes in a vector; after
//! snappy's up to 21× expansion a small body could demand gigabytes. Before decoding, one pass
//! over the wire format (no allocation) adds up what the decoded message will hold: each
//! repeated sub-message's struct, each string's bytes, each packed element. The decode is
//! refused when that estimate is over the limits in [`DecodeLimits`].

use std::mem::size_of;

use super::codec::DecodeLimits;
use super::error::DecodeError;
use super::proto::*;
use super::v2;

/// How a field of a message contributes to the decoded size.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A repeated message: one struct per occurrence, plus what it holds.
    Repeated(&'static Schema),
    /// A singular message: stored inline in its parent, only what it holds counts.
    Inline(&'static Schema),
    /// A string or bytes field: its bytes on the heap.
    Bytes,
    /// A `Bytes` field sharing the input buffer: no allocation of its own.
    Shared,
    /// A repeated string: a `String` per occurrence plus its bytes.
    RepeatedString,
    /// A repeated varint scalar stored in `size` bytes (packed: at most one element per byte).
    RepeatedVarint(usize),
    /// A repeated fixed-width scalar of `size` bytes (packed: exactly len / size elements).
    RepeatedFixed(usize),
}

/// The fields of one message that allocate, by field number (not nameable outside the crate).
#[derive(Debug)]
pub struct Schema {
    size: usize,
    fields: &'static [(u32, Kind)],
}

impl Schema {
    fn kind(&self, field: u32) -> Option<Kind> {
        self.fields.iter().find(|(number, _)| *number == field).map(|(_, kind)| *kind)
    }
}

const fn schema<T>(fields: &'static [(u32, Kind)]) -> Schema {
    Schema { size: size_of::<T>(), fields }
}

static LABEL: Schema = schema::<Label>(&[(1, Kind::Shared), (2, Kind::Shared)]);
static SAMPLE: Schema = schema::<Sample>(&[]);
static EXEMPLAR: Schema = schema::<Exemplar>(&[(1, Kind::Repeated(&LABEL))]);
static BUCKET_SPAN: Schema = schema::<BucketSpan>(&[]);
static HISTOGRAM: Schema = schema::<Histogram>(&[
    (8, Kind::Repeated(&BUCKET_SPAN)),
    (9, Kind::RepeatedVarint(8)),
    (10, Kind::RepeatedFixed(8)),
    (11, Kind::Repeated(&BUCKET_SPAN)),
    (12, Kind::RepeatedVarint(8)),
    (13, Kind::RepeatedFixed(8)),
    (16, Kind::RepeatedFixed(8)),
]);
static TIME_SERIES: Schema = schema::<TimeSeries>(&[
    (1, Kind::Repeated(&LABEL)),
    (2, Kind::Repeated(&SAMPLE)),
    (3, Kind::Repeated(&EXEMPLAR)),
    (4, Kind::Repeated(&HISTOGRAM)),
]);
static METRIC_METADATA: Schema = schema::<MetricMetadata>(&[(2, Kind::Bytes), (4, Kind::Bytes), (5, Kind::Bytes)]);
pub(crate) static WRITE_REQUEST: Schema =
    schema::<WriteRequest>(&[(1, Kind::Repeated(&TIME_SERIES)), (3, Kind::Repeated(&METRIC_METADATA))]);

static LABEL_MATCHER: Schema = schema::<LabelMatcher>(&[(2, Kind::Bytes), (3, Kind::Bytes)]);
static READ_HINTS: Schema = schema::<ReadHints>(&[(2, Kind::Bytes), (5, Kind::RepeatedString)]);
static QUERY: Schema = schema::<Query>(&[(3, Kind::Repeated(&LABEL_MATCHER)), (4, Kind::Inline(&READ_HINTS))]);
pub(crate) static READ_REQUEST: Schema =
    schema::<ReadRequest>(&[(1, Kind::Repeated(&QUERY)), (2, Kind::RepeatedVarint(size_of::<i32>()))]);
static QUERY_RESULT: Schema = schema::<QueryResult>(&[(1, Kind::Repeated(&TIME_SERIES))]);
pub(crate) static READ_RESPONSE: Schema = schema::<ReadResponse>(&[(1, Kind::Repeated(&QUERY_RESULT))]);
static CHUNK: Schema = schema::<Chunk>(&[(4, Kind::Shared)]);
static CHUNKED_SERIES: Schema = schema::<ChunkedSeries>(&[(1, Kind::Repeated(&LABEL)), (2, Kind::Repeated(&CHUNK))]);
pub(crate) static CHUNKED_READ_RESPONSE: Schema =
    schema::<ChunkedReadResponse>(&[(1, Kind::Repeated(&CHUNKED_SERIES))]);
pub(crate) static LABEL_SET: Schema = schema::<LabelSet>(&[(1, Kind::Repeated(&LABEL))]);

static V2_SAMPLE: Schema = schema::<v2::Sample>(&[]);
static V2_EXEMPLAR: Schema = schema::<v2::Exemplar>(&[(1, Kind::RepeatedVarint(size_of::<u32>()))]);
static V2_BUCKET_SPAN: Schema = schema::<v2::BucketSpan>(&[]);
static V2_HISTOGRAM: Schema = schema::<v2::Histogram>(&[
    (8, Kind::Repeated(&V2_BUCKET_SPAN)),
    (9, Kind::RepeatedVarint(8)),
    (10, Kind::RepeatedFixed(8)),
    (11, Kind::Repeated(&V2_BUCKET_SPAN)),
    (12, Kind::RepeatedVarint(8)),
    (13, Kind::RepeatedFixed(8)),
    (16, Kind::RepeatedFixed(8)),
]);
static V2_TIME_SERIES: Schema = schema::<v2::TimeSeries>(&[
    (1, Kind::RepeatedVarint(size_of::<u32>())),
    (2, Kind::Repeated(&V2_SAMPLE)),
    (3, Kind::Repeated(&V2_HISTOGRAM)),
    (4, Kind::Repeated(&V2_EXEMPLAR)),
]);
pub(crate) static V2_REQUEST: Schema =
    schema::<v2::Request>(&[(4, Kind::RepeatedString), (5, Kind::Repeated(&V2_TIME_SERIES))]);

/// Messages whose decoded size can be estimated before decoding; sealed.
pub trait Budgeted: prost::Message + Default + private::Sealed {
    #[doc(hidden)]
    fn schema() -> &'static Schema;
}

mod private {
    pub trait Sealed {}
}

macro_rules! budgeted {
    ($($ty:ty => $schema:ident),* $(,)?) => {$(
        impl private::Sealed for $ty {}
        impl Budgeted for $ty {
            fn schema() -> &'static Schema {
                &$schema
            }
        }
    )*};
}

budgeted! {
    WriteRequest => WRITE_REQUEST,
    ReadRequest => READ_REQUEST,
    ReadResponse => READ_RESPONSE,
    ChunkedReadResponse => CHUNKED_READ_RESPONSE,
    LabelSet => LABEL_SET,
    v2::Request => V2_REQUEST,
}

/// Refuses `data` when decoding it as `M` would allocate more than `limits` allow.
pub(crate) fn check<M: Budgeted>(data: &[u8], limits: &DecodeLimits, message: &'static str) -> Result<(), DecodeError> {
    let schema = M::schema();
    let estimate = (schema.size as u64).saturating_add(estimate(data, schema, 0));
    let by_ratio =
        (data.len() as u64).saturating_mul(limits.max_expansion).saturating_add(DecodeLimits::EXPANSION_SLACK);
    let limit = limits.max_decoded_bytes.min(by_ratio);
    if estimate > limit {
        return Err(DecodeError::DecodedTooLarge { message, estimate, limit, wire_len: data.len() as u64 });
    }
    Ok(())
}

/// Nesting deeper than this is not in any of the schemas; stop there (prost refuses at 100).
const MAX_DEPTH: usize = 16;

/// The bytes the decoded form of `data` holds beyond its own struct. Walks until the end or the
/// first malformed field: prost stops at the same place, having allocated no more than counted.
fn estimate(data: &[u8], schema: &Schema, depth: usize) -> u64 {
    let mut total: u64 = 0;
    let mut pos = 0;
    while pos < data.len() {
        let Some((key, key_len)) = read_varint(&data[pos..]) else { break };
        pos += key_len;
        let (field, wire_type) = ((key >> 3) as u32, key & 7);
        let kind = schema.kind(field);
        match wire_type {
            0 => {
                let Some((_, len)) = read_varint(&data[pos..]) else { break };
                pos += len;
                if let Some(Kind::RepeatedVarint(size)) = kind {
                    total = total.saturating_add(size as u64);
                }
            }
            1 | 5 => {
                let width = if wire_type == 1 { 8 } else { 4 };
                if data.len() - pos < width {
                    break;
                }
                pos += width;
                if let Some(Kind::RepeatedFixed(size)) = kind {
                    total = total.saturating_add(size as u64);
                }
            }
            2 => {
                let Some((len, len_len)) = read_varint(&data[pos..]) else { break };
                pos += len_len;
                if len > (data.len() - pos) as u64 {
                    break;
                }
                let body = &data[pos..pos + len as usize];
                pos += body.len();
                let add = match kind {
                    None => 0,
                    Some(Kind::Repeated(inner)) if depth < MAX_DEPTH => {
                        (inner.size as u64).saturating_add(estimate(body, inner, depth + 1))
                    }
                    Some(Kind::Inline(inner)) if depth < MAX_DEPTH => estimate(body, inner, depth + 1),
                    Some(Kind::Repeated(_) | Kind::Inline(_) | Kind::Shared) => 0,
                    Some(Kind::Bytes) => len,
                    Some(Kind::RepeatedString) => (size_of::<String>() as u64).saturating_add(len),
                    Some(Kind::RepeatedVarint(size)) => len.saturating_mul(size as u64),
                    Some(Kind::RepeatedFixed(_)) => len,
                };
                total = total.saturating_add(add);
            }
            // A group (deprecated, in no remote message): prost skips it as an unknown field and
            // goes on, so skip it too; it allocates nothing.
            3 => match skip_group(&data[pos..], field) {
                Some(len) => pos += len,
                None => break,
            },
            // An end-group without a start, or an invalid wire type: prost stops with an error.
            _ => break,
        }
    }
    total
}

/// The length of a group's contents up to and including its end-group key, nested groups
/// included; `None` when the input ends first or is malformed.
fn skip_group(data: &[u8], field: u32) -> Option<usize> {
    let mut open: Vec<u32> = vec![field];
    let mut pos = 0;
    while let Some(&innermost) = open.last() {
        let (key, key_len) = read_varint(data.get(pos..)?)?;
        pos += key_len;
        let (number, wire_type) = ((key >> 3) as u32, key & 7);
        match wire_type {
            0 => pos += read_varint(data.get(pos..)?)?.1,
            1 => pos += 8,
            5 => pos += 4,
            2 => {
                let (len, len_len) = read_varint(data.get(pos..)?)?;
                pos = pos.checked_add(len_len)?.checked_add(usize::try_from(len).ok()?)?;
            }
            3 if open.len() < MAX_DEPTH => open.push(number),
            4 if number == innermost => {
                open.pop();
            }
            _ => return None,
        }
        if pos > data.len() {
            return None;
        }
    }
    Some(pos)
}

fn read_varint(data: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    for (idx, &byte) in data.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * idx);
        if byte < 0x80 {
            return Some((value, idx + 1));
        }
    }
    None
}
