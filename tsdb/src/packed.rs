//! Full head chunks in a denser encoding than XOR.
//!
//! The head appends to a Prometheus XOR chunk; when the chunk is full it is stored either as
//! that XOR chunk or, when the values are decimal numbers with few digits (most exporter
//! data: counters and gauges printed with a fixed number of decimals), as a *packed* chunk:
//! the same delta-of-delta timestamps, and the values scaled to integers whose deltas (or
//! deltas of deltas) are written with one fixed bit width per chunk. Every stored chunk starts
//! with an encoding byte (`tsdb/FORMAT.md`, "Stored head chunks"). Remote read and queries see
//! samples; XOR bytes are produced again from them when needed, identical to the original
//! (XOR encoding is a function of the samples).

use crate::chunk::XorIterator;

/// Stored chunk holding a Prometheus XOR chunk after the encoding byte.
pub(crate) const ENC_XOR: u8 = 1;
/// Stored chunk in the packed encoding.
pub(crate) const ENC_PACKED: u8 = 2;

const MODE_DELTA: u8 = 1;
const MODE_DELTA_OF_DELTA: u8 = 2;
/// Largest decimal exponent tried.
const MAX_EXPONENT: u32 = 9;
const POW10: [f64; 10] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// A stored chunk for the XOR chunk `xor`: packed when that is smaller, else `xor` behind
/// the XOR encoding byte.
pub(crate) fn store(xor: &[u8]) -> Vec<u8> {
    if let Some(packed) = pack(xor) {
        if packed.len() < xor.len() + 1 {
            return packed;
        }
    }
    store_xor(xor)
}

/// The XOR chunk `xor` behind the XOR encoding byte.
pub(crate) fn store_xor(xor: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(xor.len() + 1);
    out.push(ENC_XOR);
    out.extend_from_slice(xor);
    out
}

/// `v · 10^e` when that is an integer below 2^53 from which `v` comes back exactly.
#[inline]
fn exact(v: f64, e: u32) -> Option<i64> {
    const LIMIT: f64 = 9_007_199_254_740_992.0;
    if e == 0 {
        // No division needed: an integer-valued double below 2^53 (and not -0.0).
        let x = v as i64;
        return (v.abs() < LIMIT && (x as f64).to_bits() == v.to_bits()).then_some(x);
    }
    let scale = POW10[e as usize];
    let scaled = (v * scale).round();
    // Also false for NaN.
    if scaled.abs() >= LIMIT || scaled.is_nan() {
        return None;
    }
    let x = scaled as i64;
    ((x as f64 / scale).to_bits() == v.to_bits()).then_some(x)
}

/// The integers `v · 10^e` for the smallest `e` that represents every value exactly.
fn decimals(values: impl Iterator<Item = f64> + Clone, ints: &mut Vec<i64>) -> Option<u8> {
    let mut e = 0u32;
    'exponent: loop {
        ints.clear();
        for v in values.clone() {
            match exact(v, e) {
                Some(x) => ints.push(x),
                None => {
                    // The smallest exponent for this value; the earlier ones are redone with it.
                    e = (e + 1..=MAX_EXPONENT).find(|&e| exact(v, e).is_some())?;
                    continue 'exponent;
                }
            }
        }
        return Some(e as u8);
    }
}

fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// Buffers reused by [`pack`] on each thread: timestamps, values, scaled values.
#[derive(Default)]
struct Scratch {
    ts: Vec<i64>,
    values: Vec<f64>,
    ints: Vec<i64>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// The packed encoding of an XOR chunk's samples, `None` when the values are not decimals.
pub(crate) fn pack(xor: &[u8]) -> Option<Vec<u8>> {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => pack_with(xor, &mut scratch),
        Err(_) => pack_with(xor, &mut Scratch::default()),
    })
}

