//! Prometheus' duration text (`model.Duration`): `1h30m`, `500ms`, `2w`, `0`.
//!
//! One parser and one printer for every crate that reads durations from configuration
//! (`prometheus.yml`, rule files, `alertmanager.yml`).

use std::fmt;

/// Units from largest to smallest with their length in milliseconds.
const MS_PER_UNIT: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Go's `time.Duration` holds nanoseconds in an i64; Prometheus rejects what does not fit.
const MAX_MILLIS: u64 = (i64::MAX as u64) / 1_000_000;

/// Why a duration string was rejected; the message reads like Prometheus'.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    #[error("empty duration string")]
    Empty,
    #[error("not a valid duration string: {0:?}")]
    Invalid(String),
    #[error("unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit { unit: String, input: String },
    #[error("duration out of range")]
    OutOfRange,
}

/// Parses a bare `0`, or `<integer><unit>` terms with units `y` (365 days), `w`, `d`, `h`, `m`,
/// `s`, `ms`, from largest to smallest, each at most once. Returns milliseconds.
///
/// ```
/// assert_eq!(sextant_model::parse_duration_ms("1h30m"), Ok(5_400_000));
/// assert!(sextant_model::parse_duration_ms("1.5h").is_err());
/// ```
pub fn parse_duration_ms(s: &str) -> Result<u64, DurationError> {
    match s {
        "0" => return Ok(0),
        "" => return Err(DurationError::Empty),
        _ => {}
    }
    let invalid = || DurationError::Invalid(s.to_string());
    let mut rest = s;
    let mut total: u64 = 0;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
        if unit_len == 0 {
            return Err(invalid());
        }
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let Some(pos) = MS_PER_UNIT.iter().position(|(u, _)| *u == unit) else {
            return Err(DurationError::UnknownUnit { unit: unit.to_string(), input: s.to_string() });
        };
        if pos < next_unit {
            return Err(invalid());
        }
        next_unit = pos + 1;
        total = value
            .checked_mul(MS_PER_UNIT[pos].1)
            .and_then(|add| total.checked_add(add))
            .filter(|t| *t <= MAX_MILLIS)
            .ok_or(DurationError::OutOfRange)?;
    }
    Ok(total)
}

/// Prints milliseconds as Prometheus does: `0s`, `1h30m`, `90d`; years and weeks only when exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisplayDuration(pub u64);

impl fmt::Display for DisplayDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0;
        if ms == 0 {
            return f.write_str("0s");
        }
        for (i, (unit, mult)) in MS_PER_UNIT.iter().enumerate() {
            let exact_only = i < 2;
            if exact_only && ms % mult != 0 {
                continue;
            }
            let n = ms / mult;
            if n > 0 {
                write!(f, "{n}{unit}")?;
                ms -= n * mult;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let check = |input: &str, printed: Option<&str>| {
            let got = parse_duration_ms(input).ok().map(|ms| DisplayDuration(ms).to_string());
            assert_eq!(got.as_deref(), printed, "{input}")
        };
        check("0", Some("0s"));
        check("0s", Some("0s"));
        check("30s", Some("30s"));
        check("90m", Some("1h30m"));
        check("1h30m", Some("1h30m"));
        check("14d", Some("2w"));
        check("15d", Some("15d"));
        check("1y", Some("1y"));
        check("1500ms", Some("1s500ms"));
        check("", None);
        check("5", None);
        check("1m1h", None);
        check("1h1h", None);
        check("1.5h", None);
        check("-1m", None);
        check("1mm", None);
        check("1x", None);
        check("99999999999999999999y", None);
        check("300000y", None);
    }

    #[test]
    fn errors_name_the_input() {
        assert_eq!(parse_duration_ms("").unwrap_err().to_string(), "empty duration string");
        assert_eq!(parse_duration_ms("5").unwrap_err().to_string(), "not a valid duration string: \"5\"");
        assert_eq!(parse_duration_ms("3q").unwrap_err().to_string(), "unknown unit \"q\" in duration \"3q\"");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_round_trips(s in "[0-9a-z.]{0,12}") {
            if let Ok(ms) = parse_duration_ms(&s) {
                proptest::prop_assert_eq!(parse_duration_ms(&DisplayDuration(ms).to_string()), Ok(ms));
            }
        }
    }
}
