//! Time, samples and the stale marker.

use std::time::{SystemTime, UNIX_EPOCH};

/// Bit pattern of the NaN that marks a series as stale (Prometheus' `value.StaleNaN`).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The stale marker: a NaN with the bits [`STALE_NAN_BITS`].
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// True if `v` is the stale marker (and not any other NaN).
pub fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One float sample: a timestamp in milliseconds since the Unix epoch and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub t: i64,
    pub v: f64,
}

/// Milliseconds since the Unix epoch of a `SystemTime` (negative before 1970).
pub fn timestamp_ms(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_marker_is_a_specific_nan() {
        assert!(is_stale(stale_nan()));
        assert!(stale_nan().is_nan());
        assert!(!is_stale(f64::NAN));
        assert!(!is_stale(1.0));
    }

    #[test]
    fn timestamps_around_the_epoch() {
        use std::time::Duration;
        assert_eq!(timestamp_ms(UNIX_EPOCH + Duration::from_millis(1500)), 1500);
        assert_eq!(timestamp_ms(UNIX_EPOCH - Duration::from_millis(20)), -20);
    }
}
