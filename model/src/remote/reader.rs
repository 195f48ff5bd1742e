//! Remote-write 1.0 requests read in place: a [`WriteRequestReader`] walks the protobuf of a
//! decompressed body and yields one [`TimeSeriesView`] per series, whose label names, values
//! and samples are read from the body's bytes when asked for. Nothing is allocated, so there is
//! no decode budget to check: memory does not grow with the request.
//!
//! Each series is checked against the same rules prost applies to
//! [`WriteRequest`](super::WriteRequest) before it is yielded (wire types of known fields,
//! varints, lengths, groups and prost's nesting limit, UTF-8 of metadata strings, the contents
//! of exemplars and histograms), so a body is accepted here exactly when prost accepts it, and
//! the series, labels and samples read are those prost decodes. A reader that met an error
//! yields it once and then ends.

use super::error::DecodeError;
use super::proto::Sample;
use crate::Error;

/// prost's `RECURSION_LIMIT`: how deep messages and groups may nest below the top message.
const RECURSION_LIMIT: u32 = 100;

const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_START_GROUP: u8 = 3;
const WIRE_END_GROUP: u8 = 4;
const WIRE_FIXED32: u8 = 5;

/// A wire-format error: what and where (offset in the decoded body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WireError {
    offset: usize,
    what: &'static str,
}

impl WireError {
    fn into_error(self) -> Error {
        DecodeError::Protobuf { message: "WriteRequest", detail: format!("at byte {}: {}", self.offset, self.what) }
            .into()
    }
}

type WireResult<T> = Result<T, WireError>;

/// One field's value as it is on the wire.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32,
    Len(&'a [u8]),
    /// A group, already skipped (and checked).
    Group,
}

/// A cursor over the fields of one message. `base` is the offset of `data` in the body.
#[derive(Debug, Clone, Copy)]
struct Fields<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
    /// prost's recursion budget for this message's fields.
    depth_left: u32,
}

impl<'a> Fields<'a> {
    fn new(data: &'a [u8], base: usize, depth_left: u32) -> Fields<'a> {
        Fields { data, pos: 0, base, depth_left }
    }

    fn error(&self, what: &'static str) -> WireError {
        WireError { offset: self.base + self.pos, what }
    }

    /// The fields of a nested message found at `body` (a slice of `self.data`); checks the
    /// nesting limit as prost does on entering a message.
    #[inline]
    fn nested(&self, body: &'a [u8]) -> WireResult<Fields<'a>> {
        if self.depth_left == 0 {
            return Err(self.error("recursion limit reached"));
        }
        let base = self.base + (body.as_ptr() as usize - self.data.as_ptr() as usize);
        Ok(Fields::new(body, base, self.depth_left - 1))
    }

    #[inline]
    fn varint(&mut self) -> WireResult<u64> {
        match read_varint(&self.data[self.pos..]) {
            Some((value, len)) => {
                self.pos += len;
                Ok(value)
            }
            None => Err(self.error("invalid varint")),
        }
    }

    /// The next field: its number and value, `None` at the end.
    #[inline]
    fn next_field(&mut self) -> WireResult<Option<(u32, Value<'a>)>> {
        if self.pos >= self.data.len() {
            return Ok(None);
        }
        let (number, wire_type) = self.key()?;
        let value = self.value(number, wire_type, self.depth_left)?;
        Ok(Some((number, value)))
    }

    #[inline]
    fn key(&mut self) -> WireResult<(u32, u8)> {
        let key = self.varint()?;
        if key > u64::from(u32::MAX) {
            return Err(self.error("invalid key value"));
        }
        let wire_type = (key & 7) as u8;
        if wire_type > WIRE_FIXED32 {
            return Err(self.error("invalid wire type value"));
        }
        let number = (key >> 3) as u32;
        if number == 0 {
            return Err(self.error("invalid tag value: 0"));
        }
        Ok((number, wire_type))
    }

    /// Reads (or, for a group, skips) a value; `depth_left` as prost's `skip_field` counts it.
    #[inline]
    fn value(&mut self, number: u32, wire_type: u8, depth_left: u32) -> WireResult<Value<'a>> {
        match wire_type {
            WIRE_VARINT => Ok(Value::Varint(self.varint()?)),
            WIRE_FIXED64 => {
                let bytes = self.take(8)?;
                Ok(Value::Fixed64(u64::from_le_bytes(bytes.try_into().map_err(|_| self.error("buffer underflow"))?)))
            }
            WIRE_FIXED32 => {
                self.take(4)?;
                Ok(Value::Fixed32)
            }
            WIRE_LEN => {
                let len = self.varint()?;
                let len = usize::try_from(len).map_err(|_| self.error("buffer underflow"))?;
                Ok(Value::Len(self.take(len)?))
            }
            WIRE_START_GROUP => {
                self.skip_group(number, depth_left)?;
                Ok(Value::Group)
            }
            _ => Err(self.error("unexpected end group tag")),
        }
    }

    #[inline]
    fn take(&mut self, len: usize) -> WireResult<&'a [u8]> {
        if self.data.len() - self.pos < len {
            return Err(self.error("buffer underflow"));
        }
        let out = &self.data[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }

    /// Skips a group's contents up to its end-group key, as prost's `skip_field`.
    fn skip_group(&mut self, number: u32, depth_left: u32) -> WireResult<()> {
        if depth_left == 0 {
            return Err(self.error("recursion limit reached"));
        }
        loop {
            let (inner, wire_type) = self.key()?;
            if wire_type == WIRE_END_GROUP {
                if inner != number {
                    return Err(self.error("unexpected end group tag"));
                }
                return Ok(());
            }
            if depth_left == 1 {
                return Err(self.error("recursion limit reached"));
            }
            self.value(inner, wire_type, depth_left - 1)?;
        }
    }

    /// An unknown field: prost skips it, after checking the nesting limit.
    fn unknown(&self) -> WireResult<()> {
        if self.depth_left == 0 {
            return Err(self.error("recursion limit reached"));
        }
        Ok(())
    }

    fn wrong_type(&self) -> WireError {
        self.error("invalid wire type")
    }
}

/// Decodes a varint as prost does: at most 10 bytes, the tenth at most 1.
#[inline]
fn read_varint(data: &[u8]) -> Option<(u64, usize)> {
    let first = *data.first()?;
    if first < 0x80 {
        return Some((u64::from(first), 1));
    }
    let mut value: u64 = 0;
    for (idx, &byte) in data.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * idx);
        if byte < 0x80 {
            if idx == 9 && byte >= 2 {
                return None;
            }
            return Some((value, idx + 1));
        }
    }
    None
}

