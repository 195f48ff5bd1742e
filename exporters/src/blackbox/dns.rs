//! The `dns` prober: one query over UDP or TCP (RFC 1035 wire format), answer checks as
//! blackbox_exporter 0.23 does them (`valid_rcodes`, `validate_*_rrs` regexes over the
//! records' text form), and its `probe_dns_*` metrics.

use std::time::Instant;

use serde_yaml_ng::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{regexes, resolve, Module};
use crate::builder::Builder;
use sextant_model::exposition::MetricType;

/// Regex checks on one section of the answer.
#[derive(Debug, Clone, Default)]
pub(super) struct RrChecks {
    fail_if_matches: Vec<regex::Regex>,
    fail_if_all_match: Vec<regex::Regex>,
    fail_if_not_matches: Vec<regex::Regex>,
    fail_if_none_matches: Vec<regex::Regex>,
}

/// The `dns:` section of a module.
#[derive(Debug, Clone, Default)]
pub(super) struct DnsModule {
    query_name: String,
    query_type: u16,
    tcp: bool,
    recursion_desired: bool,
    valid_rcodes: Vec<u16>,
    answer: RrChecks,
    authority: RrChecks,
    additional: RrChecks,
}

const TYPES: &[(&str, u16)] = &[
    ("A", 1),
    ("NS", 2),
    ("CNAME", 5),
    ("SOA", 6),
    ("PTR", 12),
    ("MX", 15),
    ("TXT", 16),
    ("AAAA", 28),
    ("SRV", 33),
    ("ANY", 255),
];

const RCODES: &[&str] =
    &["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH"];

fn checks(value: Option<&Value>, what: &str) -> Result<RrChecks, String> {
    let get = |key: &str| value.and_then(|v| v.get(key));
    Ok(RrChecks {
        fail_if_matches: regexes(get("fail_if_matches_regexp"), what)?,
        fail_if_all_match: regexes(get("fail_if_all_match_regexp"), what)?,
        fail_if_not_matches: regexes(get("fail_if_not_matches_regexp"), what)?,
        fail_if_none_matches: regexes(get("fail_if_none_matches_regexp"), what)?,
    })
}

impl DnsModule {
    pub(super) fn parse(section: Option<&Value>, name: &str) -> Result<DnsModule, String> {
        let get = |key: &str| section.and_then(|s| s.get(key));
        let query_name = get("query_name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{name}: query name must be set for DNS module"))?;
        let type_name = get("query_type").and_then(Value::as_str).unwrap_or("ANY").to_ascii_uppercase();
        let query_type = TYPES
            .iter()
            .find(|(n, _)| *n == type_name)
            .map(|(_, t)| *t)
            .ok_or_else(|| format!("{name}: query type {type_name:?} is not supported"))?;
        let tcp = match get("transport_protocol").and_then(Value::as_str).unwrap_or("udp") {
            "udp" => false,
            "tcp" => true,
            other => return Err(format!("{name}: transport protocol {other:?} is not supported")),
        };
        let valid_rcodes = match get("valid_rcodes").and_then(Value::as_sequence) {
            Some(codes) => codes
                .iter()
                .map(|c| {
                    let text = c.as_str().unwrap_or("");
                    RCODES
                        .iter()
                        .position(|r| *r == text)
                        .map(|p| p as u16)
                        .ok_or_else(|| format!("{name}: invalid rcode {text:?}"))
                })
                .collect::<Result<Vec<u16>, String>>()?,
            None => vec![0],
        };
        Ok(DnsModule {
            query_name: query_name.to_string(),
            query_type,
            tcp,
            recursion_desired: get("recursion_desired").and_then(Value::as_bool).unwrap_or(true),
            valid_rcodes,
            answer: checks(get("validate_answer_rrs"), name)?,
            authority: checks(get("validate_authority_rrs"), name)?,
            additional: checks(get("validate_additional_rrs"), name)?,
        })
    }
}

/// The query message (id, flags, one question).
fn query(id: u16, name: &str, query_type: u16, recursion_desired: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + name.len());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(if recursion_desired { 0x0100u16 } else { 0 }).to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        out.push(label.len().min(63) as u8);
        out.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    out.push(0);
    out.extend_from_slice(&query_type.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes()); // IN
    out
}

/// A response: rcode and the text form of each section's records.
#[derive(Debug, PartialEq)]
struct Response {
    id: u16,
    rcode: u16,
    answer: Vec<String>,
    authority: Vec<String>,
    additional: Vec<String>,
    soa_serial: Option<u32>,
}

