//! The metric names that dashboards 193 (cAdvisor) and 23848 (Logporter, v1 and HEAD) use, as
//! listed in `../shared/exporters/`, must all appear in our output: the container exporter on a
//! cgroup v2 fixture tree, the log exporter against a small fake Docker Engine API.
#![cfg(all(feature = "container", feature = "log"))]

#[path = "../../testsupport/shared.rs"]
mod shared;

use std::collections::BTreeSet;
use std::path::Path;

use sextant_exporters::{ContainerConfig, Format, LogConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ID: &str = "feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface";

fn answer(path: &str) -> Vec<u8> {
    let route = path.split('?').next().unwrap_or(path);
    let json = |text: String| text.into_bytes();
    if route == "/info" {
        json(r#"{"Name":"h"}"#.into())
    } else if route == "/containers/json" {
        json(format!(
            r#"[{{"Id":"{ID}","Names":["/app"],"Image":"app:1","State":"running","Created":1700000000,"Labels":{{}}}},{{"Id":"x","Names":["/gone"],"State":"exited"}}]"#
        ))
    } else if route.ends_with("/stats") {
        json(r#"{"cpu_stats":{"cpu_usage":{"total_usage":1,"usage_in_usermode":1,"usage_in_kernelmode":0}},"memory_stats":{"usage":1,"limit":2},"pids_stats":{"current":1},"networks":{"eth0":{"rx_bytes":1,"rx_packets":1,"tx_bytes":1,"tx_packets":1}},"blkio_stats":{"io_service_bytes_recursive":[]}}"#.into())
    } else if route.ends_with("/logs") {
        let payload = b"2024-01-01T00:00:00.000000000Z \"level\":\"error\"\n";
        let mut body = vec![2, 0, 0, 0];
        body.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        body.extend_from_slice(payload);
        body
    } else if route.starts_with("/containers/") {
        json(r#"{"State":{"StartedAt":"2024-01-01T00:00:00Z"}}"#.into())
    } else if route == "/images/json" {
        json(r#"[{"RepoTags":["app:1"],"Size":10,"SharedSize":0}]"#.into())
    } else if route == "/system/df" {
        json(r#"{"Volumes":[{"Name":"v","Driver":"local","UsageData":{"Size":1,"RefCount":1}}]}"#.into())
    } else {
        b"OK".to_vec()
    }
}

async fn fake_docker(dir: &Path) -> String {
    let socket = dir.join("docker.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request).into_owned();
                let body = answer(text.split(' ').nth(1).unwrap_or("/"));
                let mut response = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
                response.extend_from_slice(&body);
                let _ = stream.write_all(&response).await;
            });
        }
    });
    format!("unix://{}", socket.display())
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

fn wanted(dir: &Path, file: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join("exporters").join(file))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn dashboard_metric_names() {
    let Some(shared) = shared::shared_dir("docker") else { return };
    let dir = tempfile::tempdir().unwrap();
    let host = fake_docker(dir.path()).await;
    let sys = dir.path().join("sys");
    let cg = sys.join("fs/cgroup");
    let scope = cg.join(format!("system.slice/docker-{ID}.scope"));
    write(&cg.join("cgroup.controllers"), "cpu memory io pids\n");
    write(&scope.join("cpu.stat"), "usage_usec 1\nuser_usec 1\nsystem_usec 0\n");
    write(&scope.join("memory.current"), "100\n");
    write(&scope.join("memory.stat"), "anon 1\nfile 1\ninactive_file 1\n");
    write(&scope.join("cgroup.procs"), "77\n");
    let proc = dir.path().join("proc");
    write(&proc.join("77/net/dev"), "h1\nh2\n eth0: 1 2 3 4 0 0 0 0 5 6 7 8 0 0 0 0\n");

    let container = ContainerConfig::from_args([
        format!("--path.sysfs={}", sys.display()),
        format!("--path.procfs={}", proc.display()),
        format!("--docker.host={host}"),
    ])
    .unwrap();
    let container_names = names(&container.registry().unwrap().encode(Format::Text).await);
    let log = LogConfig::from_env_and_args([("DOCKER_HOST", host.as_str())], Vec::<String>::new()).unwrap();
    let log_names = names(&log.registry().unwrap().encode(Format::Text).await);

    let mut total = 0;
    let mut missing = Vec::new();
    for (file, have) in [
        ("cadvisor-193-metrics.txt", &container_names),
        ("logporter-23848-metrics.txt", &log_names),
        ("logporter-head-dashboard-metrics.txt", &log_names),
    ] {
        for name in wanted(&shared, file) {
            total += 1;
            if !have.contains(&name) {
                missing.push(format!("{file}: {name}"));
            }
        }
    }
    println!("conformance docker: {} of {total} dashboard metric names present", total - missing.len());
    assert!(missing.is_empty(), "missing: {missing:?}");
}
