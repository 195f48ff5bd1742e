//! Pure parts of the MySQL exporter: the go-sql-driver DSN, `~/.my.cnf`, value parsing as
//! mysqld_exporter does it, and `SHOW GLOBAL STATUS`/`VARIABLES` rows to families.

use crate::builder::Builder;
use sextant_model::exposition::MetricType;

/// Where and as whom to connect.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Dsn {
    pub(crate) user: String,
    pub(crate) password: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) socket: Option<String>,
}

/// Parses a go-sql-driver DSN: `[user[:password]@][tcp|unix[(address)]]/[dbname][?params]`.
pub(crate) fn parse_dsn(dsn: &str) -> Result<Dsn, String> {
    let mut out = Dsn { host: "127.0.0.1".into(), port: 3306, ..Dsn::default() };
    let slash = dsn.rfind('/').ok_or("DSN has no '/' (expected user:pass@(host:port)/)")?;
    let head = &dsn[..slash];
    let (auth, addr) = match head.rfind('@') {
        Some(at) => (Some(&head[..at]), &head[at + 1..]),
        None => (None, head),
    };
    if let Some(auth) = auth {
        match auth.split_once(':') {
            Some((user, pass)) => {
                out.user = user.to_string();
                out.password = pass.to_string();
            }
            None => out.user = auth.to_string(),
        }
    }
    let (net, address) = match addr.find('(') {
        Some(open) => {
            let address = addr[open + 1..].strip_suffix(')').ok_or("unterminated address in DSN")?;
            (&addr[..open], address)
        }
        None => (addr, ""),
    };
    match net {
        "" | "tcp" | "tcp4" | "tcp6" => {
            if !address.is_empty() {
                let (host, port) = match address.rsplit_once(':') {
                    Some((host, port)) => (host, port.parse().map_err(|_| format!("bad port {port:?} in DSN"))?),
                    None => (address, 3306),
                };
                out.host = host.trim_start_matches('[').trim_end_matches(']').to_string();
                out.port = port;
            }
        }
        "unix" => out.socket = Some(if address.is_empty() { "/tmp/mysql.sock".into() } else { address.to_string() }),
        other => return Err(format!("unsupported network {other:?} in DSN")),
    }
    Ok(out)
}

/// Reads the `[client]` section of a my.cnf (user, password, host, port, socket).
pub(crate) fn parse_my_cnf(text: &str) -> Result<Dsn, String> {
    let mut out = Dsn { host: "localhost".into(), port: 3306, ..Dsn::default() };
    let mut in_client = false;
    let mut found_user = false;
    for (idx, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[') {
            in_client = section.trim_end_matches(']').trim() == "client";
            continue;
        }
        if !in_client {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim().trim_matches('"').trim_matches('\'')),
            None => (line, ""),
        };
        match key.replace('_', "-").as_str() {
            "user" => {
                out.user = value.to_string();
                found_user = true;
            }
            "password" => out.password = value.to_string(),
            "host" => out.host = value.to_string(),
            "port" => out.port = value.parse().map_err(|_| format!("line {}: bad port {value:?}", idx + 1))?,
            "socket" => out.socket = Some(value.to_string()),
            _ => {}
        }
    }
    if !found_user {
        return Err("no user in the [client] section".into());
    }
    Ok(out)
}

fn month_number(name: &str) -> Option<i64> {
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    months.iter().position(|m| *m == name).map(|i| i as i64 + 1)
}

fn hms(text: &str) -> Option<i64> {
    let mut parts = text.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    Some(h * 3600 + m * 60 + s)
}

/// A status or variable value as mysqld_exporter reads it: ON/YES → 1, OFF/NO → 0, two
/// date formats as Unix seconds, else a number; anything else is `None` (skipped).
pub(crate) fn parse_value(text: &str) -> Option<f64> {
    match text.to_ascii_lowercase().as_str() {
        "yes" | "on" | "primary" => return Some(1.0),
        "no" | "off" | "disabled" | "connecting" | "non-primary" | "disconnected" => return Some(0.0),
        _ => {}
    }
    let fields: Vec<&str> = text.split_whitespace().collect();
    // "Jan 02 15:04:05 2006 GMT"
    if fields.len() == 5 {
        if let (Some(month), Ok(day), Some(secs), Ok(year)) =
            (month_number(fields[0]), fields[1].parse::<i64>(), hms(fields[2]), fields[3].parse::<i64>())
        {
            return Some((crate::builder::days_from_civil(year, month, day) * 86400 + secs) as f64);
        }
    }
    // "2006-01-02 15:04:05"
    if fields.len() == 2 && fields[0].len() == 10 {
        let date: Vec<Option<i64>> = fields[0].split('-').map(|p| p.parse().ok()).collect();
        if let ([Some(y), Some(m), Some(d)], Some(secs)) = (date.as_slice(), hms(fields[1])) {
            return Some((crate::builder::days_from_civil(*y, *m, *d) * 86400 + secs) as f64);
        }
    }
    // Go's ParseFloat does not take Rust's "infinity" spellings; neither do we.
    let lower = text.to_ascii_lowercase();
    if lower.contains("inf") || lower.contains("nan") {
        return None;
    }
    text.parse().ok()
}

