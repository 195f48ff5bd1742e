//! The streamed remote-read framing (`STREAMED_XOR_CHUNKS`, Prometheus'
//! `storage/remote/chunked.go`): each frame is the data's length as a uvarint, the big-endian
//! CRC32-Castagnoli of the data, then the data, one protobuf `ChunkedReadResponse`.

use bytes::Bytes;
use prost::Message;

use super::codec::{decode_protobuf, DecodeLimits};
use super::error::DecodeError;
use super::proto::ChunkedReadResponse;
use crate::Error;

/// CRC32 with the Castagnoli polynomial (iSCSI), slice-by-16 table built at compile time.
static CASTAGNOLI: crc::Crc<u32, crc::Table<16>> = crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);

/// CRC32-Castagnoli of `data`, the checksum of a streamed remote-read frame.
pub fn crc32c(data: &[u8]) -> u32 {
    CASTAGNOLI.checksum(data)
}

/// Appends one frame holding `message` to `out`.
pub fn encode_chunked_frame(message: &ChunkedReadResponse, out: &mut Vec<u8>) {
    let data = message.encode_to_vec();
    append_frame(&data, out);
}

fn append_frame(data: &[u8], out: &mut Vec<u8>) {
    let mut size = data.len() as u64;
    while size >= 0x80 {
        out.push((size as u8) | 0x80);
        size >>= 7;
    }
    out.push(size as u8);
    out.extend_from_slice(&crc32c(data).to_be_bytes());
    out.extend_from_slice(data);
}

/// One raw frame of a streamed response: where it starts in the body, its checksum (verified),
/// and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Byte offset of the frame's size prefix in the body.
    pub offset: usize,
    /// The CRC32-Castagnoli from the frame header, equal to that of `data`.
    pub crc32c: u32,
    /// The frame data: an encoded `ChunkedReadResponse`.
    pub data: Bytes,
}

impl Frame {
    /// Decodes the frame data within `limits`.
    pub fn decode(&self, limits: &DecodeLimits) -> Result<ChunkedReadResponse, Error> {
        decode_protobuf(self.data.clone(), limits)
    }
}

/// Iterates over the frames of a streamed remote-read response body, yielding each decoded
/// `ChunkedReadResponse`. Stops after the first error. A body that ends inside a frame yields
/// [`DecodeError::FrameTruncated`], so a caller reading a stream can tell "need more bytes".
#[derive(Debug, Clone)]
pub struct ChunkedFrames {
    body: Bytes,
    position: usize,
    limits: DecodeLimits,
    failed: bool,
}

impl ChunkedFrames {
    /// Frames of `body`, each at most `limits.max_frame_bytes` long.
    pub fn new(body: impl Into<Bytes>, limits: &DecodeLimits) -> ChunkedFrames {
        ChunkedFrames { body: body.into(), position: 0, limits: *limits, failed: false }
    }

    /// Offset of the first byte not yet consumed.
    pub fn position(&self) -> usize {
        self.position
    }

    /// The next frame, checksum verified, without decoding its data.
    pub fn next_frame(&mut self) -> Option<Result<Frame, Error>> {
        if self.failed || self.position >= self.body.len() {
            return None;
        }
        let result = self.split_frame();
        if result.is_err() {
            self.failed = true;
        }
        Some(result.map_err(Error::from))
    }

    fn split_frame(&mut self) -> Result<Frame, DecodeError> {
        let offset = self.position;
        let rest = &self.body[offset..];
        let (size, varint_len) = read_uvarint(rest).map_err(|truncated| {
            if truncated {
                DecodeError::FrameTruncated {
                    offset: offset as u64,
                    needed: 1 + rest.len() as u64,
                    available: rest.len() as u64,
                }
            } else {
                DecodeError::FrameBadSize { offset: offset as u64 }
            }
        })?;
        if size > self.limits.max_frame_bytes {
            return Err(DecodeError::FrameTooLarge { offset: offset as u64, size, limit: self.limits.max_frame_bytes });
        }
        let available = rest.len() as u64;
        let needed = varint_len as u64 + 4 + size;
        if needed > available {
            return Err(DecodeError::FrameTruncated { offset: offset as u64, needed, available });
        }
        // `needed <= rest.len()`, so these conversions and slices are in range.
        let data_start = offset + varint_len + 4;
        let data_end = data_start + size as usize;
        let header = &rest[varint_len..varint_len + 4];
        let expected = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let data = self.body.slice(data_start..data_end);
        let actual = crc32c(&data);
        if actual != expected {
            return Err(DecodeError::FrameChecksum { offset: offset as u64, expected, actual });
        }
        self.position = data_end;
        Ok(Frame { offset, crc32c: expected, data })
    }
}

