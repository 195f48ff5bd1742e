//! The XOR chunk of a real Prometheus remote-read response decodes byte-exactly, and
//! re-encoding its samples gives the same bytes.

#[path = "../../testsupport/shared.rs"]
mod shared;

use sextant_tsdb::{XorChunk, XorIterator};

fn uvarint(data: &[u8], pos: &mut usize) -> u64 {
    let mut x = 0u64;
    let mut shift = 0;
    loop {
        let b = data[*pos];
        *pos += 1;
        x |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return x;
        }
        shift += 7;
    }
}

/// The protobuf fields of one message: (field number, varint value or bytes).
fn fields(msg: &[u8]) -> Vec<(u64, Result<u64, &[u8]>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < msg.len() {
        let key = uvarint(msg, &mut pos);
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => out.push((field, Ok(uvarint(msg, &mut pos)))),
            2 => {
                let len = uvarint(msg, &mut pos) as usize;
                out.push((field, Err(&msg[pos..pos + len])));
                pos += len;
            }
            other => panic!("unexpected wire type {other}"),
        }
    }
    out
}

/// (min_time_ms, max_time_ms, type, data) of every chunk in every frame.
fn chunks_in_response(body: &[u8]) -> Vec<(i64, i64, u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let len = uvarint(body, &mut pos) as usize;
        pos += 4; // CRC32-Castagnoli of the message
        let msg = &body[pos..pos + len];
        pos += len;
        for (f, series) in fields(msg) {
            let (1, Err(series)) = (f, series) else { continue };
            for (f, chunk) in fields(series) {
                let (2, Err(chunk)) = (f, chunk) else { continue };
                let (mut min, mut max, mut kind, mut data) = (0, 0, 0, Vec::new());
                for (f, v) in fields(chunk) {
                    match (f, v) {
                        (1, Ok(x)) => min = x as i64,
                        (2, Ok(x)) => max = x as i64,
                        (3, Ok(x)) => kind = x,
                        (4, Err(d)) => data = d.to_vec(),
                        _ => {}
                    }
                }
                out.push((min, max, kind, data));
            }
        }
    }
    out
}

fn base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn remote_read_xor_chunk_is_byte_exact() {
    let Some(dir) = shared::shared_dir("remote-read-chunks") else { return };
    let dir = dir.join("conformance/api/remote-read");
    let body = std::fs::read(dir.join("streamed_xor_chunks.response.bin")).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("streamed_xor_chunks.json")).unwrap()).unwrap();
    let chunks = chunks_in_response(&body);
    let described: Vec<&serde_json::Value> = json["frames"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["decoded"]["chunked_series"].as_array().unwrap())
        .flat_map(|s| s["chunks"].as_array().unwrap())
        .collect();
    assert_eq!(chunks.len(), described.len());
    let mut passed = 0;
    for ((min, max, kind, data), want) in chunks.iter().zip(described) {
        assert_eq!(*kind, 1, "XOR");
        assert_eq!(data, &base64(want["data"].as_str().unwrap()));
        assert_eq!(min.to_string(), want["min_time_ms"].as_str().unwrap());
        let mut it = XorIterator::new(&data[..]);
        let mut samples = Vec::new();
        while it.next_sample() {
            samples.push(it.at());
        }
        assert!(!it.is_corrupt());
        assert_eq!(samples.len(), it.num_samples());
        assert_eq!(samples.first().map(|s| s.0), Some(*min));
        assert_eq!(samples.last().map(|s| s.0), Some(*max));
        let mut chunk = XorChunk::new();
        for &(t, v) in &samples {
            chunk.append(t, v);
        }
        assert_eq!(chunk.bytes(), &data[..], "re-encoding gives the same bytes");
        passed += 1;
    }
    println!("conformance remote-read-chunks: {passed} of {} chunks byte-exact", chunks.len());
}