/// [`pack`] with its buffers given: decodes the chunk once, scaling values to integers at
/// exponent 0 as it goes (integers are the common case); other exponents are found after.
fn pack_with(xor: &[u8], scratch: &mut Scratch) -> Option<Vec<u8>> {
    let Scratch { ts, values, ints } = scratch;
    ts.clear();
    values.clear();
    ints.clear();
    let capacity = xor.get(..2).map_or(0, |c| usize::from(u16::from_be_bytes([c[0], c[1]])));
    ts.reserve(capacity);
    ints.reserve(capacity);
    let mut integers = true;
    let ok = crate::chunk::decode_all(xor, |t, v_bits| {
        let v = f64::from_bits(v_bits);
        ts.push(t);
        if integers {
            match exact(v, 0) {
                Some(x) => {
                    ints.push(x);
                    return;
                }
                None => {
                    // Integers so far: their values come back exactly from the integers.
                    integers = false;
                    values.extend(ints.iter().map(|&x| x as f64));
                }
            }
        }
        values.push(v);
    });
    if !ok || ts.is_empty() {
        return None;
    }
    let e = if integers { 0 } else { decimals(values.iter().copied(), ints)? };
    Some(encode(ts, ints, e))
}

/// The packed chunk of timestamps `ts` and values `ints · 10^-e` (as many, at least one).
fn encode(ts: &[i64], ints: &[i64], e: u8) -> Vec<u8> {
    // Bits and non-zero counts of the deltas and of the deltas of deltas, in one pass.
    let (mut or_delta, mut nz_delta, mut or_dod, mut nz_dod) = (0u64, 0u32, 0u64, 0u32);
    let mut prev_delta = 0i64;
    for w in ints.windows(2) {
        let delta = w[1].wrapping_sub(w[0]);
        let (z, zz) = (zigzag(delta), zigzag(delta.wrapping_sub(prev_delta)));
        prev_delta = delta;
        or_delta |= z;
        nz_delta += u32::from(z != 0);
        or_dod |= zz;
        nz_dod += u32::from(zz != 0);
    }
    let (w_delta, w_dod) = (64 - or_delta.leading_zeros(), 64 - or_dod.leading_zeros());
    let cost = |w: u32, nz: u32| u64::from(w) * u64::from(nz);
    let (mode, w) = if cost(w_dod, nz_dod) < cost(w_delta, nz_delta) {
        (MODE_DELTA_OF_DELTA, w_dod)
    } else {
        (MODE_DELTA, w_delta)
    };
    let n = ts.len().min(ints.len());
    let mut out = BitWriter { bytes: Vec::with_capacity(32 + n / 4), acc: 0, n: 0 };
    out.bytes.extend_from_slice(&[ENC_PACKED, mode, e, w as u8]);
    put_uvarint(&mut out.bytes, n as u64);
    put_uvarint(&mut out.bytes, zigzag(ts[0]));
    put_uvarint(&mut out.bytes, zigzag(ints[0]));
    // Regular timestamps (aligned scrapes) are common: then every timestamp after the second
    // is one zero bit, written with its value's bits.
    let regular = ts.windows(3).all(|x| x[2].wrapping_sub(x[1]) == x[1].wrapping_sub(x[0]));
    encode_body(out, &ts[..n], &ints[..n], mode, w, regular)
}

/// The bits after the header of a packed chunk, sample by sample; `regular`: every delta of
/// delta of `ts` is zero (then the same bits are written with fewer steps).
fn encode_body(mut out: BitWriter, ts: &[i64], ints: &[i64], mode: u8, w: u32, regular: bool) -> Vec<u8> {
    let n = ts.len().min(ints.len());
    let value_code = |i: usize, delta: &mut i64| {
        let value_delta = ints[i].wrapping_sub(ints[i - 1]);
        let z = match mode {
            MODE_DELTA => zigzag(value_delta),
            _ => zigzag(value_delta.wrapping_sub(*delta)),
        };
        *delta = value_delta;
        z
    };
    let mut delta = 0i64;
    if regular && n > 1 {
        put_uvarint(&mut out.bytes, zigzag(ts[1].wrapping_sub(ts[0])));
        let z = value_code(1, &mut delta);
        write_value(&mut out, z, w);
        if w == 0 {
            // Constant values or a steady rate: one zero bit per timestamp, nothing else.
            out.skip(n.saturating_sub(2) as u32);
        } else {
            for i in 2..n {
                let z = value_code(i, &mut delta);
                if z == 0 {
                    out.skip(2);
                } else if w < 63 {
                    // The timestamp's zero bit, the marker, the value.
                    out.write_bits((1 << w) | z, w + 2);
                } else {
                    out.skip(1);
                    write_value(&mut out, z, w);
                }
            }
        }
        return out.finish();
    }
    let mut t_delta = 0i64;
    for i in 1..n {
        let d = ts[i].wrapping_sub(ts[i - 1]);
        if i == 1 {
            put_uvarint(&mut out.bytes, zigzag(d));
        } else {
            write_dod(&mut out, d.wrapping_sub(t_delta));
        }
        t_delta = d;
        let z = value_code(i, &mut delta);
        write_value(&mut out, z, w);
    }
    out.finish()
}

