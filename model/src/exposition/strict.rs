//! The OpenMetrics 1.0 rules beyond the grammar, checked entry by entry: metric families
//! are contiguous and unique, metadata comes once and before the samples, sample names,
//! labels and values fit the family's type, histogram buckets are complete and cumulative,
//! timestamps do not go backwards, exemplars appear only where allowed.
//!
//! Prometheus does not enforce these when scraping; [`super::Parser::openmetrics_strict`]
//! does. Memory is bounded by the input: the state is the names and label sets seen.

use std::collections::HashSet;

use super::format::MetricType;
use super::number::parse_float;
use super::parser::{Entry, SeriesEntry};

type LabelSet = Vec<(String, String)>;

#[derive(Debug, Default)]
pub(super) struct Validator {
    /// Names of finished families and all their sample names.
    reserved: HashSet<String>,
    family: Option<Family>,
}

#[derive(Debug)]
struct Family {
    name: String,
    metric_type: MetricType,
    has_help: bool,
    has_type: bool,
    has_unit: bool,
    has_samples: bool,
    /// Label sets (without `le`, `quantile`, the state label) whose points are finished.
    done: HashSet<LabelSet>,
    point: Option<Point>,
}

/// The samples of one metric (label set) at one timestamp.
#[derive(Debug)]
struct Point {
    identity: LabelSet,
    timestamp: Option<i64>,
    /// `(le, value)` in input order.
    buckets: Vec<(f64, f64)>,
    count: Option<f64>,
    sum: Option<f64>,
}

impl Validator {
    pub(super) fn entry(&mut self, entry: &Entry<'_>) -> Result<(), String> {
        match entry {
            Entry::Help { name, .. } => self.metadata(name, "HELP", None),
            Entry::Type { name, metric_type } => self.metadata(name, "TYPE", Some(*metric_type)),
            Entry::Unit { name, .. } => self.metadata(name, "UNIT", None),
            Entry::Comment(_) => Ok(()),
            Entry::Series(series) => self.series(series),
        }
    }

    pub(super) fn finish(&mut self) -> Result<(), String> {
        self.close_family()
    }

    fn metadata(&mut self, name: &str, keyword: &str, metric_type: Option<MetricType>) -> Result<(), String> {
        if self.family.as_ref().is_none_or(|f| f.name != name) {
            self.start_family(name)?;
        }
        let Some(family) = self.family.as_mut() else { return Ok(()) };
        if family.has_samples {
            return Err(format!("# {keyword} for {name} after its samples"));
        }
        let seen = match keyword {
            "HELP" => &mut family.has_help,
            "TYPE" => &mut family.has_type,
            _ => &mut family.has_unit,
        };
        if std::mem::replace(seen, true) {
            return Err(format!("second # {keyword} for {name}"));
        }
        if let Some(t) = metric_type {
            family.metric_type = t;
        }
        if family.has_unit && matches!(family.metric_type, MetricType::Info | MetricType::StateSet) {
            return Err(format!("{} {name} must not have a unit", family.metric_type));
        }
        let (family_name, family_type) = (family.name.clone(), family.metric_type);
        self.check_clash(&family_name, family_type)
    }

    fn check_clash(&self, name: &str, metric_type: MetricType) -> Result<(), String> {
        if self.reserved.contains(name) {
            return Err(format!("metric family {name} appears twice or clashes with another family's samples"));
        }
        for suffix in metric_type.sample_suffixes() {
            let sample_name = format!("{name}{suffix}");
            if self.reserved.contains(&sample_name) {
                return Err(format!("sample name {sample_name} of {name} clashes with an earlier metric family"));
            }
        }
        Ok(())
    }

    fn start_family(&mut self, name: &str) -> Result<(), String> {
        self.close_family()?;
        self.check_clash(name, MetricType::Unknown)?;
        self.family = Some(Family {
            name: name.to_string(),
            metric_type: MetricType::Unknown,
            has_help: false,
            has_type: false,
            has_unit: false,
            has_samples: false,
            done: HashSet::new(),
            point: None,
        });
        Ok(())
    }

