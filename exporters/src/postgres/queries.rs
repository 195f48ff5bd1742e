//! Query definitions in postgres_exporter's form (a metric namespace, a query, and what each
//! result column is), the built-in ones of postgres_exporter 0.11.1, the parser for a
//! user's `queries.yaml`, and turning result rows into metric families.

use std::collections::BTreeMap;

use crate::builder::Builder;
use sextant_model::exposition::MetricType;

/// What a result column is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Usage {
    Label,
    Discard,
    Counter,
    Gauge,
    /// Milliseconds, exported as `<name>_milliseconds`.
    Duration,
    /// A histogram: the column holds the bucket bounds as an array, `<name>_bucket` the
    /// cumulative counts, `<name>_sum` and `<name>_count` the rest.
    Histogram,
}

impl Usage {
    fn parse(text: &str) -> Option<Usage> {
        Some(match text.to_ascii_uppercase().as_str() {
            "LABEL" => Usage::Label,
            "DISCARD" => Usage::Discard,
            "COUNTER" => Usage::Counter,
            "GAUGE" => Usage::Gauge,
            "DURATION" => Usage::Duration,
            "HISTOGRAM" => Usage::Histogram,
            // Mapped metrics (string values through a map) are not supported: discarded.
            "MAPPEDMETRIC" => Usage::Discard,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) usage: Usage,
    pub(crate) help: String,
}

/// One query and the meaning of its columns; columns not listed become untyped metrics.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QuerySpec {
    pub(crate) namespace: String,
    pub(crate) query: String,
    pub(crate) columns: Vec<Column>,
    /// Run only against the database of the DSN (`master: true`); always so here.
    pub(crate) master: bool,
}

fn col(name: &str, usage: Usage, help: &str) -> Column {
    Column { name: name.to_string(), usage, help: help.to_string() }
}

fn spec(namespace: &str, query: &str, columns: Vec<Column>) -> QuerySpec {
    QuerySpec { namespace: namespace.to_string(), query: query.to_string(), columns, master: true }
}

/// The default queries of postgres_exporter 0.11.1 (its metric map), for PostgreSQL ≥ 10.
pub(crate) fn builtin() -> Vec<QuerySpec> {
    use Usage::*;
    vec![
        spec(
            "pg_stat_database",
            "SELECT * FROM pg_stat_database",
            vec![
                col("datid", Label, "OID of a database"),
                col("datname", Label, "Name of this database"),
                col("numbackends", Gauge, "Number of backends currently connected to this database. This is the only column in this view that returns a value reflecting current state; all other columns return the accumulated values since the last reset."),
                col("xact_commit", Counter, "Number of transactions in this database that have been committed"),
                col("xact_rollback", Counter, "Number of transactions in this database that have been rolled back"),
                col("blks_read", Counter, "Number of disk blocks read in this database"),
                col("blks_hit", Counter, "Number of times disk blocks were found already in the buffer cache, so that a read was not necessary (this only includes hits in the PostgreSQL buffer cache, not the operating system's file system cache)"),
                col("tup_returned", Counter, "Number of rows returned by queries in this database"),
                col("tup_fetched", Counter, "Number of rows fetched by queries in this database"),
                col("tup_inserted", Counter, "Number of rows inserted by queries in this database"),
                col("tup_updated", Counter, "Number of rows updated by queries in this database"),
                col("tup_deleted", Counter, "Number of rows deleted by queries in this database"),
                col("conflicts", Counter, "Number of queries canceled due to conflicts with recovery in this database. (Conflicts occur only on standby servers; see pg_stat_database_conflicts for details.)"),
                col("temp_files", Counter, "Number of temporary files created by queries in this database. All temporary files are counted, regardless of why the temporary file was created (e.g., sorting or hashing), and regardless of the log_temp_files setting."),
                col("temp_bytes", Counter, "Total amount of data written to temporary files by queries in this database. All temporary files are counted, regardless of why the temporary file was created, and regardless of the log_temp_files setting."),
                col("deadlocks", Counter, "Number of deadlocks detected in this database"),
                col("blk_read_time", Counter, "Time spent reading data file blocks by backends in this database, in milliseconds"),
                col("blk_write_time", Counter, "Time spent writing data file blocks by backends in this database, in milliseconds"),
                col("stats_reset", Counter, "Time at which these statistics were last reset"),
            ],
        ),
        spec(
            "pg_stat_database_conflicts",
            "SELECT * FROM pg_stat_database_conflicts",
            vec![
                col("datid", Label, "OID of a database"),
                col("datname", Label, "Name of this database"),
                col("confl_tablespace", Counter, "Number of queries in this database that have been canceled due to dropped tablespaces"),
                col("confl_lock", Counter, "Number of queries in this database that have been canceled due to lock timeouts"),
                col("confl_snapshot", Counter, "Number of queries in this database that have been canceled due to old snapshots"),
                col("confl_bufferpin", Counter, "Number of queries in this database that have been canceled due to pinned buffers"),
                col("confl_deadlock", Counter, "Number of queries in this database that have been canceled due to deadlocks"),
            ],
        ),
        spec(
            "pg_locks",
            "SELECT pg_database.datname, tmp.mode, COALESCE(count, 0) AS count \
             FROM (VALUES ('accesssharelock'), ('rowsharelock'), ('rowexclusivelock'), ('shareupdateexclusivelock'), \
             ('sharelock'), ('sharerowexclusivelock'), ('exclusivelock'), ('accessexclusivelock'), ('sireadlock')) AS tmp(mode) \
             CROSS JOIN pg_database \
             LEFT JOIN (SELECT database, lower(mode) AS mode, count(*) AS count FROM pg_locks \
             WHERE database IS NOT NULL GROUP BY database, lower(mode)) AS tmp2 \
             ON tmp.mode = tmp2.mode AND pg_database.oid = tmp2.database ORDER BY 1",
            vec![
                col("datname", Label, "Name of this database"),
                col("mode", Label, "Type of Lock"),
                col("count", Gauge, "Number of locks"),
            ],
        ),
        spec(
            "pg_stat_activity",
            "SELECT pg_database.datname, tmp.state, COALESCE(count, 0) AS count, \
             COALESCE(max_tx_duration, 0) AS max_tx_duration \
             FROM (VALUES ('active'), ('idle'), ('idle in transaction'), ('idle in transaction (aborted)'), \
             ('fastpath function call'), ('disabled')) AS tmp(state) CROSS JOIN pg_database \
             LEFT JOIN (SELECT datname, state, count(*) AS count, \
             MAX(EXTRACT(EPOCH FROM now() - xact_start))::float AS max_tx_duration \
             FROM pg_stat_activity GROUP BY datname, state) AS tmp2 \
             ON tmp.state = tmp2.state AND pg_database.datname = tmp2.datname",
            vec![
                col("datname", Label, "Name of this database"),
                col("state", Label, "connection state"),
                col("count", Gauge, "number of connections in this state"),
                col("max_tx_duration", Gauge, "max duration in seconds any active transaction has been running"),
            ],
        ),
        spec(
            "pg_stat_archiver",
            "SELECT *, extract(epoch from now() - last_archived_time) AS last_archive_age FROM pg_stat_archiver",
            vec![
                col("archived_count", Counter, "Number of WAL files that have been successfully archived"),
                col("last_archived_wal", Discard, ""),
                col("last_archived_time", Discard, ""),
                col("failed_count", Counter, "Number of failed attempts for archiving WAL files"),
                col("last_failed_wal", Discard, ""),
                col("last_failed_time", Discard, ""),
                col("stats_reset", Discard, ""),
                col("last_archive_age", Gauge, "Time in seconds since last WAL segment was successfully archived"),
            ],
        ),
        spec(
            "pg_stat_replication",
            "SELECT *, \
             (CASE pg_is_in_recovery() WHEN 't' THEN null ELSE pg_current_wal_lsn() END) AS pg_current_wal_lsn, \
             (CASE pg_is_in_recovery() WHEN 't' THEN null ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), pg_lsn('0/0'))::float END) AS pg_current_wal_lsn_bytes, \
             (CASE pg_is_in_recovery() WHEN 't' THEN null ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float END) AS pg_wal_lsn_diff \
             FROM pg_stat_replication",
            vec![
                col("pid", Discard, ""),
                col("usesysid", Discard, ""),
                col("usename", Discard, ""),
                col("application_name", Label, "Name of the application that is connected to this WAL sender"),
                col("client_addr", Label, "IP address of the client connected to this WAL sender"),
                col("client_hostname", Discard, ""),
                col("client_port", Discard, ""),
                col("backend_start", Discard, ""),
                col("backend_xmin", Discard, ""),
                col("state", Label, "Current WAL sender state"),
                col("sent_lsn", Discard, ""),
                col("write_lsn", Discard, ""),
                col("flush_lsn", Discard, ""),
                col("replay_lsn", Discard, ""),
                col("write_lag", Discard, ""),
                col("flush_lag", Discard, ""),
                col("replay_lag", Discard, ""),
                col("sync_priority", Discard, ""),
                col("sync_state", Discard, ""),
                col("reply_time", Discard, ""),
                col("pg_current_wal_lsn", Discard, ""),
                col("pg_current_wal_lsn_bytes", Gauge, "WAL position in bytes"),
                col("pg_wal_lsn_diff", Gauge, "Lag in bytes between master and slave"),
            ],
        ),
        spec(
            "pg_replication_slots",
            "SELECT slot_name, database, active, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) AS pg_wal_lsn_diff \
             FROM pg_replication_slots",
            vec![
                col("slot_name", Label, "Name of the replication slot"),
                col("database", Label, "Name of the database"),
                col("active", Gauge, "Flag indicating if the slot is active"),
                col("pg_wal_lsn_diff", Gauge, "Replication lag in bytes"),
            ],
        ),
    ]
}

/// Parses a `queries.yaml` in postgres_exporter's format:
///
/// ```yaml
/// pg_replication:
///   query: "SELECT ... AS lag"
///   master: true
///   metrics:
///     - lag:
///         usage: "GAUGE"
///         description: "Replication lag behind master in seconds"
/// ```
pub(crate) fn parse_user_queries(text: &str) -> Result<Vec<QuerySpec>, String> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    let serde_yaml_ng::Value::Mapping(map) = doc else {
        if doc.is_null() {
            return Ok(Vec::new());
        }
        return Err("top level must be a mapping of metric namespaces".into());
    };
    let mut out = Vec::new();
    for (key, value) in map {
        let namespace = key.as_str().ok_or("namespace must be a string")?.to_string();
        let query = value
            .get("query")
            .and_then(|q| q.as_str())
            .ok_or_else(|| format!("{namespace}: missing query"))?
            .to_string();
        let master = value.get("master").and_then(|m| m.as_bool()).unwrap_or(false);
        let mut columns = Vec::new();
        let metrics = value
            .get("metrics")
            .and_then(|m| m.as_sequence())
            .ok_or_else(|| format!("{namespace}: missing metrics"))?;
        for metric in metrics {
            let serde_yaml_ng::Value::Mapping(entry) = metric else {
                return Err(format!("{namespace}: each metric must be a mapping"));
            };
            for (name, def) in entry {
                let name = name.as_str().ok_or_else(|| format!("{namespace}: column name must be a string"))?;
                let usage_text = def.get("usage").and_then(|u| u.as_str()).unwrap_or("");
                let usage = Usage::parse(usage_text)
                    .ok_or_else(|| format!("{namespace}.{name}: unknown usage {usage_text:?}"))?;
                let help = def.get("description").and_then(|d| d.as_str()).unwrap_or("").to_string();
                columns.push(Column { name: name.to_string(), usage, help });
            }
        }
        out.push(QuerySpec { namespace, query, columns, master });
    }
    Ok(out)
}

