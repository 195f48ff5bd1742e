//! The Pushgateway API: `PUT|POST|DELETE /metrics/job/<job>{/<label>/<value>}`. Groups live in
//! memory and are exposed on `/metrics` (scrape it with `honor_labels: true`).

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::http::{Method, StatusCode};
use sextant_model::exposition::{self, Format, MetricFamily, MetricType};
use sextant_model::{Labels, LabelsBuilder};

use crate::federate::go_g;
use crate::server::{text, Api, ApiResult, Req};

/// One pushed group: its families and the time of the last push.
#[derive(Debug, Clone, Default)]
struct Group {
    families: BTreeMap<String, MetricFamily>,
    push_time_ms: i64,
}

/// All groups by grouping key.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    groups: Mutex<BTreeMap<Labels, Group>>,
}

/// Decodes URL-safe base64 (padding optional) for `name@base64/value`.
fn base64_url_decode(s: &str) -> Option<String> {
    let mut bits: u32 = 0;
    let mut n_bits = 0;
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        n_bits += 6;
        if n_bits >= 8 {
            n_bits -= 8;
            out.push((bits >> n_bits) as u8);
            bits &= (1 << n_bits) - 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The grouping key from the path after `/metrics/`: `job/<job>{/<label>/<value>}`.
pub(crate) fn grouping_key(path: &str) -> Result<Labels, String> {
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() % 2 != 0 {
        return Err(format!("odd number of components in grouping key path {path:?}"));
    }
    if parts.first().is_none_or(|first| *first != "job" && *first != "job@base64") {
        return Err(format!("grouping key path must start with job: {path:?}"));
    }
    let mut pairs = Vec::new();
    for pair in parts.chunks(2) {
        let (name, raw_value) = (pair[0], pair[1]);
        let (name, value) = match name.strip_suffix("@base64") {
            Some(n) => (n, base64_url_decode(raw_value).ok_or_else(|| format!("invalid base64 value for {n:?}"))?),
            None => (name, raw_value.to_string()),
        };
        if !sextant_model::is_valid_legacy_label_name(name) || name.starts_with("__") {
            return Err(format!("improper label name {name:?}"));
        }
        if name == "job" && value.is_empty() {
            return Err("job name is required".to_string());
        }
        pairs.push((name.to_string(), value));
    }
    Labels::try_from_pairs(pairs).map_err(|e| e.to_string())
}

impl Groups {
    fn push(&self, key: Labels, families: Vec<MetricFamily>, replace_all: bool, now_ms: i64) {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let group = groups.entry(key).or_default();
        if replace_all {
            group.families.clear();
        }
        for f in families {
            group.families.insert(f.name.clone(), f);
        }
        group.push_time_ms = now_ms;
    }

    /// All groups in a text form [`Groups::load`] reads back: per group a
    /// `# GROUP <grouping key path> <push time ms>` line, then its families in the text format.
    pub(crate) fn save(&self) -> String {
        use base64::Engine as _;
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for (key, group) in groups.iter() {
            out.push_str("# GROUP ");
            let mut first = true;
            for name in std::iter::once("job").chain(key.iter().map(|l| &*l.name).filter(|n| *n != "job")) {
                let value = key.get(name).unwrap_or("");
                if !first {
                    out.push('/');
                }
                first = false;
                let encoded = base64::engine::general_purpose::URL_SAFE.encode(value);
                out.push_str(&format!("{name}@base64/{}", if encoded.is_empty() { "=" } else { &encoded }));
            }
            out.push_str(&format!(" {}\n", group.push_time_ms));
            let families: Vec<MetricFamily> = group.families.values().cloned().collect();
            out.push_str(&exposition::encode(&families, Format::Text));
        }
        out
    }

    /// Replaces all groups by those in `text` (from [`Groups::save`]).
    pub(crate) fn load(&self, text: &str) -> Result<(), String> {
        let mut loaded = BTreeMap::new();
        for (i, chunk) in text.split("# GROUP ").enumerate() {
            if i == 0 {
                if chunk.trim().is_empty() {
                    continue;
                }
                return Err("pushgateway state must start with a # GROUP line".to_string());
            }
            let (header, body) = chunk.split_once('\n').unwrap_or((chunk, ""));
            let (path, time) = header.rsplit_once(' ').ok_or_else(|| format!("bad group line {header:?}"))?;
            let key = grouping_key(path)?;
            let push_time_ms: i64 = time.parse().map_err(|_| format!("bad push time {time:?}"))?;
            let families = exposition::parse_families(body.as_bytes(), Format::Text).map_err(|e| e.to_string())?;
            let families = families.into_iter().map(|f| (f.name.clone(), f)).collect();
            loaded.insert(key, Group { families, push_time_ms });
        }
        *self.groups.lock().unwrap_or_else(|e| e.into_inner()) = loaded;
        Ok(())
    }

    fn delete(&self, key: &Labels) {
        self.groups.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    /// Every group's families with the grouping key applied, plus `push_time_seconds`.
    pub(crate) fn render(&self) -> String {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let mut merged: BTreeMap<String, MetricFamily> = BTreeMap::new();
        for (key, group) in groups.iter() {
            for family in group.families.values() {
                let target = merged.entry(family.name.clone()).or_insert_with(|| MetricFamily {
                    name: family.name.clone(),
                    help: family.help.clone(),
                    metric_type: family.metric_type,
                    unit: None,
                    samples: Vec::new(),
                });
                for s in &family.samples {
                    let mut b = LabelsBuilder::new(&s.labels);
                    for l in key.iter() {
                        b.set(&l.name, &l.value);
                    }
                    if b.get("instance").is_none() {
                        b.set("instance", "");
                    }
                    let mut s = s.clone();
                    s.labels = b.labels();
                    target.samples.push(s);
                }
            }
            let mut b = LabelsBuilder::new(key);
            if b.get("instance").is_none() {
                b.set("instance", "");
            }
            let push_time = merged.entry("push_time_seconds".to_string()).or_insert_with(|| MetricFamily {
                name: "push_time_seconds".to_string(),
                help: Some("Last Unix time when changing this group in the Pushgateway succeeded.".to_string()),
                metric_type: MetricType::Gauge,
                unit: None,
                samples: Vec::new(),
            });
            push_time.samples.push(exposition::FamilySample {
                name: "push_time_seconds".to_string(),
                labels: b.labels(),
                value: group.push_time_ms as f64 / 1000.0,
                timestamp: None,
                exemplar: None,
            });
        }
        let families: Vec<MetricFamily> = merged.into_values().collect();
        let _ = go_g;
        exposition::encode(&families, Format::Text)
    }
}

pub(crate) fn push(api: &Api, req: &Req) -> ApiResult {
    let rest = req.path.strip_prefix("/metrics/").unwrap_or_default();
    let key = match grouping_key(rest) {
        Ok(k) => k,
        Err(e) => return Ok(text(StatusCode::BAD_REQUEST, format!("{e}\n"))),
    };
    if req.method == Method::DELETE {
        api.shared.pushgateway.delete(&key);
        return Ok(text(StatusCode::ACCEPTED, ""));
    }
    let families = match exposition::parse_families(&req.body, Format::Text) {
        Ok(f) => f,
        Err(e) => return Ok(text(StatusCode::BAD_REQUEST, format!("error parsing request body: {e}\n"))),
    };
    for f in &families {
        if f.samples.iter().any(|s| s.timestamp.is_some()) {
            return Ok(text(
                StatusCode::BAD_REQUEST,
                "pushed metrics are invalid or inconsistent with existing metrics: pushed metrics must not have timestamps\n",
            ));
        }
        if f.name == "push_time_seconds" || f.name == "push_failure_time_seconds" {
            return Ok(text(StatusCode::BAD_REQUEST, format!("pushed metric {:?} is reserved\n", f.name)));
        }
    }
    api.shared.pushgateway.push(key, families, req.method == Method::PUT, api.clock.now_ms());
    Ok(text(StatusCode::OK, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_keys() {
        let check = |path: &str, expected: Result<&[(&str, &str)], ()>| {
            let got = grouping_key(path).map_err(|_| ());
            assert_eq!(got, expected.map(|p| Labels::from_pairs(p.iter().copied())), "{path}");
        };
        check("job/batch", Ok(&[("job", "batch")]));
        check("job/batch/instance/a", Ok(&[("instance", "a"), ("job", "batch")]));
        check("job@base64/YS9i", Ok(&[("job", "a/b")]));
        check("job/batch/path@base64/=", Ok(&[("job", "batch")]));
        check("job/batch/x", Err(()));
        check("job/", Err(()));
        check("job/a/__x/b", Err(()));
        check("job/a/job/b", Err(()));
        check("instance/a/job/b", Err(()));
    }

    #[test]
    fn save_and_load() {
        let groups = Groups::default();
        let key = grouping_key("job/batch/path@base64/YS9i").unwrap();
        let families =
            exposition::parse_families(b"# TYPE done counter\ndone 3\nother{x=\"y\"} 1.5\n", Format::Text).unwrap();
        groups.push(key.clone(), families, true, 7000);
        groups.push(grouping_key("job/second").unwrap(), Vec::new(), true, 8000);
        let saved = groups.save();
        let restored = Groups::default();
        restored.load(&saved).unwrap();
        assert_eq!(restored.render(), groups.render());
        assert_eq!(restored.save(), saved);
        assert!(restored.load("garbage").is_err());
        assert!(restored.load("# GROUP job/x notatime\n").is_err());
    }
}