/// How a field of a message that is checked, not read, must look on the wire.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Varint,
    Fixed64,
    Bytes,
    /// A string: bytes that must be UTF-8.
    Str,
    Message(&'static [(u32, Expect)]),
    /// A repeated varint scalar: unpacked or packed.
    RepeatedVarint,
    /// A repeated 8-byte scalar: unpacked or packed.
    RepeatedFixed64,
}

static LABEL: &[(u32, Expect)] = &[(1, Expect::Bytes), (2, Expect::Bytes)];
static EXEMPLAR: &[(u32, Expect)] = &[(1, Expect::Message(LABEL)), (2, Expect::Fixed64), (3, Expect::Varint)];
static BUCKET_SPAN: &[(u32, Expect)] = &[(1, Expect::Varint), (2, Expect::Varint)];
static HISTOGRAM: &[(u32, Expect)] = &[
    (1, Expect::Varint),
    (2, Expect::Fixed64),
    (3, Expect::Fixed64),
    (4, Expect::Varint),
    (5, Expect::Fixed64),
    (6, Expect::Varint),
    (7, Expect::Fixed64),
    (8, Expect::Message(BUCKET_SPAN)),
    (9, Expect::RepeatedVarint),
    (10, Expect::RepeatedFixed64),
    (11, Expect::Message(BUCKET_SPAN)),
    (12, Expect::RepeatedVarint),
    (13, Expect::RepeatedFixed64),
    (14, Expect::Varint),
    (15, Expect::Varint),
    (16, Expect::RepeatedFixed64),
];
static METRIC_METADATA: &[(u32, Expect)] = &[(1, Expect::Varint), (2, Expect::Str), (4, Expect::Str), (5, Expect::Str)];

/// Checks a message against `schema` as prost would decode it.
#[inline(never)]
fn check_message(mut fields: Fields<'_>, schema: &[(u32, Expect)]) -> WireResult<()> {
    while let Some((number, value)) = fields.next_field()? {
        let Some(&(_, expect)) = schema.iter().find(|(n, _)| *n == number) else {
            fields.unknown()?;
            continue;
        };
        match (expect, value) {
            (Expect::Varint | Expect::RepeatedVarint, Value::Varint(_))
            | (Expect::Fixed64 | Expect::RepeatedFixed64, Value::Fixed64(_))
            | (Expect::Bytes, Value::Len(_)) => {}
            (Expect::Str, Value::Len(bytes)) => {
                if std::str::from_utf8(bytes).is_err() {
                    return Err(fields.error("invalid string value: data is not UTF-8 encoded"));
                }
            }
            (Expect::Message(inner), Value::Len(body)) => check_message(fields.nested(body)?, inner)?,
            (Expect::RepeatedVarint, Value::Len(mut packed)) => {
                while !packed.is_empty() {
                    let (_, len) = read_varint(packed).ok_or_else(|| fields.error("invalid varint"))?;
                    packed = &packed[len..];
                }
            }
            (Expect::RepeatedFixed64, Value::Len(packed)) => {
                if packed.len() % 8 != 0 {
                    return Err(fields.error("buffer underflow"));
                }
            }
            _ => return Err(fields.wrong_type()),
        }
    }
    Ok(())
}

