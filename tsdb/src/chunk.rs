//! Gorilla XOR chunks in the byte layout of Prometheus' `tsdb/chunkenc/xor.go`.
//!
//! A chunk is a big-endian `u16` sample count followed by a bit stream: sample 0 as a signed
//! varint timestamp and the raw 64 value bits, sample 1 as an unsigned varint timestamp delta
//! and an XOR'd value, every later sample as a delta-of-delta timestamp in one of five buckets
//! and an XOR'd value. `tsdb/FORMAT.md` gives the bits.

/// Samples per chunk before the head cuts a new one.
pub const SAMPLES_PER_CHUNK: usize = 120;

/// A Gorilla XOR chunk being written, with the encoder state needed to append to it.
#[derive(Clone)]
pub struct XorChunk {
    /// The chunk bytes, the 2-byte sample count included.
    bytes: Vec<u8>,
    /// Unused low bits of the last byte.
    free: u8,
    n: u16,
    t: i64,
    v_bits: u64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
    /// Length after the first two samples (for [`XorChunk::reserve_for`]).
    base_len: u16,
}

impl std::fmt::Debug for XorChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XorChunk").field("samples", &self.n).field("bytes", &self.bytes.len()).finish()
    }
}

impl Default for XorChunk {
    fn default() -> XorChunk {
        XorChunk::new()
    }
}

impl XorChunk {
    /// An empty chunk.
    pub fn new() -> XorChunk {
        XorChunk::with_capacity(2)
    }

    /// An empty chunk with room for `bytes` bytes before it reallocates.
    pub fn with_capacity(bytes: usize) -> XorChunk {
        let mut buf = Vec::with_capacity(bytes.max(2));
        buf.extend_from_slice(&[0, 0]);
        XorChunk { bytes: buf, free: 0, n: 0, t: 0, v_bits: 0, t_delta: 0, leading: 0xff, trailing: 0, base_len: 0 }
    }

    /// Number of samples in the chunk.
    pub fn num_samples(&self) -> usize {
        usize::from(self.n)
    }

    /// The encoded chunk, exactly as Prometheus would store or stream it.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The last sample appended (timestamp and value bits).
    pub fn last(&self) -> Option<(i64, u64)> {
        (self.n > 0).then_some((self.t, self.v_bits))
    }

    /// Heap bytes held (capacity, not length).
    pub fn heap_size(&self) -> usize {
        self.bytes.capacity()
    }

