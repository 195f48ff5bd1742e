//! Numbers as Prometheus reads and writes them: Go's `strconv.ParseFloat` (without hex floats
//! and underscores) and `strconv.FormatFloat(f, 'g', -1, 64)`.

use std::fmt::Write as _;

/// Parses a sample value the way Prometheus does: decimal floats, `Inf`/`Infinity` with an
/// optional sign and `NaN` in any case; no hex floats, no `_`, no out-of-range values. NaN is
/// returned as the canonical quiet NaN (never the stale marker).
pub(super) fn parse_float(text: &str) -> Option<f64> {
    // Fast path: short unsigned integers are exact as f64.
    let token = text.as_bytes();
    if !token.is_empty() && token.len() <= 15 && token.iter().all(u8::is_ascii_digit) {
        let mut n: u64 = 0;
        for &b in token {
            n = n * 10 + u64::from(b - b'0');
        }
        return Some(n as f64);
    }
    if let Some(v) = parse_short_decimal(token) {
        return Some(v);
    }
    if text.bytes().any(|b| matches!(b, b'_' | b'p' | b'P' | b'x' | b'X')) {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    if value.is_nan() {
        // Go accepts no sign on NaN.
        return (!text.starts_with(['+', '-'])).then_some(f64::NAN);
    }
    if value.is_infinite() && !text.bytes().any(|b| b == b'i' || b == b'I') {
        return None; // out of range: Go's ErrRange
    }
    Some(value)
}

/// Exact powers of ten as f64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// `[+-]digits[.digits][(e|E)[+-]digits]` with at most 15 significant digits and a small
/// decimal exponent: the mantissa and the power of ten are exact doubles, so one
/// multiplication or division gives the correctly rounded result (Clinger's fast path).
/// `None` means "use the general parser", never "invalid".
fn parse_short_decimal(b: &[u8]) -> Option<f64> {
    parse_short_decimal_prefix(b).filter(|&(_, n)| n == b.len()).map(|(v, _)| v)
}

/// [`parse_short_decimal`] of the longest number at the start of `b`: the value and how many
/// bytes it took. Lets the parser read a value in the same pass that finds its end.
pub(super) fn parse_short_decimal_prefix(b: &[u8]) -> Option<(f64, usize)> {
    let (negative, mut i) = match b.first()? {
        b'-' => (true, 1),
        b'+' => (false, 1),
        _ => (false, 0),
    };
    let mut mantissa: u64 = 0;
    let mut n_significant = 0;
    let mut exp10: i32 = 0;
    let mut any_digit = false;
    let mut push = |d: u8, mantissa: &mut u64| -> Option<()> {
        if *mantissa != 0 || d != 0 {
            n_significant += 1;
            if n_significant > 15 {
                return None;
            }
        }
        *mantissa = *mantissa * 10 + u64::from(d);
        Some(())
    };
    while let Some(&c) = b.get(i).filter(|c| c.is_ascii_digit()) {
        push(c - b'0', &mut mantissa)?;
        any_digit = true;
        i += 1;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while let Some(&c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            push(c - b'0', &mut mantissa)?;
            exp10 -= 1;
            any_digit = true;
            i += 1;
        }
    }
    if !any_digit {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        let negative_exp = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        let mut e: i32 = 0;
        while let Some(&c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            e = (e * 10 + i32::from(c - b'0')).min(10_000);
            i += 1;
        }
        if i == start {
            return None;
        }
        exp10 += if negative_exp { -e } else { e };
    }
    let m = mantissa as f64;
    let v = match exp10 {
        0 => m,
        1..=22 => m * POW10[exp10 as usize],
        -22..=-1 => m / POW10[(-exp10) as usize],
        _ => return None,
    };
    Some((if negative { -v } else { v }, i))
}

/// Parses an OpenMetrics timestamp (seconds, maybe with a fraction) into milliseconds,
/// truncating toward zero. Plain decimals are converted exactly, so what the encoder writes
/// reads back to the same millisecond; other forms go through `f64` like Prometheus.
pub(super) fn parse_om_timestamp(token: &str) -> Option<i64> {
    if let Some(ms) = exact_decimal_ms(token.as_bytes()) {
        return Some(ms);
    }
    let seconds = parse_float(token)?;
    if !seconds.is_finite() {
        return None;
    }
    Some((seconds * 1000.0) as i64) // saturating, truncating like Go's int64(f)
}

fn exact_decimal_ms(token: &[u8]) -> Option<i64> {
    let (negative, digits) = match token.first()? {
        b'-' => (true, &token[1..]),
        b'+' => (false, &token[1..]),
        _ => (false, token),
    };
    let (int_part, frac_part) = match memchr::memchr(b'.', digits) {
        Some(i) => (&digits[..i], &digits[i + 1..]),
        None => (digits, &digits[digits.len()..]),
    };
    if int_part.is_empty() || !int_part.iter().chain(frac_part).all(u8::is_ascii_digit) {
        return None;
    }
    let mut ms: i64 = 0;
    for &b in int_part {
        ms = ms.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    ms = ms.checked_mul(1000)?;
    let mut scale = 100;
    for &b in frac_part.iter().take(3) {
        ms = ms.checked_add(i64::from(b - b'0') * scale)?;
        scale /= 10;
    }
    Some(if negative { -ms } else { ms })
}

/// Writes `ms` as seconds with a millisecond fraction (`1.5` s is `1.500`), exactly.
pub(super) fn write_om_timestamp(out: &mut String, ms: i64) {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    let _ = write!(out, "{sign}{}.{:03}", abs / 1000, abs % 1000);
}

/// Writes `v` like Go's `strconv.FormatFloat(v, 'g', -1, 64)` with Prometheus' spelling of the
/// special values (`+Inf`, `-Inf`, `NaN`): the shortest digits that read back to `v`, in
/// exponent form (`1e+06`, `1.7518624e+07`, `1e-05`) when the decimal exponent is below -4
/// or at least 6 (Go uses precision 6 for that decision when formatting shortest).
///
/// Allocation-free: the shortest digits come from `{:e}` written into a stack buffer.
pub fn write_go_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v == 0.0 {
        out.push_str(if v.is_sign_negative() { "-0" } else { "0" });
    } else if v.fract() == 0.0 && v.abs() < 1e6 {
        if v < 0.0 {
            out.push('-');
        }
        push_decimal(out, v.abs() as u64);
    } else {
        let shortest = ShortestDigits::of(v);
        let (digits, exp) = (shortest.digits(), shortest.exp);
        if v < 0.0 {
            out.push('-');
        }
        if !(-4..6).contains(&exp) {
            out.push_str(&digits[..1]);
            if digits.len() > 1 {
                out.push('.');
                out.push_str(&digits[1..]);
            }
            out.push_str(if exp < 0 { "e-" } else { "e+" });
            if exp.unsigned_abs() < 10 {
                out.push('0');
            }
            push_decimal(out, u64::from(exp.unsigned_abs()));
        } else {
            shortest.write_fixed(out);
        }
    }
}

/// The shortest decimal digits that read back to a finite, nonzero `f64` (sign ignored), as
/// Go's `strconv` finds them: where two shortest digit strings are equally near, the one
/// ending in an even digit (ryu makes the same choice; Rust's `{:e}` takes the upper one).
/// The value is `d.ddd × 10^exp`. Shared by the exposition encoder (`'g'` format) and the
/// HTTP API's JSON (`'f'` format).
#[derive(Debug, Clone, Copy)]
pub struct ShortestDigits {
    buf: [u8; 24],
    len: usize,
    /// The decimal exponent of the first digit.
    pub exp: i32,
}

impl ShortestDigits {
    /// The digits of `v`, which must be finite and nonzero (others give the digits of 0).
    pub fn of(v: f64) -> ShortestDigits {
        let mut out = ShortestDigits { buf: [b'0'; 24], len: 1, exp: 0 };
        if !v.is_finite() || v == 0.0 {
            return out;
        }
        let mut ryu_buf = ryu::Buffer::new();
        // "123.456", "0.001234", "1.5e-7" or "1e21".
        let text = ryu_buf.format_finite(v.abs()).as_bytes();
        let e_at = text.iter().position(|&b| b == b'e').unwrap_or(text.len());
        let exp_text = text.get(e_at + 1..).unwrap_or_default();
        let (exp_negative, exp_digits) = match exp_text.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, exp_text),
        };
        let exp_abs = exp_digits.iter().fold(0i32, |n, &b| n * 10 + i32::from(b.wrapping_sub(b'0') % 10));
        let mantissa = &text[..e_at];
        let int_len = mantissa.iter().position(|&b| b == b'.').unwrap_or(mantissa.len());
        // Where the decimal point sits after the digits' first character, before stripping
        // leading zeros.
        let mut point = int_len as i32 + if exp_negative { -exp_abs } else { exp_abs };
        let mut len = 0;
        for &b in mantissa.iter().filter(|b| b.is_ascii_digit()) {
            if len == 0 && b == b'0' {
                point -= 1;
                continue;
            }
            if len < out.buf.len() {
                out.buf[len] = b;
                len += 1;
            }
        }
        while len > 1 && out.buf[len - 1] == b'0' {
            len -= 1;
        }
        out.len = len.max(1);
        out.exp = point - 1;
        out
    }

    /// The digits, without sign, point or exponent.
    pub fn digits(&self) -> &str {
        // Only ASCII digits are stored.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("0")
    }

    /// Appends the digits in positional notation (Go's `'f'` format with the shortest
    /// precision): `0.00123`, `1234.5`, `1200`.
    pub fn write_fixed(&self, out: &mut String) {
        let digits = self.digits();
        let point = self.exp + 1;
        if point <= 0 {
            out.push_str("0.");
            (0..-point).for_each(|_| out.push('0'));
            out.push_str(digits);
        } else if point as usize >= digits.len() {
            out.push_str(digits);
            (digits.len()..point as usize).for_each(|_| out.push('0'));
        } else {
            out.push_str(&digits[..point as usize]);
            out.push('.');
            out.push_str(&digits[point as usize..]);
        }
    }
}

