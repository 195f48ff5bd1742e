//! Prometheus' duration (`1h30m`, `500ms`) and byte size (`10MB`, `1GiB`) values.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// A duration in Prometheus' format (`model.Duration`): a sequence of `<integer><unit>` with
/// units `y` (365 days), `w`, `d`, `h`, `m`, `s`, `ms` from largest to smallest, each at most
/// once, or a bare `0`. Never negative, never fractional, millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    millis: u64,
}

impl Duration {
    pub const ZERO: Duration = Duration { millis: 0 };

    pub const fn from_millis(millis: u64) -> Duration {
        Duration { millis }
    }

    pub const fn from_secs(secs: u64) -> Duration {
        Duration { millis: secs * 1000 }
    }

    pub const fn as_millis(self) -> u64 {
        self.millis
    }

    pub const fn is_zero(&self) -> bool {
        self.millis == 0
    }

    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.millis)
    }
}

impl FromStr for Duration {
    type Err = Error;

    fn from_str(s: &str) -> Result<Duration, Error> {
        sextant_model::parse_duration_ms(s).map(Duration::from_millis).map_err(|e| Error::value(e.to_string()))
    }
}

/// Formats like Prometheus: `0s`, `1h30m`, `90d`; years and weeks only when exact.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        sextant_model::DisplayDuration(self.millis).fmt(f)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserialize_parsed(deserializer)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A size in bytes as Prometheus reads it (`units.Base2Bytes`): `<number><unit>` terms with
/// units `B`, `KB`/`KiB`, `MB`/`MiB`, ... `EB`/`EiB`, all powers of 1024; fractions allowed
/// (`1.5MB`); a bare `0`. Negative sizes are rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize {
    bytes: u64,
}

const SIZE_PREFIXES: [&str; 7] = ["", "K", "M", "G", "T", "P", "E"];

impl ByteSize {
    pub const ZERO: ByteSize = ByteSize { bytes: 0 };

    pub const fn from_bytes(bytes: u64) -> ByteSize {
        ByteSize { bytes }
    }

    pub const fn as_bytes(self) -> u64 {
        self.bytes
    }

    pub const fn is_zero(&self) -> bool {
        self.bytes == 0
    }

    fn unit_multiplier(unit: &str, binary_suffix: bool) -> Option<u128> {
        if unit == "B" {
            return Some(1);
        }
        let prefix = if binary_suffix { unit.strip_suffix("iB")? } else { unit.strip_suffix('B')? };
        let pos = SIZE_PREFIXES.iter().skip(1).position(|p| *p == prefix)?;
        Some(1u128 << (10 * (pos + 1)))
    }

    /// The byte count of `s`, exact for whole numbers (Go sums float64s; we only use floats
    /// for fractions).
    fn parse_with(s: &str, binary_suffix: bool) -> Result<u128, Error> {
        let invalid = || Error::value(format!("units: invalid {s}"));
        let overflow = || Error::value("units: overflow parsing unit");
        let mut rest = s;
        let mut total: u128 = 0;
        if let Some(r) = rest.strip_prefix('+') {
            rest = r;
        } else if rest.starts_with('-') {
            return Err(Error::value(format!("size must not be negative, got {s:?}")));
        }
        if rest == "0" {
            return Ok(0);
        }
        if rest.is_empty() {
            return Err(invalid());
        }
        while !rest.is_empty() {
            let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let int_part = &rest[..int_len];
            rest = &rest[int_len..];
            let mut frac_part = "";
            if let Some(r) = rest.strip_prefix('.') {
                let frac_len = r.bytes().take_while(u8::is_ascii_digit).count();
                frac_part = &r[..frac_len];
                rest = &r[frac_len..];
            }
            if int_part.is_empty() && frac_part.is_empty() {
                return Err(invalid());
            }
            let unit_len = rest.bytes().take_while(|b| *b != b'.' && !b.is_ascii_digit()).count();
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let Some(mult) = ByteSize::unit_multiplier(unit, binary_suffix) else {
                return Err(Error::value(format!("units: unknown unit {unit} in {s}")));
            };
            let whole: u128 = if int_part.is_empty() { 0 } else { int_part.parse().map_err(|_| overflow())? };
            let frac: f64 =
                if frac_part.is_empty() { 0.0 } else { format!("0.{frac_part}").parse().map_err(|_| invalid())? };
            let term = whole.checked_mul(mult).ok_or_else(overflow)? + (frac * mult as f64) as u128;
            total = total.checked_add(term).ok_or_else(overflow)?;
        }
        Ok(total)
    }
}

