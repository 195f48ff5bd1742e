//! The e-mail integration (`notify/email`) over SMTP with lettre: implicit TLS on port 465,
//! STARTTLS when `require_tls` (the default), PLAIN/LOGIN authentication when a user name is
//! set; subject from Alertmanager's default template, an HTML body (Sextant's own layout, not
//! Alertmanager's `email.default.html`) and the `text` body when configured.

use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::config::Scalar;
use super::dispatch::Notification;
use super::integrations::{alertmanager_url, default_subject};
use super::receivers::EmailConfig;
use crate::Error;

fn literal(value: &Option<Scalar>, what: &str) -> Result<Option<String>, Error> {
    match value {
        Some(v) if v.contains("{{") => {
            Err(Error::notify("email", format!("templated {what} {:?} is not supported yet", v.0), false))
        }
        Some(v) if !v.is_empty() => Ok(Some(v.0.clone())),
        _ => Ok(None),
    }
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&#34;")
}

/// The HTML body: the subject, a link to the Alertmanager, and each alert's labels and
/// annotations, firing first.
pub fn email_html(n: &Notification, external_url: &str) -> String {
    let subject = escape_html(&default_subject(n));
    let url = escape_html(&alertmanager_url(n, external_url));
    let mut out = format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\">\n\
         <title>{subject}</title>\n</head>\n<body>\n<h2>{subject}</h2>\n<p><a href=\"{url}\">View in Alertmanager</a></p>\n"
    );
    for (resolved, heading) in [(false, "Firing"), (true, "Resolved")] {
        let alerts: Vec<_> = n.alerts.iter().filter(|a| a.resolved == resolved).collect();
        if alerts.is_empty() {
            continue;
        }
        out.push_str(&format!("<h3>[{}] {heading}</h3>\n", alerts.len()));
        for a in alerts {
            out.push_str("<p><b>Labels</b><br>\n");
            for l in a.alert.labels.iter() {
                out.push_str(&format!("{} = {}<br>\n", escape_html(&l.name), escape_html(&l.value)));
            }
            if !a.alert.annotations.is_empty() {
                out.push_str("<b>Annotations</b><br>\n");
                for (k, v) in &a.alert.annotations {
                    out.push_str(&format!("{} = {}<br>\n", escape_html(k), escape_html(v)));
                }
            }
            let source = escape_html(&a.alert.generator_url);
            out.push_str(&format!("<a href=\"{source}\">Source</a></p>\n"));
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// Builds the message and sends it. Connection and server errors are retryable.
pub async fn send_email(n: &Notification, c: &EmailConfig, external_url: &str) -> Result<(), Error> {
    let bad = |m: String| Error::notify("email", m, false);
    let to = literal(&c.to, "to")?.ok_or_else(|| bad("missing to address".into()))?;
    let from = literal(&c.from, "from")?.ok_or_else(|| bad("missing from address".into()))?;
    let smarthost = literal(&c.smarthost, "smarthost")?.ok_or_else(|| bad("missing smarthost".into()))?;
    let (host, port) = smarthost.rsplit_once(':').ok_or_else(|| bad(format!("bad smarthost {smarthost:?}")))?;
    let port: u16 = port.parse().map_err(|_| bad(format!("bad smarthost port in {smarthost:?}")))?;
    let headers = c.headers.clone().unwrap_or_default();
    let header = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let subject = match header("Subject") {
        Some(v) => literal(&Some(v), "Subject header")?.unwrap_or_default(),
        None => default_subject(n),
    };
    let from_box: Mailbox = from.parse().map_err(|e| bad(format!("parsing from address: {e}")))?;
    let mut message = Message::builder().from(from_box).subject(subject);
    for address in to.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let mailbox: Mailbox = address.parse().map_err(|e| bad(format!("parsing to address {address:?}: {e}")))?;
        message = message.to(mailbox);
    }
    let html = match literal(&c.html, "html")? {
        Some(html) => html,
        None => email_html(n, external_url),
    };
    let mut body = MultiPart::alternative().build();
    if let Some(text) = literal(&c.text, "text")? {
        body = body.singlepart(SinglePart::plain(text));
    }
    body = body.singlepart(SinglePart::html(html));
    let message = message.multipart(body).map_err(|e| bad(format!("building the message: {e}")))?;

    let insecure =
        c.tls_config.as_ref().and_then(|t| t.get("insecure_skip_verify")).and_then(|v| v.as_bool()).unwrap_or(false);
    let tls_params = || {
        TlsParameters::builder(host.to_string())
            .dangerous_accept_invalid_certs(insecure)
            .build()
            .map_err(|e| bad(format!("TLS parameters: {e}")))
    };
    let tls = if port == 465 || c.force_implicit_tls == Some(true) {
        Tls::Wrapper(tls_params()?)
    } else if c.require_tls.unwrap_or(true) {
        Tls::Required(tls_params()?)
    } else {
        Tls::None
    };
    let hello = literal(&c.hello, "hello")?.unwrap_or_else(|| "localhost".to_string());
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .hello_name(ClientId::Domain(hello))
        .tls(tls)
        .timeout(Some(std::time::Duration::from_secs(30)));
    if let Some(user) = literal(&c.auth_username, "auth_username")? {
        let password = match (&c.auth_password, &c.auth_password_file) {
            (Some(p), _) => p.0.clone(),
            (None, Some(file)) => std::fs::read_to_string(&**file)
                .map_err(|e| bad(format!("reading auth_password_file: {e}")))?
                .trim_end_matches('\n')
                .to_string(),
            (None, None) => String::new(),
        };
        transport = transport
            .credentials(Credentials::new(user, password))
            .authentication(vec![Mechanism::Plain, Mechanism::Login]);
    }
    let result = transport.build().send(message).await;
    result.map(|_| ()).map_err(|e| {
        let retryable = !e.is_permanent();
        Error::notify("email", e.to_string(), retryable)
    })
}