/// Writes `n` in decimal without going through `fmt`.
pub(super) fn push_decimal(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&buf[at..]).unwrap_or_default());
}

/// The straightforward formatter (allocating), kept as the property tests' oracle. Writes `v` like Go's `strconv.FormatFloat(v, 'g', -1, 64)` with Prometheus' spelling of the
/// special values (`+Inf`, `-Inf`, `NaN`): the shortest digits that read back to `v`, in
/// exponent form (`1e+06`, `1.7518624e+07`, `1e-05`) when the decimal exponent is below -4
/// or at least 6 (Go uses precision 6 for that decision when formatting shortest).
#[cfg(test)]
pub(super) fn write_go_float_reference(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v == 0.0 {
        out.push_str(if v.is_sign_negative() { "-0" } else { "0" });
    } else if v.fract() == 0.0 && v.abs() < 1e6 {
        let _ = write!(out, "{}", v as i64);
    } else {
        // `{:e}` gives the shortest round-trip digits: "-1.2345e-5".
        let mut sci = String::with_capacity(32);
        let _ = write!(sci, "{v:e}");
        let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let (negative, mantissa) = match mantissa.strip_prefix('-') {
            Some(m) => (true, m),
            None => (false, mantissa),
        };
        let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
        if negative {
            out.push('-');
        }
        if !(-4..6).contains(&exp) {
            out.push_str(&digits[..1]);
            if digits.len() > 1 {
                out.push('.');
                out.push_str(&digits[1..]);
            }
            let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs());
        } else if exp < 0 {
            out.push_str("0.");
            for _ in 0..(-exp - 1) {
                out.push('0');
            }
            out.push_str(&digits);
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                for _ in digits.len()..int_len {
                    out.push('0');
                }
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        }
    }
}

