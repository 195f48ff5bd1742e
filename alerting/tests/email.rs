//! E-mail over SMTP against a small SMTP server on 127.0.0.1 (plain TCP, AUTH PLAIN): the
//! dialogue, addresses, subject and both bodies.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;

use sextant_alerting::alertmanager::{send_email, Config, Dispatcher, PostableAlert};
use sextant_alerting::template::TemplateSet;

/// Accepts one session; sends back the commands and the DATA text.
fn smtp_server() -> (u16, mpsc::Receiver<(Vec<String>, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut w = stream;
        let mut commands = Vec::new();
        let mut data = String::new();
        w.write_all(b"220 test ESMTP\r\n").unwrap();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            let line = line.trim_end().to_string();
            commands.push(line.clone());
            let upper = line.to_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") {
                b"250-test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
            } else if upper.starts_with("AUTH") {
                b"235 ok\r\n"
            } else if upper == "DATA" {
                w.write_all(b"354 go on\r\n").unwrap();
                loop {
                    let mut l = String::new();
                    reader.read_line(&mut l).unwrap();
                    if l == ".\r\n" {
                        break;
                    }
                    data.push_str(&l);
                }
                b"250 queued\r\n"
            } else if upper == "QUIT" {
                w.write_all(b"221 bye\r\n").unwrap();
                break;
            } else {
                b"250 ok\r\n"
            };
            w.write_all(reply).unwrap();
        }
        let _ = tx.send((commands, data));
    });
    (port, rx)
}

#[tokio::test]
async fn sends_over_smtp() {
    let (port, rx) = smtp_server();
    let config = Config::parse(&format!(
        r#"
global: {{smtp_smarthost: '127.0.0.1:{port}', smtp_from: 'Alertmanager <am@example.org>', smtp_require_tls: false,
          smtp_auth_username: user, smtp_auth_password: secret}}
route: {{receiver: mail, group_by: [alertname], group_wait: 0s}}
receivers:
- name: mail
  email_configs: [{{to: 'a@example.org, b@example.org', text: 'plain text'}}]
"#
    ))
    .unwrap();
    let receiver = config.receivers[0].email_configs[0].clone().unwrap();
    let mut d = Dispatcher::new(config);
    let alert = |instance: &str| PostableAlert {
        labels: vec![("alertname".into(), "DiskFull".into()), ("instance".into(), instance.into())],
        annotations: [("summary".to_string(), "disk <full>".to_string())].into(),
        ..PostableAlert::default()
    };
    d.put_alerts(vec![alert("db1"), alert("db2")], 0).unwrap();
    let n = d.tick(0).pop().unwrap();
    send_email(&n, &receiver, "http://am:9093", &TemplateSet::with_defaults()).await.unwrap();
    let (commands, data) = rx.recv().unwrap();
    let has = |prefix: &str| commands.iter().any(|c| c.starts_with(prefix));
    assert!(has("EHLO localhost"), "{commands:?}");
    // AUTH PLAIN base64("\0user\0secret")
    assert!(has("AUTH PLAIN AHVzZXIAc2VjcmV0"), "{commands:?}");
    assert!(has("MAIL FROM:<am@example.org>"), "{commands:?}");
    assert!(has("RCPT TO:<a@example.org>") && has("RCPT TO:<b@example.org>"), "{commands:?}");
    assert!(data.contains("Subject: [FIRING:2] DiskFull \r\n"), "{data}");
    assert!(data.contains("multipart/alternative"), "{data}");
    assert!(data.contains("plain text"), "{data}");
    assert!(data.contains("disk &lt;full&gt;"), "{data}");
}

#[tokio::test]
async fn require_tls_without_starttls_fails() {
    let (port, _rx) = smtp_server();
    let config = Config::parse(&format!(
        "global: {{smtp_smarthost: '127.0.0.1:{port}', smtp_from: am@example.org}}\n\
         route: {{receiver: mail, group_wait: 0s}}\nreceivers: [{{name: mail, email_configs: [{{to: a@example.org}}]}}]\n"
    ))
    .unwrap();
    let receiver = config.receivers[0].email_configs[0].clone().unwrap();
    let mut d = Dispatcher::new(config);
    d.put_alerts(vec![PostableAlert { labels: vec![("a".into(), "b".into())], ..PostableAlert::default() }], 0)
        .unwrap();
    let n = d.tick(0).pop().unwrap();
    assert!(send_email(&n, &receiver, "http://am:9093", &TemplateSet::with_defaults()).await.is_err());
}

