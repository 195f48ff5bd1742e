//! Request parameters as Prometheus reads them: form values from the URL and a
//! form-urlencoded body, times (float seconds or RFC 3339), durations, selectors and
//! `U__`-escaped label names.

use sextant_model::Matcher;
use sextant_promql::Expr;

use crate::error::ApiError;

/// Smallest and largest times the API accepts (Prometheus' `minTime` / `maxTime`, in ms).
pub(crate) const MIN_TIME_MS: i64 = -9_223_372_036_854_775 + 1;
pub(crate) const MAX_TIME_MS: i64 = 9_223_372_036_854_775 - 1;

/// The form values of one request: the body's first (as Go's `ParseForm`), then the URL's.
#[derive(Debug, Default, Clone)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub(crate) fn parse(query: Option<&str>, form_body: Option<&[u8]>) -> Params {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(body) = form_body {
            pairs.extend(form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())));
        }
        if let Some(q) = query {
            pairs.extend(form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())));
        }
        Params { pairs }
    }

    /// The first value of `name`, or `""` (Go's `FormValue`).
    pub(crate) fn get(&self, name: &str) -> &str {
        self.pairs.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }

    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }
}

/// Parses a time as Prometheus' `parseTime`: float Unix seconds (rounded to ms) or RFC 3339.
pub(crate) fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() {
            let whole = secs.trunc();
            let frac_ms = ((secs - whole) * 1000.0).round();
            let ms = whole * 1000.0 + frac_ms;
            if ms >= i64::MIN as f64 && ms <= i64::MAX as f64 {
                return Ok((ms as i64).clamp(MIN_TIME_MS, MAX_TIME_MS));
            }
        }
        return Err(format!("cannot parse {s:?} to a valid timestamp"));
    }
    match s {
        "-292273086-05-16T16:47:06Z" => return Ok(MIN_TIME_MS),
        "292277025-08-18T07:12:54.999999999Z" => return Ok(MAX_TIME_MS),
        _ => {}
    }
    parse_rfc3339(s).ok_or_else(|| format!("cannot parse {s:?} to a valid timestamp"))
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` to ms since the epoch.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || i - start > 9 {
            return None;
        }
        let digits = &s[start..i];
        let mut scaled = 0i64;
        for (k, c) in digits.bytes().enumerate().take(3) {
            scaled += i64::from(c - b'0') * 10i64.pow(2 - k as u32);
        }
        frac_ms = scaled;
    }
    let offset_s = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (h, m) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    Some(secs * 1000 + frac_ms)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats ms since the epoch as RFC 3339 with ms precision (`2026-11-22T03:35:23.557Z`).
pub(crate) fn format_rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    if frac == 0 {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{frac:03}Z")
    }
}

/// Parses a duration as Prometheus' `parseDuration`: float seconds or `1h30m`-style, to ms.
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        let ms = secs * 1000.0;
        if !ms.is_finite() || ms > (i64::MAX / 1_000_000) as f64 || ms < (i64::MIN / 1_000_000) as f64 {
            return Err(format!("cannot parse {s:?} to a valid duration. It overflows int64"));
        }
        return Ok(ms.round() as i64);
    }
    parse_prometheus_duration(s).ok_or_else(|| format!("cannot parse {s:?} to a valid duration"))
}

/// `1y2w3d4h5m6s7ms` (units in this order, each at most once) to ms.
pub(crate) fn parse_prometheus_duration(s: &str) -> Option<i64> {
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    if s.is_empty() {
        return None;
    }
    if s == "0" {
        return Some(0);
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut total: i64 = 0;
    let mut last_unit = 0usize;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let n: i64 = s[start..i].parse().ok()?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let idx = UNITS.iter().position(|(u, _)| *u == unit)?;
        if idx < last_unit {
            return None;
        }
        last_unit = idx + 1;
        total = total.checked_add(n.checked_mul(UNITS[idx].1)?)?;
    }
    // Go's time.Duration holds ±292 years of nanoseconds.
    (total <= i64::MAX / 1_000_000).then_some(total)
}

/// Parses a series selector (`match[]`) into its matchers.
pub(crate) fn parse_selector(s: &str) -> Result<Vec<Matcher>, String> {
    match sextant_promql::parse(s) {
        Ok(Expr::VectorSelector(vs)) => Ok(vs.matchers),
        Ok(_) => Err(format!("1:1: parse error: only series selectors are accepted, got {s:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Parses every `match[]`; an error is `bad_data` as Prometheus'.
pub(crate) fn parse_match_params(params: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    params.all("match[]").into_iter().map(|m| parse_selector(m).map_err(ApiError::bad_data)).collect()
}

/// Undoes the `U__` escaping of label names in URL paths (`U__http_2e_status` → `http.status`).
pub(crate) fn unescape_label_name(name: &str) -> String {
    let Some(rest) = name.strip_prefix("U__") else {
        return name.to_string();
    };
    let mut out = String::with_capacity(rest.len());
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        if rest[i + 1..].starts_with('_') {
            chars.next();
            out.push('_');
            continue;
        }
        let hex_end = rest[i + 1..].find('_').map(|j| i + 1 + j);
        let decoded = hex_end.and_then(|end| {
            let hex = &rest[i + 1..end];
            if hex.is_empty() || hex.len() > 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            u32::from_str_radix(hex, 16).ok().and_then(char::from_u32).map(|ch| (ch, end))
        });
        match decoded {
            Some((ch, end)) => {
                out.push(ch);
                while chars.peek().is_some_and(|&(j, _)| j <= end) {
                    chars.next();
                }
            }
            // Not a valid escape: the name is taken as written.
            None => return name.to_string(),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let check = |input: &str, expected: Option<i64>| assert_eq!(parse_time(input).ok(), expected, "{input}");
        check("0", Some(0));
        check("1795318561", Some(1_795_318_561_000));
        check("1795318533.5", Some(1_795_318_533_500));
        check("1435781451.781", Some(1_435_781_451_781));
        check("-1.5", Some(-1_500));
        check("2026-11-22T03:36:12.123Z", Some(1_795_318_572_123));
        check("1970-01-01T00:00:00Z", Some(0));
        check("1970-01-01T01:00:00+01:00", Some(0));
        check("2000-02-29T00:00:00Z", Some(951_782_400_000));
        check("2001-02-29T00:00:00Z", None);
        check("notatime", None);
        check("", None);
        check("NaN", None);
        check("Inf", None);
        // Grafana's millisecond probe: a huge but valid float.
        check("1795318561000", Some(1_795_318_561_000_000));
        check("-292273086-05-16T16:47:06Z", Some(MIN_TIME_MS));
    }

    #[test]
    fn durations() {
        let check = |input: &str, expected: Option<i64>| assert_eq!(parse_duration(input).ok(), expected, "{input}");
        check("5m", Some(300_000));
        check("1h30m", Some(5_400_000));
        check("15", Some(15_000));
        check("0.5", Some(500));
        check("1.5s", None);
        check("1ns", None);
        check("30s5m", None);
        check("", None);
        check("0", Some(0));
        check("100ms", Some(100));
        check("1e300", None);
    }

    #[test]
    fn rfc3339_round_trip() {
        for ms in [0, 1_795_318_572_123, 951_782_400_000, -86_400_000] {
            assert_eq!(parse_rfc3339(&format_rfc3339(ms)), Some(ms));
        }
    }

    #[test]
    fn label_name_unescaping() {
        let check = |input: &str, expected: &str| assert_eq!(unescape_label_name(input), expected, "{input}");
        check("job", "job");
        check("U__http_2e_status", "http.status");
        check("U__a__b", "a_b");
        check("U__bad_zz_", "U__bad_zz_");
        check("U__", "");
    }

    #[test]
    fn form_values_body_first() {
        let p = Params::parse(Some("query=a&match[]=x"), Some(b"query=b&match%5B%5D=y"));
        assert_eq!(p.get("query"), "b");
        assert_eq!(p.all("match[]"), vec!["y", "x"]);
        assert_eq!(p.get("missing"), "");
    }
}