/// A PostgreSQL `timestamptz` in ISO style (`2026-11-22 05:00:00.123456+00`) as Unix seconds.
fn parse_timestamp(text: &str) -> Option<f64> {
    let bytes = text.as_bytes();
    if bytes.len() < 19 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[10] != b' ' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute) = (num(11..13)?, num(14..16)?);
    let rest = text.get(17..)?;
    let offset_at = rest.find(['+', '-']).unwrap_or(rest.len());
    let seconds: f64 = rest[..offset_at].parse().ok()?;
    let mut offset = 0i64;
    if offset_at < rest.len() {
        let sign = if rest.as_bytes()[offset_at] == b'-' { -1 } else { 1 };
        let mut parts = rest[offset_at + 1..].split(':');
        let hours: i64 = parts.next()?.parse().ok()?;
        let minutes: i64 = parts.next().map(|m| m.parse().unwrap_or(0)).unwrap_or(0);
        offset = sign * (hours * 3600 + minutes * 60);
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = crate::builder::days_from_civil(year, month, day);
    Some((days * 86400 + hour * 3600 + minute * 60 - offset) as f64 + seconds)
}

/// A column value as postgres_exporter converts it: NULL is NaN, booleans are 1/0,
/// timestamps are Unix seconds; other text that is not a number is `None` (skipped).
pub(crate) fn value_of(text: Option<&str>) -> Option<f64> {
    let Some(text) = text else { return Some(f64::NAN) };
    match text {
        "t" | "true" => return Some(1.0),
        "f" | "false" => return Some(0.0),
        _ => {}
    }
    text.parse::<f64>().ok().or_else(|| parse_timestamp(text))
}