impl FromStr for ByteSize {
    type Err = Error;

    fn from_str(s: &str) -> Result<ByteSize, Error> {
        let total = ByteSize::parse_with(s, true).or_else(|_| ByteSize::parse_with(s, false))?;
        if total > i64::MAX as u128 {
            return Err(Error::value("units: overflow parsing unit"));
        }
        Ok(ByteSize { bytes: total as u64 })
    }
}

/// Formats like `units.Base2Bytes`: `0B`, `512B`, `10MiB`, `1GiB512MiB`.
impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut n = self.bytes;
        if n == 0 {
            return f.write_str("0B");
        }
        let mut parts: Vec<String> = Vec::new();
        for (i, prefix) in SIZE_PREFIXES.iter().enumerate() {
            if n % 1024 != 0 {
                let suffix = if i == 0 { "B" } else { "iB" };
                parts.push(format!("{}{prefix}{suffix}", n % 1024));
            }
            n /= 1024;
            if n == 0 {
                break;
            }
        }
        parts.reverse();
        f.write_str(&parts.concat())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ByteSize, D::Error> {
        deserialize_parsed(deserializer)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A YAML scalar read as text whatever its type (`0`, `10`, `true`), like Go's yaml.v2 does
/// for string fields.
pub(crate) struct ScalarString(pub(crate) String);

impl FromStr for ScalarString {
    type Err = Error;
    fn from_str(s: &str) -> Result<ScalarString, Error> {
        Ok(ScalarString(s.to_string()))
    }
}

impl<'de> Deserialize<'de> for ScalarString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ScalarString, D::Error> {
        deserialize_parsed(deserializer)
    }
}

/// A value read from one YAML scalar with `FromStr`; `NULL` is the text a YAML null stands for
/// (Go's yaml leaves the field at its zero value).
pub(crate) trait YamlScalar: FromStr<Err = Error> {
    const NULL: &'static str;

    /// The value of a YAML null.
    fn from_null() -> Result<Self, Error> {
        Self::from_str(Self::NULL)
    }
}

impl YamlScalar for Duration {
    const NULL: &'static str = "0";
}

impl YamlScalar for ByteSize {
    const NULL: &'static str = "0";
}

impl YamlScalar for ScalarString {
    const NULL: &'static str = "";
}

