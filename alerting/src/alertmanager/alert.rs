//! Alerts as the Alertmanager stores them (`types.Alert`, `provider/mem`): ingestion with
//! defaults and validation, merging of re-sent copies, fingerprints, RFC 3339 times.

use std::collections::BTreeMap;

use sextant_model::{Label, Labels};

use super::timeinterval::civil_from_days;
use crate::Error;

/// An alert as received on `POST /api/v2/alerts`, before defaults are applied. Times are
/// milliseconds since the Unix epoch; `None` is Go's zero time (not sent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostableAlert {
    pub labels: Vec<(String, String)>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at_ms: Option<i64>,
    pub ends_at_ms: Option<i64>,
    pub generator_url: String,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonAlert {
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    generator_url: Option<String>,
}

impl PostableAlert {
    /// Decodes the body of `POST /api/v2/alerts`: a JSON array of alerts.
    pub fn parse_json(body: &[u8]) -> Result<Vec<PostableAlert>, Error> {
        let alerts: Vec<JsonAlert> =
            serde_json::from_slice(body).map_err(|e| Error::invalid(format!("parsing alerts: {e}")))?;
        let time = |t: Option<String>| match t.as_deref() {
            None | Some("") => Ok(None),
            Some(t) => parse_rfc3339(t),
        };
        alerts
            .into_iter()
            .map(|a| {
                Ok(PostableAlert {
                    labels: a.labels.into_iter().collect(),
                    annotations: a.annotations.unwrap_or_default(),
                    starts_at_ms: time(a.starts_at)?,
                    ends_at_ms: time(a.ends_at)?,
                    generator_url: a.generator_url.unwrap_or_default(),
                })
            })
            .collect()
    }
}

/// A stored alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub starts_at_ms: i64,
    /// When the alert resolves (resolved once it is `<=` now). For an alert received without
    /// an end, now + `resolve_timeout` at reception, with `timeout` set.
    pub ends_at_ms: i64,
    pub generator_url: String,
    /// When this copy was received.
    pub updated_at_ms: i64,
    /// The end was not sent but defaulted from `resolve_timeout`.
    pub timeout: bool,
}

impl Alert {
    /// Applies the Alertmanager's ingestion defaults and validation (`api/v2` `PostAlerts`):
    /// a missing start is the end or now, a missing end is now + `resolve_timeout`, labels
    /// with empty values are dropped; at least one label, valid names, end not before start.
    pub fn from_postable(alert: PostableAlert, now_ms: i64, resolve_timeout_ms: i64) -> Result<Alert, Error> {
        let mut pairs: Vec<(String, String)> = alert.labels.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        pairs.sort();
        if pairs.is_empty() {
            return Err(Error::invalid("at least one label pair required"));
        }
        for w in pairs.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(Error::invalid(format!("duplicate label {:?}", w[0].0)));
            }
        }
        for (name, _) in &pairs {
            if !sextant_model::is_valid_legacy_label_name(name) {
                return Err(Error::invalid(format!("invalid label set: invalid name {name:?}")));
            }
        }
        for name in alert.annotations.keys() {
            if !sextant_model::is_valid_legacy_label_name(name) {
                return Err(Error::invalid(format!("invalid annotations: invalid name {name:?}")));
            }
        }
        let starts_at_ms = alert.starts_at_ms.or(alert.ends_at_ms).unwrap_or(now_ms);
        let (ends_at_ms, timeout) = match alert.ends_at_ms {
            Some(end) => (end, false),
            None => (now_ms + resolve_timeout_ms, true),
        };
        if ends_at_ms < starts_at_ms {
            return Err(Error::invalid("start time must be before end time"));
        }
        let labels = Labels::from_sorted(pairs.into_iter().map(|(n, v)| Label::new(n, v)).collect());
        Ok(Alert {
            labels,
            annotations: alert.annotations,
            starts_at_ms,
            ends_at_ms,
            generator_url: alert.generator_url,
            updated_at_ms: now_ms,
            timeout,
        })
    }

    /// The alert's identity: FNV-1a 64 over its sorted labels (`model.LabelSet.Fingerprint`).
    pub fn fingerprint(&self) -> u64 {
        fingerprint(&self.labels)
    }

    /// True once the end time is reached.
    pub fn resolved_at(&self, now_ms: i64) -> bool {
        self.ends_at_ms <= now_ms
    }

    /// `types.Alert.Merge`: combines a re-sent copy `newer` with this stored one. Used only
    /// when the two overlap in time; the newest copy's labels and annotations win, the
    /// earliest start is kept, and an explicit later end of the older copy survives a
    /// timeout-defaulted end.
    pub fn merge(&self, newer: &Alert) -> Alert {
        let (older, newest) = if newer.updated_at_ms < self.updated_at_ms { (newer, self) } else { (self, newer) };
        let mut out = newest.clone();
        if older.starts_at_ms < out.starts_at_ms {
            out.starts_at_ms = older.starts_at_ms;
        }
        if newest.resolved_at(newest.updated_at_ms) {
            if older.resolved_at(newest.updated_at_ms) && older.ends_at_ms > out.ends_at_ms {
                out.ends_at_ms = older.ends_at_ms;
            }
        } else if older.ends_at_ms > out.ends_at_ms && !older.timeout {
            out.ends_at_ms = older.ends_at_ms;
            out.timeout = false;
        }
        out
    }

    /// Whether a new copy overlaps this stored alert (open intervals), in which case the two
    /// are merged rather than the new one replacing the old.
    pub fn overlaps(&self, newer: &Alert) -> bool {
        let inside = |t: i64| self.starts_at_ms < t && t < self.ends_at_ms;
        inside(newer.ends_at_ms) || inside(newer.starts_at_ms)
    }
}