/// Query results as (column names, rows of text values).
pub(crate) type Rows = (Vec<String>, Vec<Vec<Option<String>>>);

/// Adds the families of one query's result, each sample labelled with `server` too.
pub(crate) fn add_rows(builder: &mut Builder, spec: &QuerySpec, rows: &Rows, server: &str) {
    let (names, rows) = rows;
    let usage_of = |name: &str| spec.columns.iter().find(|c| c.name == name);
    let histograms: Vec<&str> =
        spec.columns.iter().filter(|c| c.usage == Usage::Histogram).map(|c| c.name.as_str()).collect();
    let part_of_histogram = |name: &str| {
        histograms.iter().any(|h| ["_bucket", "_sum", "_count"].iter().any(|s| name.strip_suffix(s) == Some(h)))
    };
    let label_idx: Vec<usize> =
        (0..names.len()).filter(|i| usage_of(&names[*i]).is_some_and(|c| c.usage == Usage::Label)).collect();
    for row in rows {
        let mut labels: Vec<(&str, &str)> =
            label_idx.iter().map(|i| (names[*i].as_str(), row[*i].as_deref().unwrap_or(""))).collect();
        labels.push(("server", server));
        let cell = |name: &str| names.iter().position(|n| n == name).and_then(|i| row[i].as_deref());
        for (idx, name) in names.iter().enumerate() {
            let column = usage_of(name);
            if column.is_none() && part_of_histogram(name) {
                continue;
            }
            let (kind, help, suffix) = match column {
                Some(c) => match c.usage {
                    Usage::Label | Usage::Discard => continue,
                    Usage::Histogram => {
                        add_histogram(builder, spec, c, row[idx].as_deref(), &cell, &labels);
                        continue;
                    }
                    Usage::Counter => (MetricType::Counter, c.help.clone(), ""),
                    Usage::Gauge => (MetricType::Gauge, c.help.clone(), ""),
                    Usage::Duration => (MetricType::Gauge, c.help.clone(), "_milliseconds"),
                },
                None => (MetricType::Unknown, format!("Unknown metric from {}", spec.namespace), ""),
            };
            let Some(value) = value_of(row[idx].as_deref()) else { continue };
            let metric = format!("{}_{name}{suffix}", spec.namespace);
            builder.add(&metric, &help, kind, &labels, value);
        }
    }
}