/// Reads a scalar as text and parses it with `T::from_str` inside the deserializer, so that a
/// parse error carries the scalar's position.
pub(crate) fn deserialize_parsed<'de, T, D>(deserializer: D) -> Result<T, D::Error>
where
    T: YamlScalar,
    D: Deserializer<'de>,
{
    struct Visitor<T>(std::marker::PhantomData<T>);
    impl<T: YamlScalar> Visitor<T> {
        fn parse<E: serde::de::Error>(s: &str) -> Result<T, E> {
            s.parse().map_err(E::custom)
        }
    }
    impl<T: YamlScalar> serde::de::Visitor<'_> for Visitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
            Self::parse(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<T, E> {
            Self::parse(&v.to_string())
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<T, E> {
            Self::parse(&v.to_string())
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<T, E> {
            Self::parse(&v.to_string())
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<T, E> {
            Self::parse(&v.to_string())
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<T, E> {
            T::from_null().map_err(E::custom)
        }
    }
    deserializer.deserialize_any(Visitor(std::marker::PhantomData))
}

/// A configuration section read with [`deserialize_checked`].
pub(crate) trait Section {
    /// Prometheus' complaint about a null in place of the section.
    const NULL_MESSAGE: &'static str = "empty or null section";
}

/// Deserializes `T` through its flat twin `R` and `T::try_from`, failing inside the
/// deserializer so that the error carries the position and path of the mapping.
pub(crate) fn deserialize_checked<'de, D, R, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    R: Deserialize<'de>,
    T: TryFrom<R, Error = String> + Section,
{
    struct Visitor<R, T>(std::marker::PhantomData<(R, T)>);
    impl<'de, R: Deserialize<'de>, T: TryFrom<R, Error = String> + Section> serde::de::Visitor<'de> for Visitor<R, T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            let raw = R::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
            T::try_from(raw).map_err(serde::de::Error::custom)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<T, E> {
            Err(E::custom(T::NULL_MESSAGE))
        }
    }
    deserializer.deserialize_any(Visitor(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_duration(input: &str, expected: Result<u64, &str>) {
        let got = input.parse::<Duration>().map(|d| d.as_millis()).map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_string), "{input:?}");
    }

    #[test]
    fn durations_parse_like_prometheus() {
        check_duration("0", Ok(0));
        check_duration("0s", Ok(0));
        check_duration("1m", Ok(60_000));
        check_duration("1h30m", Ok(5_400_000));
        check_duration("500ms", Ok(500));
        check_duration("1y", Ok(365 * 86_400_000));
        check_duration("2w3d", Ok(17 * 86_400_000));
        check_duration("1s500ms", Ok(1500));
        check_duration("", Err("empty duration string"));
        check_duration("1", Err("not a valid duration string: \"1\""));
        check_duration("1.5s", Err("unknown unit \".\" in duration \"1.5s\""));
        check_duration("-1s", Err("not a valid duration string: \"-1s\""));
        check_duration("1m1h", Err("not a valid duration string: \"1m1h\""));
        check_duration("1s1s", Err("not a valid duration string: \"1s1s\""));
        check_duration("5x", Err("unknown unit \"x\" in duration \"5x\""));
        check_duration("1 s", Err("unknown unit \" s\" in duration \"1 s\""));
        check_duration("300y", Err("duration out of range"));
        check_duration("99999999999999999999s", Err("not a valid duration string: \"99999999999999999999s\""));
    }

    #[test]
    fn durations_format_like_prometheus() {
        for (ms, text) in [
            (0, "0s"),
            (500, "500ms"),
            (60_000, "1m"),
            (5_400_000, "1h30m"),
            (90 * 86_400_000, "90d"),
            (14 * 86_400_000, "2w"),
            (365 * 86_400_000, "1y"),
            (86_400_000 + 1, "1d1ms"),
        ] {
            assert_eq!(Duration::from_millis(ms).to_string(), text);
            assert_eq!(text.parse::<Duration>().unwrap().as_millis(), ms);
        }
    }

    fn check_size(input: &str, expected: Result<u64, &str>) {
        let got = input.parse::<ByteSize>().map(|d| d.as_bytes()).map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_string), "{input:?}");
    }

    #[test]
    fn sizes_parse_like_base2bytes() {
        check_size("0", Ok(0));
        check_size("100B", Ok(100));
        check_size("10KB", Ok(10 * 1024));
        check_size("10KiB", Ok(10 * 1024));
        check_size("10MB", Ok(10 << 20));
        check_size("1GB", Ok(1 << 30));
        check_size("1.5MB", Ok(3 << 19));
        check_size("1GiB512MiB", Ok(3 << 29));
        check_size("2TB", Ok(2 << 40));
        check_size("1EB", Ok(1 << 60));
        check_size("10", Err("units: unknown unit  in 10"));
        check_size("10kB", Err("units: unknown unit kB in 10kB"));
        check_size("", Err("units: invalid "));
        check_size("MB", Err("units: invalid MB"));
        check_size("-1MB", Err("size must not be negative, got \"-1MB\""));
        check_size("16EB", Err("units: overflow parsing unit"));
    }

    #[test]
    fn sizes_format_like_base2bytes() {
        for (bytes, text) in [(0, "0B"), (100, "100B"), (10 << 20, "10MiB"), (3 << 29, "1GiB512MiB"), (1025, "1KiB1B")]
        {
            assert_eq!(ByteSize::from_bytes(bytes).to_string(), text);
            assert_eq!(text.parse::<ByteSize>().unwrap().as_bytes(), bytes);
        }
    }
}
