//! Service discovery (file, HTTP, Docker on a unix socket) and the scrape manager.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use sextant_model::{MemStorage, SystemClock};
use sextant_scrape::{
    Config, Discoverer, DockerDiscoverer, FileDiscoverer, HttpDiscoverer, ScrapeManager, TargetGroup, TargetHealth,
};

fn group_text(g: &TargetGroup) -> String {
    format!("{:?} {:?}", g.targets, g.labels)
}

fn first_job(yaml: &str) -> sextant_scrape::ScrapeConfig {
    Config::load_str(yaml).unwrap().scrape_configs.remove(0)
}

#[tokio::test]
async fn file_sd_reads_json_and_yaml_with_globs_and_filepath() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    std::fs::write(dir.path().join("a.json"), r#"[{"targets": ["h1:9100"], "labels": {"env": "prod"}}]"#).unwrap();
    std::fs::write(dir.path().join("b.yml"), "- targets: ['h2:9100', 'h3:9100']\n").unwrap();
    std::fs::write(dir.path().join("broken.json"), "[{").unwrap();
    let job = first_job(&format!(
        "scrape_configs:\n- job_name: j\n  file_sd_configs: [{{files: ['{d}/*.json', '{d}/b.yml'], refresh_interval: 1h}}]\n"
    ));
    let sd = FileDiscoverer::new(job.file_sd_configs[0].clone());
    let groups = sd.refresh().await.unwrap();
    let got: Vec<String> = groups.iter().map(group_text).collect();
    assert_eq!(
        got,
        [
            format!(r#"["h1:9100"] {{"__meta_filepath": "{d}/a.json", "env": "prod"}}"#),
            format!(r#"["h2:9100", "h3:9100"] {{"__meta_filepath": "{d}/b.yml"}}"#),
        ]
    );
    assert_eq!(groups[0].source, format!("{d}/a.json:0"));
    assert_eq!(sd.refresh_interval(), Some(Duration::from_secs(3600)));
    assert!(!sd.changed());
    std::fs::write(dir.path().join("c.json"), "[]").unwrap();
    assert!(sd.changed(), "a new file matching the glob is a change");
}

async fn serve_tcp(router: axum::Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    port
}

#[tokio::test]
async fn http_sd_adds_meta_url_and_checks_content_type() {
    let router = axum::Router::new()
        .route(
            "/sd",
            get(|| async {
                ([("content-type", "application/json")], r#"[{"targets": ["a:1"], "labels": {"k": "v"}}]"#)
            }),
        )
        .route("/text", get(|| async { "[]" }));
    let port = serve_tcp(router).await;
    let url = format!("http://127.0.0.1:{port}/sd");
    let job = first_job(&format!("scrape_configs:\n- job_name: j\n  http_sd_configs: [{{url: '{url}'}}]\n"));
    let sd = HttpDiscoverer::new(job.http_sd_configs[0].clone()).unwrap();
    let groups = sd.refresh().await.unwrap();
    assert_eq!(
        groups.iter().map(group_text).collect::<Vec<_>>(),
        [format!(r#"["a:1"] {{"__meta_url": "{url}", "k": "v"}}"#)]
    );

    let job = first_job(&format!(
        "scrape_configs:\n- job_name: j\n  http_sd_configs: [{{url: 'http://127.0.0.1:{port}/text'}}]\n"
    ));
    let err = HttpDiscoverer::new(job.http_sd_configs[0].clone()).unwrap().refresh().await.unwrap_err();
    assert_eq!(err.to_string(), r#"unsupported content type "text/plain; charset=utf-8""#);
}

// Shapes as the Docker Engine API 1.41 documents them for `GET /containers/json` and
// `GET /networks`.
const CONTAINERS: &str = r#"[
 {"Id": "c1", "Names": ["/web"], "Image": "nginx", "Labels": {"com.example.team": "blue"},
  "HostConfig": {"NetworkMode": "bridge"},
  "Ports": [{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}, {"PrivatePort": 53, "Type": "udp"}],
  "NetworkSettings": {"Networks": {"bridge": {"NetworkID": "n1", "IPAddress": "172.17.0.2"}}}},
 {"Id": "c2", "Names": ["/worker"], "Labels": {}, "HostConfig": {"NetworkMode": "host"}, "Ports": [],
  "NetworkSettings": {"Networks": {"host": {"NetworkID": "n2", "IPAddress": ""}}}}
]"#;
const NETWORKS: &str = r#"[
 {"Name": "bridge", "Id": "n1", "Scope": "local", "Driver": "bridge", "Internal": false, "Ingress": false, "Labels": {}},
 {"Name": "host", "Id": "n2", "Scope": "local", "Driver": "host", "Internal": false, "Ingress": false, "Labels": {"x.y": "z"}}
]"#;

#[tokio::test]
async fn docker_sd_through_the_engine_api_on_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen2 = seen.clone();
    let router = axum::Router::new()
        .route(
            "/containers/json",
            get(move |uri: axum::http::Uri| {
                let seen = seen2.clone();
                async move {
                    seen.lock().unwrap().push(uri.to_string());
                    ([("content-type", "application/json")], CONTAINERS)
                }
            }),
        )
        .route("/networks", get(|| async { ([("content-type", "application/json")], NETWORKS) }));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let job = first_job(&format!(
        "scrape_configs:\n- job_name: j\n  docker_sd_configs: [{{host: 'unix://{}', port: 9000, filters: [{{name: label, values: [a=b]}}]}}]\n",
        socket.display()
    ));
    let sd = DockerDiscoverer::new(job.docker_sd_configs[0].clone()).unwrap();
    let groups = sd.refresh().await.unwrap();
    assert_eq!(seen.lock().unwrap()[0], "/containers/json?filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D");
    let expected: Vec<(String, BTreeMap<String, String>)> = vec![
        (
            "172.17.0.2:80".into(),
            [
                ("__meta_docker_container_id", "c1"),
                ("__meta_docker_container_label_com_example_team", "blue"),
                ("__meta_docker_container_name", "/web"),
                ("__meta_docker_container_network_mode", "bridge"),
                ("__meta_docker_network_id", "n1"),
                ("__meta_docker_network_ingress", "false"),
                ("__meta_docker_network_internal", "false"),
                ("__meta_docker_network_ip", "172.17.0.2"),
                ("__meta_docker_network_name", "bridge"),
                ("__meta_docker_network_scope", "local"),
                ("__meta_docker_port_private", "80"),
                ("__meta_docker_port_public", "8080"),
                ("__meta_docker_port_public_ip", "0.0.0.0"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ),
        (
            "localhost:9000".into(),
            [
                ("__meta_docker_container_id", "c2"),
                ("__meta_docker_container_name", "/worker"),
                ("__meta_docker_container_network_mode", "host"),
                ("__meta_docker_network_id", "n2"),
                ("__meta_docker_network_ingress", "false"),
                ("__meta_docker_network_internal", "false"),
                ("__meta_docker_network_ip", ""),
                ("__meta_docker_network_label_x_y", "z"),
                ("__meta_docker_network_name", "host"),
                ("__meta_docker_network_scope", "local"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ),
    ];
    let got: Vec<(String, BTreeMap<String, String>)> =
        groups.into_iter().map(|g| (g.targets[0].clone(), g.labels)).collect();
    assert_eq!(got, expected);
}

async fn metrics_server(body: &'static str) -> u16 {
    serve_tcp(axum::Router::new().route("/metrics", get(move || async move { body }))).await
}

/// The newest sample value of any series named `name`.
fn last_value(db: &MemStorage, name: &str) -> Option<f64> {
    use sextant_model::{Matcher, Queryable, ValueType};
    let querier = db.querier(i64::MIN, i64::MAX).ok()?;
    let mut series = querier.select(false, None, &[Matcher::equal("__name__", name)]).ok()?.next()?.ok()?;
    let mut last = None;
    while series.samples.next() == ValueType::Float {
        last = Some(series.samples.at().1);
    }
    last
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn manager_follows_file_changes_and_reloads() {
    let port_a = metrics_server("a 1\n").await;
    let port_b = metrics_server("b 1\n").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("targets.json");
    std::fs::write(&file, format!(r#"[{{"targets": ["127.0.0.1:{port_a}"]}}]"#)).unwrap();
    let yaml = format!(
        "scrape_configs:\n- job_name: j\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  file_sd_configs: [{{files: ['{}'], refresh_interval: 1h}}]\n",
        file.display()
    );
    let db = Arc::new(MemStorage::new());
    let mut manager = ScrapeManager::new(db.clone(), Arc::new(SystemClock));
    manager.apply_config(&Config::load_str(&yaml).unwrap()).await.unwrap();
    let instance = |p: u16| format!("127.0.0.1:{p}");
    let up_instances = |m: &ScrapeManager| -> Vec<String> {
        m.targets()["j"]
            .iter()
            .map(|t| t.state())
            .filter(|s| s.health == TargetHealth::Up)
            .map(|s| s.labels.get("instance").unwrap_or("").to_string())
            .collect()
    };
    wait_for("target a up", || up_instances(&manager) == [instance(port_a)]).await;
    let state = &manager.targets()["j"][0].state();
    assert_eq!(state.discovered_labels.get("__meta_filepath"), Some(file.to_str().unwrap()));

    // The file changes: b replaces a without waiting for the hour-long refresh interval.
    std::fs::write(&file, format!(r#"[{{"targets": ["127.0.0.1:{port_b}"]}}]"#)).unwrap();
    wait_for("target b up", || up_instances(&manager) == [instance(port_b)]).await;
    // Target a went away: its series end with a staleness marker.
    wait_for("a stale", || last_value(&db, "a").is_some_and(sextant_model::is_stale)).await;

    // Reload with a static target instead; then stop.
    let yaml = format!(
        "scrape_configs:\n- job_name: j\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  static_configs: [{{targets: ['127.0.0.1:{port_a}']}}]\n"
    );
    manager.apply_config(&Config::load_str(&yaml).unwrap()).await.unwrap();
    wait_for("static target a up", || up_instances(&manager) == [instance(port_a)]).await;
    manager.stop().await;
    assert!(db.n_series() >= 7);
}

#[tokio::test]
async fn a_hanging_target_does_not_affect_the_others() {
    let good = metrics_server("a 1\n").await;
    // Accepts connections and never answers.
    let hanging = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hanging_port = hanging.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = hanging.accept().await {
            held.push(stream);
        }
    });
    let yaml = format!(
        "scrape_configs:\n- job_name: j\n  scrape_interval: 1s\n  scrape_timeout: 300ms\n  static_configs: [{{targets: ['127.0.0.1:{good}', '127.0.0.1:{hanging_port}']}}]\n"
    );
    let db = Arc::new(MemStorage::new());
    let mut manager = ScrapeManager::new(db.clone(), Arc::new(SystemClock));
    manager.apply_config(&Config::load_str(&yaml).unwrap()).await.unwrap();
    let health = |m: &ScrapeManager, port: u16| {
        let instance = format!("127.0.0.1:{port}");
        m.targets()["j"].iter().map(|t| t.state()).find(|s| s.labels.get("instance") == Some(instance.as_str()))
    };
    wait_for("both scraped", || {
        let (g, h) = (health(&manager, good), health(&manager, hanging_port));
        g.is_some_and(|s| s.health == TargetHealth::Up) && h.is_some_and(|s| s.health == TargetHealth::Down)
    })
    .await;
    let down = health(&manager, hanging_port).unwrap();
    assert!(down.last_error.starts_with("context deadline exceeded"), "{}", down.last_error);
    let metrics = manager.metrics_text();
    assert!(metrics.contains("prometheus_target_scrape_pool_targets{scrape_job=\"j\"} 2\n"), "{metrics}");
    assert!(metrics.contains("sextant_scrape_failed_scrapes_total "), "{metrics}");
    manager.stop().await;
}

#[tokio::test]
async fn target_limit_stops_the_pool() {
    let port = metrics_server("a 1\n").await;
    let yaml = format!(
        "scrape_configs:\n- job_name: j\n  target_limit: 1\n  static_configs: [{{targets: ['127.0.0.1:{port}', '127.0.0.2:{port}']}}]\n"
    );
    let db = Arc::new(MemStorage::new());
    let mut manager = ScrapeManager::new(db, Arc::new(SystemClock));
    manager.apply_config(&Config::load_str(&yaml).unwrap()).await.unwrap();
    wait_for("the limit error", || {
        manager.errors()["j"] == ["target_limit exceeded (number of targets: 2, limit: 1)".to_string()]
    })
    .await;
    assert!(manager.targets()["j"].is_empty());
    manager.stop().await;
}

#[tokio::test]
async fn targets_dropped_by_relabeling_are_listed() {
    let port = metrics_server("a 1\n").await;
    let yaml = format!(
        "scrape_configs:\n- job_name: j\n  static_configs: [{{targets: ['127.0.0.1:{port}', 'skip:1']}}]\n  relabel_configs: [{{source_labels: [__address__], regex: 'skip:.*', action: drop}}]\n"
    );
    let mut manager = ScrapeManager::new(Arc::new(MemStorage::new()), Arc::new(SystemClock));
    manager.apply_config(&Config::load_str(&yaml).unwrap()).await.unwrap();
    wait_for("one active, one dropped", || {
        manager.targets()["j"].len() == 1 && manager.dropped_targets()["j"].len() == 1
    })
    .await;
    let dropped = &manager.dropped_targets()["j"][0];
    assert_eq!(dropped.get("__address__"), Some("skip:1"));
    assert_eq!(dropped.get("job"), Some("j"));
    manager.stop().await;
}