    /// Gives back spare capacity (used when a chunk is complete).
    pub fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
    }

    /// Before the byte buffer grows, reserves what a chunk of `target` samples will need at
    /// the current bytes per sample (so a full chunk wastes little capacity).
    pub fn reserve_for(&mut self, target: usize) {
        let (len, n) = (self.bytes.len(), usize::from(self.n));
        if len + 10 <= self.bytes.capacity() {
            return;
        }
        let additional = if n > 2 {
            // Bytes per sample since the first two (which carry the full timestamp and value).
            let base = usize::from(self.base_len);
            (len - base) * target.saturating_sub(n) / (n - 2) + 10
        } else {
            16
        };
        self.bytes.reserve_exact(additional.max(16));
    }

    /// True when the chunk cannot take another sample (`u16` count).
    pub fn is_full(&self) -> bool {
        self.n == u16::MAX
    }

    /// Appends a sample. Timestamps should increase; the format itself stores any order but
    /// readers assume increasing timestamps. Does nothing when the chunk is full.
    pub fn append(&mut self, t: i64, v: f64) {
        self.append_planned(t, v.to_bits(), None);
    }

    /// Appends with the value window given by `plan` (`Some((leading, trailing, new))`) or,
    /// with `None`, chosen as Prometheus does.
    #[inline]
    fn append_planned(&mut self, t: i64, v_bits: u64, plan: Option<(u8, u8, bool)>) {
        if self.is_full() {
            return;
        }
        match self.n {
            0 => {
                let zigzag = ((t << 1) ^ (t >> 63)) as u64;
                self.write_uvarint(zigzag);
                self.write_bits(v_bits, 64);
            }
            1 => {
                let t_delta = t.wrapping_sub(self.t) as u64;
                self.write_uvarint(t_delta);
                self.write_value(v_bits, plan);
                self.t_delta = t_delta;
            }
            _ => {
                let t_delta = t.wrapping_sub(self.t) as u64;
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                if dod == 0 {
                    self.write_bits(0, 1);
                } else if fits(dod, 14) {
                    self.write_bits(0b10, 2);
                    self.write_bits(dod as u64, 14);
                } else if fits(dod, 17) {
                    self.write_bits(0b110, 3);
                    self.write_bits(dod as u64, 17);
                } else if fits(dod, 20) {
                    self.write_bits(0b1110, 4);
                    self.write_bits(dod as u64, 20);
                } else {
                    self.write_bits(0b1111, 4);
                    self.write_bits(dod as u64, 64);
                }
                self.write_value(v_bits, plan);
                self.t_delta = t_delta;
            }
        }
        self.t = t;
        self.v_bits = v_bits;
        self.n += 1;
        if self.n == 2 {
            self.base_len = u16::try_from(self.bytes.len()).unwrap_or(u16::MAX);
        }
        self.bytes[..2].copy_from_slice(&self.n.to_be_bytes());
    }

    /// A chunk to continue appending to, from the bytes of one (its encoder state recovered
    /// by decoding it); `None` if the bytes are not a well-formed chunk.
    pub fn from_bytes(bytes: Vec<u8>) -> Option<XorChunk> {
        let mut it = XorIterator::new(&bytes[..]);
        let mut base_bits = 16;
        while it.next_sample() {
            if it.read == 2 {
                base_bits = it.bits_consumed();
            }
        }
        if it.is_corrupt() || it.read != it.total {
            return None;
        }
        let bits = it.bits_consumed();
        if bytes.len() != bits.div_ceil(8) {
            return None;
        }
        let free = (bytes.len() * 8 - bits) as u8;
        if free > 0 && bytes.last().is_some_and(|b| b & ((1u8 << free) - 1) != 0) {
            return None;
        }
        let (t, v_bits, t_delta) = (it.t, it.v_bits, it.t_delta);
        let (leading, trailing) = if it.window_set { (it.leading, it.trailing) } else { (0xff, 0) };
        let n = it.total;
        Some(XorChunk {
            base_len: u16::try_from(base_bits.div_ceil(8)).unwrap_or(u16::MAX),
            bytes,
            free,
            n,
            t,
            v_bits,
            t_delta,
            leading,
            trailing,
        })
    }

    /// Iterates the samples.
    pub fn iter(&self) -> XorIterator<&[u8]> {
        XorIterator::new(&self.bytes[..])
    }

    #[inline]
    fn write_value(&mut self, v_bits: u64, plan: Option<(u8, u8, bool)>) {
        let Some((leading, trailing, new)) = plan else {
            return self.write_xor(v_bits);
        };
        let delta = v_bits ^ self.v_bits;
        if delta == 0 {
            self.write_bits(0, 1);
            return;
        }
        let sig = 64 - u32::from(leading) - u32::from(trailing);
        if new {
            self.leading = leading;
            self.trailing = trailing;
            let header = (0b11 << 11) | (u64::from(leading) << 6) | u64::from(sig & 63);
            self.write_bits(header, 13);
        } else {
            self.write_bits(0b10, 2);
        }
        self.write_bits(delta >> trailing, sig);
    }

    /// The same samples re-encoded with the value windows that take the fewest bits: a
    /// dynamic program over where windows start (Prometheus' encoder keeps a window as long as
    /// values fit in it, however wide). Any XOR decoder reads the result; only the bytes
    /// differ. `None` if the chunk does not decode.
    pub fn optimized(&self) -> Option<XorChunk> {
        let mut it = self.iter();
        let mut samples = Vec::with_capacity(self.num_samples());
        while it.next_sample() {
            samples.push((it.t, it.v_bits));
        }
        if it.is_corrupt() || samples.len() != self.num_samples() {
            return None;
        }
        let plan = plan_windows(&samples);
        let mut out = XorChunk::with_capacity(self.bytes.len());
        for (i, &(t, v_bits)) in samples.iter().enumerate() {
            out.append_planned(t, v_bits, if i == 0 { None } else { Some(plan[i]) });
        }
        // Runs are bounded, so a very long greedy run can rarely beat the plan.
        Some(if out.bytes.len() <= self.bytes.len() { out } else { self.clone() })
    }

    #[inline]
    fn write_xor(&mut self, v_bits: u64) {
        let delta = v_bits ^ self.v_bits;
        if delta == 0 {
            self.write_bits(0, 1);
            return;
        }
        let leading = (delta.leading_zeros() as u8).min(31);
        let trailing = delta.trailing_zeros() as u8;
        if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
            self.write_bits(0b10, 2);
            let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
            self.write_bits(delta >> self.trailing, sig);
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        let sig = 64 - u32::from(leading) - u32::from(trailing);
        // 11, 5 bits of leading zeros, 6 bits of significant bits (64 written as 0).
        let header = (0b11 << 11) | (u64::from(leading) << 6) | u64::from(sig & 63);
        self.write_bits(header, 13);
        self.write_bits(delta >> trailing, sig);
    }

    fn write_uvarint(&mut self, mut x: u64) {
        while x >= 0x80 {
            self.write_bits((x as u8 | 0x80).into(), 8);
            x >>= 7;
        }
        self.write_bits(x, 8);
    }

    /// Writes the low `n` bits of `value`, most significant first.
    #[inline(always)]
    fn write_bits(&mut self, value: u64, n: u32) {
        if n == 0 {
            return;
        }
        let value = if n < 64 { value & ((1u64 << n) - 1) } else { value };
        let free = u32::from(self.free);
        if n <= free {
            if let Some(last) = self.bytes.last_mut() {
                *last |= (value << (free - n)) as u8;
            }
            self.free -= n as u8;
            return;
        }
        // Fill the last byte, then append whole bytes in one go.
        if free > 0 {
            if let Some(last) = self.bytes.last_mut() {
                *last |= (value >> (n - free)) as u8;
            }
        }
        let rest = n - free;
        let aligned = value << (64 - rest);
        let n_bytes = rest.div_ceil(8);
        let len = self.bytes.len();
        if self.bytes.capacity() - len >= 8 {
            // A fixed 8-byte write and a cut is cheaper than a copy of variable length (and
            // needs no more capacity than there is).
            self.bytes.extend_from_slice(&aligned.to_be_bytes());
            self.bytes.truncate(len + n_bytes as usize);
        } else {
            self.bytes.extend_from_slice(&aligned.to_be_bytes()[..n_bytes as usize]);
        }
        self.free = (n_bytes * 8 - rest) as u8;
    }
}

