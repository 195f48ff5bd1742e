//! Differential test of the blackbox exporter against Debian's `prometheus-blackbox-exporter`
//! 0.23, as `../shared/exporters/recipes/blackbox.sh` does: a Python HTTP server on a free
//! loopback port, the same `blackbox.yml` for both, and the same probes compared by
//! `../shared/exporters/tools/compare_scrapes.py`.
//!
//! TLS probes go to `openssl s_server -www` with a self-signed certificate for `localhost`
//! (verified with `ca_file`, and with `insecure_skip_verify`); IPv6 probes go to a second
//! Python server on `[::1]`; DNS probes go to `dnsmasq` on a free loopback port (skipped
//! without it: `apt-get install dnsmasq-base`).
//!
//! Skips (with a printed reason) without `prometheus-blackbox-exporter`, `python3` or `openssl`.

#[path = "../../testsupport/shared.rs"]
mod shared;

mod dbsupport;

use std::net::SocketAddr;
use std::process::Command;

use dbsupport::{free_port, http_get, judge, missing, start_until};
use sextant_exporters::{BlackboxConfig, BlackboxExporter};

/// Series-level differences that are expected (regexes over compare_scrapes.py's lines).
const EXPECTED_SERIES_DIFFERENCES: &[(&str, &str)] = &[
    (
        r"^VALUE   probe_(duration_seconds|dns_lookup_time_seconds|http_duration_seconds|icmp_duration_seconds|dns_duration_seconds)\{",
        "timings of each probe",
    ),
    (
        r"^VALUE   probe_http_uncompressed_body_length\{",
        "openssl s_server -www answers with the client's own cipher list, which differs between Go and rustls",
    ),
];