/// Reads the series of a remote-write 1.0 `WriteRequest` from its protobuf (the decompressed
/// body) without copying or allocating. Each series is checked as prost would decode it (wire
/// types, varints, lengths, groups and prost's nesting limit, exemplars and histograms) before
/// it is yielded, so a body is accepted exactly when prost accepts it; metadata entries are
/// checked (UTF-8 included) and skipped. After an error the reader ends.
///
/// ```
/// use sextant_model::remote::{self, Label, Sample, TimeSeries, WriteRequest, WriteRequestReader};
///
/// let request = WriteRequest {
///     timeseries: vec![TimeSeries {
///         labels: vec![Label::new("__name__", "up"), Label::new("job", "node")],
///         samples: vec![Sample { value: 1.0, timestamp: 1_000 }],
///         ..Default::default()
///     }],
///     ..Default::default()
/// };
/// let pb = remote::Message::encode_to_vec(&request);
/// let mut reader = WriteRequestReader::new(&pb);
/// let series = reader.next().unwrap()?;
/// let labels: Vec<(&[u8], &[u8])> = series.labels().collect();
/// assert_eq!(labels, [(&b"__name__"[..], &b"up"[..]), (&b"job"[..], &b"node"[..])]);
/// assert_eq!(series.samples().collect::<Vec<_>>(), [Sample { value: 1.0, timestamp: 1_000 }]);
/// assert!(reader.next().is_none());
/// # Ok::<(), sextant_model::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct WriteRequestReader<'a> {
    fields: Fields<'a>,
    failed: bool,
}

impl<'a> WriteRequestReader<'a> {
    /// A reader over the protobuf `data` of a `WriteRequest`.
    pub fn new(data: &'a [u8]) -> WriteRequestReader<'a> {
        WriteRequestReader { fields: Fields::new(data, 0, RECURSION_LIMIT), failed: false }
    }

    fn next_series(&mut self) -> WireResult<Option<TimeSeriesView<'a>>> {
        while let Some((number, value)) = self.fields.next_field()? {
            match (number, value) {
                (1, Value::Len(body)) => return TimeSeriesView::parse(self.fields.nested(body)?).map(Some),
                (3, Value::Len(body)) => check_message(self.fields.nested(body)?, METRIC_METADATA)?,
                (1 | 3, _) => return Err(self.fields.wrong_type()),
                _ => self.fields.unknown()?,
            }
        }
        Ok(None)
    }
}

impl<'a> Iterator for WriteRequestReader<'a> {
    type Item = Result<TimeSeriesView<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_series() {
            Ok(series) => series.map(Ok),
            Err(err) => {
                self.failed = true;
                Some(Err(err.into_error()))
            }
        }
    }
}

/// One `TimeSeries` of a request read by [`WriteRequestReader`], already checked; its labels
/// and samples are read from the body on demand.
#[derive(Debug, Clone, Copy)]
pub struct TimeSeriesView<'a> {
    data: &'a [u8],
    /// The bytes from the first label field to the end of the last, when no other field lies
    /// between them.
    labels_span: Option<&'a [u8]>,
    n_labels: u32,
    n_samples: u32,
    n_exemplars: u32,
    n_histograms: u32,
}

impl<'a> TimeSeriesView<'a> {
    fn parse(mut fields: Fields<'a>) -> WireResult<TimeSeriesView<'a>> {
        let data = fields.data;
        let mut view =
            TimeSeriesView { data, labels_span: None, n_labels: 0, n_samples: 0, n_exemplars: 0, n_histograms: 0 };
        // Where the label fields start and end; `contiguous` until another field comes between.
        let (mut span_start, mut span_end, mut contiguous) = (0usize, 0usize, true);
        loop {
            let start = fields.pos;
            let Some((number, value)) = fields.next_field()? else { break };
            match (number, value) {
                (1, Value::Len(body)) => {
                    check_label(fields.nested(body)?)?;
                    if view.n_labels == 0 {
                        span_start = start;
                    } else if span_end != start {
                        contiguous = false;
                    }
                    span_end = fields.pos;
                    view.n_labels += 1;
                }
                (2, Value::Len(body)) => {
                    check_sample(fields.nested(body)?)?;
                    view.n_samples += 1;
                }
                (3, Value::Len(body)) => {
                    check_message(fields.nested(body)?, EXEMPLAR)?;
                    view.n_exemplars += 1;
                }
                (4, Value::Len(body)) => {
                    check_message(fields.nested(body)?, HISTOGRAM)?;
                    view.n_histograms += 1;
                }
                (1..=4, _) => return Err(fields.wrong_type()),
                _ => fields.unknown()?,
            }
        }
        if view.n_labels > 0 && contiguous {
            view.labels_span = Some(&data[span_start..span_end]);
        }
        Ok(view)
    }

    /// The (name, value) pairs of the series' labels, in wire order, as bytes of the body
    /// (not checked for UTF-8, order or uniqueness: that is for whoever builds labels from them).
    pub fn labels(&self) -> LabelPairs<'a> {
        LabelPairs { fields: Fields::new(self.data, 0, RECURSION_LIMIT), left: self.n_labels }
    }