    fn close_family(&mut self) -> Result<(), String> {
        let Some(mut family) = self.family.take() else { return Ok(()) };
        if let Some(point) = family.point.take() {
            check_point(&family, &point)?;
        }
        for suffix in family.metric_type.sample_suffixes() {
            self.reserved.insert(format!("{}{suffix}", family.name));
        }
        self.reserved.insert(family.name);
        Ok(())
    }

    fn series(&mut self, series: &SeriesEntry<'_>) -> Result<(), String> {
        let name = series.name();
        let belongs = self.family.as_ref().and_then(|f| sample_suffix(f, name));
        let suffix = match belongs {
            Some(suffix) => suffix,
            None => {
                if let Some(f) = self.family.as_ref().filter(|f| f.name == name) {
                    return Err(format!("sample name {name} is not allowed in {} {}", f.metric_type, f.name));
                }
                self.start_family(name)?;
                ""
            }
        };
        let Some(family) = self.family.as_mut() else { return Ok(()) };
        family.has_samples = true;
        let t = family.metric_type;

        let mut labels: LabelSet = series.labels().map(|(n, v)| (n.into_owned(), v.into_owned())).collect();
        labels.sort();
        if let Some(w) = labels.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(format!("label name {} is given twice", w[0].0));
        }
        let get = |key: &str| labels.iter().find(|(n, _)| n == key).map(|(_, v)| v.as_str());
        let value = series.value();
        let counter_like = |what: &str| {
            if value.is_nan() || value < 0.0 {
                Err(format!("{what} {name} must not be NaN or negative"))
            } else {
                Ok(())
            }
        };

        // Per-type sample rules and which label does not identify the metric.
        let mut bucket: Option<f64> = None;
        let mut identity_skip: Option<&str> = None;
        match (t, suffix) {
            (MetricType::Counter, "_total") => counter_like("counter")?,
            (MetricType::Histogram | MetricType::GaugeHistogram, "_bucket") => {
                let le = get("le").ok_or_else(|| format!("bucket {name} has no le label"))?;
                let le = strict_float(le).ok_or_else(|| format!("invalid le {le:?}"))?;
                counter_like("bucket")?;
                bucket = Some(le);
                identity_skip = Some("le");
            }
            (MetricType::Histogram, "_count" | "_sum") | (MetricType::GaugeHistogram, "_gcount") => {
                counter_like("histogram")?
            }
            (MetricType::GaugeHistogram, "_gsum") if value.is_nan() => return Err(format!("{name} must not be NaN")),
            (MetricType::Summary, "") => {
                let q = get("quantile").ok_or_else(|| format!("summary sample {name} has no quantile label"))?;
                match strict_float(q) {
                    Some(q) if (0.0..=1.0).contains(&q) => {}
                    _ => return Err(format!("invalid quantile {q:?}")),
                }
                if value < 0.0 {
                    return Err(format!("quantile value of {name} must not be negative"));
                }
                identity_skip = Some("quantile");
            }
            (MetricType::Summary, "_count" | "_sum") => counter_like("summary")?,
            (MetricType::Info, _) if value != 1.0 => return Err(format!("info {name} must have value 1")),
            (MetricType::StateSet, _) => {
                if get(&family.name).is_none() {
                    return Err(format!("stateset {name} has no label {}", family.name));
                }
                if value != 0.0 && value != 1.0 {
                    return Err(format!("stateset {name} must have value 0 or 1"));
                }
                identity_skip = Some(family.name.as_str());
            }
            _ => {}
        }
        if series.exemplar().is_some() {
            let allowed = matches!(
                (t, suffix),
                (MetricType::Counter, "_total") | (MetricType::Histogram | MetricType::GaugeHistogram, "_bucket")
            );
            if !allowed {
                return Err(format!("exemplar not allowed on {name}"));
            }
        }

