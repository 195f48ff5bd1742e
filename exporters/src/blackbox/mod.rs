//! A blackbox exporter compatible with blackbox_exporter 0.23's `/probe?module=&target=` for
//! the `http` (HTTP and HTTPS), `tcp` (optionally TLS), `dns` (UDP or TCP) and `icmp` (ICMP
//! over IPv4, ICMPv6 over IPv6; raw socket) probers,
//! with modules from a `blackbox.yml` in its format and its `probe_*` metric names.

mod dns;
mod icmp;
mod tls;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_yaml_ng::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::builder::Builder;
use crate::flags::{self, flag_error};
use crate::Error;
use sextant_model::exposition::MetricType;

/// One module of `blackbox.yml`.
#[derive(Debug, Clone)]
struct Module {
    prober: String,
    timeout: Option<Duration>,
    ip4: bool,
    /// `ip_protocol_fallback` (default true): use the other IP version when the preferred one
    /// has no address.
    ip_fallback: bool,
    http: HttpModule,
    tcp: Vec<(Option<regex::Regex>, Option<String>)>,
    /// `tcp.tls`: a TLS handshake after connecting.
    tcp_tls: bool,
    /// `http.tls_config` or `tcp.tls_config`.
    tls: crate::tls::TlsSettings,
    dns: dns::DnsModule,
}

#[derive(Debug, Clone, Default)]
struct HttpModule {
    method: String,
    headers: Vec<(String, String)>,
    body: String,
    valid_status_codes: Vec<u16>,
    no_follow_redirects: bool,
    fail_if_ssl: bool,
    fail_if_not_ssl: bool,
    body_matches: Vec<regex::Regex>,
    body_not_matches: Vec<regex::Regex>,
    header_matches: Vec<(String, regex::Regex, bool)>,
    header_not_matches: Vec<(String, regex::Regex, bool)>,
}

fn regexes(value: Option<&Value>, what: &str) -> Result<Vec<regex::Regex>, String> {
    let Some(list) = value.and_then(Value::as_sequence) else { return Ok(Vec::new()) };
    list.iter()
        .map(|v| {
            let text = v.as_str().ok_or_else(|| format!("{what}: expected strings"))?;
            regex::Regex::new(text).map_err(|e| format!("{what}: {e}"))
        })
        .collect()
}

fn header_rules(value: Option<&Value>, what: &str) -> Result<Vec<(String, regex::Regex, bool)>, String> {
    let Some(list) = value.and_then(Value::as_sequence) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for rule in list {
        let header = rule.get("header").and_then(Value::as_str).ok_or_else(|| format!("{what}: missing header"))?;
        let pattern = rule.get("regexp").and_then(Value::as_str).ok_or_else(|| format!("{what}: missing regexp"))?;
        let allow_missing = rule.get("allow_missing").and_then(Value::as_bool).unwrap_or(false);
        let re = regex::Regex::new(pattern).map_err(|e| format!("{what}: {e}"))?;
        out.push((header.to_ascii_lowercase(), re, allow_missing));
    }
    Ok(out)
}