/// FNV-1a 64 over `name 0xff value 0xff` for each label in name order: Prometheus'
/// `LabelSet.Fingerprint`, shown as 16 hex digits in the webhook payload and the API.
pub fn fingerprint(labels: &Labels) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let mut add = |b: u8| {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(PRIME);
    };
    for label in labels.iter() {
        label.name.bytes().for_each(&mut add);
        add(0xff);
        label.value.bytes().for_each(&mut add);
        add(0xff);
    }
    hash
}

/// Go's `RFC3339Nano` rendering of a millisecond time in UTC: `2026-11-22T03:44:09.5Z`,
/// trailing zeros of the fraction trimmed.
pub fn format_rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}", sod / 3600, sod / 60 % 60, sod % 60);
    if millis != 0 {
        let frac = format!("{millis:03}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Go's zero time as it appears in JSON.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Parses an RFC 3339 time (`2026-11-22T03:39:18.887Z`, `...+02:00`) to milliseconds,
/// truncating finer fractions. Go's zero time parses to `None`.
pub fn parse_rfc3339(s: &str) -> Result<Option<i64>, Error> {
    let bad = || Error::invalid(format!("parsing time {s:?} as RFC 3339"));
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, Error> {
        let part = s.get(r).ok_or_else(bad)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    let mut i = 19;
    let mut millis = 0;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
        let digits = &s[start..i.min(start + 3)];
        millis = digits.parse::<i64>().map_err(|_| bad())? * 10i64.pow(3 - digits.len() as u32);
    }
    let offset_s = match s.get(i..).ok_or_else(bad)? {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) && rest.as_bytes()[3] == b':' => {
            let h = num(i + 1..i + 3)?;
            let m = num(i + 4..i + 6)?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return Err(bad()),
    };
    if year == 1 && month == 1 && day == 1 && hour == 0 && minute == 0 && second == 0 && millis == 0 {
        return Ok(None);
    }
    let days = days_from_civil(year, month, day);
    Ok(Some((days * 86_400 + hour * 3600 + minute * 60 + second - offset_s) * 1000 + millis))
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_match_alertmanager() {
        let check = |pairs: &[(&str, &str)], expected: &str| {
            assert_eq!(format!("{:016x}", fingerprint(&Labels::from_pairs(pairs.iter().copied()))), expected)
        };
        check(&[("alertname", "TestAlert"), ("instance", "a:1"), ("severity", "page")], "3a1626b175e28853");
        check(&[("alertname", "DiskFull"), ("instance", "db1:9100"), ("severity", "critical")], "efb0c6c488e007da");
    }

    #[test]
    fn times_round_trip() {
        let check = |s: &str, ms: Option<i64>, back: &str| {
            assert_eq!(parse_rfc3339(s).unwrap(), ms, "{s}");
            assert_eq!(ms.map(format_rfc3339).as_deref().unwrap_or(ZERO_TIME), back);
        };
        check("1970-01-01T00:00:01Z", Some(1000), "1970-01-01T00:00:01Z");
        check("2026-11-22T03:39:18.887Z", Some(1_795_318_758_887), "2026-11-22T03:39:18.887Z");
        check("2026-11-22T03:39:18.500000001Z", Some(1_795_318_758_500), "2026-11-22T03:39:18.5Z");
        check("2026-11-22T05:39:18+02:00", Some(1_795_318_758_000), "2026-11-22T03:39:18Z");
        check("0001-01-01T00:00:00Z", None, ZERO_TIME);
        for bad in [
            "",
            "2026-11-22",
            "2026-13-22T03:39:18Z",
            "2026-11-22T03:39:18+0é:0",
            "2026-11-22T03:39:18+00é0",
            "2026-11-22T03:39:18",
            "2026-11-22T03:39:18.Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ingestion_defaults_and_validation() {
        let post = |labels: &[(&str, &str)], start: Option<i64>, end: Option<i64>| PostableAlert {
            labels: labels.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            starts_at_ms: start,
            ends_at_ms: end,
            ..PostableAlert::default()
        };
        let a = Alert::from_postable(post(&[("a", "1"), ("b", "")], None, None), 1000, 300_000).unwrap();
        assert_eq!((a.starts_at_ms, a.ends_at_ms, a.timeout, a.labels.len()), (1000, 301_000, true, 1));
        let a = Alert::from_postable(post(&[("a", "1")], None, Some(500)), 1000, 300_000).unwrap();
        assert_eq!((a.starts_at_ms, a.ends_at_ms, a.timeout), (500, 500, false));
        assert!(Alert::from_postable(post(&[("b", "")], None, None), 1000, 1).is_err());
        assert!(Alert::from_postable(post(&[("a", "1")], Some(10), Some(5)), 1000, 1).is_err());
        assert!(Alert::from_postable(post(&[("a-b", "1")], None, None), 1000, 1).is_err());
    }

    #[test]
    fn decodes_posted_json() {
        let body = br#"[{"labels":{"alertname":"x"},"annotations":{"s":"1"},"startsAt":"1970-01-01T00:00:01Z",
            "endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://g"},{"labels":{"a":"b"}}]"#;
        let alerts = PostableAlert::parse_json(body).unwrap();
        assert_eq!(alerts.len(), 2);
        assert_eq!((alerts[0].starts_at_ms, alerts[0].ends_at_ms), (Some(1000), None));
        assert_eq!(alerts[0].generator_url, "http://g");
        for bad in [&b"{}"[..], b"[{}]", b"[{\"labels\":{},\"startsAt\":\"x\"}]", b"[1]"] {
            assert!(PostableAlert::parse_json(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn merges_overlapping_copies() {
        let alert = |start, end, updated, timeout| Alert {
            labels: Labels::from_pairs([("a", "1")]),
            annotations: BTreeMap::new(),
            starts_at_ms: start,
            ends_at_ms: end,
            generator_url: String::new(),
            updated_at_ms: updated,
            timeout,
        };
        let old = alert(0, 60_000, 0, false);
        let new = alert(2000, 62_000, 2000, false);
        assert!(old.overlaps(&new));
        let m = old.merge(&new);
        assert_eq!((m.starts_at_ms, m.ends_at_ms), (0, 62_000));
        let resolved = alert(0, 20_000, 20_000, false);
        assert_eq!(old.merge(&resolved).ends_at_ms, 20_000);
        assert!(!alert(0, 20_000, 20_000, false).overlaps(&alert(0, 20_000, 22_000, false)));
    }
}
