//! Prometheus' `model.Duration`: `1h30m`, `5m`, `0s`, `2w`, `1y`, printed the same way.

use std::fmt;
use std::time::Duration;

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
        sextant_model::parse_duration_ms(s).ok().map(PromDuration)
    }
}

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        sextant_model::DisplayDuration(self.0).fmt(f)
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