/// A value's bits: nothing when every value takes none (`w` = 0), else a zero bit for zero, or
/// a one bit and `z` in `w` bits.
#[inline]
fn write_value(out: &mut BitWriter, z: u64, w: u32) {
    if w == 0 {
        // Every value the same (or a steady rate): nothing per sample.
    } else if z == 0 {
        out.write_bits(0, 1);
    } else if w < 64 {
        out.write_bits((1 << w) | z, w + 1);
    } else {
        out.write_bits(1, 1);
        out.write_bits(z, 64);
    }
}

/// A timestamp delta-of-delta in the XOR chunk's buckets.
fn write_dod(out: &mut BitWriter, dod: i64) {
    let fits = |n: u32| {
        let half = 1i64 << (n - 1);
        -(half - 1) <= dod && dod <= half
    };
    if dod == 0 {
        out.write_bits(0, 1);
    } else if fits(14) {
        out.write_bits(0b10, 2);
        out.write_bits(dod as u64, 14);
    } else if fits(17) {
        out.write_bits(0b110, 3);
        out.write_bits(dod as u64, 17);
    } else if fits(20) {
        out.write_bits(0b1110, 4);
        out.write_bits(dod as u64, 20);
    } else {
        out.write_bits(0b1111, 4);
        out.write_bits(dod as u64, 64);
    }
}

fn put_uvarint(buf: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        buf.push(x as u8 | 0x80);
        x >>= 7;
    }
    buf.push(x as u8);
}

/// Bits gathered 64 at a time, most significant first.
struct BitWriter {
    bytes: Vec<u8>,
    /// Pending bits, left-aligned; `n` of them.
    acc: u64,
    n: u32,
}

impl BitWriter {
    /// Writes the low `k <= 64` bits of `value`, most significant first.
    #[inline]
    fn write_bits(&mut self, value: u64, k: u32) {
        if k == 0 {
            return;
        }
        let value = if k < 64 { value & ((1u64 << k) - 1) } else { value };
        let free = 64 - self.n;
        if k <= free {
            self.acc |= value << (free - k);
            self.n += k;
            if self.n == 64 {
                self.bytes.extend_from_slice(&self.acc.to_be_bytes());
                self.acc = 0;
                self.n = 0;
            }
        } else {
            let rest = k - free;
            self.acc |= value >> rest;
            self.bytes.extend_from_slice(&self.acc.to_be_bytes());
            self.acc = value << (64 - rest);
            self.n = rest;
        }
    }

    /// Writes `k` zero bits.
    fn skip(&mut self, mut k: u32) {
        while k > 0 {
            let step = k.min(64 - self.n);
            self.n += step;
            k -= step;
            if self.n == 64 {
                self.bytes.extend_from_slice(&self.acc.to_be_bytes());
                self.acc = 0;
                self.n = 0;
            }
        }
    }

    fn finish(mut self) -> Vec<u8> {
        let n = self.n.div_ceil(8) as usize;
        self.bytes.extend_from_slice(&self.acc.to_be_bytes()[..n]);
        self.bytes
    }
}

/// Decodes a packed chunk (the encoding byte included) in order.
#[derive(Debug, Clone)]
pub(crate) struct PackedIterator<B> {
    data: B,
    /// Next byte to load into `buf`.
    byte: usize,
    buf: u64,
    valid: u32,
    total: u32,
    read: u32,
    mode: u8,
    width: u32,
    scale: f64,
    t: i64,
    t_delta: i64,
    x: i64,
    delta: i64,
    v: f64,
    corrupt: bool,
}

impl<B: AsRef<[u8]>> PackedIterator<B> {
    pub(crate) fn new(data: B) -> PackedIterator<B> {
        let mut it = PackedIterator {
            data,
            byte: 0,
            buf: 0,
            valid: 0,
            total: 0,
            read: 0,
            mode: 0,
            width: 0,
            scale: 1.0,
            t: 0,
            t_delta: 0,
            x: 0,
            delta: 0,
            v: 0.0,
            corrupt: false,
        };
        if it.header().is_none() {
            it.corrupt = true;
        }
        it
    }