/// A PostgreSQL array literal such as `{1,2.5,5}`.
fn parse_array(text: Option<&str>) -> Vec<f64> {
    let Some(inner) = text.and_then(|t| t.strip_prefix('{')).and_then(|t| t.strip_suffix('}')) else {
        return Vec::new();
    };
    inner.split(',').filter_map(|v| v.trim().parse().ok()).collect()
}

fn add_histogram<'a>(
    builder: &mut Builder,
    spec: &QuerySpec,
    column: &Column,
    bounds: Option<&str>,
    cell: &dyn Fn(&str) -> Option<&'a str>,
    labels: &[(&str, &str)],
) {
    let name = format!("{}_{}", spec.namespace, column.name);
    let bounds = parse_array(bounds);
    let counts = parse_array(cell(&format!("{}_bucket", column.name)));
    let count = cell(&format!("{}_count", column.name)).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let sum = cell(&format!("{}_sum", column.name)).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    for (bound, value) in bounds.iter().zip(&counts) {
        let mut le = String::new();
        sextant_model::exposition::write_go_float(&mut le, *bound);
        let mut with_le = labels.to_vec();
        with_le.push(("le", &le));
        builder.add_sample(&name, &column.help, MetricType::Histogram, "_bucket", &with_le, *value);
    }
    let mut with_le = labels.to_vec();
    with_le.push(("le", "+Inf"));
    builder.add_sample(&name, &column.help, MetricType::Histogram, "_bucket", &with_le, count);
    builder.add_sample(&name, &column.help, MetricType::Histogram, "_sum", labels, sum);
    builder.add_sample(&name, &column.help, MetricType::Histogram, "_count", labels, count);
}

