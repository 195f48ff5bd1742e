//! Turns the replies of `INFO ALL`, `CONFIG GET *`, `SLOWLOG` and `LATENCY LATEST` into
//! redis_exporter 1.45's metric families.

use std::collections::BTreeMap;

pub(crate) use crate::builder::Builder;
#[cfg(test)]
use sextant_model::exposition::MetricFamily;
use sextant_model::exposition::MetricType;

/// INFO fields exported as gauges: (field, metric name without the namespace).
const GAUGES: &[(&str, &str)] = &[
    ("uptime_in_seconds", "uptime_in_seconds"),
    ("process_id", "process_id"),
    ("io_threads_active", "io_threads_active"),
    ("connected_clients", "connected_clients"),
    ("blocked_clients", "blocked_clients"),
    ("tracking_clients", "tracking_clients"),
    ("clients_in_timeout_table", "clients_in_timeout_table"),
    ("client_longest_output_list", "client_longest_output_list"),
    ("client_biggest_input_buf", "client_biggest_input_buf"),
    ("client_recent_max_output_buffer", "client_recent_max_output_buffer_bytes"),
    ("client_recent_max_input_buffer", "client_recent_max_input_buffer_bytes"),
    ("allocator_active", "allocator_active_bytes"),
    ("allocator_allocated", "allocator_allocated_bytes"),
    ("allocator_resident", "allocator_resident_bytes"),
    ("allocator_frag_ratio", "allocator_frag_ratio"),
    ("allocator_frag_bytes", "allocator_frag_bytes"),
    ("allocator_rss_ratio", "allocator_rss_ratio"),
    ("allocator_rss_bytes", "allocator_rss_bytes"),
    ("used_memory", "memory_used_bytes"),
    ("used_memory_rss", "memory_used_rss_bytes"),
    ("used_memory_peak", "memory_used_peak_bytes"),
    ("used_memory_lua", "memory_used_lua_bytes"),
    ("used_memory_overhead", "memory_used_overhead_bytes"),
    ("used_memory_startup", "memory_used_startup_bytes"),
    ("used_memory_dataset", "memory_used_dataset_bytes"),
    ("used_memory_scripts", "memory_used_scripts_bytes"),
    ("number_of_cached_scripts", "number_of_cached_scripts"),
    ("maxmemory", "memory_max_bytes"),
    ("maxmemory_reservation", "memory_max_reservation_bytes"),
    ("maxmemory_desired_reservation", "memory_max_reservation_desired_bytes"),
    ("maxfragmentationmemory_reservation", "memory_max_fragmentation_reservation_bytes"),
    ("maxfragmentationmemory_desired_reservation", "memory_max_fragmentation_reservation_desired_bytes"),
    ("mem_fragmentation_ratio", "mem_fragmentation_ratio"),
    ("mem_fragmentation_bytes", "mem_fragmentation_bytes"),
    ("mem_clients_slaves", "mem_clients_slaves"),
    ("mem_clients_normal", "mem_clients_normal"),
    ("expired_stale_perc", "expired_stale_percentage"),
    ("mem_not_counted_for_evict", "mem_not_counted_for_eviction_bytes"),
    ("lazyfree_pending_objects", "lazyfree_pending_objects"),
    ("active_defrag_running", "active_defrag_running"),
    ("migrate_cached_sockets", "migrate_cached_sockets_total"),
    ("active_defrag_hits", "defrag_hits"),
    ("active_defrag_misses", "defrag_misses"),
    ("active_defrag_key_hits", "defrag_key_hits"),
    ("active_defrag_key_misses", "defrag_key_misses"),
    ("expired_time_cap_reached_count", "expired_time_cap_reached_total"),
    ("loading", "loading_dump_file"),
    ("rdb_changes_since_last_save", "rdb_changes_since_last_save"),
    ("rdb_bgsave_in_progress", "rdb_bgsave_in_progress"),
    ("rdb_last_save_time", "rdb_last_save_timestamp_seconds"),
    ("rdb_last_bgsave_status", "rdb_last_bgsave_status"),
    ("rdb_last_bgsave_time_sec", "rdb_last_bgsave_duration_sec"),
    ("rdb_current_bgsave_time_sec", "rdb_current_bgsave_duration_sec"),
    ("rdb_last_cow_size", "rdb_last_cow_size_bytes"),
    ("aof_enabled", "aof_enabled"),
    ("aof_rewrite_in_progress", "aof_rewrite_in_progress"),
    ("aof_rewrite_scheduled", "aof_rewrite_scheduled"),
    ("aof_last_rewrite_time_sec", "aof_last_rewrite_duration_sec"),
    ("aof_current_rewrite_time_sec", "aof_current_rewrite_duration_sec"),
    ("aof_last_cow_size", "aof_last_cow_size_bytes"),
    ("aof_current_size", "aof_current_size_bytes"),
    ("aof_base_size", "aof_base_size_bytes"),
    ("aof_pending_rewrite", "aof_pending_rewrite"),
    ("aof_buffer_length", "aof_buffer_length"),
    ("aof_rewrite_buffer_length", "aof_rewrite_buffer_length"),
    ("aof_pending_bio_fsync", "aof_pending_bio_fsync"),
    ("aof_delayed_fsync", "aof_delayed_fsync"),
    ("aof_last_bgrewrite_status", "aof_last_bgrewrite_status"),
    ("aof_last_write_status", "aof_last_write_status"),
    ("module_fork_in_progress", "module_fork_in_progress"),
    ("module_fork_last_cow_size", "module_fork_last_cow_size"),
    ("pubsub_channels", "pubsub_channels"),
    ("pubsub_patterns", "pubsub_patterns"),
    ("tracking_total_keys", "tracking_total_keys"),
    ("tracking_total_items", "tracking_total_items"),
    ("tracking_total_prefixes", "tracking_total_prefixes"),
    ("connected_slaves", "connected_slaves"),
    ("repl_backlog_size", "replication_backlog_bytes"),
    ("repl_backlog_active", "repl_backlog_is_active"),
    ("repl_backlog_first_byte_offset", "repl_backlog_first_byte_offset"),
    ("repl_backlog_histlen", "repl_backlog_history_bytes"),
    ("master_repl_offset", "master_repl_offset"),
    ("second_repl_offset", "second_repl_offset"),
    ("slave_expires_tracked_keys", "slave_expires_tracked_keys"),
    ("slave_priority", "slave_priority"),
    ("sync_full", "replica_resyncs_full"),
    ("sync_partial_ok", "replica_partial_resync_accepted"),
    ("sync_partial_err", "replica_partial_resync_denied"),
    ("cluster_enabled", "cluster_enabled"),
    ("cluster_connections", "cluster_connections"),
    ("cluster_stats_messages_sent", "cluster_messages_sent_total"),
    ("cluster_stats_messages_received", "cluster_messages_received_total"),
];