/// A (possibly compressed) name at `pos`; the position after it in the record.
fn read_name(message: &[u8], mut pos: usize) -> Option<(String, usize)> {
    let mut labels: Vec<String> = Vec::new();
    let mut end = None;
    for _ in 0..128 {
        let len = *message.get(pos)? as usize;
        if len == 0 {
            end.get_or_insert(pos + 1);
            let mut name = labels.join(".");
            name.push('.');
            return Some((name, end?));
        }
        if len & 0xc0 == 0xc0 {
            let target = ((len & 0x3f) << 8) | *message.get(pos + 1)? as usize;
            end.get_or_insert(pos + 2);
            pos = target;
            continue;
        }
        let label = message.get(pos + 1..pos + 1 + len)?;
        labels.push(String::from_utf8_lossy(label).into_owned());
        pos += 1 + len;
    }
    None
}

/// Records in miekg/dns' text form: `name\tttl\tIN\tTYPE\tdata`.
fn read_records(message: &[u8], mut pos: usize, count: u16, soa: &mut Option<u32>) -> Option<(Vec<String>, usize)> {
    let mut out = Vec::new();
    for _ in 0..count {
        let (name, after) = read_name(message, pos)?;
        let fixed = message.get(after..after + 10)?;
        let rr_type = u16::from_be_bytes([fixed[0], fixed[1]]);
        let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let len = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
        let data_at = after + 10;
        let data = message.get(data_at..data_at + len)?;
        let type_name =
            TYPES.iter().find(|(_, t)| *t == rr_type).map_or_else(|| format!("TYPE{rr_type}"), |(n, _)| n.to_string());
        let text = match rr_type {
            1 if len == 4 => format!("{}.{}.{}.{}", data[0], data[1], data[2], data[3]),
            28 if len == 16 => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(data);
                std::net::Ipv6Addr::from(octets).to_string()
            }
            2 | 5 | 12 => read_name(message, data_at)?.0,
            15 if len >= 2 => {
                format!("{} {}", u16::from_be_bytes([data[0], data[1]]), read_name(message, data_at + 2)?.0)
            }
            6 => {
                let (mname, next) = read_name(message, data_at)?;
                let (rname, next) = read_name(message, next)?;
                let numbers = message.get(next..next + 20)?;
                let field = |i: usize| {
                    u32::from_be_bytes([numbers[i * 4], numbers[i * 4 + 1], numbers[i * 4 + 2], numbers[i * 4 + 3]])
                };
                soa.get_or_insert(field(0));
                format!("{mname} {rname} {} {} {} {} {}", field(0), field(1), field(2), field(3), field(4))
            }
            16 => {
                let mut parts = Vec::new();
                let mut rest = data;
                while let Some((&n, tail)) = rest.split_first() {
                    let n = (n as usize).min(tail.len());
                    parts.push(format!("\"{}\"", String::from_utf8_lossy(&tail[..n])));
                    rest = &tail[n..];
                }
                parts.join(" ")
            }
            _ => data.iter().map(|b| format!("{b:02x}")).collect(),
        };
        out.push(format!("{name}\t{ttl}\tIN\t{type_name}\t{text}"));
        pos = data_at + len;
    }
    Some((out, pos))
}

fn parse_response(message: &[u8]) -> Option<Response> {
    let header = message.get(..12)?;
    let field = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
    let (qd, an, ns, ar) = (field(4), field(6), field(8), field(10));
    let mut pos = 12;
    for _ in 0..qd {
        pos = read_name(message, pos)?.1 + 4;
    }
    let mut soa_serial = None;
    let (answer, pos) = read_records(message, pos, an, &mut soa_serial)?;
    let (authority, pos) = read_records(message, pos, ns, &mut None)?;
    let (additional, _) = read_records(message, pos, ar, &mut None)?;
    Some(Response { id: field(0), rcode: field(2) & 0x000f, answer, authority, additional, soa_serial })
}

/// blackbox_exporter's `validRRs`: false when a check fails.
fn valid_records(records: &[String], checks: &RrChecks) -> bool {
    if checks.fail_if_matches.iter().any(|re| records.iter().any(|r| re.is_match(r))) {
        return false;
    }
    if checks.fail_if_all_match.iter().any(|re| records.iter().all(|r| re.is_match(r))) {
        return false;
    }
    if checks.fail_if_not_matches.iter().any(|re| records.iter().any(|r| !re.is_match(r))) {
        return false;
    }
    if checks.fail_if_none_matches.iter().any(|re| !records.iter().any(|r| re.is_match(r))) {
        return false;
    }
    true
}