    fn header(&mut self) -> Option<()> {
        let bytes = self.data.as_ref();
        let [ENC_PACKED, mode, e, w, ..] = *bytes else { return None };
        if !(MODE_DELTA..=MODE_DELTA_OF_DELTA).contains(&mode) || u32::from(e) > MAX_EXPONENT || w > 64 {
            return None;
        }
        let mut pos = 4;
        let total = uvarint(bytes, &mut pos)?;
        self.total = u32::try_from(total).ok().filter(|&n| n <= u32::from(u16::MAX))?;
        self.t = unzigzag(uvarint(bytes, &mut pos)?);
        self.x = unzigzag(uvarint(bytes, &mut pos)?);
        if self.total > 1 {
            self.t_delta = unzigzag(uvarint(bytes, &mut pos)?);
        }
        self.mode = mode;
        self.width = u32::from(w);
        self.scale = POW10[usize::from(e)];
        self.byte = pos;
        Some(())
    }

    pub(crate) fn num_samples(&self) -> usize {
        self.total as usize
    }

    #[cfg(test)]
    pub(crate) fn is_corrupt(&self) -> bool {
        self.corrupt
    }

    pub(crate) fn at(&self) -> (i64, f64) {
        (self.t, self.v)
    }

    #[inline]
    pub(crate) fn next_sample(&mut self) -> bool {
        if self.corrupt || self.read >= self.total {
            return false;
        }
        if self.read > 0 && self.step().is_none() {
            self.corrupt = true;
            return false;
        }
        self.v = self.x as f64 / self.scale;
        self.read += 1;
        true
    }

    fn step(&mut self) -> Option<()> {
        if self.read >= 2 {
            let mut ones = 0;
            while ones < 4 {
                if self.read_bits(1)? == 0 {
                    break;
                }
                ones += 1;
            }
            let size = [0u32, 14, 17, 20, 64][ones];
            if size > 0 {
                let bits = self.read_bits(size)?;
                let dod =
                    if size < 64 && bits > (1 << (size - 1)) { bits as i64 - (1i64 << size) } else { bits as i64 };
                self.t_delta = self.t_delta.wrapping_add(dod);
            }
        }
        self.t = self.t.wrapping_add(self.t_delta);
        let z = if self.width > 0 && self.read_bits(1)? == 1 { self.read_bits(self.width)? } else { 0 };
        let d = unzigzag(z);
        if self.mode == MODE_DELTA {
            self.x = self.x.wrapping_add(d);
        } else {
            self.delta = self.delta.wrapping_add(d);
            self.x = self.x.wrapping_add(self.delta);
        }
        Some(())
    }

    /// Reads `n <= 64` bits, most significant first.
    #[inline]
    fn read_bits(&mut self, n: u32) -> Option<u64> {
        if n == 0 {
            return Some(0);
        }
        if n <= self.valid {
            let v = self.buf >> (64 - n);
            self.buf = self.buf.checked_shl(n).unwrap_or(0);
            self.valid -= n;
            return Some(v);
        }
        let have = self.valid;
        let high = if have == 0 { 0 } else { self.buf >> (64 - have) };
        let data = self.data.as_ref();
        let rest = data.get(self.byte..).unwrap_or(&[]);
        let mut word = [0u8; 8];
        let take = rest.len().min(8);
        word[..take].copy_from_slice(&rest[..take]);
        self.buf = u64::from_be_bytes(word);
        self.valid = 8 * take as u32;
        self.byte += take;
        let need = n - have;
        if need > self.valid {
            return None;
        }
        let low = self.buf >> (64 - need);
        self.buf = self.buf.checked_shl(need).unwrap_or(0);
        self.valid -= need;
        Some(high.checked_shl(need).unwrap_or(0) | low)
    }
}

fn uvarint(data: &[u8], pos: &mut usize) -> Option<u64> {
    let mut x = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *data.get(*pos)?;
        *pos += 1;
        x |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(x);
        }
    }
    None
}

/// Iterates a stored chunk of either encoding.
#[derive(Debug, Clone)]
pub(crate) enum StoredIterator<B> {
    Xor(XorIterator<Offset<B>>),
    Packed(PackedIterator<B>),
    Corrupt,
}