/// A metric name from a status or variable name: lower case, invalid characters as `_`.
pub(crate) fn metric_name(key: &str) -> String {
    key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c.to_ascii_lowercase() } else { '_' }).collect()
}

/// Adds the families of `SHOW GLOBAL STATUS` rows.
pub(crate) fn add_global_status(builder: &mut Builder, rows: &[(String, String)]) {
    let grouped: &[(&str, &str, &str, &str, MetricType)] = &[
        (
            "com_",
            "global_status_commands_total",
            "command",
            "Total number of executed MySQL commands.",
            MetricType::Counter,
        ),
        (
            "handler_",
            "global_status_handlers_total",
            "handler",
            "Total number of executed MySQL handlers.",
            MetricType::Counter,
        ),
        (
            "connection_errors_",
            "global_status_connection_errors_total",
            "error",
            "Total number of MySQL connection errors.",
            MetricType::Counter,
        ),
        (
            "innodb_rows_",
            "global_status_innodb_row_ops_total",
            "operation",
            "Total number of MySQL InnoDB row operations.",
            MetricType::Counter,
        ),
        (
            "performance_schema_",
            "global_status_performance_schema_lost_total",
            "instrumentation",
            "Total number of MySQL instrumentations that could not be loaded or created due to memory constraints.",
            MetricType::Counter,
        ),
    ];
    for (key, raw) in rows {
        let key = metric_name(key);
        let Some(value) = parse_value(raw) else { continue };
        if let Some(state) = key.strip_prefix("innodb_buffer_pool_pages_") {
            match state {
                "data" | "free" | "misc" | "old" => builder.add(
                    "global_status_buffer_pool_pages",
                    "Innodb buffer pool pages by state.",
                    MetricType::Gauge,
                    &[("state", state)],
                    value,
                ),
                "dirty" => builder.add(
                    "global_status_buffer_pool_dirty_pages",
                    "Innodb buffer pool dirty pages.",
                    MetricType::Gauge,
                    &[],
                    value,
                ),
                "total" => {}
                operation => builder.add(
                    "global_status_buffer_pool_page_changes_total",
                    "Innodb buffer pool page state changes.",
                    MetricType::Counter,
                    &[("operation", operation)],
                    value,
                ),
            }
            continue;
        }
        if let Some((prefix, name, label, help, kind)) = grouped.iter().find(|g| key.starts_with(g.0)) {
            builder.add(name, help, *kind, &[(label, &key[prefix.len()..])], value);
            continue;
        }
        builder.add(
            &format!("global_status_{key}"),
            "Generic metric from SHOW GLOBAL STATUS.",
            MetricType::Unknown,
            &[],
            value,
        );
    }
}