/// Kills the child at the end of the test.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Delivered to a real SMTP server (Python's aiosmtpd, Debian package `python3-aiosmtpd`)
/// storing into a maildir, and parsed back with Python's `email` package: templated
/// subject, `to` and text body, the default HTML body.
#[tokio::test]
async fn delivers_to_aiosmtpd_and_parses_back() {
    let probe = std::process::Command::new("python3").args(["-c", "import aiosmtpd"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        println!("email aiosmtpd: skipped, python3-aiosmtpd not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("mail");
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _server = Child(
        std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < std::time::Duration::from_secs(30), "aiosmtpd did not start");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let config = Config::parse(&format!(
        r#"
global: {{smtp_smarthost: '127.0.0.1:{port}', smtp_from: 'am@example.org', smtp_require_tls: false}}
route: {{receiver: mail, group_by: [alertname], group_wait: 0s}}
receivers:
- name: mail
  email_configs:
  - to: '{{{{ .CommonLabels.team }}}}@example.org'
    headers: {{Subject: '{{{{ .CommonLabels.alertname }}}} for {{{{ .CommonLabels.team }}}}', X-Team: '{{{{ .CommonLabels.team | toUpper }}}}'}}
    text: '{{{{ range .Alerts }}}}{{{{ .Labels.instance }}}} {{{{ .Annotations.summary }}}}{{{{ end }}}}'
"#
    ))
    .unwrap();
    let receiver = config.receivers[0].email_configs[0].clone().unwrap();
    let mut d = Dispatcher::new(config);
    let alert = PostableAlert {
        labels: vec![
            ("alertname".into(), "DiskFull".into()),
            ("instance".into(), "db1".into()),
            ("team".into(), "ops".into()),
        ],
        annotations: [("summary".to_string(), "disk <full>".to_string())].into(),
        generator_url: "http://prom/graph?g0.expr=x&g0.tab=1".into(),
        ..PostableAlert::default()
    };
    d.put_alerts(vec![alert], 0).unwrap();
    let n = d.tick(0).pop().unwrap();
    send_email(&n, &receiver, "http://am:9093", &TemplateSet::with_defaults()).await.unwrap();
    let script = r#"
import json, mailbox, sys
box = mailbox.Maildir(sys.argv[1], create=False)
out = []
for m in box:
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in m.walk() if not p.is_multipart()}
    out.append({"subject": m["Subject"], "to": m["To"], "from": m["From"], "team": m["X-Team"], "parts": parts})
print(json.dumps(out))
"#;
    let parsed = std::process::Command::new("python3").args(["-c", script]).arg(&maildir).output().unwrap();
    assert!(parsed.status.success(), "{}", String::from_utf8_lossy(&parsed.stderr));
    let messages: serde_json::Value = serde_json::from_slice(&parsed.stdout).unwrap();
    let m = &messages[0];
    assert_eq!(messages.as_array().unwrap().len(), 1, "{messages}");
    assert_eq!(m["subject"], "DiskFull for ops");
    assert_eq!(m["to"], "ops@example.org");
    assert_eq!(m["from"], "am@example.org");
    assert_eq!(m["team"], "OPS");
    assert_eq!(m["parts"]["text/plain"].as_str().map(str::trim_end), Some("db1 disk <full>"));
    let html = m["parts"]["text/html"].as_str().unwrap().replace("\r\n", "\n");
    for needle in [
        "<title>[FIRING:1] DiskFull (db1 ops)</title>",
        "1 alert for \nalertname=DiskFull",
        r#"href="http://am:9093/#/alerts?receiver=mail""#,
        "[1] Firing",
        "instance = db1<br>",
        "summary = disk &lt;full&gt;<br>",
        r#"<a href="http://prom/graph?g0.expr=x&amp;g0.tab=1">Source</a>"#,
    ] {
        assert!(html.contains(needle), "{needle:?} not in {html}");
    }
}