/// Longest run of values one window may serve in [`plan_windows`] (bounds the work to
/// `O(n * MAX_RUN)` per chunk).
const MAX_RUN: usize = 16;

/// For each sample after the first: the window (leading, trailing) its XOR is written with and
/// whether the window starts there. Minimises the value bits: a run of `m` non-zero XORs
/// sharing a window costs `11 + m * (2 + significant bits)`, the window being the smallest
/// leading and trailing zero counts of the run.
fn plan_windows(samples: &[(i64, u64)]) -> Vec<(u8, u8, bool)> {
    let mut plan = vec![(0u8, 0u8, false); samples.len()];
    // Indices and (leading, trailing) of the non-zero XORs.
    let nonzero: Vec<(usize, u8, u8)> = (1..samples.len())
        .filter_map(|i| {
            let x = samples[i].1 ^ samples[i - 1].1;
            (x != 0).then(|| (i, (x.leading_zeros() as u8).min(31), x.trailing_zeros() as u8))
        })
        .collect();
    let n = nonzero.len();
    let mut best = vec![u64::MAX; n + 1];
    let mut start = vec![0usize; n + 1];
    best[0] = 0;
    for j in 1..=n {
        let (mut leading, mut trailing) = (64u8, 64u8);
        for i in (j.saturating_sub(MAX_RUN)..j).rev() {
            leading = leading.min(nonzero[i].1);
            trailing = trailing.min(nonzero[i].2);
            let sig = 64 - u64::from(leading) - u64::from(trailing);
            let cost = best[i] + 11 + (j - i) as u64 * (2 + sig);
            if cost < best[j] {
                best[j] = cost;
                start[j] = i;
            }
        }
    }
    let mut j = n;
    while j > 0 {
        let i = start[j];
        let leading = nonzero[i..j].iter().map(|x| x.1).min().unwrap_or(0);
        let trailing = nonzero[i..j].iter().map(|x| x.2).min().unwrap_or(0);
        for (k, x) in nonzero[i..j].iter().enumerate() {
            plan[x.0] = (leading, trailing, k == 0);
        }
        j = i;
    }
    plan
}

/// True if `dod` fits the `nbits` bucket: Prometheus' asymmetric range
/// `-(2^(n-1) - 1) ..= 2^(n-1)`.
fn fits(dod: i64, nbits: u32) -> bool {
    let half = 1i64 << (nbits - 1);
    -(half - 1) <= dod && dod <= half
}