async fn exchange(
    addr: std::net::SocketAddr,
    message: &[u8],
    tcp: bool,
    builder_phases: &mut [f64; 2],
) -> Result<Vec<u8>, String> {
    let connect_start = Instant::now();
    if tcp {
        let mut stream =
            tokio::net::TcpStream::connect(addr).await.map_err(|e| format!("connecting to {addr}: {e}"))?;
        builder_phases[0] = connect_start.elapsed().as_secs_f64();
        let request_start = Instant::now();
        let mut framed = (message.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(message);
        stream.write_all(&framed).await.map_err(|e| e.to_string())?;
        let len = stream.read_u16().await.map_err(|e| e.to_string())? as usize;
        let mut response = vec![0u8; len];
        stream.read_exact(&mut response).await.map_err(|e| e.to_string())?;
        builder_phases[1] = request_start.elapsed().as_secs_f64();
        Ok(response)
    } else {
        let bind: std::net::SocketAddr =
            if addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { (std::net::Ipv6Addr::UNSPECIFIED, 0).into() };
        let socket = tokio::net::UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
        socket.connect(addr).await.map_err(|e| format!("connecting to {addr}: {e}"))?;
        builder_phases[0] = connect_start.elapsed().as_secs_f64();
        let request_start = Instant::now();
        socket.send(message).await.map_err(|e| e.to_string())?;
        let mut response = vec![0u8; 65535];
        let n = socket.recv(&mut response).await.map_err(|e| e.to_string())?;
        response.truncate(n);
        builder_phases[1] = request_start.elapsed().as_secs_f64();
        Ok(response)
    }
}

pub(super) async fn probe_dns(builder: &mut Builder, module: &Module, target: &str) -> bool {
    let dns = &module.dns;
    let gauge = MetricType::Gauge;
    let mut phases = [0.0f64; 3]; // resolve, connect, request
    let mut counts = (0.0, 0.0, 0.0);
    let mut succeeded = false;
    let mut serial = None;
    let success = async {
        let (host, port) = match target.rsplit_once(':').filter(|(h, p)| !h.ends_with(':') && p.parse::<u16>().is_ok())
        {
            Some((host, port)) => (host, port.parse().unwrap_or(53)),
            None => (target, 53),
        };
        let resolve_start = Instant::now();
        let addr = resolve(builder, host, port, module).await?;
        phases[0] = resolve_start.elapsed().as_secs_f64();
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let id = (std::process::id() as u16) ^ (nanos as u16) ^ ((nanos >> 16) as u16);
        let message = query(id, &dns.query_name, dns.query_type, dns.recursion_desired);
        let mut timing = [0.0; 2];
        let raw = exchange(addr, &message, dns.tcp, &mut timing).await;
        phases[1] = timing[0];
        phases[2] = timing[1];
        let raw = raw?;
        let response = parse_response(&raw).ok_or("malformed DNS response")?;
        if response.id != id {
            return Err("DNS response with another id".to_string());
        }
        succeeded = true;
        counts = (response.answer.len() as f64, response.authority.len() as f64, response.additional.len() as f64);
        serial = response.soa_serial;
        if !dns.valid_rcodes.contains(&response.rcode) {
            return Err(format!("rcode {} is not valid", RCODES.get(response.rcode as usize).unwrap_or(&"?")));
        }
        Ok(valid_records(&response.answer, &dns.answer)
            && valid_records(&response.authority, &dns.authority)
            && valid_records(&response.additional, &dns.additional))
    }
    .await;
    let help = "Duration of DNS request by phase";
    for (phase, seconds) in ["resolve", "connect", "request"].iter().zip(phases) {
        builder.add("probe_dns_duration_seconds", help, gauge, &[("phase", phase)], seconds);
    }
    builder.add(
        "probe_dns_answer_rrs",
        "Returns number of entries in the answer resource record list",
        gauge,
        &[],
        counts.0,
    );
    builder.add(
        "probe_dns_authority_rrs",
        "Returns number of entries in the authority resource record list",
        gauge,
        &[],
        counts.1,
    );
    builder.add(
        "probe_dns_additional_rrs",
        "Returns number of entries in the additional resource record list",
        gauge,
        &[],
        counts.2,
    );
    builder.add(
        "probe_dns_query_succeeded",
        "Displays whether or not the query was executed successfully",
        gauge,
        &[],
        if succeeded { 1.0 } else { 0.0 },
    );
    if dns.query_type == 6 {
        builder.add(
            "probe_dns_serial",
            "Returns the serial number of the zone",
            gauge,
            &[],
            serial.unwrap_or(0) as f64,
        );
    }
    match success {
        Ok(ok) => ok,
        Err(message) => {
            eprintln!("blackbox: dns {target}: {message}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_response() {
        let q = query(0x1234, "sextant.test.", 1, true);
        assert_eq!(&q[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert_eq!(&q[12..], b"\x07sextant\x04test\x00\x00\x01\x00\x01");
        // The query turned into a response with one compressed A answer.
        let mut response = q.clone();
        response[2] = 0x81;
        response[3] = 0x80;
        response[7] = 1;
        response.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
        let parsed = parse_response(&response).unwrap();
        assert_eq!(parsed.id, 0x1234);
        assert_eq!(parsed.rcode, 0);
        assert_eq!(parsed.answer, vec!["sextant.test.\t60\tIN\tA\t127.0.0.1".to_string()]);
        assert!(parse_response(&response[..response.len() - 1]).is_none());
    }

    proptest::proptest! {
        #[test]
        fn response_parser_never_panics(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = parse_response(&input);
        }
    }
}