fn parse_modules(text: &str) -> Result<BTreeMap<String, Module>, String> {
    let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    let modules = doc.get("modules").and_then(Value::as_mapping).ok_or("missing modules")?;
    let mut out = BTreeMap::new();
    for (name, def) in modules {
        let name = name.as_str().ok_or("module names must be strings")?.to_string();
        let prober = def.get("prober").and_then(Value::as_str).ok_or_else(|| format!("{name}: missing prober"))?;
        if !["http", "tcp", "icmp", "dns", "grpc"].contains(&prober) {
            return Err(format!("{name}: unknown prober {prober:?}"));
        }
        let timeout = match def.get("timeout").and_then(Value::as_str) {
            Some(t) => Some(flags::duration(&name, t).map_err(|e| e.to_string())?),
            None => None,
        };
        let section = def.get(prober);
        let ip4 = section.and_then(|s| s.get("preferred_ip_protocol")).and_then(Value::as_str) == Some("ip4");
        let ip_fallback = section.and_then(|s| s.get("ip_protocol_fallback")).and_then(Value::as_bool).unwrap_or(true);
        let mut module = Module {
            prober: prober.to_string(),
            timeout,
            ip4,
            ip_fallback,
            http: HttpModule::default(),
            tcp: Vec::new(),
            tcp_tls: section.and_then(|s| s.get("tls")).and_then(Value::as_bool).unwrap_or(false),
            tls: tls::parse_settings(section.and_then(|s| s.get("tls_config"))),
            dns: dns::DnsModule::default(),
        };
        if prober == "dns" {
            module.dns = dns::DnsModule::parse(section, &name)?;
        }
        if prober == "http" {
            let get = |key: &str| section.and_then(|s| s.get(key));
            let http = &mut module.http;
            http.method = get("method").and_then(Value::as_str).unwrap_or("GET").to_string();
            http.body = get("body").and_then(Value::as_str).unwrap_or("").to_string();
            if let Some(headers) = get("headers").and_then(Value::as_mapping) {
                for (k, v) in headers {
                    if let (Some(k), Some(v)) = (k.as_str(), v.as_str()) {
                        http.headers.push((k.to_string(), v.to_string()));
                    }
                }
            }
            if let Some(codes) = get("valid_status_codes").and_then(Value::as_sequence) {
                http.valid_status_codes = codes.iter().filter_map(|c| c.as_u64()).map(|c| c as u16).collect();
            }
            http.no_follow_redirects = get("no_follow_redirects").and_then(Value::as_bool).unwrap_or(false);
            http.fail_if_ssl = get("fail_if_ssl").and_then(Value::as_bool).unwrap_or(false);
            http.fail_if_not_ssl = get("fail_if_not_ssl").and_then(Value::as_bool).unwrap_or(false);
            http.body_matches = regexes(get("fail_if_body_matches_regexp"), &name)?;
            http.body_not_matches = regexes(get("fail_if_body_not_matches_regexp"), &name)?;
            http.header_matches = header_rules(get("fail_if_header_matches"), &name)?;
            http.header_not_matches = header_rules(get("fail_if_header_not_matches"), &name)?;
        }
        if prober == "tcp" {
            if let Some(steps) = section.and_then(|s| s.get("query_response")).and_then(Value::as_sequence) {
                for step in steps {
                    let expect = match step.get("expect").and_then(Value::as_str) {
                        Some(p) => Some(regex::Regex::new(p).map_err(|e| format!("{name}: {e}"))?),
                        None => None,
                    };
                    let send = step.get("send").and_then(Value::as_str).map(str::to_string);
                    module.tcp.push((expect, send));
                }
            }
        }
        out.insert(name, module);
    }
    Ok(out)
}

/// Settings of the blackbox exporter, from blackbox_exporter's flags.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BlackboxConfig {
    /// `--web.listen-address`, default `:9115`.
    pub listen_address: String,
    /// `--config.file`, default `blackbox.yml`.
    pub config_file: String,
    modules: BTreeMap<String, Module>,
}

impl BlackboxConfig {
    /// Parses blackbox_exporter's flags (`--config.file`, `--web.listen-address`; single dash
    /// too) and reads the modules file.
    pub fn from_args<I, S>(args: I) -> Result<BlackboxConfig, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let args: Vec<String> = args.into_iter().map(Into::into).collect();
        let mut config = BlackboxConfig {
            listen_address: ":9115".into(),
            config_file: "blackbox.yml".into(),
            modules: BTreeMap::new(),
        };
        let values = [
            "web.listen-address",
            "config.file",
            "web.route-prefix",
            "web.external-url",
            "log.level",
            "log.format",
            "timeout-offset",
            "history.limit",
            "web.config.file",
        ];
        for (name, value) in flags::parse(&args, &["config.check", "version", "log.prober"], &values)? {
            match name.as_str() {
                "web.listen-address" => config.listen_address = value,
                "config.file" => config.config_file = value,
                "web.config.file" => {
                    return Err(flag_error(&name, "--web.config.file is read by the HTTP server (`sextant exporter` takes it off first), not by the exporter's flags"))
                }
                _ => {}
            }
        }
        let text = std::fs::read_to_string(&config.config_file).map_err(|e| Error::io(&config.config_file, e))?;
        config.modules = parse_modules(&text).map_err(|m| Error::parse(&config.config_file, 0, m))?;
        Ok(config)
    }

    /// A description of the accepted flags, for `--help`.
    pub fn usage() -> String {
        "usage: sextant exporter blackbox --config.file=blackbox.yml [--web.listen-address=:9115]\n\
         \n  GET /probe?module=NAME&target=TARGET; probers: http (HTTP, HTTPS), tcp (optionally TLS), dns, icmp\n"
            .to_string()
    }
}