#[test]
fn blackbox_exporter_matches_debian_0_23() {
    let Some(shared) = shared::shared_dir("blackbox") else { return };
    if let Some(program) = missing(&["prometheus-blackbox-exporter", "python3", "openssl"]) {
        println!(
            "conformance blackbox: skipped, {program} is not installed (apt-get install prometheus-blackbox-exporter)"
        );
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let www = dir.join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello blackbox\n").unwrap();
    let http_port = free_port();
    let mut server = Command::new("python3");
    server.args(["-u", "-m", "http.server", &http_port.to_string(), "--bind", "127.0.0.1"]).current_dir(&www);
    let _server = start_until(server, "Serving HTTP", true);
    let http6_port = free_port();
    let mut server6 = Command::new("python3");
    server6.args(["-u", "-m", "http.server", &http6_port.to_string(), "--bind", "::1"]).current_dir(&www);
    let _server6 = start_until(server6, "Serving HTTP", true);
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/O=Sextant Test/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,DNS:sextant.test"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl req");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let tls_port = free_port();
    let mut tls_server = Command::new("openssl");
    tls_server.args(["s_server", "-www", "-accept", &format!("127.0.0.1:{tls_port}"), "-cert"]).arg(&cert);
    tls_server.arg("-key").arg(&key);
    let _tls_server = start_until(tls_server, "ACCEPT", true);
    let ca = cert.display();
    let dns_port = free_port();
    let _dnsmasq = dbsupport::which("dnsmasq").map(|dnsmasq| {
        let mut command = Command::new(dnsmasq);
        command.args(["--keep-in-foreground", "--log-facility=-", "--no-resolv", "--no-hosts", "--bind-interfaces"]);
        command.args(["--listen-address=127.0.0.1", "--user=root", "--pid-file="]);
        command.arg(format!("--port={dns_port}"));
        command.args(["--host-record=www.sextant.test,127.0.0.2", "--txt-record=www.sextant.test,\"probe me\""]);
        start_until(command, "started, version", false)
    });
    let config_file = dir.join("blackbox.yml");
    std::fs::write(
        &config_file,
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n\
         \x20 http_fail_regexp:\n    prober: http\n    http:\n      preferred_ip_protocol: ip4\n      fail_if_body_not_matches_regexp: [\"this will not match\"]\n\
         \x20 http_404:\n    prober: http\n    http:\n      preferred_ip_protocol: ip4\n      valid_status_codes: [404]\n\
         \x20 tcp_connect:\n    prober: tcp\n    tcp:\n      preferred_ip_protocol: ip4\n\
         \x20 icmp:\n    prober: icmp\n    icmp:\n      preferred_ip_protocol: ip4\n\
         \x20 icmp_ip6:\n    prober: icmp\n    icmp:\n      preferred_ip_protocol: ip6\n"
            .to_string()
            + &format!(
                "  https_2xx:\n    prober: http\n    http:\n      preferred_ip_protocol: ip4\n      tls_config:\n        ca_file: {ca}\n\
                 \x20 https_insecure:\n    prober: http\n    http:\n      preferred_ip_protocol: ip4\n      fail_if_not_ssl: true\n      tls_config:\n        insecure_skip_verify: true\n\
                 \x20 http_not_ssl:\n    prober: http\n    http:\n      preferred_ip_protocol: ip4\n      fail_if_not_ssl: true\n\
                 \x20 tcp_tls:\n    prober: tcp\n    tcp:\n      preferred_ip_protocol: ip4\n      tls: true\n      tls_config:\n        ca_file: {ca}\n\
                 \x20 tcp_tls_untrusted:\n    prober: tcp\n    tcp:\n      preferred_ip_protocol: ip4\n      tls: true\n\
                 \x20 http_ip6:\n    prober: http\n    http:\n      preferred_ip_protocol: ip6\n\
                 \x20 tcp_ip6:\n    prober: tcp\n    tcp:\n      preferred_ip_protocol: ip6\n\
                 \x20 tcp_ip6_only:\n    prober: tcp\n    tcp:\n      preferred_ip_protocol: ip6\n      ip_protocol_fallback: false\n\
                 \x20 dns_a:\n    prober: dns\n    dns:\n      preferred_ip_protocol: ip4\n      query_name: www.sextant.test\n      query_type: A\n\
                 \x20 dns_txt_tcp:\n    prober: dns\n    dns:\n      preferred_ip_protocol: ip4\n      transport_protocol: tcp\n      query_name: www.sextant.test\n      query_type: TXT\n      validate_answer_rrs:\n        fail_if_none_matches_regexp: [\"probe me\"]\n\
                 \x20 dns_a_regex_fail:\n    prober: dns\n    dns:\n      preferred_ip_protocol: ip4\n      query_name: www.sextant.test\n      query_type: A\n      validate_answer_rrs:\n        fail_if_not_matches_regexp: [\"IN\\tA\\t127\\\\.0\\\\.0\\\\.9$\"]\n\
                 \x20 dns_unknown:\n    prober: dns\n    dns:\n      preferred_ip_protocol: ip4\n      query_name: nothing.sextant.test\n      query_type: A\n      valid_rcodes: [NOERROR]\n"
            ),
    )
    .unwrap();
    let reference_port = free_port();
    let mut reference = Command::new("prometheus-blackbox-exporter");
    reference
        .arg(format!("--config.file={}", config_file.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{reference_port}"));
    let _reference = start_until(reference, "Listening on", false);
    let reference: SocketAddr = format!("127.0.0.1:{reference_port}").parse().unwrap();

    let config = BlackboxConfig::from_args([format!("--config.file={}", config_file.display())]).unwrap();
    let exporter = BlackboxExporter::new(config);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let ours = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    runtime.spawn(sextant_exporters::serve(listener, exporter.router(), &Default::default(), async move {
        let _ = stopped.await;
    }));

    let tool = shared.join("exporters/tools/compare_scrapes.py");
    let closed = free_port();
    // Raw ICMP sockets need root (or CAP_NET_RAW); without, that probe is left out.
    let root = dbsupport::run(Command::new("id").arg("-u")).trim() == "0";
    let mut probes = vec![
        ("http_2xx", format!("http://127.0.0.1:{http_port}/")),
        ("http_fail_regexp", format!("http://127.0.0.1:{http_port}/")),
        ("http_404", format!("http://127.0.0.1:{http_port}/missing")),
        ("http_2xx", format!("http://127.0.0.1:{closed}/")),
        ("tcp_connect", format!("127.0.0.1:{http_port}")),
        ("tcp_connect", format!("127.0.0.1:{closed}")),
        ("https_2xx", format!("https://localhost:{tls_port}/")),
        ("https_insecure", format!("https://127.0.0.1:{tls_port}/")),
        ("http_not_ssl", format!("http://127.0.0.1:{http_port}/")),
        ("tcp_tls", format!("localhost:{tls_port}")),
        ("tcp_tls_untrusted", format!("localhost:{tls_port}")),
        ("http_ip6", format!("http://[::1]:{http6_port}/")),
        ("tcp_ip6", format!("[::1]:{http6_port}")),
        ("tcp_ip6", format!("127.0.0.1:{http_port}")),
        ("tcp_ip6_only", format!("127.0.0.1:{http_port}")),
    ];
    if _dnsmasq.is_some() {
        for module in ["dns_a", "dns_txt_tcp", "dns_a_regex_fail", "dns_unknown"] {
            probes.push((module, format!("127.0.0.1:{dns_port}")));
        }
    } else {
        println!("conformance blackbox: dns probes left out, dnsmasq is not installed (apt-get install dnsmasq-base)");
    }
    if root {
        probes.push(("icmp", "127.0.0.1".to_string()));
        probes.push(("icmp_ip6", "::1".to_string()));
    } else {
        println!("conformance blackbox: icmp probe left out, not root");
    }
    let mut matched = 0;
    let mut total = 0;
    let mut unexpected = Vec::new();
    for (module, target) in &probes {
        let path = format!("/probe?module={module}&target={target}");
        std::fs::write(dir.join("ref.prom"), http_get(reference, &path)).unwrap();
        std::fs::write(dir.join("cand.prom"), http_get(ours, &path)).unwrap();
        let output = Command::new("python3")
            .arg(&tool)
            .arg(dir.join("ref.prom"))
            .arg(dir.join("cand.prom"))
            .args(["--rel-tol", "0"])
            .output()
            .expect("compare_scrapes.py");
        let report = String::from_utf8_lossy(&output.stdout).into_owned();
        let verdict = judge(&report, &[], EXPECTED_SERIES_DIFFERENCES);
        matched += verdict.common;
        total += verdict.ref_names;
        unexpected.extend(verdict.unexpected.into_iter().map(|l| format!("{module} {target}: {l}")));
    }
    // An unknown module is a 400, as in blackbox_exporter.
    let (status, _) = dbsupport::http_get_status(ours, "/probe?module=nope&target=127.0.0.1:1");
    assert_eq!(status, 400);
    let _ = stop.send(());
    drop(runtime);
    println!(
        "conformance blackbox: {matched} of {total} metric names match over {} probes (http 2xx, regex failure, 404 expected, refused, https verified and insecure, \
         fail_if_not_ssl; tcp open, refused, TLS verified and untrusted; IPv6 http and tcp, fallback and no fallback; \
         dns A, TXT over TCP with a regex, a failing regex, an unknown name; icmp over IPv4 and IPv6); not implemented: grpc prober",
        probes.len()
    );
    assert!(unexpected.is_empty(), "unexpected differences:\n{}", unexpected.join("\n"));
}
