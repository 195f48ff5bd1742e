//! The Alertmanager API v2 and driver task over a real socket, with a fake notifier: alerts
//! in, notifications out, silences CRUD, a failing receiver that blocks nobody.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sextant_alerting::alertmanager::{Config, Dispatcher, Notification, Notifier};
use sextant_alerting::Error;
use sextant_api::alertmanager::{router, Alertmanager};
use sextant_model::SystemClock;
use tokio::sync::mpsc;

#[derive(Debug)]
struct Fake {
    sent: mpsc::UnboundedSender<Notification>,
}

#[async_trait]
impl Notifier for Fake {
    async fn notify(&self, n: &Notification) -> Result<(), Error> {
        if n.receiver == "down" {
            // Never reaches the peer; retried until the deadline.
            return Err(Error::Notify {
                integration: "webhook".into(),
                message: "connection refused".into(),
                retryable: true,
            });
        }
        let _ = self.sent.send(n.clone());
        Ok(())
    }
}

const CONFIG: &str = r#"
route:
  receiver: up
  group_by: [alertname]
  group_wait: 100ms
  group_interval: 1s
  routes:
  - {matchers: [team=x], receiver: down, continue: true}
  - {receiver: up}
receivers:
- {name: up, webhook_configs: [{url: 'http://127.0.0.1:1/'}]}
- {name: down, webhook_configs: [{url: 'http://127.0.0.1:1/'}]}
"#;

async fn get(client: &reqwest::Client, url: String) -> serde_json::Value {
    let text = client.get(url).send().await.unwrap().text().await.unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_round_trip() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let dispatcher = Dispatcher::new(Config::parse(CONFIG).unwrap());
    let am = Alertmanager::new(dispatcher, Arc::new(SystemClock), Arc::new(Fake { sent: tx }), None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let driver = tokio::spawn(Arc::clone(&am).run(stop_rx.clone()));
    let mut stop = stop_rx;
    let server = tokio::spawn(async move {
        axum::serve(listener, router(am))
            .with_graceful_shutdown(async move {
                let _ = stop.changed().await;
            })
            .await
    });
    let client = reqwest::Client::new();
    let post = |path: &str, body: &str| client.post(format!("{base}{path}")).body(body.to_string()).send();

    // An alert for both receivers; `down` fails and retries, `up` is notified regardless.
    let r = post("/api/v2/alerts", r#"[{"labels":{"alertname":"A","team":"x"}}]"#).await.unwrap();
    assert_eq!(r.status(), 200);
    let n = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("notified in time").unwrap();
    assert_eq!((n.receiver.as_str(), n.alerts.len()), ("up", 1));

    let r = post("/api/v2/alerts", r#"[{"labels":{"alertname":"B"},"startsAt":"bad"}]"#).await.unwrap();
    assert_eq!(r.status(), 400);

    let alerts = get(&client, format!("{base}/api/v2/alerts")).await;
    assert_eq!(alerts[0]["labels"]["alertname"], "A");
    assert_eq!(alerts[0]["status"]["state"], "active");
    assert_eq!(alerts[0]["receivers"], serde_json::json!([{"name": "down"}, {"name": "up"}]));

    let silence = r#"{"matchers":[{"name":"alertname","value":"A","isRegex":false}],
        "startsAt":"2020-01-01T00:00:00Z","endsAt":"2099-01-01T00:00:00Z","createdBy":"t","comment":"c"}"#;
    let created: serde_json::Value =
        serde_json::from_str(&post("/api/v2/silences", silence).await.unwrap().text().await.unwrap()).unwrap();
    let id = created["silenceID"].as_str().unwrap().to_string();
    assert_eq!(get(&client, format!("{base}/api/v2/alerts?silenced=false")).await, serde_json::json!([]));
    let alerts = get(&client, format!("{base}/api/v2/alerts")).await;
    assert_eq!(alerts[0]["status"]["state"], "suppressed");
    assert_eq!(alerts[0]["status"]["silencedBy"], serde_json::json!([id]));

    assert_eq!(get(&client, format!("{base}/api/v2/silence/{id}")).await["status"]["state"], "active");
    assert_eq!(client.delete(format!("{base}/api/v2/silence/{id}")).send().await.unwrap().status(), 200);
    assert_eq!(get(&client, format!("{base}/api/v2/silence/{id}")).await["status"]["state"], "expired");
    assert_eq!(client.delete(format!("{base}/api/v2/silence/nope")).send().await.unwrap().status(), 404);

    let groups = get(&client, format!("{base}/api/v2/alerts/groups")).await;
    assert_eq!(groups.as_array().unwrap().len(), 2, "{groups}");
    let receivers = get(&client, format!("{base}/api/v2/receivers")).await;
    assert_eq!(receivers, serde_json::json!([{"name": "up"}, {"name": "down"}]));
    let status = get(&client, format!("{base}/api/v2/status")).await;
    assert_eq!(status["cluster"]["status"], "disabled");
    assert!(status["config"]["original"].as_str().unwrap().contains("receiver: up"));
    assert_eq!(client.get(format!("{base}/-/healthy")).send().await.unwrap().status(), 200);
    assert_eq!(post("/-/reload", "").await.unwrap().status(), 500, "no file to reload");

    stop_tx.send(true).unwrap();
    server.await.unwrap().unwrap();
    driver.await.unwrap();
}