/// The blackbox exporter: probes a target per `/probe` request.
#[derive(Debug, Clone)]
pub struct BlackboxExporter {
    config: Arc<BlackboxConfig>,
}

fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| (h ^ *b as u32).wrapping_mul(0x0100_0193))
}

/// Resolves `host` (preferring IPv4 when `ip4`), adding the resolution metrics.
async fn resolve(builder: &mut Builder, host: &str, port: u16, module: &Module) -> Result<SocketAddr, String> {
    let start = Instant::now();
    let chosen = choose_address(host, port, module).await;
    builder.add(
        "probe_dns_lookup_time_seconds",
        "Returns the time taken for probe dns lookup in seconds",
        MetricType::Gauge,
        &[],
        if chosen.is_ok() { start.elapsed().as_secs_f64() } else { 0.0 },
    );
    // As blackbox_exporter does, both gauges are there (0) when resolution fails.
    let (protocol, hash) = match &chosen {
        Ok(addr) => match addr.ip() {
            IpAddr::V4(v4) => (4.0, fnv32a(&v4.octets())),
            IpAddr::V6(v6) => (6.0, fnv32a(&v6.octets())),
        },
        Err(_) => (0.0, 0),
    };
    builder.add(
        "probe_ip_protocol",
        "Specifies whether probe ip protocol is IP4 or IP6",
        MetricType::Gauge,
        &[],
        protocol,
    );
    builder.add(
        "probe_ip_addr_hash",
        "Specifies the hash of IP address. It's useful to detect if the IP address changes.",
        MetricType::Gauge,
        &[],
        hash as f64,
    );
    chosen
}

/// The address to probe: one of the preferred IP version, else (with `ip_protocol_fallback`)
/// any.
async fn choose_address(host: &str, port: u16, module: &Module) -> Result<SocketAddr, String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port)).await.map_err(|e| format!("resolving {host}: {e}"))?.collect(),
    };
    match addrs.iter().find(|a| a.is_ipv4() == module.ip4) {
        Some(addr) => Ok(*addr),
        None if module.ip_fallback => addrs.first().copied().ok_or_else(|| format!("no address for {host}")),
        None => Err(format!("no {} address for {host}", if module.ip4 { "IPv4" } else { "IPv6" })),
    }
}

struct Url {
    https: bool,
    host: String,
    port: u16,
    path: String,
}