        let identity: LabelSet = labels.iter().filter(|(n, _)| Some(n.as_str()) != identity_skip).cloned().collect();
        let timestamp = series.timestamp();
        let same_metric = family.point.as_ref().is_some_and(|p| p.identity == identity);
        if same_metric && suffix != "_created" {
            // `_created` carries a time of its own; its timestamp is not compared.
            let point = family.point.as_ref().map(|p| p.timestamp);
            match (point.flatten(), timestamp) {
                (Some(before), Some(now)) if now < before => {
                    return Err(format!("timestamp of {name} goes backwards"));
                }
                (Some(before), Some(now)) if now > before => {
                    // The next point of the same metric.
                    if let Some(point) = family.point.take() {
                        check_point(family, &point)?;
                    }
                }
                (Some(_), None) | (None, Some(_)) => {
                    return Err(format!("{name} mixes samples with and without timestamps"));
                }
                _ => {}
            }
        } else if !same_metric {
            if let Some(point) = family.point.take() {
                check_point(family, &point)?;
                family.done.insert(point.identity);
            }
            if family.done.contains(&identity) {
                return Err(format!("samples of {name} for one label set are not together"));
            }
        }
        let point = family.point.get_or_insert_with(|| Point {
            identity,
            timestamp,
            buckets: Vec::new(),
            count: None,
            sum: None,
        });
        if let Some(le) = bucket {
            if let Some(&(prev_le, prev_value)) = point.buckets.last() {
                if le <= prev_le {
                    return Err(format!("buckets of {name} are not in increasing le order"));
                }
                if value < prev_value {
                    return Err(format!("bucket values of {name} decrease"));
                }
            }
            point.buckets.push((le, value));
        }
        match suffix {
            "_count" | "_gcount" if t != MetricType::Summary => point.count = Some(value),
            "_sum" | "_gsum" if t != MetricType::Summary => point.sum = Some(value),
            _ => {}
        }
        Ok(())
    }
}

/// The suffix `name` adds to the family's name, if it is a sample name of the family under
/// OpenMetrics' rules (a counter's samples are `_total` and `_created`, never the bare name).
fn sample_suffix(family: &Family, name: &str) -> Option<&'static str> {
    let rest = name.strip_prefix(family.name.as_str())?;
    family.metric_type.sample_suffixes().iter().copied().find(|s| *s == rest)
}

fn check_point(family: &Family, point: &Point) -> Result<(), String> {
    let name = &family.name;
    let (count_name, sum_name) = match family.metric_type {
        MetricType::Histogram => ("_count", "_sum"),
        MetricType::GaugeHistogram => ("_gcount", "_gsum"),
        _ => return Ok(()),
    };
    let Some(&(last_le, inf_value)) = point.buckets.last() else {
        return Err(format!("histogram {name} has no buckets"));
    };
    if last_le != f64::INFINITY {
        return Err(format!("histogram {name} has no +Inf bucket"));
    }
    match (point.count, point.sum) {
        (Some(count), Some(_)) if count != inf_value => {
            return Err(format!("{name}{count_name} differs from the +Inf bucket"));
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(format!("{name}{count_name} and {name}{sum_name} must come together"));
        }
        _ => {}
    }
    let negative_buckets = point.buckets.iter().any(|(le, _)| *le < 0.0);
    if let Some(sum) = point.sum {
        if family.metric_type == MetricType::Histogram && negative_buckets {
            return Err(format!("histogram {name} with negative buckets must not have {name}_sum"));
        }
        if sum < 0.0 && !negative_buckets {
            return Err(format!("{name}{sum_name} must not be negative"));
        }
    }
    Ok(())
}

/// A float label value (`le`, `quantile`) in OpenMetrics spelling: infinities only as
/// `+Inf`/`-Inf`, no NaN.
fn strict_float(text: &str) -> Option<f64> {
    let v = parse_float(text)?;
    if v.is_nan() || (v.is_infinite() && text != "+Inf" && text != "-Inf") {
        return None;
    }
    Some(v)
}
