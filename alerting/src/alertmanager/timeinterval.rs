//! Time intervals (`time_intervals:` / `mute_time_intervals:`), validated as Alertmanager
//! does, and the test "is this instant inside".

use serde::Deserialize;

use crate::Error;

/// A named list of time intervals; a time is inside if any entry contains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedTimeInterval {
    pub name: String,
    pub time_intervals: Vec<TimeInterval>,
}

impl NamedTimeInterval {
    /// True if the instant (Unix milliseconds) is inside any of the intervals, every
    /// interval read in UTC (see [`TimeInterval::contains_local`] for other locations).
    pub fn contains(&self, t_ms: i64) -> bool {
        self.time_intervals.iter().any(|ti| ti.contains(t_ms))
    }

    /// Like [`NamedTimeInterval::contains`], with `utc_offset` giving, for an entry's
    /// `location` and the instant, that zone's offset from UTC in seconds.
    pub fn contains_with(&self, t_ms: i64, utc_offset: impl Fn(&str, i64) -> i32) -> bool {
        self.time_intervals.iter().any(|ti| {
            let offset = ti.location.as_deref().map_or(0, |loc| utc_offset(loc, t_ms));
            ti.contains_local(t_ms, offset)
        })
    }
}

/// One entry: every field that is set must match (an unset field matches anything).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TimeInterval {
    /// `[start, end)` in minutes of the day; `end` may be 1440 (`24:00`).
    pub times: Option<Vec<(u32, u32)>>,
    /// Inclusive ranges, 0 = Sunday.
    pub weekdays: Option<Vec<(i32, i32)>>,
    /// Inclusive ranges, 1-based; negative counts from the month's end (-1 = last day).
    pub days_of_month: Option<Vec<(i32, i32)>>,
    /// Inclusive ranges, 1 = January.
    pub months: Option<Vec<(i32, i32)>>,
    pub years: Option<Vec<(i32, i32)>>,
    /// `UTC`, `Local` or an IANA zone name, as written; `None` is UTC.
    pub location: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "time interval")]
pub(crate) struct RawNamed {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    time_intervals: Option<Vec<RawInterval>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "time interval entry")]
pub(crate) struct RawInterval {
    #[serde(default)]
    times: Option<Vec<RawTimeRange>>,
    #[serde(default)]
    weekdays: Option<Vec<String>>,
    #[serde(default)]
    days_of_month: Option<Vec<super::config::Scalar>>,
    #[serde(default)]
    months: Option<Vec<super::config::Scalar>>,
    #[serde(default)]
    years: Option<Vec<super::config::Scalar>>,
    #[serde(default)]
    location: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "time range")]
pub(crate) struct RawTimeRange {
    #[serde(default)]
    start_time: Option<String>,
    #[serde(default)]
    end_time: Option<String>,
}

/// `missing_name` is Alertmanager's message for the list this came from.
pub(crate) fn build(raw: RawNamed, missing_name: &str) -> Result<NamedTimeInterval, Error> {
    let name = raw.name.unwrap_or_default();
    if name.is_empty() {
        return Err(Error::config(missing_name));
    }
    let mut out = Vec::new();
    for ri in raw.time_intervals.unwrap_or_default() {
        out.push(build_interval(ri)?);
    }
    Ok(NamedTimeInterval { name, time_intervals: out })
}

fn build_interval(ri: RawInterval) -> Result<TimeInterval, Error> {
    let times = match ri.times {
        None => None,
        Some(ranges) => Some(ranges.into_iter().map(time_range).collect::<Result<Vec<_>, _>>()?),
    };
    let weekdays = map_opt(ri.weekdays, |s| weekday_range(&s))?;
    let days_of_month = map_opt(ri.days_of_month, |s| day_of_month_range(&s.0))?;
    let months = map_opt(ri.months, |s| month_range(&s.0))?;
    let years = map_opt(ri.years, |s| year_range(&s.0))?;
    if let Some(loc) = &ri.location {
        if !is_plausible_location(loc) {
            return Err(Error::config(format!("unknown time zone {loc}")));
        }
    }
    Ok(TimeInterval { times, weekdays, days_of_month, months, years, location: ri.location })
}

fn map_opt<T>(v: Option<Vec<T>>, f: impl Fn(T) -> Result<(i32, i32), Error>) -> Result<Option<Vec<(i32, i32)>>, Error> {
    v.map(|items| items.into_iter().map(f).collect()).transpose()
}

fn is_plausible_location(loc: &str) -> bool {
    // Go's time.LoadLocation reads the system zone database; here the name is only checked
    // for shape (no IO in this crate): "UTC", "Local", or Area/Location path segments.
    if loc.is_empty() || loc == "UTC" || loc == "Local" {
        return true;
    }
    loc.split('/').all(|seg| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg.chars().all(|c| c.is_ascii_alphanumeric() || "_-+".contains(c))
    })
}