fn parse_url(target: &str) -> Result<Url, String> {
    let (https, rest) = if let Some(rest) = target.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = target.strip_prefix("http://") {
        (false, rest)
    } else if target.contains("://") {
        return Err(format!("unsupported scheme in {target}"));
    } else {
        (false, target)
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(idx) => (&rest[..idx], &rest[idx..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') { format!("/{path}") } else { path.to_string() };
    let (host, port) = match authority.rsplit_once(':').filter(|(_, p)| p.parse::<u16>().is_ok()) {
        Some((host, port)) => (host.to_string(), port.parse().unwrap_or(80)),
        None => (authority.to_string(), if https { 443 } else { 80 }),
    };
    if host.is_empty() {
        return Err(format!("no host in {target}"));
    }
    Ok(Url { https, host, port, path })
}

/// A connection a prober talks over: plain TCP or TLS.
trait ProbeStream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> ProbeStream for T {}

/// A parsed response.
struct HttpResponse {
    version: f64,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

const MAX_BODY: usize = 16 << 20;

fn dechunk(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16) else { break };
        rest = &rest[eol + 2..];
        if size == 0 || size > rest.len() {
            out.extend_from_slice(&rest[..size.min(rest.len())]);
            break;
        }
        out.extend_from_slice(&rest[..size]);
        rest = rest.get(size + 2..).unwrap_or(&[]);
    }
    out
}

/// Last-Modified (`Sun, 06 Nov 1994 08:49:37 GMT`) as Unix seconds.
fn http_date(text: &str) -> Option<f64> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() != 6 {
        return None;
    }
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = months.iter().position(|m| *m == fields[2])? as i64 + 1;
    let day: i64 = fields[1].parse().ok()?;
    let year: i64 = fields[3].parse().ok()?;
    let mut hms = fields[4].split(':').map(|p| p.parse::<i64>().ok());
    let secs = hms.next()?? * 3600 + hms.next()?? * 60 + hms.next()??;
    Some((crate::builder::days_from_civil(year, month, day) * 86400 + secs) as f64)
}

async fn probe_http(builder: &mut Builder, module: &Module, target: &str) -> bool {
    let http = &module.http;
    let mut phases: BTreeMap<&str, f64> =
        ["connect", "processing", "resolve", "tls", "transfer"].into_iter().map(|p| (p, 0.0)).collect();
    let mut status = 0u16;
    let mut version = 0.0;
    let mut content_length = 0.0;
    let mut body_length = 0.0;
    let mut redirects = 0.0;
    let mut regex_failed = false;
    let mut last_modified = None;
    let mut success = false;
    let mut url = match parse_url(target) {
        Ok(url) => Some(url),
        Err(message) => {
            eprintln!("blackbox: {message}");
            None
        }
    };
    let mut first = true;
    let mut final_tls: Option<tls::TlsFacts> = None;
    let mut ssl = false;
    while let Some(current) = url.take() {
        let start = Instant::now();
        let addr = if first {
            match resolve(builder, &current.host, current.port, module).await {
                Ok(addr) => addr,
                Err(message) => {
                    eprintln!("blackbox: {message}");
                    break;
                }
            }
        } else {
            let mut scratch = Builder::new("");
            match resolve(&mut scratch, &current.host, current.port, module).await {
                Ok(addr) => addr,
                Err(_) => break,
            }
        };
        first = false;
        *phases.entry("resolve").or_default() += start.elapsed().as_secs_f64();
        let connect_start = Instant::now();
        let tcp = match tokio::net::TcpStream::connect(addr).await {
            Ok(stream) => stream,
            Err(err) => {
                eprintln!("blackbox: connecting to {addr}: {err}");
                break;
            }
        };
        *phases.entry("connect").or_default() += connect_start.elapsed().as_secs_f64();
        let mut stream: Box<dyn ProbeStream> = if current.https {
            let tls_start = Instant::now();
            match tls::connect(tcp, &current.host, &module.tls).await {
                Ok((stream, facts)) => {
                    *phases.entry("tls").or_default() += tls_start.elapsed().as_secs_f64();
                    final_tls = Some(facts);
                    Box::new(stream)
                }
                Err(message) => {
                    eprintln!("blackbox: {message}");
                    break;
                }
            }
        } else {
            final_tls = None;
            Box::new(tcp)
        };
        ssl = current.https;
        let default_port = if current.https { 443 } else { 80 };
        let host_header = if current.port == default_port {
            current.host.clone()
        } else {
            format!("{}:{}", current.host, current.port)
        };
        let mut request = format!("{} {} HTTP/1.1\r\nHost: {host_header}\r\n", http.method, current.path);
        let has = |name: &str| http.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
        if !has("user-agent") {
            request.push_str("User-Agent: Go-http-client/1.1\r\n");
        }
        for (k, v) in &http.headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        if !http.body.is_empty() {
            request.push_str(&format!("Content-Length: {}\r\n", http.body.len()));
        }
        request.push_str("Connection: close\r\n\r\n");
        request.push_str(&http.body);
        let processing_start = Instant::now();
        if let Err(err) = stream.write_all(request.as_bytes()).await {
            eprintln!("blackbox: writing to {addr}: {err}");
            break;
        }
        let mut raw = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        let mut transfer_start = None;
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    if transfer_start.is_none() {
                        transfer_start = Some(Instant::now());
                        *phases.entry("processing").or_default() += processing_start.elapsed().as_secs_f64();
                    }
                    raw.extend_from_slice(&buf[..n]);
                    if raw.len() > MAX_BODY {
                        break;
                    }
                }
                Err(err) => {
                    eprintln!("blackbox: reading from {addr}: {err}");
                    break;
                }
            }
        }
        if let Some(t) = transfer_start {
            *phases.entry("transfer").or_default() += t.elapsed().as_secs_f64();
        }
        let Some(response) = parse_response(&raw) else {
            eprintln!("blackbox: {addr}: malformed HTTP response");
            break;
        };
        let location = response.headers.iter().find(|(k, _)| k == "location").map(|(_, v)| v.clone());
        if (300..400).contains(&response.status) && !http.no_follow_redirects && redirects < 10.0 {
            if let Some(location) = location {
                redirects += 1.0;
                url = if location.starts_with('/') {
                    Some(Url { path: location, ..current })
                } else {
                    parse_url(&location).ok()
                };
                continue;
            }
        }
        status = response.status;
        version = response.version;
        content_length = response
            .headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse::<f64>().ok())
            .unwrap_or(-1.0);
        body_length = response.body.len() as f64;
        last_modified = response.headers.iter().find(|(k, _)| k == "last-modified").and_then(|(_, v)| http_date(v));
        let valid = if http.valid_status_codes.is_empty() {
            (200..300).contains(&status)
        } else {
            http.valid_status_codes.contains(&status)
        };
        let ssl_ok = if ssl { !http.fail_if_ssl } else { !http.fail_if_not_ssl };
        success = valid && ssl_ok;
        if success {
            let body = String::from_utf8_lossy(&response.body);
            if http.body_matches.iter().any(|re| re.is_match(&body))
                || http.body_not_matches.iter().any(|re| !re.is_match(&body))
            {
                regex_failed = true;
            }
            for (name, re, allow_missing) in &http.header_matches {
                let values: Vec<&str> =
                    response.headers.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect();
                if (values.is_empty() && !allow_missing) || values.iter().any(|v| re.is_match(v)) {
                    regex_failed = true;
                }
            }
            for (name, re, allow_missing) in &http.header_not_matches {
                let values: Vec<&str> =
                    response.headers.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect();
                if (values.is_empty() && !allow_missing)
                    || (!values.is_empty() && !values.iter().any(|v| re.is_match(v)))
                {
                    regex_failed = true;
                }
            }
            success = !regex_failed;
        }
    }
    let gauge = MetricType::Gauge;
    for (phase, seconds) in &phases {
        builder.add(
            "probe_http_duration_seconds",
            "Duration of http request by phase, summed over all redirects",
            gauge,
            &[("phase", phase)],
            *seconds,
        );
    }
    builder.add("probe_http_status_code", "Response HTTP status code", gauge, &[], status as f64);
    builder.add("probe_http_version", "Returns the version of HTTP of the probe response", gauge, &[], version);
    builder.add(
        "probe_http_content_length",
        "Length of http content response",
        gauge,
        &[],
        content_length.max(if status == 0 { 0.0 } else { -1.0 }),
    );
    builder.add("probe_http_uncompressed_body_length", "Length of uncompressed response body", gauge, &[], body_length);
    builder.add("probe_http_redirects", "The number of redirects", gauge, &[], redirects);
    builder.add(
        "probe_http_ssl",
        "Indicates if SSL was used for the final redirect",
        gauge,
        &[],
        if ssl && status != 0 { 1.0 } else { 0.0 },
    );
    if let (Some(facts), true) = (&final_tls, status != 0) {
        tls::add_metrics(builder, facts);
    }
    builder.add(
        "probe_failed_due_to_regex",
        "Indicates if probe failed due to regex",
        gauge,
        &[],
        if regex_failed { 1.0 } else { 0.0 },
    );
    if let Some(ts) = last_modified {
        builder.add(
            "probe_http_last_modified_timestamp_seconds",
            "Returns the Last-Modified HTTP response header in unixtime",
            gauge,
            &[],
            ts,
        );
    }
    success
}