/// `B`'s bytes after the encoding byte.
#[derive(Debug, Clone)]
pub(crate) struct Offset<B>(B);

impl<B: AsRef<[u8]>> AsRef<[u8]> for Offset<B> {
    fn as_ref(&self) -> &[u8] {
        self.0.as_ref().get(1..).unwrap_or(&[])
    }
}

impl<B: AsRef<[u8]>> StoredIterator<B> {
    pub(crate) fn new(data: B) -> StoredIterator<B> {
        match data.as_ref().first() {
            Some(&ENC_XOR) => StoredIterator::Xor(XorIterator::new(Offset(data))),
            Some(&ENC_PACKED) => StoredIterator::Packed(PackedIterator::new(data)),
            _ => StoredIterator::Corrupt,
        }
    }

    pub(crate) fn num_samples(&self) -> usize {
        match self {
            StoredIterator::Xor(it) => it.num_samples(),
            StoredIterator::Packed(it) => it.num_samples(),
            StoredIterator::Corrupt => 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn is_corrupt(&self) -> bool {
        match self {
            StoredIterator::Xor(it) => it.is_corrupt(),
            StoredIterator::Packed(it) => it.is_corrupt(),
            StoredIterator::Corrupt => true,
        }
    }

    #[inline]
    pub(crate) fn next_sample(&mut self) -> bool {
        match self {
            StoredIterator::Xor(it) => it.next_sample(),
            StoredIterator::Packed(it) => it.next_sample(),
            StoredIterator::Corrupt => false,
        }
    }

    #[inline]
    pub(crate) fn at(&self) -> (i64, f64) {
        match self {
            StoredIterator::Xor(it) => it.at(),
            StoredIterator::Packed(it) => it.at(),
            StoredIterator::Corrupt => (0, 0.0),
        }
    }
}

impl<B: AsRef<[u8]>> Iterator for StoredIterator<B> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        self.next_sample().then(|| self.at())
    }
}

/// Number of samples in a stored chunk (0 when its header is bad).
pub(crate) fn num_samples(data: &[u8]) -> usize {
    StoredIterator::new(data).num_samples()
}