fn parse_clock(s: &str) -> Result<u32, Error> {
    let bad = || Error::config(format!("couldn't parse timestamp {s}, invalid format"));
    if s == "24:00" {
        return Ok(1440);
    }
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' || !b.iter().enumerate().all(|(i, c)| i == 2 || c.is_ascii_digit()) {
        return Err(bad());
    }
    let hours: u32 = s[..2].parse().map_err(|_| bad())?;
    let minutes: u32 = s[3..].parse().map_err(|_| bad())?;
    if hours > 23 || minutes > 59 {
        return Err(bad());
    }
    Ok(hours * 60 + minutes)
}

fn time_range(r: RawTimeRange) -> Result<(u32, u32), Error> {
    let (start, end) = match (r.start_time.unwrap_or_default(), r.end_time.unwrap_or_default()) {
        (s, e) if s.is_empty() || e.is_empty() => {
            return Err(Error::config("both start and end times must be provided"));
        }
        (s, e) => (parse_clock(&s)?, parse_clock(&e)?),
    };
    if start >= end {
        return Err(Error::config("start time cannot be equal or greater than end time"));
    }
    Ok((start, end))
}

const WEEKDAYS: [&str; 7] = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn range_of(input: &str, member: impl Fn(&str) -> Result<i32, Error>) -> Result<(i32, i32), Error> {
    let lower = input.to_lowercase();
    if lower.contains(':') {
        let parts: Vec<&str> = lower.split(':').collect();
        if parts.len() != 2 {
            return Err(Error::config(format!("couldn't parse range {lower}, invalid format")));
        }
        Ok((member(parts[0])?, member(parts[1])?))
    } else {
        let v = member(&lower)?;
        Ok((v, v))
    }
}

fn atoi(s: &str) -> Result<i32, Error> {
    // Go's strconv.Atoi: optional sign, decimal digits.
    s.parse::<i32>()
        .map_err(|_| Error::config(format!("strconv.Atoi: parsing {}: invalid syntax", super::gostr::quote(s))))
}

fn weekday_range(input: &str) -> Result<(i32, i32), Error> {
    let (b, e) = range_of(input, |s| {
        WEEKDAYS
            .iter()
            .position(|d| *d == s)
            .map(|i| i as i32)
            .ok_or_else(|| Error::config(format!("{s} is not a valid weekday")))
    })?;
    if b > e {
        return Err(Error::config("start day cannot be before end day"));
    }
    Ok((b, e))
}

fn day_of_month_range(input: &str) -> Result<(i32, i32), Error> {
    let (b, e) = range_of(input, atoi)?;
    for v in [b, e] {
        if v == 0 || !(-31..=31).contains(&v) {
            return Err(Error::config(format!("{v} is not a valid day of the month: out of range")));
        }
    }
    if b < 0 && e > 0 {
        return Err(Error::config("end day must be negative if start day is negative"));
    }
    let check_b = if b < 0 { 28 + b } else { b };
    let check_e = if e < 0 { 28 + e } else { e };
    if check_b > check_e {
        return Err(Error::config(format!("end day {e} is always before start day {b}")));
    }
    Ok((b, e))
}

fn month_range(input: &str) -> Result<(i32, i32), Error> {
    let (b, e) = range_of(input, |s| match MONTHS.iter().position(|m| *m == s) {
        Some(i) => Ok(i as i32 + 1),
        None => s.parse::<i32>().map_err(|_| Error::config(format!("{s} is not a valid month"))),
    })?;
    if b > e {
        let name = |v: i32| MONTHS.get((v - 1) as usize).copied().unwrap_or("");
        return Err(Error::config(format!("end month {} is before start month {}", name(e), name(b))));
    }
    Ok((b, e))
}

fn year_range(input: &str) -> Result<(i32, i32), Error> {
    let (b, e) = range_of(input, atoi)?;
    if b > e {
        return Err(Error::config(format!("end year {e} is before start year {b}")));
    }
    Ok((b, e))
}

impl TimeInterval {
    /// True if the instant (Unix milliseconds) is inside this interval, read in UTC. This
    /// crate has no time zone database: for an interval with a `location`, resolve the zone's
    /// offset at that instant and use [`TimeInterval::contains_local`].
    pub fn contains(&self, t_ms: i64) -> bool {
        self.contains_local(t_ms, 0)
    }

