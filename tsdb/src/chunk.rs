//! Gorilla XOR chunks in the byte layout of Prometheus' `tsdb/chunkenc/xor.go`.
//!
//! A chunk is a big-endian `u16` sample count followed by a bit stream: sample 0 as a signed
//! varint timestamp and the raw 64 value bits, sample 1 as an unsigned varint timestamp delta
//! and an XOR'd value, every later sample as a delta-of-delta timestamp in one of five buckets
//! and an XOR'd value. `tsdb/FORMAT.md` gives the bits.

/// Samples per chunk before the head cuts a new one.
pub const SAMPLES_PER_CHUNK: usize = 120;

/// A Gorilla XOR chunk being written, with the encoder state needed to append to it.
///
/// The bits of one sample are gathered in a 128-bit register and stored with one unaligned
/// 16-byte write (the buffer keeps zeroed room past the chunk's end for it); the partial last
/// byte is kept here too, so an append never reads the chunk's bytes back.
#[derive(Clone)]
pub struct XorChunk {
    /// The chunk bytes, the 2-byte sample count included, in `buf[..len]`; `buf[len..]` is
    /// room for the next writes.
    buf: Vec<u8>,
    len: u32,
    n: u16,
    /// Unused low bits of the last byte.
    free: u8,
    /// The last byte (its unused bits zero).
    tail: u8,
    leading: u8,
    trailing: u8,
    /// Length after the first two samples (for [`XorChunk::reserve_for`]).
    base_len: u16,
    t: i64,
    v_bits: u64,
    t_delta: u64,
}

/// Bytes one store writes (the room kept past a chunk's end).
const WORD: usize = 16;
/// Most bits one store may carry (the rest of the word holds the partial last byte).
const MAX_PUT: u32 = 120;
/// Most bits [`XorChunk::put64`] may carry.
const MAX_PUT64: u32 = 56;