fn parse_response(raw: &[u8]) -> Option<HttpResponse> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    let proto = parts.next()?.strip_prefix("HTTP/")?;
    let version: f64 = proto.parse().ok()?;
    let status: u16 = parts.next()?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers.iter().any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body);
    } else if let Some(len) =
        headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(len);
    }
    Some(HttpResponse { version, status, headers, body })
}

async fn probe_tcp(builder: &mut Builder, module: &Module, target: &str) -> bool {
    let mut regex_failed = false;
    let success = async {
        let (host, port) = target.rsplit_once(':').ok_or_else(|| format!("{target}: expected host:port"))?;
        let port: u16 = port.parse().map_err(|_| format!("{target}: bad port"))?;
        let addr = resolve(builder, host, port, module).await?;
        let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connecting to {addr}: {e}"))?;
        let mut stream: Box<dyn ProbeStream> = if module.tcp_tls {
            let (stream, facts) = tls::connect(tcp, host, &module.tls).await?;
            tls::add_metrics(builder, &facts);
            Box::new(stream)
        } else {
            Box::new(tcp)
        };
        let mut received = Vec::new();
        for (expect, send) in &module.tcp {
            if let Some(re) = expect {
                let mut buf = vec![0u8; 4096];
                loop {
                    if re.is_match(&String::from_utf8_lossy(&received)) {
                        break;
                    }
                    let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
                    if n == 0 || received.len() > MAX_BODY {
                        regex_failed = true;
                        return Err(format!("{target}: expected {:?} not received", re.as_str()));
                    }
                    received.extend_from_slice(&buf[..n]);
                }
                received.clear();
            }
            if let Some(send) = send {
                stream.write_all(format!("{send}\n").as_bytes()).await.map_err(|e| e.to_string())?;
            }
        }
        Ok::<bool, String>(true)
    }
    .await;
    builder.add(
        "probe_failed_due_to_regex",
        "Indicates if probe failed due to regex",
        MetricType::Gauge,
        &[],
        if regex_failed { 1.0 } else { 0.0 },
    );
    match success {
        Ok(ok) => ok,
        Err(message) => {
            eprintln!("blackbox: {message}");
            false
        }
    }
}