/// INFO fields exported as counters.
const COUNTERS: &[(&str, &str)] = &[
    ("total_connections_received", "connections_received_total"),
    ("total_commands_processed", "commands_processed_total"),
    ("rejected_connections", "rejected_connections_total"),
    ("total_net_input_bytes", "net_input_bytes_total"),
    ("total_net_output_bytes", "net_output_bytes_total"),
    ("expired_keys", "expired_keys_total"),
    ("evicted_keys", "evicted_keys_total"),
    ("keyspace_hits", "keyspace_hits_total"),
    ("keyspace_misses", "keyspace_misses_total"),
    ("used_cpu_sys", "cpu_sys_seconds_total"),
    ("used_cpu_user", "cpu_user_seconds_total"),
    ("used_cpu_sys_children", "cpu_sys_children_seconds_total"),
    ("used_cpu_user_children", "cpu_user_children_seconds_total"),
    ("used_cpu_sys_main_thread", "cpu_sys_main_thread_seconds_total"),
    ("used_cpu_user_main_thread", "cpu_user_main_thread_seconds_total"),
    ("unexpected_error_replies", "unexpected_error_replies"),
    ("total_error_replies", "total_error_replies"),
    ("dump_payload_sanitizations", "dump_payload_sanitizations"),
    ("total_reads_processed", "total_reads_processed"),
    ("total_writes_processed", "total_writes_processed"),
    ("io_threaded_reads_processed", "io_threaded_reads_processed"),
    ("io_threaded_writes_processed", "io_threaded_writes_processed"),
];