/// Like [`write_go_float`], with OpenMetrics' rule that integral values get a `.0`
/// (Prometheus' `FormatOpenMetricsFloat`): `1.0`, `1e+06`, `+Inf`.
pub(super) fn write_om_float(out: &mut String, v: f64) {
    let start = out.len();
    write_go_float(out, v);
    if v.is_finite() && !out[start..].contains(['.', 'e']) {
        out.push_str(".0");
    }
}

/// `FormatOpenMetricsFloat` of a label value that parses as a float (`le="1"` → `"1.0"`),
/// used to normalise `le` and `quantile`; `None` when it is not a float.
pub(super) fn normalize_float_label(value: &str) -> Option<String> {
    let v = parse_float(value)?;
    let mut out = String::with_capacity(value.len() + 2);
    write_om_float(&mut out, v);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_go() {
        for (text, want) in [
            ("1", Some(1.0)),
            ("-1.5e3", Some(-1500.0)),
            ("0000000000000000000000000000000000000000001.2e-1", Some(0.12)),
            ("+Inf", Some(f64::INFINITY)),
            ("-inf", Some(f64::NEG_INFINITY)),
            ("Infinity", Some(f64::INFINITY)),
            (".5", Some(0.5)),
            ("9223372036854775808", Some(9.223372036854776e18)),
            ("1_2", None),
            ("0x1p-3", None),
            ("0x1", None),
            ("0b1", None),
            ("1e400", None),
            ("+NaN", None),
            ("", None),
            ("1.1.1", None),
            ("z", None),
        ] {
            assert_eq!(parse_float(text), want, "{text}");
        }
        // The fast path agrees with the general parser, bit for bit.
        for text in [
            "0.1",
            "12345.678",
            "4.9351e-05",
            "-0",
            "-0.0",
            "1e22",
            "1e-22",
            "123456789012345",
            "0.000000000000000000001",
            "1.7976931348623157e308",
            "5e-324",
            "00012.50",
            "+3.",
            ".5",
            "9007199254740993",
            "1.2345678901234567",
        ] {
            let want: f64 = text.parse().unwrap();
            assert_eq!(parse_float(text).map(f64::to_bits), Some(want.to_bits()), "{text}");
        }
        assert!(parse_float("NaN").unwrap().is_nan());
        assert!(parse_float("nan").unwrap().is_nan());
    }

    proptest::proptest! {
        #[test]
        fn fast_path_agrees_with_std(
            sign in "[-+]?", int in "[0-9]{0,12}", frac in "(\\.[0-9]{0,8})?", exp in "([eE][-+]?[0-9]{1,3})?"
        ) {
            let text = format!("{sign}{int}{frac}{exp}");
            let want = text.parse::<f64>().ok().filter(|v| v.is_finite() || text.contains(['i', 'I']));
            proptest::prop_assert_eq!(parse_float(&text).map(f64::to_bits), want.map(f64::to_bits), "{}", text);
        }
    }

    #[test]
    fn om_timestamps_to_ms() {
        for (text, want) in [
            ("1", Some(1000)),
            ("000", Some(0)),
            ("1.1", Some(1100)),
            ("-1.1", Some(-1100)),
            ("1726839814.223", Some(1_726_839_814_223)),
            ("1.7268398142239082e+09", Some(1_726_839_814_223)),
            ("0.0000000001", Some(0)),
            ("1.5e3", Some(1_500_000)),
            ("12345678901234567890.1234567890", Some(i64::MAX)),
            ("NaN", None),
            ("Inf", None),
            ("1z", None),
        ] {
            assert_eq!(parse_om_timestamp(text), want, "{text}");
        }
        for ms in [0, 1, -1, 1500, -1100, 1_726_839_814_223, i64::MAX, i64::MIN + 1] {
            let mut s = String::new();
            write_om_timestamp(&mut s, ms);
            assert_eq!(parse_om_timestamp(&s), Some(ms), "{s}");
        }
    }

    #[test]
    fn formats_like_go() {
        for (v, go, om) in [
            (0.0, "0", "0.0"),
            (1.0, "1", "1.0"),
            (-1.0, "-1", "-1.0"),
            (100000.0, "100000", "100000.0"),
            (1e6, "1e+06", "1e+06"),
            (999999.0, "999999", "999999.0"),
            (17518624.0, "1.7518624e+07", "1.7518624e+07"),
            (1e21, "1e+21", "1e+21"),
            (123456789012345680000.0, "1.2345678901234568e+20", "1.2345678901234568e+20"),
            (123456.5, "123456.5", "123456.5"),
            (1234567.5, "1.2345675e+06", "1.2345675e+06"),
            (1e-5, "1e-05", "1e-05"),
            (0.0001, "0.0001", "0.0001"),
            (1.55555555555552e6, "1.55555555555552e+06", "1.55555555555552e+06"),
            (2.478268416e9, "2.478268416e+09", "2.478268416e+09"),
            (0.013300656000000001, "0.013300656000000001", "0.013300656000000001"),
            (-8.452185437166741e-05, "-8.452185437166741e-05", "-8.452185437166741e-05"),
            (324789.3, "324789.3", "324789.3"),
            (f64::INFINITY, "+Inf", "+Inf"),
            (f64::NEG_INFINITY, "-Inf", "-Inf"),
            (f64::NAN, "NaN", "NaN"),
        ] {
            let (mut g, mut o) = (String::new(), String::new());
            write_go_float(&mut g, v);
            write_om_float(&mut o, v);
            assert_eq!((g.as_str(), o.as_str()), (go, om), "{v}");
        }
        assert_eq!(normalize_float_label("1").as_deref(), Some("1.0"));
        assert_eq!(normalize_float_label("1e-04").as_deref(), Some("0.0001"));
        assert_eq!(normalize_float_label("+Inf").as_deref(), Some("+Inf"));
        assert_eq!(normalize_float_label("foo"), None);
    }
}