impl Iterator for ChunkedFrames {
    type Item = Result<ChunkedReadResponse, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let frame = self.next_frame()?;
        let decoded = frame.and_then(|frame| frame.decode(&self.limits));
        if decoded.is_err() {
            self.failed = true;
        }
        Some(decoded)
    }
}

/// Reads a uvarint as Go's `binary.ReadUvarint`: at most 10 bytes, no more than 64 bits.
/// `Err(true)` when the input ends first, `Err(false)` when it overflows.
fn read_uvarint(input: &[u8]) -> Result<(u64, usize), bool> {
    let mut value: u64 = 0;
    for (idx, &byte) in input.iter().enumerate().take(10) {
        if idx == 9 && byte > 1 {
            return Err(false);
        }
        value |= u64::from(byte & 0x7f) << (7 * idx);
        if byte < 0x80 {
            return Ok((value, idx + 1));
        }
    }
    Err(input.len() < 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uvarints() {
        let check = |input: &[u8], expected: Result<(u64, usize), bool>| {
            assert_eq!(read_uvarint(input), expected, "{input:02x?}");
        };
        check(&[0], Ok((0, 1)));
        check(&[0x8a, 0x01], Ok((138, 2)));
        check(&[0x8a, 0x01, 0xff], Ok((138, 2)));
        check(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], Ok((u64::MAX, 10)));
        check(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], Err(false));
        check(&[0x80; 11], Err(false));
        check(&[], Err(true));
        check(&[0x80, 0x80], Err(true));
    }

    #[test]
    fn crc32c_check_value() {
        // The catalogue check value of CRC-32/ISCSI.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn frames_round_trip_and_errors() {
        use crate::remote::{Chunk, ChunkEncoding, ChunkedSeries, Label};
        let message = |idx: i64| ChunkedReadResponse {
            chunked_series: vec![ChunkedSeries {
                labels: vec![Label::new("__name__", format!("m{idx}"))],
                chunks: vec![Chunk {
                    min_time_ms: idx,
                    max_time_ms: idx + 10,
                    r#type: ChunkEncoding::Xor as i32,
                    data: Bytes::from(vec![idx as u8; 200]),
                }],
            }],
            query_index: idx,
        };
        let mut body = Vec::new();
        for idx in 0..3 {
            encode_chunked_frame(&message(idx), &mut body);
        }
        let decoded: Result<Vec<_>, _> = ChunkedFrames::new(body.clone(), &DecodeLimits::default()).collect();
        assert_eq!(decoded.unwrap(), (0..3).map(message).collect::<Vec<_>>());

        let frame_len = |idx: i64| {
            let mut one = Vec::new();
            encode_chunked_frame(&message(idx), &mut one);
            one.len()
        };
        let (first_len, second_len, third_len) = (frame_len(0), frame_len(1), frame_len(2));
        let error_of = |body: Vec<u8>, limits: DecodeLimits| -> String {
            let results: Vec<_> = ChunkedFrames::new(body, &limits).collect();
            let errors: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
            assert_eq!(errors.len(), 1, "exactly one error, then the iterator stops");
            assert!(results.last().unwrap().is_err());
            errors[0].to_string()
        };
        let defaults = DecodeLimits::default();

        let truncated = body[..body.len() - 1].to_vec();
        assert_eq!(
            error_of(truncated, defaults),
            format!(
                "chunked frame at byte {}: truncated, needs {} bytes, {} present",
                first_len + second_len,
                third_len,
                third_len - 1
            )
        );

        let mut corrupt = body.clone();
        corrupt[first_len + 10] ^= 0x01;
        assert!(error_of(corrupt, defaults)
            .starts_with(&format!("chunked frame at byte {first_len}: checksum mismatch, header says 0x")));

        let small = DecodeLimits { max_frame_bytes: 100, ..defaults };
        assert!(error_of(body.clone(), small).starts_with("chunked frame at byte 0: size "));
        assert!(error_of(body.clone(), small).ends_with(" exceeds limit 100 B"));

        assert_eq!(error_of(vec![0xff; 12], defaults), "chunked frame at byte 0: invalid uvarint size");

        // A well-framed frame whose data is not a ChunkedReadResponse.
        let mut garbage = Vec::new();
        append_frame(&[0x0a, 0x05, 0x01], &mut garbage);
        assert!(error_of(garbage, defaults).starts_with("protobuf: invalid ChunkedReadResponse: "));

        // An empty frame is an empty message.
        let mut empty = Vec::new();
        append_frame(&[], &mut empty);
        assert_eq!(empty, [0, 0, 0, 0, 0]);
        let decoded: Vec<_> = ChunkedFrames::new(empty, &defaults).collect();
        assert_eq!(decoded, vec![Ok(ChunkedReadResponse::default())]);
    }
}