/// `pg_settings` rows (name, setting, unit, short_desc, vartype) as postgres_exporter 0.11
/// exports them: `pg_settings_<name>[_seconds|_bytes]`, units converted, `-1` kept.
pub(crate) fn add_settings(builder: &mut Builder, rows: &Rows, server: &str) {
    for row in &rows.1 {
        let [Some(name), Some(setting), unit, desc, Some(vartype)] =
            [0, 1, 2, 3, 4].map(|i| row.get(i).cloned().flatten())
        else {
            continue;
        };
        let unit = unit.unwrap_or_default();
        let desc = desc.unwrap_or_default();
        let mut value = match vartype.as_str() {
            "bool" => match setting.as_str() {
                "on" => 1.0,
                "off" => 0.0,
                _ => continue,
            },
            "integer" | "real" => match setting.parse::<f64>() {
                Ok(v) => v,
                Err(_) => continue,
            },
            _ => continue,
        };
        let (suffix, scale) = match unit.as_str() {
            "" => ("", 1.0),
            "ms" => ("_seconds", 0.001),
            "s" => ("_seconds", 1.0),
            "min" => ("_seconds", 60.0),
            "h" => ("_seconds", 3600.0),
            "d" => ("_seconds", 86400.0),
            "B" => ("_bytes", 1.0),
            "kB" => ("_bytes", 1024.0),
            "MB" => ("_bytes", 1024.0 * 1024.0),
            "GB" => ("_bytes", 1024.0 * 1024.0 * 1024.0),
            "TB" => ("_bytes", 1024.0 * 1024.0 * 1024.0 * 1024.0),
            other => match other.strip_suffix("kB").and_then(|n| n.parse::<f64>().ok()) {
                Some(n) => ("_bytes", n * 1024.0),
                None => match other.strip_suffix("MB").and_then(|n| n.parse::<f64>().ok()) {
                    Some(n) => ("_bytes", n * 1024.0 * 1024.0),
                    None => continue,
                },
            },
        };
        if value != -1.0 {
            value *= scale;
        }
        let help =
            if suffix.is_empty() { desc.clone() } else { format!("{desc} [Units converted to {}.]", &suffix[1..]) };
        let metric = format!("pg_settings_{}{suffix}", name.replace('.', "_"));
        builder.add(&metric, &help, MetricType::Gauge, &[("server", server)], value);
    }
}

