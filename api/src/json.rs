//! A small JSON writer producing exactly Prometheus' encoding: sample values as strings in
//! Go's float format, timestamps as seconds with millisecond precision, HTML-safe escapes.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sextant_model::Labels;

pub(crate) const JSON_CONTENT_TYPE: &str = "application/json";

#[derive(Debug, Default)]
pub(crate) struct JsonWriter {
    out: String,
}

impl JsonWriter {
    pub(crate) fn new() -> JsonWriter {
        JsonWriter { out: String::with_capacity(256) }
    }

    pub(crate) fn raw(&mut self, s: &str) -> &mut JsonWriter {
        self.out.push_str(s);
        self
    }

    /// A quoted, escaped string as Go's `encoding/json` writes it.
    pub(crate) fn string(&mut self, s: &str) -> &mut JsonWriter {
        self.out.push('"');
        for c in s.chars() {
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                '\r' => self.out.push_str("\\r"),
                '\t' => self.out.push_str("\\t"),
                '<' => self.out.push_str("\\u003c"),
                '>' => self.out.push_str("\\u003e"),
                '&' => self.out.push_str("\\u0026"),
                '\u{2028}' => self.out.push_str("\\u2028"),
                '\u{2029}' => self.out.push_str("\\u2029"),
                c if (c as u32) < 0x20 => self.out.push_str(&format!("\\u{:04x}", c as u32)),
                c => self.out.push(c),
            }
        }
        self.out.push('"');
        self
    }

    /// A timestamp in ms as Prometheus' `MarshalTimestamp`: `1795318533.5` → `1795318533.500`.
    pub(crate) fn timestamp(&mut self, ms: i64) -> &mut JsonWriter {
        if ms < 0 {
            self.out.push('-');
        }
        let abs = ms.unsigned_abs();
        let (secs, frac) = (abs / 1000, abs % 1000);
        self.out.push_str(itoa::Buffer::new().format(secs));
        if frac != 0 {
            let digits = [b'.', b'0' + (frac / 100) as u8, b'0' + (frac / 10 % 10) as u8, b'0' + (frac % 10) as u8];
            // Four ASCII bytes.
            self.out.push_str(std::str::from_utf8(&digits).unwrap_or_default());
        }
        self
    }

    /// `[t,"v"]`.
    pub(crate) fn point(&mut self, ms: i64, v: f64) -> &mut JsonWriter {
        self.out.push('[');
        self.timestamp(ms);
        self.out.push_str(",\"");
        write_value(&mut self.out, v);
        self.out.push_str("\"]");
        self
    }

    /// `{"name":"value",…}` in label order.
    pub(crate) fn labels(&mut self, labels: &Labels) -> &mut JsonWriter {
        self.out.push('{');
        for (i, l) in labels.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.string(&l.name);
            self.out.push(':');
            self.string(&l.value);
        }
        self.out.push('}');
        self
    }

    /// `["a","b"]`.
    pub(crate) fn string_list<'a>(&mut self, items: impl IntoIterator<Item = &'a str>) -> &mut JsonWriter {
        self.out.push('[');
        for (i, s) in items.into_iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.string(s);
        }
        self.out.push(']');
        self
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`, switching to `'e'` below 1e-6 and from 1e21 as
/// Prometheus' `jsonutil.MarshalFloat`; `NaN`, `+Inf`, `-Inf`.
pub(crate) fn format_value(f: f64) -> String {
    let mut out = String::new();
    write_value(&mut out, f);
    out
}

/// [`format_value`] appended to `out` without an intermediate allocation for ordinary values.
fn write_value(out: &mut String, f: f64) {
    let abs = f.abs();
    if !(f.is_finite() && (abs == 0.0 || (1e-6..1e21).contains(&abs))) {
        out.push_str(&format_special(f));
        return;
    }
    if f.is_sign_negative() {
        out.push('-');
    }
    if abs < 1e15 && abs.trunc() == abs {
        // Whole numbers below 10^15 print their integer digits exactly.
        out.push_str(itoa::Buffer::new().format(abs as u64));
        return;
    }
    sextant_model::exposition::ShortestDigits::of(abs).write_fixed(out);
}

fn format_special(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        go_exponent(f)
    } else {
        format!("{f}")
    }
}

/// Go's `'e'` format with the shortest mantissa: `1e-07`, `1.5e+21`.
pub(crate) fn go_exponent(f: f64) -> String {
    let s = format!("{f:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    if digits.len() < 2 {
        format!("{mantissa}e{sign}0{digits}")
    } else {
        format!("{mantissa}e{sign}{digits}")
    }
}

/// A JSON body with Prometheus' content type.
pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_CONTENT_TYPE));
    resp
}

/// `{"status":"success","data":<data>}` plus warnings and infos when there are any.
pub(crate) fn success(data: &str, warnings: &[String], infos: &[String]) -> Response {
    let mut w = success_writer(data.len());
    w.raw(data);
    finish_success(w, warnings, infos)
}

/// A writer holding the start of a success envelope, for a large `data` written in place
/// (no copy of the body): write `data`, then [`finish_success`].
pub(crate) fn success_writer(capacity: usize) -> JsonWriter {
    let mut w = JsonWriter { out: String::with_capacity(capacity + 64) };
    w.raw(r#"{"status":"success","data":"#);
    w
}

/// Ends what [`success_writer`] began.
pub(crate) fn finish_success(mut w: JsonWriter, warnings: &[String], infos: &[String]) -> Response {
    if !warnings.is_empty() {
        w.raw(r#","warnings":"#).string_list(warnings.iter().map(String::as_str));
    }
    if !infos.is_empty() {
        w.raw(r#","infos":"#).string_list(infos.iter().map(String::as_str));
    }
    w.raw("}");
    json_response(StatusCode::OK, w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let check = |f: f64, expected: &str| assert_eq!(format_value(f), expected, "{f}");
        check(1.0, "1");
        check(0.5, "0.5");
        check(-2.25, "-2.25");
        check(0.0, "0");
        check(1e-7, "1e-07");
        check(0.000001, "0.000001");
        check(1.5e21, "1.5e+21");
        check(123456789012345680000.0, "123456789012345680000");
        check(f64::NAN, "NaN");
        check(f64::INFINITY, "+Inf");
        check(f64::NEG_INFINITY, "-Inf");
        check(1e100, "1e+100");
    }

    /// The formatter before the fast paths: Rust's shortest `Display` inside Go's `'f'` range.
    fn reference_value(f: f64) -> String {
        let abs = f.abs();
        if f.is_finite() && (abs == 0.0 || (1e-6..1e21).contains(&abs)) {
            format!("{f}")
        } else {
            format_special(f)
        }
    }

    #[test]
    fn values_at_the_edges_of_the_fast_paths() {
        for f in [
            1e15,
            1e15 - 1.0,
            999999999999999.9,
            1e16,
            1.5e16,
            1e20,
            9.99e20,
            123456.0,
            -0.0,
            -7.0,
            1e-5,
            1.5e-6,
            0.00001234,
            1e-6,
            0.1 + 0.2,
            2.5e-5,
            1.0 / 3.0,
            12345678.9,
            4.35e17,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            assert_eq!(format_value(f), reference_value(f), "{f:e}");
        }
    }

    /// Ours against the old formatter. They may differ only where two shortest digit strings
    /// are equally near `f`: Go (like ryu) then takes the even last digit, Rust's `Display`
    /// the upper one.
    fn check_against_reference(f: f64) -> Result<(), proptest::test_runner::TestCaseError> {
        let (ours, reference) = (format_value(f), reference_value(f));
        if ours != reference {
            proptest::prop_assert_eq!(ours.len(), reference.len(), "{} vs {}", ours, reference);
            proptest::prop_assert_eq!(ours.parse::<f64>().ok(), Some(f), "{} does not read back", ours);
            let last = ours.bytes().last().unwrap_or(b'0');
            proptest::prop_assert!((last - b'0') % 2 == 0, "{} vs {}: not the even tie", ours, reference);
        }
        Ok(())
    }

    #[test]
    fn ties_round_to_even_as_go() {
        // 679741792358060.25 exactly, halfway between two 16-digit strings: Go's
        // FormatFloat(f, 'f', -1, 64) gives ...60.2.
        let tie = 679_741_792_358_060.0 + 0.25;
        assert_eq!(format_value(tie), "679741792358060.2");
        assert_eq!(format_value(-tie), "-679741792358060.2");
    }

    proptest::proptest! {
        #[test]
        fn fast_float_format_matches_display(bits in proptest::num::u64::ANY, scale in -8i32..22) {
            check_against_reference(f64::from_bits(bits))?;
            // Values spread over Go's 'f' range and around its edges, and whole numbers.
            let g = (bits >> 12) as f64 / (1u64 << 52) as f64 * 10f64.powi(scale);
            check_against_reference(g)?;
            check_against_reference(-g)?;
            check_against_reference(g.round())?;
        }
    }

    #[test]
    fn timestamps() {
        let check = |ms: i64, expected: &str| {
            let mut w = JsonWriter::new();
            w.timestamp(ms);
            assert_eq!(w.finish(), expected);
        };
        check(1_795_318_533_500, "1795318533.500");
        check(1_795_318_564_000, "1795318564");
        check(4_000, "4");
        check(1, "0.001");
        check(-1_500, "-1.500");
        check(-2_000, "-2");
    }

    #[test]
    fn strings() {
        let mut w = JsonWriter::new();
        w.string("a\"b\\<&>\n\u{1}é");
        assert_eq!(w.finish(), r#""a\"b\\\u003c\u0026\u003e\n\u0001é""#);
    }
}
