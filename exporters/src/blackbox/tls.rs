//! TLS for the http and tcp probers (rustls), and the certificate facts blackbox_exporter
//! reports: `probe_ssl_earliest_cert_expiry`, `probe_ssl_last_chain_expiry_timestamp_seconds`,
//! `probe_ssl_last_chain_info` and `probe_tls_version_info`.
//!
//! The certificates are read with a small DER walker: only the fields those metrics need
//! (serial, issuer, validity, subject, DNS names of the subjectAltName extension).

use rustls::pki_types::CertificateDer;
use serde_yaml_ng::Value;
use sha2::Digest as _;
use tokio::net::TcpStream;

use crate::builder::Builder;
use crate::tls::TlsSettings;
use sextant_model::exposition::MetricType;

/// `tls_config` of a module, as blackbox_exporter reads it (Prometheus' common TLS config).
pub(super) fn parse_settings(value: Option<&Value>) -> TlsSettings {
    let get = |key: &str| value.and_then(|v| v.get(key));
    let client_cert = match (get("cert_file").and_then(Value::as_str), get("key_file").and_then(Value::as_str)) {
        (Some(cert), Some(key)) => Some((cert.to_string(), key.to_string())),
        _ => None,
    };
    TlsSettings {
        insecure_skip_verify: get("insecure_skip_verify").and_then(Value::as_bool).unwrap_or(false),
        ca_file: get("ca_file").and_then(Value::as_str).map(str::to_string),
        server_name: get("server_name").and_then(Value::as_str).map(str::to_string),
        client_cert,
        skip_name_check: false,
    }
}

/// What a finished handshake tells the metrics.
pub(super) struct TlsFacts {
    version: &'static str,
    certificates: Vec<CertificateDer<'static>>,
    verified: bool,
}

/// A TLS handshake over `stream` for `host`, with the facts the metrics need.
pub(super) async fn connect(
    stream: TcpStream,
    host: &str,
    settings: &TlsSettings,
) -> Result<(tokio_rustls::client::TlsStream<TcpStream>, TlsFacts), String> {
    let tls = settings.connect(stream, host).await?;
    let (_, session) = tls.get_ref();
    let version = match session.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
        _ => "unknown",
    };
    let certificates = session.peer_certificates().map(|c| c.iter().map(|c| c.clone().into_owned()).collect());
    let facts =
        TlsFacts { version, certificates: certificates.unwrap_or_default(), verified: !settings.insecure_skip_verify };
    Ok((tls, facts))
}

/// Go's `time.Time{}.Unix()`: what blackbox_exporter reports for a chain it did not verify.
const GO_ZERO_TIME: f64 = -62_135_596_800.0;

/// Adds the certificate and version metrics of a handshake, as blackbox_exporter 0.23 does.
pub(super) fn add_metrics(builder: &mut Builder, facts: &TlsFacts) {
    let gauge = MetricType::Gauge;
    let parsed: Vec<Certificate> = facts.certificates.iter().filter_map(|der| Certificate::parse(der)).collect();
    let earliest = parsed.iter().map(|c| c.not_after).min();
    if let Some(earliest) = earliest {
        builder.add(
            "probe_ssl_earliest_cert_expiry",
            "Returns last SSL chain expiry in unixtime",
            gauge,
            &[],
            earliest as f64,
        );
    }
    // rustls does not hand out the chain it built; the presented chain stands in for it.
    let last_chain = match (facts.verified, earliest) {
        (true, Some(earliest)) => earliest as f64,
        _ => GO_ZERO_TIME,
    };
    builder.add(
        "probe_ssl_last_chain_expiry_timestamp_seconds",
        "Returns last SSL chain expiry in timestamp",
        gauge,
        &[],
        last_chain,
    );
    if let (Some(leaf), Some(der)) = (parsed.first(), facts.certificates.first()) {
        let fingerprint: String = sha2::Sha256::digest(der.as_ref()).iter().map(|b| format!("{b:02x}")).collect();
        builder.add(
            "probe_ssl_last_chain_info",
            "Contains SSL leaf certificate information",
            gauge,
            &[
                ("fingerprint_sha256", &fingerprint),
                ("subject", &leaf.subject),
                ("issuer", &leaf.issuer),
                ("subjectalternative", &leaf.dns_names.join(",")),
            ],
            1.0,
        );
    }
    builder.add(
        "probe_tls_version_info",
        "Returns the TLS version used or NaN when unknown",
        gauge,
        &[("version", facts.version)],
        1.0,
    );
}

/// The fields of an X.509 certificate the metrics use.
#[derive(Debug, PartialEq)]
struct Certificate {
    subject: String,
    issuer: String,
    /// Unix seconds.
    not_after: i64,
    dns_names: Vec<String>,
}

/// One DER element: tag, contents, and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The elements of a constructed value's contents.
fn elements(mut input: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    while let Some((tag, contents, rest)) = element(input) {
        out.push((tag, contents));
        input = rest;
    }
    out
}

/// Short names Go's `pkix.Name.String` uses for attribute types (other types as dotted OIDs).
fn attribute_name(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".into(),
        [0x55, 0x04, 0x05] => "SERIALNUMBER".into(),
        [0x55, 0x04, 0x06] => "C".into(),
        [0x55, 0x04, 0x07] => "L".into(),
        [0x55, 0x04, 0x08] => "ST".into(),
        [0x55, 0x04, 0x09] => "STREET".into(),
        [0x55, 0x04, 0x0a] => "O".into(),
        [0x55, 0x04, 0x0b] => "OU".into(),
        [0x55, 0x04, 0x11] => "POSTALCODE".into(),
        _ => dotted_oid(oid),
    }
}