/// Decodes a chunk's samples in order; `seek` skips forward.
///
/// Bad bytes end the iteration early and set [`XorIterator::is_corrupt`]; they never panic.
#[derive(Debug, Clone)]
pub struct XorIterator<B> {
    data: B,
    /// Next byte of `data` to load into `buf`.
    byte: usize,
    /// Bits not yet consumed, left-aligned; `valid` of them are meaningful.
    buf: u64,
    valid: u32,
    total: u16,
    read: u16,
    t: i64,
    v_bits: u64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
    /// A value window has been read (the encoder's state is no longer "no window").
    window_set: bool,
    corrupt: bool,
    done: bool,
}

impl<B: AsRef<[u8]>> XorIterator<B> {
    /// An iterator over the chunk `data` (the 2-byte count included).
    pub fn new(data: B) -> XorIterator<B> {
        let bytes = data.as_ref();
        let (total, corrupt) = match bytes {
            [a, b, ..] => (u16::from_be_bytes([*a, *b]), false),
            _ => (0, true),
        };
        XorIterator {
            data,
            byte: 2,
            buf: 0,
            valid: 0,
            total,
            read: 0,
            t: 0,
            v_bits: 0,
            t_delta: 0,
            leading: 0,
            trailing: 0,
            window_set: false,
            corrupt,
            done: false,
        }
    }

    /// The sample count in the chunk header.
    pub fn num_samples(&self) -> usize {
        usize::from(self.total)
    }

    fn bits_consumed(&self) -> usize {
        self.byte * 8 - self.valid as usize
    }

    /// True if decoding stopped because the bytes ran out or made no sense.
    pub fn is_corrupt(&self) -> bool {
        self.corrupt
    }

    /// The current sample; meaningful after `next` or `seek` returned true.
    pub fn at(&self) -> (i64, f64) {
        (self.t, f64::from_bits(self.v_bits))
    }

    /// Advances to the next sample; false when exhausted (or corrupt).
    #[inline]
    pub fn next_sample(&mut self) -> bool {
        if self.done || self.read >= self.total || self.corrupt {
            self.done = true;
            return false;
        }
        let ok = match self.read {
            0 => self.read_first(),
            1 => self.read_second(),
            _ => self.read_later(),
        };
        if ok.is_none() {
            self.corrupt = true;
            self.done = true;
            return false;
        }
        self.read += 1;
        true
    }

    /// Moves to the first sample with timestamp `>= t`; stays when the current one qualifies.
    pub fn seek(&mut self, t: i64) -> bool {
        if self.done {
            return false;
        }
        if self.read > 0 && self.t >= t {
            return true;
        }
        while self.next_sample() {
            if self.t >= t {
                return true;
            }
        }
        false
    }

    fn read_first(&mut self) -> Option<()> {
        let zigzag = self.read_uvarint()?;
        self.t = ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
        self.v_bits = self.read_bits(64)?;
        Some(())
    }

    fn read_second(&mut self) -> Option<()> {
        let t_delta = self.read_uvarint()?;
        self.t_delta = t_delta;
        self.t = self.t.wrapping_add(t_delta as i64);
        self.read_xor()
    }

    // Inlined into `next_sample` (with `read_xor`): the iterator's state then stays in
    // registers across a chunk's decode instead of going through memory at every call.
    #[inline(always)]
    fn read_later(&mut self) -> Option<()> {
        let mut ones = 0;
        while ones < 4 {
            if self.read_bits(1)? == 0 {
                break;
            }
            ones += 1;
        }
        let size = [0u32, 14, 17, 20, 64][ones];
        let mut dod = 0i64;
        if size > 0 {
            let bits = self.read_bits(size)?;
            dod = if size < 64 && bits > (1 << (size - 1)) { bits as i64 - (1i64 << size) } else { bits as i64 };
        }
        self.t_delta = self.t_delta.wrapping_add(dod as u64);
        self.t = self.t.wrapping_add(self.t_delta as i64);
        self.read_xor()
    }