/// All samples of a stored chunk, `None` if it does not decode completely.
#[cfg(test)]
pub(crate) fn decode(data: &[u8]) -> Option<Vec<(i64, f64)>> {
    let mut it = StoredIterator::new(data);
    let mut out = Vec::with_capacity(it.num_samples().min(data.len() * 8));
    while it.next_sample() {
        out.push(it.at());
    }
    (!it.is_corrupt() && out.len() == it.num_samples()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::XorChunk;

    fn xor_of(samples: &[(i64, f64)]) -> Vec<u8> {
        let mut chunk = XorChunk::new();
        for &(t, v) in samples {
            chunk.append(t, v);
        }
        chunk.bytes().to_vec()
    }

    /// Stores the samples; checks they decode back bit for bit and which encoding was used.
    fn check(samples: &[(i64, f64)], expected_encoding: u8) {
        let xor = xor_of(samples);
        let stored = store(&xor);
        assert_eq!(stored[0], expected_encoding, "{samples:?}");
        let decoded: Vec<(i64, u64)> = decode(&stored).unwrap().into_iter().map(|(t, v)| (t, v.to_bits())).collect();
        let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        assert_eq!(decoded, want);
        assert_eq!(num_samples(&stored), samples.len());
        assert!(stored.len() <= xor.len() + 1);
    }

    fn regular(values: impl IntoIterator<Item = f64>) -> Vec<(i64, f64)> {
        values.into_iter().enumerate().map(|(i, v)| (1_700_000_000_000 + i as i64 * 15_000, v)).collect()
    }

    #[test]
    fn packs_decimals_keeps_xor_otherwise() {
        check(&regular((0..120).map(|i| 1000.0 + 7.0 * i as f64)), ENC_PACKED); // counter, steady rate
        check(&regular((0..120).map(|i| 12.25 + ((i * 37) % 11) as f64 * 0.01)), ENC_PACKED); // gauge, 2 decimals
        check(&regular((0..120).map(|i| -5e8 + (i * i) as f64 * 4096.0)), ENC_XOR); // XOR suits multiples of 4096
        check(&regular((0..120).map(|i| -5e8 + (i * i * 7) as f64)), ENC_PACKED);
        check(&regular((0..120).map(|_| 3.0)), ENC_PACKED); // constant: no bits per value
        check(&regular((0..120).map(|i| (i as f64).sqrt())), ENC_XOR);
        check(&regular([1.0, f64::NAN, 2.0]), ENC_XOR);
        check(&regular([-0.0, 1.0]), ENC_XOR);
        check(&regular([9_007_199_254_740_993.0, 1.0]), ENC_XOR);
        check(&[(5, 1.5)], ENC_PACKED);
        // Irregular timestamps in every bucket.
        let mut t = -10_000_000;
        let mut delta = 10;
        let mut samples = Vec::new();
        for (i, dod) in [0i64, 1, -1, 8192, -8191, 8193, 65536, -65535, 65537, 524288, -524287, 524289, 1 << 40]
            .into_iter()
            .enumerate()
        {
            delta += dod;
            t += delta;
            samples.push((t, i as f64 * 0.5));
        }
        check(&samples, ENC_PACKED);
    }

    /// The regular-timestamp path writes the bytes the general sample-by-sample loop writes.
    #[test]
    fn regular_path_is_the_general_encoding() {
        for n in [1usize, 2, 3, 4, 63, 64, 65, 66, 120, 129, 200] {
            for step in [1i64, 15_000, 1 << 40] {
                for rate in [0i64, 1000, -3, 1 << 50] {
                    for noise in [0i64, 1, 37, i64::MAX / 3] {
                        let ts: Vec<i64> = (0..n as i64).map(|i| -77 + i * step).collect();
                        let ints: Vec<i64> = (0..n as i64)
                            .map(|i| 5i64.wrapping_add(rate.wrapping_mul(i)) ^ ((i * i) % 7).wrapping_mul(noise))
                            .collect();
                        let stored = encode(&ts, &ints, 0);
                        let (mode, w) = (stored[1], u32::from(stored[3]));
                        let mut out = BitWriter { bytes: Vec::new(), acc: 0, n: 0 };
                        out.bytes.extend_from_slice(&[ENC_PACKED, mode, 0, w as u8]);
                        put_uvarint(&mut out.bytes, n as u64);
                        put_uvarint(&mut out.bytes, zigzag(ts[0]));
                        put_uvarint(&mut out.bytes, zigzag(ints[0]));
                        let general = encode_body(out, &ts, &ints, mode, w, false);
                        assert_eq!(stored, general, "n {n} step {step} rate {rate} noise {noise}");
                        let decoded: Vec<(i64, f64)> = decode(&stored).unwrap();
                        let want: Vec<(i64, f64)> = ts.iter().zip(&ints).map(|(&t, &x)| (t, x as f64)).collect();
                        assert_eq!(decoded, want);
                    }
                }
            }
        }
    }

    #[test]
    fn damaged_packed_chunks_are_corrupt_not_panics() {
        let stored = store(&xor_of(&regular((0..120).map(|i| 1000.0 + 7.0 * i as f64 + (i % 3) as f64))));
        assert_eq!(stored[0], ENC_PACKED);
        for len in 0..stored.len() - 1 {
            assert!(decode(&stored[..len]).is_none(), "len {len}");
        }
        assert!(decode(&[]).is_none());
        assert!(decode(&[9, 1, 2]).is_none());
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { failure_persistence: None, ..Default::default() })]
        #[test]
        fn random_samples_roundtrip(
            deltas in proptest::collection::vec((0i64..100_000, -1_000_000i64..1_000_000, 0u32..4), 1..200),
        ) {
            let mut t = -1_000_000;
            let samples: Vec<(i64, f64)> = deltas.iter().map(|&(d, x, e)| {
                t += d;
                (t, x as f64 / 10f64.powi(e as i32))
            }).collect();
            let stored = store(&xor_of(&samples));
            let decoded: Vec<(i64, u64)> = decode(&stored).unwrap().into_iter().map(|(t, v)| (t, v.to_bits())).collect();
            let want: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
            proptest::prop_assert_eq!(decoded, want);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let mut it = StoredIterator::new(&bytes[..]);
            let mut n = 0;
            while it.next_sample() {
                n += 1;
            }
            proptest::prop_assert!(n <= it.num_samples());
        }
    }
}