fn dotted_oid(oid: &[u8]) -> String {
    let Some((&first, rest)) = oid.split_first() else { return String::new() };
    let mut parts = vec![(first / 40) as u64, (first % 40) as u64];
    let mut value = 0u64;
    for &b in rest {
        value = (value << 7) | (b & 0x7f) as u64;
        if b & 0x80 == 0 {
            parts.push(value);
            value = 0;
        }
    }
    parts.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

/// A distinguished name as Go's `pkix.Name.String()` writes it (RFC 2253: last RDN first).
fn name_string(name: &[u8]) -> String {
    let mut rdns = Vec::new();
    for (_, set) in elements(name) {
        let mut attributes = Vec::new();
        for (_, attribute) in elements(set) {
            let parts = elements(attribute);
            let (Some((_, oid)), Some((_, value))) = (parts.first(), parts.get(1)) else { continue };
            let value = String::from_utf8_lossy(value);
            let mut escaped = String::new();
            for (idx, c) in value.chars().enumerate() {
                let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
                    || (idx == 0 && (c == ' ' || c == '#'))
                    || (idx + 1 == value.chars().count() && c == ' ');
                if special {
                    escaped.push('\\');
                }
                escaped.push(c);
            }
            attributes.push(format!("{}={escaped}", attribute_name(oid)));
        }
        rdns.push(attributes.join("+"));
    }
    rdns.reverse();
    rdns.join(",")
}

/// UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as Unix seconds.
fn der_time(tag: u8, text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: i64 = text.get(..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..)?)
        }
        0x18 => (text.get(..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| -> Option<i64> { rest.get(i * 2..i * 2 + 2)?.parse().ok() };
    let (month, day, hour, minute, second) = (field(0)?, field(1)?, field(2)?, field(3)?, field(4)?);
    let days = crate::builder::days_from_civil(year, month, day);
    Some(days * 86400 + hour * 3600 + minute * 60 + second)
}

impl Certificate {
    fn parse(der: &[u8]) -> Option<Certificate> {
        let (_, certificate, _) = element(der)?;
        let (_, tbs, _) = element(certificate)?;
        let mut fields = elements(tbs).into_iter().peekable();
        if fields.peek().is_some_and(|(tag, _)| *tag == 0xa0) {
            fields.next(); // version
        }
        let _serial = fields.next()?;
        let _signature = fields.next()?;
        let (_, issuer) = fields.next()?;
        let (_, validity) = fields.next()?;
        let (_, subject) = fields.next()?;
        let validity = elements(validity);
        let &(tag, not_after) = validity.get(1)?;
        let mut dns_names = Vec::new();
        for (tag, contents) in fields {
            if tag != 0xa3 {
                continue;
            }
            let Some((_, extensions, _)) = element(contents) else { continue };
            for (_, extension) in elements(extensions) {
                let parts = elements(extension);
                // subjectAltName (2.5.29.17); the value is the last part (after `critical`).
                if parts.first().map(|(_, oid)| *oid) != Some(&[0x55, 0x1d, 0x11]) {
                    continue;
                }
                let Some((_, value)) = parts.last() else { continue };
                let Some((_, names, _)) = element(value) else { continue };
                for (tag, name) in elements(names) {
                    if tag == 0x82 {
                        dns_names.push(String::from_utf8_lossy(name).into_owned());
                    }
                }
            }
        }
        Some(Certificate {
            subject: name_string(subject),
            issuer: name_string(issuer),
            not_after: der_time(tag, not_after)?,
            dns_names,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let cases: &[(u8, &str, Option<i64>)] = &[
            (0x17, "700101000000Z", Some(0)),
            (0x17, "261122074500Z", Some(1_795_333_500)),
            (0x18, "20500101000000Z", Some(2_524_608_000)),
            (0x17, "2611220745Z", None),
            (0x18, "2050", None),
            (0x05, "700101000000Z", None),
        ];
        for (tag, text, expected) in cases {
            assert_eq!(der_time(*tag, text.as_bytes()), *expected, "{text}");
        }
    }

    #[test]
    fn oids_and_names() {
        assert_eq!(dotted_oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]), "1.2.840.113549.1.9.1");
        // SEQUENCE { SET { SEQ { OID C, "US" } }, SET { SEQ { OID O, "A,B" } }, SET { SEQ { OID CN, "x" } } }
        let rdn = |oid: u8, value: &[u8]| -> Vec<u8> {
            let mut attr = vec![0x06, 0x03, 0x55, 0x04, oid, 0x0c, value.len() as u8];
            attr.extend_from_slice(value);
            let mut seq = vec![0x30, attr.len() as u8];
            seq.extend(attr);
            let mut set = vec![0x31, seq.len() as u8];
            set.extend(seq);
            set
        };
        let mut name = Vec::new();
        name.extend(rdn(0x06, b"US"));
        name.extend(rdn(0x0a, b"A,B"));
        name.extend(rdn(0x03, b"x"));
        assert_eq!(name_string(&name), "CN=x,O=A\\,B,C=US");
    }

    proptest::proptest! {
        #[test]
        fn certificate_parser_never_panics(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = Certificate::parse(&input);
        }
    }
}