    #[inline(always)]
    fn read_xor(&mut self) -> Option<()> {
        if self.read_bits(1)? == 0 {
            return Some(());
        }
        if self.read_bits(1)? == 1 {
            let header = self.read_bits(11)?;
            let leading = (header >> 6) as u8;
            let mut sig = (header & 63) as u8;
            if sig == 0 {
                sig = 64;
            }
            self.leading = leading;
            self.trailing = 64u8.checked_sub(leading)?.checked_sub(sig)?;
            self.window_set = true;
        }
        let sig = 64u32.checked_sub(u32::from(self.leading) + u32::from(self.trailing))?;
        let bits = self.read_bits(sig)?;
        self.v_bits ^= bits.checked_shl(u32::from(self.trailing)).unwrap_or(0);
        Some(())
    }

    fn read_uvarint(&mut self) -> Option<u64> {
        let mut x = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = self.read_bits(8)?;
            if shift == 63 && byte > 1 {
                return None;
            }
            x |= (byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(x);
            }
        }
        None
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
        self.refill();
        let need = n - have;
        if need > self.valid {
            return None;
        }
        let low = self.buf >> (64 - need);
        self.buf = self.buf.checked_shl(need).unwrap_or(0);
        self.valid -= need;
        Some(high.checked_shl(need).unwrap_or(0) | low)
    }

    /// Loads the next up to 8 bytes into the (empty) bit buffer.
    #[inline]
    fn refill(&mut self) {
        let data = self.data.as_ref();
        let rest = data.get(self.byte..).unwrap_or(&[]);
        if let Some(word) = rest.get(..8) {
            self.buf = u64::from_be_bytes(word.try_into().unwrap_or([0; 8]));
            self.valid = 64;
            self.byte += 8;
        } else {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.buf = u64::from_be_bytes(word);
            self.valid = 8 * rest.len() as u32;
            self.byte += rest.len();
        }
    }
}