async fn probe_icmp(builder: &mut Builder, module: &Module, target: &str, timeout: Duration) -> bool {
    let start = Instant::now();
    let addr = match resolve(builder, target, 0, module).await {
        Ok(addr) => addr,
        Err(message) => {
            eprintln!("blackbox: {message}");
            return false;
        }
    };
    let help = "Duration of icmp request by phase";
    builder.add(
        "probe_icmp_duration_seconds",
        help,
        MetricType::Gauge,
        &[("phase", "resolve")],
        start.elapsed().as_secs_f64(),
    );
    let ip = addr.ip();
    match tokio::task::spawn_blocking(move || icmp::ping(ip, timeout)).await {
        Ok(Ok((setup, rtt, hop_limit))) => {
            builder.add("probe_icmp_duration_seconds", help, MetricType::Gauge, &[("phase", "setup")], setup);
            builder.add("probe_icmp_duration_seconds", help, MetricType::Gauge, &[("phase", "rtt")], rtt);
            if let Some(hop_limit) = hop_limit {
                builder.add(
                    "probe_icmp_reply_hop_limit",
                    "Replied packet hop limit (TTL for ipv4)",
                    MetricType::Gauge,
                    &[],
                    f64::from(hop_limit),
                );
            }
            true
        }
        Ok(Err(message)) => {
            eprintln!("blackbox: icmp {target}: {message}");
            builder.add("probe_icmp_duration_seconds", help, MetricType::Gauge, &[("phase", "setup")], 0.0);
            builder.add("probe_icmp_duration_seconds", help, MetricType::Gauge, &[("phase", "rtt")], 0.0);
            false
        }
        Err(_) => false,
    }
}

impl BlackboxExporter {
    /// An exporter for `config`.
    pub fn new(config: BlackboxConfig) -> BlackboxExporter {
        BlackboxExporter { config: Arc::new(config) }
    }