    /// True if the instant is inside this interval when the wall clock is `utc_offset_secs`
    /// ahead of UTC (as Go's `t.In(location)`).
    pub fn contains_local(&self, t_ms: i64, utc_offset_secs: i32) -> bool {
        let secs = t_ms.div_euclid(1000).saturating_add(i64::from(utc_offset_secs));
        let days = secs.div_euclid(86_400);
        let minute_of_day = (secs.rem_euclid(86_400) / 60) as u32;
        let (year, month, day) = civil_from_days(days);
        // 1970-01-01 was a Thursday.
        let weekday = (days + 4).rem_euclid(7) as i32;
        let any = |ranges: &Option<Vec<(i32, i32)>>, v: i32| match ranges {
            None => true,
            Some(rs) => rs.iter().any(|&(b, e)| v >= b && v <= e),
        };
        if let Some(times) = &self.times {
            if !times.iter().any(|&(s, e)| minute_of_day >= s && minute_of_day < e) {
                return false;
            }
        }
        if let Some(doms) = &self.days_of_month {
            let dim = days_in_month(year, month);
            let inside = doms.iter().any(|&(b, e)| {
                let begin = if b < 0 { dim + b + 1 } else { b };
                let end = if e < 0 { dim + e + 1 } else { e };
                if begin > dim {
                    return false;
                }
                let (begin, end) = (begin.clamp(-dim, dim), end.clamp(-dim, dim));
                day >= begin && day <= end
            });
            if !inside {
                return false;
            }
        }
        any(&self.months, month) && any(&self.weekdays, weekday) && any(&self.years, year)
    }
}

fn days_in_month(year: i32, month: i32) -> i32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
pub(super) fn civil_from_days(z: i64) -> (i32, i32, i32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    ((if m <= 2 { y + 1 } else { y }) as i32, m as i32, d as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(yaml: &str) -> Result<TimeInterval, String> {
        let raw: RawInterval = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
        build_interval(raw).map_err(|e| e.message().to_string())
    }

    #[test]
    fn validates_like_alertmanager() {
        let check = |yaml: &str, expected: Result<(), &str>| {
            assert_eq!(interval(yaml).map(|_| ()), expected.map_err(String::from), "{yaml}")
        };
        check("times: [{start_time: '09:00', end_time: '17:00'}]", Ok(()));
        check("times: [{start_time: '17:00', end_time: '24:00'}]", Ok(()));
        check(
            "times: [{start_time: '17:00', end_time: '09:00'}]",
            Err("start time cannot be equal or greater than end time"),
        );
        check("times: [{start_time: '9:00', end_time: '17:00'}]", Err("couldn't parse timestamp 9:00, invalid format"));
        check("times: [{start_time: '09:00'}]", Err("both start and end times must be provided"));
        check("weekdays: ['monday:friday', 'Saturday']", Ok(()));
        check("weekdays: ['friday:monday']", Err("start day cannot be before end day"));
        check("weekdays: ['funday']", Err("funday is not a valid weekday"));
        check("days_of_month: ['1:5', '-3:-1']", Ok(()));
        check("days_of_month: ['-3:5']", Err("end day must be negative if start day is negative"));
        check("days_of_month: ['0']", Err("0 is not a valid day of the month: out of range"));
        check("days_of_month: ['10:-25']", Err("end day -25 is always before start day 10"));
        check("months: ['1:3', 'may:august', 'December']", Ok(()));
        check("months: ['december:january']", Err("end month january is before start month december"));
        check("years: ['2020:2022', 2030]", Ok(()));
        check("years: ['2030:2020']", Err("end year 2020 is before start year 2030"));
        check("location: 'Europe/Berlin'", Ok(()));
        check("foo: 1", Err("unknown field `foo`, expected one of `times`, `weekdays`, `days_of_month`, `months`, `years`, `location`"));
    }

    #[test]
    fn contains_instants() {
        // 2024-02-29T10:30:00Z, a Thursday.
        let t = 1_709_202_600_000;
        let check = |yaml: &str, expected: bool| assert_eq!(interval(yaml).unwrap().contains(t), expected, "{yaml}");
        check("{}", true);
        check("times: [{start_time: '10:00', end_time: '11:00'}]", true);
        check("times: [{start_time: '10:31', end_time: '11:00'}]", false);
        check("weekdays: ['thursday']", true);
        check("weekdays: ['monday:wednesday']", false);
        check("days_of_month: ['-1']", true);
        check("days_of_month: ['28']", false);
        check("months: ['february']", true);
        check("years: ['2023']", false);
        check("weekdays: ['thursday']\nmonths: ['march']", false);
        // 10:30 UTC is 00:30 on Friday in UTC+14.
        let friday = interval("weekdays: ['friday']\ntimes: [{start_time: '00:00', end_time: '01:00'}]").unwrap();
        assert!(!friday.contains(t));
        assert!(friday.contains_local(t, 14 * 3600));
    }
}