impl<B: AsRef<[u8]>> Iterator for XorIterator<B> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        self.next_sample().then(|| self.at())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(samples: &[(i64, f64)]) {
        let mut chunk = XorChunk::new();
        for &(t, v) in samples {
            chunk.append(t, v);
        }
        let decoded: Vec<(i64, u64)> = chunk.iter().map(|(t, v)| (t, v.to_bits())).collect();
        let expected: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
        assert_eq!(decoded, expected);
        let mut it = chunk.iter();
        while it.next_sample() {}
        assert!(!it.is_corrupt());
    }

    #[test]
    fn roundtrips() {
        roundtrip(&[]);
        roundtrip(&[(1, 1.0)]);
        roundtrip(&[(-5, f64::NAN), (0, -0.0)]);
        roundtrip(&[(0, 1.0), (15_000, 1.0), (30_000, 2.0), (45_001, 2.5), (60_000, sextant_model::stale_nan())]);
        // Every dod bucket and its edges, both signs.
        let mut t = 1_000_000_000;
        let mut samples = vec![(t, 0.0), (t + 10, 0.0)];
        t += 10;
        let mut delta = 10i64;
        for dod in [0i64, 1, -1, 8192, -8191, 8193, 65536, -65535, 65537, 524288, -524287, 524289, 1 << 40, -(1 << 40)]
        {
            delta += dod;
            t += delta;
            samples.push((t, dod as f64 * 1.5));
        }
        roundtrip(&samples);
        roundtrip(&(0..120).map(|i| (i * 15_000, 123456789.0 + 1000.0 * i as f64)).collect::<Vec<_>>());
        roundtrip(&[(i64::MIN, f64::MAX), (i64::MAX, f64::MIN_POSITIVE), (0, 1e-300)]);
    }

    #[test]
    fn known_bytes() {
        // Two samples of 1.0, two seconds apart: the layout by hand.
        let mut chunk = XorChunk::new();
        chunk.append(1_000, 1.0);
        chunk.append(3_000, 1.0);
        let mut expected = vec![0, 2, 0xd0, 0x0f]; // count, zigzag varint 2000
        expected.extend_from_slice(&1.0f64.to_bits().to_be_bytes());
        expected.extend_from_slice(&[0xd0, 0x0f, 0x00]); // uvarint 2000, one 0 bit (padded)
        assert_eq!(chunk.bytes(), expected);
    }

    #[test]
    fn continue_appending_from_bytes() {
        let samples: Vec<(i64, f64)> = (0..60).map(|i| (i * 15_000 + (i % 3), (i * i) as f64 / 3.0)).collect();
        for split in [0, 1, 2, 3, 10, 59] {
            let mut whole = XorChunk::new();
            let mut first = XorChunk::new();
            for (i, &(t, v)) in samples.iter().enumerate() {
                whole.append(t, v);
                if i < split {
                    first.append(t, v);
                }
            }
            let mut resumed = XorChunk::from_bytes(first.bytes().to_vec()).unwrap();
            for &(t, v) in &samples[split..] {
                resumed.append(t, v);
            }
            assert_eq!(resumed.bytes(), whole.bytes(), "split at {split}");
        }
        assert!(XorChunk::from_bytes(vec![0, 5, 1]).is_none());
    }

    #[test]
    fn optimized_chunks_decode_to_the_same_samples_in_fewer_bytes() {
        let mut chunk = XorChunk::new();
        let mut v = 1_000.0f64;
        for i in 0..120 {
            v += [0.5, 1e-9, 1234.25, 0.0, 3.0][i % 5];
            chunk.append(i as i64 * 15_000, if i == 60 { f64::NAN } else { v });
        }
        let optimized = chunk.optimized().unwrap();
        let before: Vec<(i64, u64)> = chunk.iter().map(|(t, v)| (t, v.to_bits())).collect();
        let after: Vec<(i64, u64)> = optimized.iter().map(|(t, v)| (t, v.to_bits())).collect();
        assert_eq!(before, after);
        assert!(optimized.bytes().len() <= chunk.bytes().len());
        // Appending continues correctly after an optimized prefix.
        let mut resumed = XorChunk::from_bytes(optimized.bytes().to_vec()).unwrap();
        resumed.append(120 * 15_000, 7.0);
        assert_eq!(resumed.iter().last(), Some((120 * 15_000, 7.0)));
    }

    #[test]
    fn seek() {
        let mut chunk = XorChunk::new();
        for i in 0..10 {
            chunk.append(i * 10, i as f64);
        }
        let mut it = chunk.iter();
        assert!(it.seek(35));
        assert_eq!(it.at(), (40, 4.0));
        assert!(it.seek(0));
        assert_eq!(it.at(), (40, 4.0));
        assert!(it.next_sample());
        assert_eq!(it.at(), (50, 5.0));
        assert!(!it.seek(91));
        assert!(!it.next_sample());
    }

    #[test]
    fn truncated_bytes_are_corrupt_not_panics() {
        let mut chunk = XorChunk::new();
        for i in 0..50 {
            chunk.append(i * 1000 + (i % 3), (i * i) as f64 / 7.0);
        }
        let bytes = chunk.bytes();
        for len in 0..bytes.len() - 1 {
            let mut it = XorIterator::new(&bytes[..len]);
            while it.next_sample() {}
            assert!(it.is_corrupt(), "len {len}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { failure_persistence: None, ..Default::default() })]
        #[test]
        fn random_samples_roundtrip(deltas in proptest::collection::vec((0i64..100_000, proptest::num::f64::ANY), 0..300)) {
            let mut t = -1_000_000;
            let samples: Vec<(i64, f64)> = deltas.iter().map(|&(d, v)| { t += d; (t, v) }).collect();
            roundtrip(&samples);
        }

        #[test]
        fn optimized_roundtrip(values in proptest::collection::vec(proptest::num::f64::ANY, 0..200)) {
            let mut chunk = XorChunk::new();
            for (i, &v) in values.iter().enumerate() {
                chunk.append(i as i64 * 1000, v);
            }
            let optimized = chunk.optimized().unwrap();
            let a: Vec<(i64, u64)> = chunk.iter().map(|(t, v)| (t, v.to_bits())).collect();
            let b: Vec<(i64, u64)> = optimized.iter().map(|(t, v)| (t, v.to_bits())).collect();
            proptest::prop_assert_eq!(a, b);
            proptest::prop_assert!(optimized.bytes().len() <= chunk.bytes().len());
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let mut it = XorIterator::new(&bytes[..]);
            let mut n = 0;
            while it.next_sample() {
                n += 1;
            }
            proptest::prop_assert!(n <= it.num_samples());
        }

        #[test]
        fn mutated_chunks_never_panic(flips in proptest::collection::vec((0usize..1000, 0u8..8), 1..8)) {
            let mut chunk = XorChunk::new();
            for i in 0..120 {
                chunk.append(1_700_000_000_000 + i * 15_000 + (i % 4), (i * i) as f64 * 0.37);
            }
            let mut bytes = chunk.bytes().to_vec();
            let len = bytes.len();
            for (at, bit) in flips {
                bytes[at % len] ^= 1 << bit;
            }
            let mut it = XorIterator::new(&bytes[..]);
            while it.next_sample() {}
        }
    }
}