/// Groups columns by name, for tests and dumps.
#[allow(dead_code)]
pub(crate) fn column_usages(spec: &QuerySpec) -> BTreeMap<&str, Usage> {
    spec.columns.iter().map(|c| (c.name.as_str(), c.usage)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::write_text;

    fn rows(names: &[&str], rows: &[&[Option<&str>]]) -> Rows {
        (
            names.iter().map(|s| s.to_string()).collect(),
            rows.iter().map(|r| r.iter().map(|v| v.map(str::to_string)).collect()).collect(),
        )
    }

    fn render(builder: Builder) -> String {
        let mut out = String::new();
        write_text(&mut out, &builder.finish());
        out
    }

    #[test]
    fn values() {
        let cases: &[(Option<&str>, Option<f64>)] = &[
            (Some("1.5"), Some(1.5)),
            (Some("t"), Some(1.0)),
            (Some("f"), Some(0.0)),
            (Some("1970-01-02 00:00:01+00"), Some(86401.0)),
            (Some("1970-01-01 01:00:00.5+01"), Some(0.5)),
            (Some("hello"), None),
            (Some("2026-13-01 00:00:00+00"), None),
        ];
        for (input, want) in cases {
            let got = value_of(*input);
            match (got, want) {
                (Some(g), Some(w)) => {
                    assert!((g - w).abs() < 1e-6 || (g.is_nan() && w.is_nan()), "{input:?}: {g} != {w}")
                }
                (g, w) => assert_eq!(g, *w, "{input:?}"),
            }
        }
        assert!(value_of(None).unwrap().is_nan());
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("2000-03-01 00:00:00+00"), Some(951868800.0));
        assert_eq!(parse_timestamp("2000-03-01 00:00:00-05:30"), Some(951868800.0 + 19800.0));
        assert_eq!(parse_timestamp("short"), None);
    }

    #[test]
    fn rows_to_families() {
        let spec = builtin().into_iter().find(|s| s.namespace == "pg_stat_database").unwrap();
        let data = rows(
            &["datid", "datname", "numbackends", "xact_commit", "active_time", "stats_reset"],
            &[&[Some("5"), Some("postgres"), Some("2"), Some("6"), Some("34.6"), None]],
        );
        let mut builder = Builder::new("");
        add_rows(&mut builder, &spec, &data, "h:1");
        let text = render(builder);
        for line in [
            "pg_stat_database_numbackends{datid=\"5\",datname=\"postgres\",server=\"h:1\"} 2",
            "# TYPE pg_stat_database_xact_commit counter",
            "# TYPE pg_stat_database_active_time untyped",
            "# HELP pg_stat_database_active_time Unknown metric from pg_stat_database",
            "pg_stat_database_stats_reset{datid=\"5\",datname=\"postgres\",server=\"h:1\"} NaN",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn histograms() {
        let spec = parse_user_queries(
            "pg_process_idle:\n  query: q\n  metrics:\n    - application_name:\n        usage: LABEL\n    - seconds:\n        usage: HISTOGRAM\n        description: Idle\n",
        )
        .unwrap()
        .remove(0);
        let data = rows(
            &["application_name", "seconds_sum", "seconds_count", "seconds", "seconds_bucket"],
            &[&[Some("app"), Some("7"), Some("3"), Some("{1,2.5}"), Some("{1,2}")]],
        );
        let mut builder = Builder::new("");
        add_rows(&mut builder, &spec, &data, "h:1");
        let text = render(builder);
        for line in [
            "# TYPE pg_process_idle_seconds histogram",
            "pg_process_idle_seconds_bucket{application_name=\"app\",le=\"2.5\",server=\"h:1\"} 2",
            "pg_process_idle_seconds_bucket{application_name=\"app\",le=\"+Inf\",server=\"h:1\"} 3",
            "pg_process_idle_seconds_sum{application_name=\"app\",server=\"h:1\"} 7",
            "pg_process_idle_seconds_count{application_name=\"app\",server=\"h:1\"} 3",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("seconds_sum{") || !text.contains("# TYPE pg_process_idle_seconds_sum"), "{text}");
        assert_eq!(parse_array(Some("{}")), Vec::<f64>::new());
        assert_eq!(parse_array(Some("nope")), Vec::<f64>::new());
    }

    #[test]
    fn settings() {
        let data = rows(
            &["name", "setting", "unit", "short_desc", "vartype"],
            &[
                &[Some("work_mem"), Some("4096"), Some("kB"), Some("Work mem."), Some("integer")],
                &[Some("shared_buffers"), Some("16384"), Some("8kB"), Some("Buffers."), Some("integer")],
                &[Some("log_min_duration_statement"), Some("-1"), Some("ms"), Some("Log."), Some("integer")],
                &[Some("checkpoint_timeout"), Some("300"), Some("s"), Some("Cp."), Some("integer")],
                &[Some("fsync"), Some("on"), None, Some("Fsync."), Some("bool")],
                &[Some("pg_stat_statements.max"), Some("5000"), None, Some("Max."), Some("integer")],
                &[Some("odd"), Some("1"), Some("parsecs"), Some("Odd."), Some("integer")],
            ],
        );
        let mut builder = Builder::new("");
        add_settings(&mut builder, &data, "h:1");
        let text = render(builder);
        for line in [
            "pg_settings_work_mem_bytes{server=\"h:1\"} 4.194304e+06",
            "pg_settings_shared_buffers_bytes{server=\"h:1\"} 1.34217728e+08",
            "pg_settings_log_min_duration_statement_seconds{server=\"h:1\"} -1",
            "pg_settings_checkpoint_timeout_seconds{server=\"h:1\"} 300",
            "pg_settings_fsync{server=\"h:1\"} 1",
            "pg_settings_pg_stat_statements_max{server=\"h:1\"} 5000",
            "# HELP pg_settings_work_mem_bytes Work mem. [Units converted to bytes.]",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("odd"), "{text}");
    }

    #[test]
    fn user_queries() {
        let text = "pg_replication:\n  query: \"SELECT 1 AS lag\"\n  master: true\n  metrics:\n    - lag:\n        usage: \"GAUGE\"\n        description: \"Lag\"\n    - host:\n        usage: LABEL\n        description: h\n";
        let specs = parse_user_queries(text).unwrap();
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].namespace, "pg_replication");
        assert!(specs[0].master);
        assert_eq!(column_usages(&specs[0]).get("lag"), Some(&Usage::Gauge));
        assert_eq!(column_usages(&specs[0]).get("host"), Some(&Usage::Label));
        for (bad, why) in [
            ("[1, 2]", "mapping"),
            ("x:\n  metrics: []\n", "missing query"),
            ("x:\n  query: q\n", "missing metrics"),
            ("x:\n  query: q\n  metrics:\n    - c:\n        usage: WEIRD\n", "unknown usage"),
            ("x: [", ""),
        ] {
            let err = parse_user_queries(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        assert!(parse_user_queries("").unwrap().is_empty());
    }

    #[test]
    fn shipped_timescaledb_queries_parse() {
        let text = include_str!("../../queries/timescaledb.yaml");
        let specs = parse_user_queries(text).unwrap();
        assert!(specs.len() >= 3, "{specs:?}");
    }

    proptest::proptest! {
        #[test]
        fn no_panic_on_garbage_yaml(input in "\\PC{0,200}") {
            let _ = parse_user_queries(&input);
        }

        #[test]
        fn no_panic_on_garbage_values(input in "\\PC{0,40}") {
            let _ = value_of(Some(&input));
        }
    }
}
