//! The e-mail integration (`notify/email`) over SMTP with lettre: implicit TLS on port 465,
//! STARTTLS when `require_tls` (the default), PLAIN/LOGIN authentication when a user name is
//! set. `to`, `from`, every header (`Subject` defaults to `email.default.subject`), `html`
//! (default `email.default.html`, run as an HTML template) and `text` are templates.

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::config::Scalar;
use super::dispatch::Notification;
use super::integrations::{render, template_data};
use super::receivers::EmailConfig;
use crate::template::TemplateSet;
use crate::Error;

fn literal(value: &Option<Scalar>) -> Option<String> {
    value.as_ref().filter(|v| !v.is_empty()).map(|v| v.0.clone())
}

/// The HTML body: `html`, or `{{ template "email.default.html" . }}`, run as an HTML template.
pub fn email_html(
    n: &Notification,
    c: &EmailConfig,
    external_url: &str,
    templates: &TemplateSet,
) -> Result<String, Error> {
    let data = template_data(n, external_url);
    let text = c.html.as_ref().map_or(r#"{{ template "email.default.html" . }}"#, |v| v.0.as_str());
    templates.execute_html(text, &data).map_err(|e| Error::notify("email", format!("template: {e}"), false))
}

/// Builds the message and sends it. Connection and server errors are retryable.
pub async fn send_email(
    n: &Notification,
    c: &EmailConfig,
    external_url: &str,
    templates: &TemplateSet,
) -> Result<(), Error> {
    let bad = |m: String| Error::notify("email", m, false);
    let data = template_data(n, external_url);
    let t = |value: &Option<Scalar>, default: &str| render(templates, &data, value, default, "email");
    let to = t(&c.to, "")?;
    if to.is_empty() {
        return Err(bad("missing to address".into()));
    }
    let from = t(&c.from, "")?;
    if from.is_empty() {
        return Err(bad("missing from address".into()));
    }
    let smarthost = literal(&c.smarthost).ok_or_else(|| bad("missing smarthost".into()))?;
    let (host, port) = smarthost.rsplit_once(':').ok_or_else(|| bad(format!("bad smarthost {smarthost:?}")))?;
    let port: u16 = port.parse().map_err(|_| bad(format!("bad smarthost port in {smarthost:?}")))?;
    let headers = c.headers.clone().unwrap_or_default();
    let header = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let subject = t(&header("Subject"), r#"{{ template "email.default.subject" . }}"#)?;
    let from_box: Mailbox = from.parse().map_err(|e| bad(format!("parsing from address: {e}")))?;
    let mut message = Message::builder().from(from_box).subject(subject);
    // The other configured headers, templated (To, From and Subject are set above).
    for (name, value) in &headers {
        if ["subject", "to", "from"].contains(&name.to_ascii_lowercase().as_str()) {
            continue;
        }
        let header_name = HeaderName::new_from_ascii(name.clone()).map_err(|e| bad(format!("header {name:?}: {e}")))?;
        message = message.raw_header(HeaderValue::new(header_name, t(&Some(value.clone()), "")?));
    }
    for address in to.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let mailbox: Mailbox = address.parse().map_err(|e| bad(format!("parsing to address {address:?}: {e}")))?;
        message = message.to(mailbox);
    }
    let html = email_html(n, c, external_url, templates)?;
    let mut body = MultiPart::alternative().build();
    let text = t(&c.text, "")?;
    if !text.is_empty() {
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
    let hello = literal(&c.hello).unwrap_or_else(|| "localhost".to_string());
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .hello_name(ClientId::Domain(hello))
        .tls(tls)
        .timeout(Some(std::time::Duration::from_secs(30)));
    if let Some(user) = literal(&c.auth_username) {
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