/// `CONFIG GET *` keys exported as `config_<key>` gauges.
const CONFIG_GAUGES: &[&str] = &["io-threads", "maxclients", "maxmemory"];

/// A number in an INFO value; `ok`/`err` statuses become 1/0 as in redis_exporter.
fn info_number(value: &str) -> Option<f64> {
    match value {
        "ok" => Some(1.0),
        "err" | "fail" => Some(0.0),
        _ => value.parse().ok(),
    }
}

/// `key=value,key=value` pairs (keyspace, commandstats, replica lines).
fn pairs(value: &str) -> impl Iterator<Item = (&str, &str)> {
    value.split(',').filter_map(|pair| pair.split_once('='))
}

/// What the INFO reply says beyond plain fields, needed by later steps.
#[derive(Debug, Default)]
pub(crate) struct InfoSummary {
    pub(crate) dbs_seen: Vec<u32>,
}

/// Adds the families of an `INFO ALL` reply. `now` is the current Unix time in seconds.
pub(crate) fn add_info(builder: &mut Builder, info: &str, now: f64, include_system: bool) -> InfoSummary {
    let mut summary = InfoSummary::default();
    let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
    let mut section = "";
    let mut command_calls: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut latency_lines: Vec<(&str, &str)> = Vec::new();
    for line in info.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(name) = line.strip_prefix("# ") {
            section = name.trim();
            continue;
        }
        let Some((field, value)) = line.split_once(':') else { continue };
        match section {
            "Keyspace" => {
                let Some(db) = field.strip_prefix("db").and_then(|n| n.parse::<u32>().ok()) else { continue };
                summary.dbs_seen.push(db);
                let (mut keys, mut expires, mut avg_ttl) = (0.0, 0.0, 0.0);
                for (k, v) in pairs(value) {
                    let v: f64 = v.parse().unwrap_or(0.0);
                    match k {
                        "keys" => keys = v,
                        "expires" => expires = v,
                        "avg_ttl" => avg_ttl = v / 1000.0,
                        _ => {}
                    }
                }
                let labels = [("db", field)];
                builder.add("db_keys", "Total number of keys by DB", MetricType::Gauge, &labels, keys);
                builder.add(
                    "db_keys_expiring",
                    "Total number of expiring keys by DB",
                    MetricType::Gauge,
                    &labels,
                    expires,
                );
                builder.add("db_avg_ttl_seconds", "Avg TTL in seconds", MetricType::Gauge, &labels, avg_ttl);
                continue;
            }
            "Commandstats" => {
                let Some(cmd) = field.strip_prefix("cmdstat_") else { continue };
                let labels = [("cmd", cmd)];
                let (mut calls, mut usec) = (0.0, 0.0);
                for (k, v) in pairs(value) {
                    let Ok(v) = v.parse::<f64>() else { continue };
                    match k {
                        "calls" => {
                            calls = v;
                            builder.add(
                                "commands_total",
                                "Total number of calls per command",
                                MetricType::Counter,
                                &labels,
                                v,
                            );
                        }
                        "usec" => {
                            usec = v;
                            builder.add(
                                "commands_duration_seconds_total",
                                "Total amount of time in seconds spent per command",
                                MetricType::Counter,
                                &labels,
                                v / 1e6,
                            );
                        }
                        "rejected_calls" => builder.add(
                            "commands_rejected_calls_total",
                            "Total number of errors prior command execution per command",
                            MetricType::Counter,
                            &labels,
                            v,
                        ),
                        "failed_calls" => builder.add(
                            "commands_failed_calls_total",
                            "Total number of errors within command execution per command",
                            MetricType::Counter,
                            &labels,
                            v,
                        ),
                        _ => {}
                    }
                }
                command_calls.insert(cmd.to_string(), (calls, usec));
                continue;
            }
            "Latencystats" => {
                if let Some(cmd) = field.strip_prefix("latency_percentiles_usec_") {
                    latency_lines.push((cmd, value));
                }
                continue;
            }
            "Errorstats" => {
                if let Some(err) = field.strip_prefix("errorstat_") {
                    if let Some(count) = pairs(value).find(|(k, _)| *k == "count").and_then(|(_, v)| v.parse().ok()) {
                        builder.add(
                            "errors_total",
                            "Total number of errors per error type",
                            MetricType::Counter,
                            &[("err", err)],
                            count,
                        );
                    }
                }
                continue;
            }
            "Replication" if field.strip_prefix("slave").is_some_and(|n| n.parse::<u32>().is_ok()) => {
                let mut ip = "";
                let mut port = "";
                let mut state = "";
                let mut offset = None;
                let mut lag = None;
                for (k, v) in pairs(value) {
                    match k {
                        "ip" => ip = v,
                        "port" => port = v,
                        "state" => state = v,
                        "offset" => offset = v.parse::<f64>().ok(),
                        "lag" => lag = v.parse::<f64>().ok(),
                        _ => {}
                    }
                }
                let labels = [("slave_ip", ip), ("slave_port", port), ("slave_state", state)];
                if let Some(offset) = offset {
                    builder.add(
                        "connected_slave_offset_bytes",
                        "Offset of connected slave",
                        MetricType::Gauge,
                        &labels,
                        offset,
                    );
                }
                if let Some(lag) = lag {
                    builder.add(
                        "connected_slave_lag_seconds",
                        "Lag of connected slave",
                        MetricType::Gauge,
                        &labels,
                        lag,
                    );
                }
                continue;
            }
            _ => {}
        }
        fields.insert(field, value);
    }

    for (field, value) in &fields {
        if let Some((_, name)) = GAUGES.iter().find(|(f, _)| f == field) {
            if let Some(v) = info_number(value) {
                builder.add(name, &format!("{name} metric"), MetricType::Gauge, &[], v);
            }
        } else if let Some((_, name)) = COUNTERS.iter().find(|(f, _)| f == field) {
            if let Some(v) = info_number(value) {
                builder.add(name, &format!("{name} metric"), MetricType::Counter, &[], v);
            }
        } else if *field == "latest_fork_usec" {
            if let Some(v) = info_number(value) {
                builder.add("latest_fork_seconds", "latest_fork_seconds metric", MetricType::Gauge, &[], v / 1e6);
            }
        } else if *field == "total_system_memory" && include_system {
            if let Some(v) = info_number(value) {
                builder.add("total_system_memory_bytes", "total_system_memory_bytes metric", MetricType::Gauge, &[], v);
            }
        }
    }
    if let Some(uptime) = fields.get("uptime_in_seconds").and_then(|v| v.parse::<f64>().ok()) {
        builder.add(
            "start_time_seconds",
            "Start time of the Redis instance since unix epoch in seconds.",
            MetricType::Gauge,
            &[],
            (now - uptime).floor(),
        );
    }
    let get = |key: &str| fields.get(key).copied().unwrap_or("");
    builder.add(
        "instance_info",
        "Information about the Redis instance",
        MetricType::Gauge,
        &[
            ("maxmemory_policy", get("maxmemory_policy")),
            ("os", get("os")),
            ("process_id", get("process_id")),
            ("redis_build_id", get("redis_build_id")),
            ("redis_mode", get("redis_mode")),
            ("redis_version", get("redis_version")),
            ("role", get("role")),
            ("run_id", get("run_id")),
            ("tcp_port", get("tcp_port")),
        ],
        1.0,
    );
    if get("role") == "slave" {
        let labels = [("master_host", get("master_host")), ("master_port", get("master_port"))];
        let up = if get("master_link_status") == "up" { 1.0 } else { 0.0 };
        builder.add("master_link_up", "Master link status on Redis slave", MetricType::Gauge, &labels, up);
        if let Some(v) = info_number(get("master_sync_in_progress")) {
            builder.add("master_sync_in_progress", "Master sync in progress", MetricType::Gauge, &labels, v);
        }
        if let Some(v) = info_number(get("master_last_io_seconds_ago")) {
            builder.add("master_last_io_seconds_ago", "Master last io seconds ago", MetricType::Gauge, &labels, v);
        }
    }
    for (cmd, value) in latency_lines {
        let help = "A summary of latency percentile distribution per command";
        for (k, v) in pairs(value) {
            let (Some(quantile), Ok(v)) = (k.strip_prefix('p'), v.parse::<f64>()) else { continue };
            builder.add_sample(
                "latency_percentiles_usec",
                help,
                MetricType::Summary,
                "",
                &[("cmd", cmd), ("quantile", quantile)],
                v,
            );
        }
        let (calls, usec) = command_calls.get(cmd).copied().unwrap_or((0.0, 0.0));
        builder.add_sample("latency_percentiles_usec", help, MetricType::Summary, "_sum", &[("cmd", cmd)], usec);
        builder.add_sample("latency_percentiles_usec", help, MetricType::Summary, "_count", &[("cmd", cmd)], calls);
    }
    summary
}