    /// The wire bytes of all label fields when they are contiguous (as every encoder writes
    /// them), `None` otherwise or without labels. Equal bytes mean equal labels: a cache key.
    pub fn labels_wire(&self) -> Option<&'a [u8]> {
        self.labels_span
    }

    /// The float samples, in wire order.
    pub fn samples(&self) -> Samples<'a> {
        Samples { fields: Fields::new(self.data, 0, RECURSION_LIMIT), left: self.n_samples }
    }

    pub fn num_labels(&self) -> usize {
        self.n_labels as usize
    }

    pub fn num_samples(&self) -> usize {
        self.n_samples as usize
    }

    /// Exemplars in the series (checked, not read).
    pub fn num_exemplars(&self) -> usize {
        self.n_exemplars as usize
    }

    /// Native histograms in the series (checked, not read).
    pub fn num_histograms(&self) -> usize {
        self.n_histograms as usize
    }
}

/// Checks a `Label` message.
#[inline]
fn check_label(mut fields: Fields<'_>) -> WireResult<()> {
    while let Some((number, value)) = fields.next_field()? {
        match (number, value) {
            (1 | 2, Value::Len(_)) => {}
            (1 | 2, _) => return Err(fields.wrong_type()),
            _ => fields.unknown()?,
        }
    }
    Ok(())
}

/// Checks a `Sample` message.
#[inline]
fn check_sample(mut fields: Fields<'_>) -> WireResult<()> {
    while let Some((number, value)) = fields.next_field()? {
        match (number, value) {
            (1, Value::Fixed64(_)) | (2, Value::Varint(_)) => {}
            (1 | 2, _) => return Err(fields.wrong_type()),
            _ => fields.unknown()?,
        }
    }
    Ok(())
}

/// The label pairs of a [`TimeSeriesView`]; see [`TimeSeriesView::labels`].
#[derive(Debug, Clone)]
pub struct LabelPairs<'a> {
    fields: Fields<'a>,
    left: u32,
}

impl<'a> Iterator for LabelPairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        // The series was checked: these reads cannot fail, and stop the iteration if they did.
        while let Ok(Some((number, value))) = self.fields.next_field() {
            if let (1, Value::Len(body)) = (number, value) {
                self.left -= 1;
                let (mut name, mut label_value): (&[u8], &[u8]) = (&[], &[]);
                let mut label = Fields::new(body, 0, RECURSION_LIMIT);
                while let Ok(Some((number, value))) = label.next_field() {
                    match (number, value) {
                        (1, Value::Len(bytes)) => name = bytes,
                        (2, Value::Len(bytes)) => label_value = bytes,
                        _ => {}
                    }
                }
                return Some((name, label_value));
            }
        }
        self.left = 0;
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

/// The samples of a [`TimeSeriesView`]; see [`TimeSeriesView::samples`].
#[derive(Debug, Clone)]
pub struct Samples<'a> {
    fields: Fields<'a>,
    left: u32,
}

impl Iterator for Samples<'_> {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        if self.left == 0 {
            return None;
        }
        while let Ok(Some((number, value))) = self.fields.next_field() {
            if let (2, Value::Len(body)) = (number, value) {
                self.left -= 1;
                let mut sample = Sample { value: 0.0, timestamp: 0 };
                let mut fields = Fields::new(body, 0, RECURSION_LIMIT);
                while let Ok(Some((number, value))) = fields.next_field() {
                    match (number, value) {
                        (1, Value::Fixed64(bits)) => sample.value = f64::from_bits(bits),
                        (2, Value::Varint(t)) => sample.timestamp = t as i64,
                        _ => {}
                    }
                }
                return Some(sample);
            }
        }
        self.left = 0;
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_as_prost() {
        let check = |bytes: &[u8], expected: Option<(u64, usize)>| {
            assert_eq!(read_varint(bytes), expected, "{bytes:02x?}");
        };
        check(&[0x00], Some((0, 1)));
        check(&[0x96, 0x01], Some((150, 2)));
        check(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], Some((u64::MAX, 10)));
        check(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], None);
        check(&[0x80; 11], None);
        check(&[0x80], None);
        check(&[], None);
    }
}
