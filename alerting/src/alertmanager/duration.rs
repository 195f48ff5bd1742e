//! Prometheus' `model.Duration`: `1h30m`, `5m`, `0s`, `2w`, `1y`, printed the same way.

use std::fmt;
use std::time::Duration;

const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// A duration in milliseconds, parsed and printed as Prometheus does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PromDuration(pub u64);

impl PromDuration {
    pub fn from_secs(s: u64) -> PromDuration {
        PromDuration(s * 1000)
    }

    pub fn as_millis(self) -> u64 {
        self.0
    }

    pub fn to_std(self) -> Duration {
        Duration::from_millis(self.0)
    }

    /// Parses `0`, or units in decreasing order each at most once: `1y2w3d4h5m6s7ms`.
    pub fn parse(s: &str) -> Option<PromDuration> {
        if s == "0" {
            return Some(PromDuration(0));
        }
        if s.is_empty() {
            return None;
        }
        let mut rest = s;
        let mut total: u64 = 0;
        let mut next_unit = 0;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            let n: u64 = rest[..digits].parse().ok()?;
            rest = &rest[digits..];
            // "ms" must be tried before "m".
            let (idx, unit_len) = UNITS
                .iter()
                .enumerate()
                .skip(next_unit)
                .filter(|(_, (u, _))| rest.starts_with(u))
                .map(|(i, (u, _))| (i, u.len()))
                .max_by_key(|&(_, len)| len)?;
            total = total.checked_add(n.checked_mul(UNITS[idx].1)?)?;
            rest = &rest[unit_len..];
            next_unit = idx + 1;
        }
        // Go's time.Duration is an i64 of nanoseconds.
        if total > (i64::MAX as u64) / 1_000_000 {
            return None;
        }
        Some(PromDuration(total))
    }
}

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0;
        if ms == 0 {
            return f.write_str("0s");
        }
        for (i, (unit, mult)) in UNITS.iter().enumerate() {
            // Years and weeks only when exact: 90d reads better than 12w6d.
            if i < 2 && ms % mult != 0 {
                continue;
            }
            let v = ms / mult;
            if v > 0 {
                write!(f, "{v}{unit}")?;
                ms -= v * mult;
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
            assert_eq!(PromDuration::parse(input).map(|d| d.to_string()).as_deref(), printed, "{input}")
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
        check("1.5h", None);
        check("-1m", None);
        check("1mm", None);
        check("99999999999999999999y", None);
    }
}