/// Adds the families of `SHOW GLOBAL VARIABLES` rows, with `mysql_version_info`,
/// `mysql_transaction_isolation` and `mysql_galera_variables_info`.
pub(crate) fn add_global_variables(builder: &mut Builder, rows: &[(String, String)]) {
    let get = |name: &str| rows.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    for (key, raw) in rows {
        let Some(value) = parse_value(raw) else { continue };
        builder.add(
            &format!("global_variables_{}", metric_name(key)),
            "Generic gauge metric from SHOW GLOBAL VARIABLES.",
            MetricType::Gauge,
            &[],
            value,
        );
    }
    builder.add(
        "version_info",
        "MySQL version and distribution.",
        MetricType::Gauge,
        &[
            ("innodb_version", get("innodb_version").unwrap_or("")),
            ("version", get("version").unwrap_or("")),
            ("version_comment", get("version_comment").unwrap_or("")),
        ],
        1.0,
    );
    if let Some(level) = get("transaction_isolation").or_else(|| get("tx_isolation")) {
        builder.add(
            "transaction_isolation",
            "MySQL transaction isolation.",
            MetricType::Gauge,
            &[("level", level)],
            1.0,
        );
    }
    if let Some(name) = get("wsrep_cluster_name") {
        builder.add(
            "galera_variables_info",
            "PXC/Galera variables information.",
            MetricType::Gauge,
            &[("wsrep_cluster_name", name)],
            1.0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::write_text;

    #[test]
    fn dsns() {
        let d = parse_dsn("exporter:pw@(127.0.0.1:13306)/").unwrap();
        assert_eq!(
            (d.user.as_str(), d.password.as_str(), d.host.as_str(), d.port),
            ("exporter", "pw", "127.0.0.1", 13306)
        );
        let d = parse_dsn("u:p@tcp(db)/x?tls=false").unwrap();
        assert_eq!((d.host.as_str(), d.port), ("db", 3306));
        let d = parse_dsn("u@unix(/run/mysqld/mysqld.sock)/").unwrap();
        assert_eq!(d.socket.as_deref(), Some("/run/mysqld/mysqld.sock"));
        let d = parse_dsn("u:p:with:colons@/").unwrap();
        assert_eq!(d.password, "p:with:colons");
        assert!(parse_dsn("nohost").is_err());
        assert!(parse_dsn("u@tcp(h:x)/").is_err());
        assert!(parse_dsn("u@udp(h)/").is_err());
        assert!(parse_dsn("u@tcp(h/").is_err());
    }

    #[test]
    fn my_cnf() {
        let d = parse_my_cnf(
            "[mysqld]\nuser=nope\n[client]\nuser = exporter\npassword=\"s3cret\"\nhost=127.0.0.1\nport=13306\n",
        )
        .unwrap();
        assert_eq!(
            (d.user.as_str(), d.password.as_str(), d.host.as_str(), d.port),
            ("exporter", "s3cret", "127.0.0.1", 13306)
        );
        assert!(parse_my_cnf("[client]\npassword=x\n").is_err());
        assert!(parse_my_cnf("[client]\nuser=u\nport=x\n").is_err());
    }

    #[test]
    fn values() {
        let cases: &[(&str, Option<f64>)] = &[
            ("ON", Some(1.0)),
            ("off", Some(0.0)),
            ("Primary", Some(1.0)),
            ("12.5", Some(12.5)),
            ("Jan 02 00:00:01 1970 GMT", Some(86401.0)),
            ("1970-01-02 00:00:01", Some(86401.0)),
            ("REPEATABLE-READ", None),
            ("", None),
            ("inf", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_value(input), *want, "{input:?}");
        }
    }

    #[test]
    fn status_and_variables() {
        let rows =
            |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let mut builder = Builder::new("mysql");
        add_global_status(
            &mut builder,
            &rows(&[
                ("Com_select", "4"),
                ("Handler_read_rnd", "2"),
                ("Innodb_buffer_pool_pages_data", "305"),
                ("Innodb_buffer_pool_pages_dirty", "1"),
                ("Innodb_buffer_pool_pages_flushed", "7"),
                ("Innodb_buffer_pool_pages_total", "9"),
                ("Uptime", "100"),
                ("Innodb_have_lz4", "OFF"),
                ("Rpl_status", "AUTH_MASTER"),
            ]),
        );
        add_global_variables(
            &mut builder,
            &rows(&[
                ("max_connections", "151"),
                ("version", "10.11"),
                ("tx_isolation", "REPEATABLE-READ"),
                ("version_comment", "Debian 12"),
            ]),
        );
        let mut text = String::new();
        write_text(&mut text, &builder.finish());
        for line in [
            "mysql_global_status_commands_total{command=\"select\"} 4",
            "mysql_global_status_handlers_total{handler=\"read_rnd\"} 2",
            "mysql_global_status_buffer_pool_pages{state=\"data\"} 305",
            "mysql_global_status_buffer_pool_dirty_pages 1",
            "mysql_global_status_buffer_pool_page_changes_total{operation=\"flushed\"} 7",
            "# TYPE mysql_global_status_uptime untyped",
            "mysql_global_status_innodb_have_lz4 0",
            "mysql_global_variables_max_connections 151",
            "mysql_version_info{innodb_version=\"\",version=\"10.11\",version_comment=\"Debian 12\"} 1",
            "mysql_transaction_isolation{level=\"REPEATABLE-READ\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("rpl_status") && !text.contains("pages_total"), "{text}");
    }

    proptest::proptest! {
        #[test]
        fn no_panic(input in "\\PC{0,60}") {
            let _ = parse_dsn(&input);
            let _ = parse_my_cnf(&input);
            let _ = parse_value(&input);
        }
    }
}