/// Adds `config_*` gauges from a `CONFIG GET *` reply (flat key, value list); returns the
/// `databases` setting.
pub(crate) fn add_config(builder: &mut Builder, pairs: &[String]) -> Option<u32> {
    let mut databases = None;
    for pair in pairs.chunks_exact(2) {
        let (key, value) = (pair[0].as_str(), pair[1].as_str());
        if key == "databases" {
            databases = value.parse().ok();
        }
        if CONFIG_GAUGES.contains(&key) {
            if let Ok(v) = value.parse::<f64>() {
                let name = format!("config_{}", key.replace('-', "_"));
                builder.add(&name, &format!("{name} metric"), MetricType::Gauge, &[], v);
            }
        }
    }
    databases
}

/// Adds `db_keys` and `db_keys_expiring` of 0 for the databases INFO did not list.
pub(crate) fn add_empty_dbs(builder: &mut Builder, databases: u32, seen: &[u32]) {
    for db in (0..databases.min(1024)).filter(|db| !seen.contains(db)) {
        let name = format!("db{db}");
        let labels = [("db", name.as_str())];
        builder.add("db_keys", "Total number of keys by DB", MetricType::Gauge, &labels, 0.0);
        builder.add("db_keys_expiring", "Total number of expiring keys by DB", MetricType::Gauge, &labels, 0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::write_text;

    fn render(families: Vec<MetricFamily>) -> String {
        let mut out = String::new();
        write_text(&mut out, &families);
        out
    }

    fn check(info: &str, expected: &[&str]) {
        let mut builder = Builder::new("redis");
        add_info(&mut builder, info, 1000.0, false);
        let text = render(builder.finish());
        for line in expected {
            assert!(text.lines().any(|l| l == *line), "missing {line:?} in:\n{text}");
        }
    }

    #[test]
    fn fields() {
        check(
            "# Memory\r\nused_memory:1024\r\n",
            &["redis_memory_used_bytes 1024", "# TYPE redis_memory_used_bytes gauge"],
        );
        check(
            "# Stats\r\ntotal_connections_received:7\r\n",
            &["redis_connections_received_total 7", "# TYPE redis_connections_received_total counter"],
        );
        check(
            "# Persistence\r\nrdb_last_bgsave_status:ok\r\naof_last_write_status:err\r\n",
            &["redis_rdb_last_bgsave_status 1", "redis_aof_last_write_status 0"],
        );
        check("# Stats\r\nlatest_fork_usec:1500\r\n", &["redis_latest_fork_seconds 0.0015"]);
        check(
            "# Server\r\nuptime_in_seconds:100\r\nrole:master\r\n",
            &["redis_start_time_seconds 900", "redis_uptime_in_seconds 100"],
        );
        check(
            "# Keyspace\r\ndb0:keys=4,expires=1,avg_ttl=3599285\r\n",
            &[
                "redis_db_keys{db=\"db0\"} 4",
                "redis_db_keys_expiring{db=\"db0\"} 1",
                "redis_db_avg_ttl_seconds{db=\"db0\"} 3599.285",
            ],
        );
        check(
            "# Commandstats\r\ncmdstat_config|get:calls=2,usec=245,usec_per_call=122.5,rejected_calls=0,failed_calls=1\r\n\
             # Latencystats\r\nlatency_percentiles_usec_config|get:p50=245.759,p99=245.759,p99.9=245.759\r\n",
            &[
                "redis_commands_total{cmd=\"config|get\"} 2",
                "redis_commands_duration_seconds_total{cmd=\"config|get\"} 0.000245",
                "redis_commands_failed_calls_total{cmd=\"config|get\"} 1",
                "redis_latency_percentiles_usec{cmd=\"config|get\",quantile=\"99.9\"} 245.759",
                "redis_latency_percentiles_usec_sum{cmd=\"config|get\"} 245",
                "redis_latency_percentiles_usec_count{cmd=\"config|get\"} 2",
            ],
        );
        check("# Errorstats\r\nerrorstat_ERR:count=3\r\n", &["redis_errors_total{err=\"ERR\"} 3"]);
        check(
            "# Replication\r\nrole:master\r\nslave0:ip=10.0.0.1,port=6380,state=online,offset=42,lag=1\r\n",
            &["redis_connected_slave_offset_bytes{slave_ip=\"10.0.0.1\",slave_port=\"6380\",slave_state=\"online\"} 42"],
        );
        check(
            "# Replication\r\nrole:slave\r\nmaster_host:h\r\nmaster_port:1\r\nmaster_link_status:up\r\n",
            &["redis_master_link_up{master_host=\"h\",master_port=\"1\"} 1"],
        );
        // Unknown fields and malformed lines are skipped, never errors.
        check("garbage\r\n# Stats\r\nunknown_field:1\r\nused_memory:notanumber\r\n", &["redis_instance_info{maxmemory_policy=\"\",os=\"\",process_id=\"\",redis_build_id=\"\",redis_mode=\"\",redis_version=\"\",role=\"\",run_id=\"\",tcp_port=\"\"} 1"]);
    }

    #[test]
    fn config_and_empty_dbs() {
        let mut builder = Builder::new("redis");
        let config: Vec<String> = ["databases", "3", "maxmemory", "64", "io-threads", "1", "port", "1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let databases = add_config(&mut builder, &config);
        assert_eq!(databases, Some(3));
        add_empty_dbs(&mut builder, 3, &[1]);
        let text = render(builder.finish());
        for line in [
            "redis_config_maxmemory 64",
            "redis_config_io_threads 1",
            "redis_db_keys{db=\"db0\"} 0",
            "redis_db_keys_expiring{db=\"db2\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
        }
        assert!(!text.contains("db1"), "{text}");
        assert!(!text.contains("config_port"), "{text}");
    }
}