impl std::fmt::Debug for XorChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XorChunk").field("samples", &self.n).field("bytes", &self.len).finish()
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
        XorChunk {
            buf: vec![0; bytes.max(2) + WORD],
            len: 2,
            n: 0,
            free: 0,
            tail: 0,
            leading: 0xff,
            trailing: 0,
            base_len: 0,
            t: 0,
            v_bits: 0,
            t_delta: 0,
        }
    }

    /// Number of samples in the chunk.
    pub fn num_samples(&self) -> usize {
        usize::from(self.n)
    }

    /// The encoded chunk, exactly as Prometheus would store or stream it.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    /// The last sample appended (timestamp and value bits).
    pub fn last(&self) -> Option<(i64, u64)> {
        (self.n > 0).then_some((self.t, self.v_bits))
    }

    /// Heap bytes held (capacity, not length).
    pub fn heap_size(&self) -> usize {
        self.buf.capacity()
    }

    /// Gives back spare capacity (used when a chunk is complete).
    pub fn shrink_to_fit(&mut self) {
        self.buf.truncate(self.len as usize);
        self.buf.shrink_to_fit();
    }

    /// Before the byte buffer grows, reserves what a chunk of `target` samples will need at
    /// the current bytes per sample (so a full chunk wastes little capacity).
    #[inline]
    pub fn reserve_for(&mut self, target: usize) {
        if self.len as usize + 10 + WORD <= self.buf.len() {
            return;
        }
        self.grow(target);
    }

    #[cold]
    fn grow(&mut self, target: usize) {
        let (len, n) = (self.len as usize, usize::from(self.n));
        let additional = if n > 2 {
            // Bytes per sample since the first two (which carry the full timestamp and value).
            let base = usize::from(self.base_len);
            (len - base) * target.saturating_sub(n) / (n - 2) + 10
        } else {
            16
        };
        let want = len + additional.max(16) + WORD;
        if want > self.buf.len() {
            self.buf.reserve_exact(want - self.buf.len());
            self.buf.resize(want, 0);
        }
    }

    /// True when the chunk cannot take another sample (`u16` count).
    pub fn is_full(&self) -> bool {
        self.n == u16::MAX
    }

    /// Appends a sample. Timestamps should increase; the format itself stores any order but
    /// readers assume increasing timestamps. Does nothing when the chunk is full.
    #[inline]
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
                self.put_uvarint(zigzag);
                self.put(u128::from(v_bits), 64);
            }
            1 => {
                let t_delta = t.wrapping_sub(self.t) as u64;
                self.put_uvarint(t_delta);
                let (bits, n) = self.value_bits(v_bits, plan);
                self.put(bits, n);
                self.t_delta = t_delta;
            }
            _ => {
                let t_delta = t.wrapping_sub(self.t) as u64;
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                let (t_bits, t_n): (u128, u32) = if dod == 0 {
                    (0, 1)
                } else if fits(dod, 14) {
                    ((0b10 << 14) | u128::from(dod as u64 & 0x3fff), 16)
                } else if fits(dod, 17) {
                    ((0b110 << 17) | u128::from(dod as u64 & 0x1_ffff), 20)
                } else if fits(dod, 20) {
                    ((0b1110 << 20) | u128::from(dod as u64 & 0xf_ffff), 24)
                } else {
                    ((0b1111 << 64) | u128::from(dod as u64), 68)
                };
                let (v_bits_out, v_n) = self.value_bits(v_bits, plan);
                if t_n + v_n <= MAX_PUT64 {
                    // Most samples: a dod bit or bucket and a value in a known window.
                    self.put64(((t_bits << v_n) | v_bits_out) as u64, t_n + v_n);
                } else if t_n + v_n <= MAX_PUT {
                    self.put((t_bits << v_n) | v_bits_out, t_n + v_n);
                } else {
                    self.put(t_bits, t_n);
                    self.put(v_bits_out, v_n);
                }
                self.t_delta = t_delta;
            }
        }
        self.t = t;
        self.v_bits = v_bits;
        self.n += 1;
        if self.n == 2 {
            self.base_len = u16::try_from(self.len).unwrap_or(u16::MAX);
        }
        self.buf[..2].copy_from_slice(&self.n.to_be_bytes());
    }

    /// The bits of the value `v_bits` after the previous one (at most 77), updating the value
    /// window: with `plan` as it says, else as Prometheus chooses.
    #[inline(always)]
    fn value_bits(&mut self, v_bits: u64, plan: Option<(u8, u8, bool)>) -> (u128, u32) {
        let delta = v_bits ^ self.v_bits;
        if delta == 0 {
            return (0, 1);
        }
        let (leading, trailing, new) = match plan {
            Some(p) => p,
            None => {
                let leading = (delta.leading_zeros() as u8).min(31);
                let trailing = delta.trailing_zeros() as u8;
                if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
                    (self.leading, self.trailing, false)
                } else {
                    (leading, trailing, true)
                }
            }
        };
        let sig = 64 - u32::from(leading) - u32::from(trailing);
        let value = u128::from(delta >> trailing);
        if new {
            self.leading = leading;
            self.trailing = trailing;
            // 11, 5 bits of leading zeros, 6 bits of significant bits (64 written as 0).
            let header = (0b11 << 11) | (u128::from(leading) << 6) | u128::from(sig & 63);
            ((header << sig) | value, 13 + sig)
        } else {
            ((0b10 << sig) | value, 2 + sig)
        }
    }

    /// Writes the low `n` (`1..=MAX_PUT`) bits of `bits` (the others zero), most significant
    /// first.
    #[inline(always)]
    fn put(&mut self, bits: u128, n: u32) {
        let free = u32::from(self.free);
        // Bits of the last byte in use when it is partial (then it is rewritten).
        let used = (8 - free) & 7;
        let start = self.len as usize - usize::from(used != 0);
        let total = used + n;
        let head = if used != 0 { u128::from(self.tail >> free) << n } else { 0 };
        let word = ((head | bits) << (128 - total)).to_be_bytes();
        if self.buf.len() < start + WORD {
            self.grow(usize::from(self.n) + 2);
        }
        if let Some(dst) = self.buf.get_mut(start..start + WORD) {
            dst.copy_from_slice(&word);
        }
        let n_bytes = total.div_ceil(8);
        self.len = (start + n_bytes as usize) as u32;
        self.free = (n_bytes * 8 - total) as u8;
        self.tail = word[n_bytes as usize - 1];
    }

    /// [`XorChunk::put`] for at most `MAX_PUT64` bits, with one 8-byte store.
    #[inline(always)]
    fn put64(&mut self, bits: u64, n: u32) {
        let free = u32::from(self.free);
        let used = (8 - free) & 7;
        let start = self.len as usize - usize::from(used != 0);
        let total = used + n;
        let head = if used != 0 { u64::from(self.tail >> free) << n } else { 0 };
        let word = ((head | bits) << (64 - total)).to_be_bytes();
        if self.buf.len() < start + WORD {
            self.grow(usize::from(self.n) + 2);
        }
        if let Some(dst) = self.buf.get_mut(start..start + 8) {
            dst.copy_from_slice(&word);
        }
        let n_bytes = total.div_ceil(8);
        self.len = (start + n_bytes as usize) as u32;
        self.free = (n_bytes * 8 - total) as u8;
        self.tail = word[n_bytes as usize - 1];
    }

    fn put_uvarint(&mut self, mut x: u64) {
        while x >= 0x80 {
            self.put(u128::from(x as u8 | 0x80), 8);
            x >>= 7;
        }
        self.put(u128::from(x), 8);
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
        let tail = bytes.last().copied().unwrap_or(0);
        if free > 0 && tail & ((1u8 << free) - 1) != 0 {
            return None;
        }
        let (t, v_bits, t_delta) = (it.t, it.v_bits, it.t_delta);
        let (leading, trailing) = if it.window_set { (it.leading, it.trailing) } else { (0xff, 0) };
        let n = it.total;
        let len = u32::try_from(bytes.len()).ok()?;
        Some(XorChunk {
            base_len: u16::try_from(base_bits.div_ceil(8)).unwrap_or(u16::MAX),
            buf: bytes,
            len,
            n,
            free,
            tail,
            leading,
            trailing,
            t,
            v_bits,
            t_delta,
        })
    }

    /// Iterates the samples.
    pub fn iter(&self) -> XorIterator<&[u8]> {
        XorIterator::new(self.bytes())
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
        let mut out = XorChunk::with_capacity(self.len as usize);
        for (i, &(t, v_bits)) in samples.iter().enumerate() {
            out.append_planned(t, v_bits, if i == 0 { None } else { Some(plan[i]) });
        }
        // Runs are bounded, so a very long greedy run can rarely beat the plan.
        Some(if out.len <= self.len { out } else { self.clone() })
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

/// The 64 bits of `data` from bit `pos` on (at least 57 of them from the data, zeros past its
/// end).
#[inline(always)]
fn peek(data: &[u8], pos: usize) -> u64 {
    let byte = pos >> 3;
    let word = match data.get(byte..byte + 8) {
        Some(w) => u64::from_be_bytes(w.try_into().unwrap_or([0; 8])),
        None => {
            let tail = data.get(byte..).unwrap_or(&[]);
            let mut w = [0u8; 8];
            w[..tail.len()].copy_from_slice(tail);
            u64::from_be_bytes(w)
        }
    };
    word << (pos & 7)
}

/// Reads `n <= 64` bits at bit `pos`, advancing it.
#[inline(always)]
fn take(data: &[u8], pos: &mut usize, n: u32) -> u64 {
    if n == 0 {
        return 0;
    }
    if n <= 57 {
        let v = peek(data, *pos) >> (64 - n);
        *pos += n as usize;
        return v;
    }
    let high = peek(data, *pos) >> (96 - n);
    *pos += (n - 32) as usize;
    let low = peek(data, *pos) >> 32;
    *pos += 32;
    (high << 32) | low
}

fn take_uvarint(data: &[u8], pos: &mut usize) -> Option<u64> {
    let mut x = 0u64;
    for shift in (0..70).step_by(7) {
        let byte = take(data, pos, 8);
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

/// Decodes every sample of a chunk at once, calling `f(t, value bits)` for each: what
/// [`XorIterator`] reads, with the bit reader's state in registers and each sample's fields
/// taken from one 64-bit window (the head packs every full chunk through this). False if the
/// bytes are not a well-formed chunk; `f` may have seen some samples then.
pub(crate) fn decode_all(bytes: &[u8], mut f: impl FnMut(i64, u64)) -> bool {
    let Some((count, data)) = bytes.split_first_chunk::<2>() else { return false };
    let total = u16::from_be_bytes(*count);
    if total == 0 {
        return true;
    }
    let mut pos = 0usize;
    let Some(zigzag) = take_uvarint(data, &mut pos) else { return false };
    let mut t = ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
    let mut v = take(data, &mut pos, 64);
    f(t, v);
    let (mut t_delta, mut leading, mut trailing) = (0u64, 0u32, 0u32);
    for i in 1..total {
        if i == 1 {
            let Some(d) = take_uvarint(data, &mut pos) else { return false };
            t_delta = d;
        } else {
            let w = peek(data, pos);
            if w >> 63 == 0 {
                pos += 1;
            } else {
                let ones = (!w).leading_zeros().min(4);
                let dod = if ones < 4 {
                    let size = [0u32, 14, 17, 20][ones as usize];
                    let bits = (w << (ones + 1)) >> (64 - size);
                    pos += (ones + 1 + size) as usize;
                    if bits > 1 << (size - 1) {
                        bits as i64 - (1i64 << size)
                    } else {
                        bits as i64
                    }
                } else {
                    pos += 4;
                    take(data, &mut pos, 64) as i64
                };
                t_delta = t_delta.wrapping_add(dod as u64);
            }
        }
        t = t.wrapping_add(t_delta as i64);
        let w = peek(data, pos);
        if w >> 63 != 0 {
            if w >> 62 == 0b11 {
                let header = ((w << 2) >> 53) as u32;
                let sig = match header & 63 {
                    0 => 64,
                    sig => sig,
                };
                leading = header >> 6;
                let Some(rest) = 64u32.checked_sub(leading).and_then(|r| r.checked_sub(sig)) else { return false };
                trailing = rest;
                pos += 13;
            } else {
                pos += 2;
            }
            let sig = 64 - leading - trailing;
            let bits = take(data, &mut pos, sig);
            v ^= bits.checked_shl(trailing).unwrap_or(0);
        } else {
            pos += 1;
        }
        f(t, v);
    }
    pos <= data.len() * 8
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

    /// Prometheus' XOR layout written one bit at a time (a reference for the encoder, which
    /// writes whole samples at once).
    fn reference_bytes(samples: &[(i64, f64)]) -> Vec<u8> {
        let mut bits: Vec<bool> = Vec::new();
        let mut put = |bits: &mut Vec<bool>, value: u64, n: u32| {
            for i in (0..n).rev() {
                bits.push(value >> i & 1 == 1);
            }
        };
        let uvarint = |bits: &mut Vec<bool>, mut x: u64, put: &mut dyn FnMut(&mut Vec<bool>, u64, u32)| {
            while x >= 0x80 {
                put(bits, (x & 0x7f) | 0x80, 8);
                x >>= 7;
            }
            put(bits, x, 8);
        };
        let (mut prev_t, mut prev_v, mut prev_delta, mut leading, mut trailing) = (0i64, 0u64, 0i64, 0xffu32, 0u32);
        for (i, &(t, v)) in samples.iter().enumerate() {
            let v = v.to_bits();
            if i == 0 {
                uvarint(&mut bits, ((t << 1) ^ (t >> 63)) as u64, &mut put);
                put(&mut bits, v, 64);
            } else {
                let delta = t.wrapping_sub(prev_t);
                if i == 1 {
                    uvarint(&mut bits, delta as u64, &mut put);
                } else {
                    let dod = delta.wrapping_sub(prev_delta);
                    let bucket = [(14u32, 0b10u64, 2u32), (17, 0b110, 3), (20, 0b1110, 4)]
                        .into_iter()
                        .find(|&(n, _, _)| -(1i64 << (n - 1)) < dod && dod <= 1i64 << (n - 1));
                    match bucket {
                        _ if dod == 0 => put(&mut bits, 0, 1),
                        Some((n, prefix, len)) => {
                            put(&mut bits, prefix, len);
                            put(&mut bits, dod as u64, n);
                        }
                        None => {
                            put(&mut bits, 0b1111, 4);
                            put(&mut bits, dod as u64, 64);
                        }
                    }
                }
                prev_delta = delta;
                let xor = v ^ prev_v;
                if xor == 0 {
                    put(&mut bits, 0, 1);
                } else {
                    let (lz, tz) = (xor.leading_zeros().min(31), xor.trailing_zeros());
                    if leading != 0xff && lz >= leading && tz >= trailing {
                        put(&mut bits, 0b10, 2);
                        put(&mut bits, xor >> trailing, 64 - leading - trailing);
                    } else {
                        (leading, trailing) = (lz, tz);
                        put(&mut bits, 0b11, 2);
                        put(&mut bits, u64::from(lz), 5);
                        put(&mut bits, u64::from((64 - lz - tz) & 63), 6);
                        put(&mut bits, xor >> tz, 64 - lz - tz);
                    }
                }
            }
            prev_t = t;
            prev_v = v;
        }
        let mut out = (samples.len() as u16).to_be_bytes().to_vec();
        for byte in bits.chunks(8) {
            out.push(byte.iter().enumerate().fold(0u8, |acc, (i, &b)| acc | (u8::from(b) << (7 - i))));
        }
        out
    }

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
            let mut chunk = XorChunk::new();
            for &(t, v) in &samples {
                chunk.append(t, v);
            }
            proptest::prop_assert_eq!(chunk.bytes(), &reference_bytes(&samples)[..]);
        }

        #[test]
        fn decode_all_reads_what_the_iterator_reads(
            steps in proptest::collection::vec((-3i64..4, 0u32..5, proptest::num::f64::ANY, 0u8..4), 0..300),
            flips in proptest::collection::vec((0usize..2000, 0u8..8), 0..3),
        ) {
            let edges = [0i64, 1 << 13, 1 << 16, 1 << 19, 1 << 40];
            let (mut t, mut delta, mut v) = (-1_000_000i64, 15_000i64, 1.0f64);
            let mut chunk = XorChunk::new();
            for (jitter, bucket, random, kind) in steps {
                delta = (delta + edges[bucket as usize] * jitter.signum() + jitter).clamp(-(1 << 41), 1 << 41);
                t = t.wrapping_add(delta);
                v = match kind { 0 => v, 1 => v + 1.0, 2 => random, _ => f64::from_bits(v.to_bits() ^ 1) };
                chunk.append(t, v);
            }
            let mut bytes = chunk.bytes().to_vec();
            // Also damaged chunks: both readers may fail, and must agree when neither does.
            for (at, bit) in flips {
                let n = bytes.len();
                bytes[at % n] ^= 1 << bit;
            }
            let mut all = Vec::new();
            let ok = decode_all(&bytes, |t, v| all.push((t, v)));
            let mut it = XorIterator::new(&bytes[..]);
            let mut iterated = Vec::new();
            while it.next_sample() {
                iterated.push((it.t, it.v_bits));
            }
            let iterator_ok = !it.is_corrupt() && iterated.len() == it.num_samples();
            if ok && iterator_ok {
                proptest::prop_assert_eq!(all, iterated);
            }
            if chunk.bytes() == &bytes[..] {
                proptest::prop_assert!(ok && iterator_ok);
            }
        }

        #[test]
        fn decode_all_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let mut n = 0usize;
            decode_all(&bytes, |_, _| n += 1);
            proptest::prop_assert!(n <= usize::from(u16::MAX));
        }

        #[test]
        fn bytes_match_the_reference_in_every_bucket(
            steps in proptest::collection::vec((-3i64..4, 0u32..4, proptest::num::f64::ANY, 0u8..4), 0..300),
        ) {
            // Timestamp steps around every bucket edge; values repeating, close and random.
            let edges = [0i64, 1 << 13, 1 << 16, 1 << 19, 1 << 40];
            let (mut t, mut delta, mut v) = (1_000_000i64, 15_000i64, 1.0f64);
            let mut samples = Vec::new();
            for (jitter, bucket, random, kind) in steps {
                delta = (delta + edges[bucket as usize] * jitter.signum() + jitter).clamp(1, 1 << 41);
                t += delta;
                v = match kind { 0 => v, 1 => v + 1.0, 2 => random, _ => f64::from_bits(v.to_bits() ^ 1) };
                samples.push((t, v));
            }
            let mut chunk = XorChunk::new();
            for &(t, v) in &samples {
                chunk.append(t, v);
            }
            proptest::prop_assert_eq!(chunk.bytes(), &reference_bytes(&samples)[..]);
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