    /// Probes `target` with `module`: the families of one `/probe` response, or an error
    /// message for an unknown module.
    pub async fn probe(&self, module_name: &str, target: &str) -> Result<Vec<crate::MetricFamily>, String> {
        let module = self.config.modules.get(module_name).ok_or_else(|| format!("Unknown module {module_name:?}"))?;
        let mut builder = Builder::new("");
        let start = Instant::now();
        let timeout = module.timeout.unwrap_or(Duration::from_secs(10));
        let mut inner = Builder::new("");
        let work = async {
            match module.prober.as_str() {
                "http" => probe_http(&mut inner, module, target).await,
                "tcp" => probe_tcp(&mut inner, module, target).await,
                "icmp" => probe_icmp(&mut inner, module, target, timeout).await,
                "dns" => dns::probe_dns(&mut inner, module, target).await,
                other => {
                    eprintln!("blackbox: prober {other} is not implemented yet");
                    false
                }
            }
        };
        let success = match tokio::time::timeout(timeout, work).await {
            Ok(success) => success,
            Err(_) => {
                eprintln!("blackbox: probe of {target} timed out after {}s", timeout.as_secs_f64());
                false
            }
        };
        let mut families = inner.finish();
        builder.add(
            "probe_duration_seconds",
            "Returns how long the probe took to complete in seconds",
            MetricType::Gauge,
            &[],
            start.elapsed().as_secs_f64(),
        );
        builder.add(
            "probe_success",
            "Displays whether or not the probe was a success",
            MetricType::Gauge,
            &[],
            if success { 1.0 } else { 0.0 },
        );
        families.extend(builder.finish());
        Ok(families)
    }

    /// An axum router: `/probe?module=&target=` and the exporter's own `/metrics`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/probe", get(probe))
            .route("/metrics", get(own_metrics))
            .route("/", get(|| async { Html("<html><body><h1>Blackbox Exporter (sextant)</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>") }))
            .with_state(self.clone())
    }
}

async fn probe(State(exporter): State<BlackboxExporter>, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    let query = uri.query().unwrap_or("");
    let module = flags::query_param(query, "module").filter(|m| !m.is_empty()).unwrap_or_else(|| "http_2xx".into());
    let Some(target) = flags::query_param(query, "target").filter(|t| !t.is_empty()) else {
        return (StatusCode::BAD_REQUEST, "Target parameter is missing\n").into_response();
    };
    match exporter.probe(&module, &target).await {
        Ok(families) => crate::server::families_response(families, &headers),
        Err(message) => (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response(),
    }
}

async fn own_metrics(headers: HeaderMap) -> Response {
    crate::server::families_response(crate::process::collect(), &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules() {
        let text = "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n      fail_if_body_not_matches_regexp: [\"ok\"]\n  tcp_connect:\n    prober: tcp\n    tcp:\n      query_response:\n        - expect: \"^220\"\n        - send: \"QUIT\"\n";
        let modules = parse_modules(text).unwrap();
        assert_eq!(modules["http_2xx"].timeout, Some(Duration::from_secs(5)));
        assert!(modules["http_2xx"].ip4);
        assert_eq!(modules["http_2xx"].http.body_not_matches.len(), 1);
        assert_eq!(modules["tcp_connect"].tcp.len(), 2);
        assert!(parse_modules("modules:\n  x:\n    prober: carrier-pigeon\n").is_err());
        assert!(parse_modules(
            "modules:\n  x:\n    prober: http\n    http:\n      fail_if_body_matches_regexp: [\"(\"]\n"
        )
        .is_err());
        assert!(parse_modules("nothing: 1").is_err());
    }

    #[test]
    fn urls_and_responses() {
        let url = parse_url("http://127.0.0.1:8080/x?y=1").unwrap();
        assert_eq!((url.host.as_str(), url.port, url.path.as_str(), url.https), ("127.0.0.1", 8080, "/x?y=1", false));
        let url = parse_url("example.org").unwrap();
        assert_eq!((url.port, url.path.as_str()), (80, "/"));
        assert!(parse_url("ftp://x").is_err());
        let r = parse_response(
            b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\nLast-Modified: Thu, 01 Jan 1970 00:01:00 GMT\r\n\r\nhello!!",
        )
        .unwrap();
        assert_eq!((r.version, r.status, r.body.as_slice()), (1.0, 200, &b"hello"[..]));
        assert_eq!(http_date("Thu, 01 Jan 1970 00:01:00 GMT"), Some(60.0));
        let r =
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n")
                .unwrap();
        assert_eq!(r.body, b"hello!");
        assert!(parse_response(b"garbage").is_none());
        assert_eq!(fnv32a(&[127, 0, 0, 1]), 3668918509);
    }

    proptest::proptest! {
        #[test]
        fn no_panic(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = parse_response(&input);
            let _ = dechunk(&input);
            let text = String::from_utf8_lossy(&input);
            let _ = parse_url(&text);
            let _ = parse_modules(&text);
            let _ = http_date(&text);
        }
    }
}
