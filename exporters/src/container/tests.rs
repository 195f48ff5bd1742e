use std::collections::HashMap;
use std::path::Path;

use super::cgroup::{collect, docker_id, DockerInfo};
use crate::registry::write_text;
use sextant_model::exposition::MetricFamily;

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn text(families: &[MetricFamily]) -> String {
    let mut out = String::new();
    write_text(&mut out, families);
    out
}

fn check(text: &str, expected: &[&str]) {
    for line in expected {
        let line = sorted_labels(line);
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
}

/// A sample line with its labels sorted by name (the encoder writes them sorted, as Go clients do).
fn sorted_labels(line: &str) -> String {
    let (Some(open), Some(close)) = (line.find('{'), line.rfind('}')) else { return line.to_string() };
    let pair = regex::Regex::new(r#"([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)""#).unwrap();
    let mut pairs: Vec<&str> = pair.find_iter(&line[open + 1..close]).map(|m| m.as_str()).collect();
    pairs.sort();
    format!("{}{{{}}}{}", &line[..open], pairs.join(","), &line[close + 1..])
}

fn containers() -> HashMap<String, DockerInfo> {
    let info =
        DockerInfo { name: "web".into(), image: "nginx:1.25".into(), created: Some(1700000000.0), labels: Vec::new() };
    HashMap::from([(ID.to_string(), info)])
}

#[test]
fn docker_labels() {
    assert_eq!(super::cgroup::label_name("com.docker.compose.service"), "container_label_com_docker_compose_service");
    let dir = tempfile::tempdir().unwrap();
    let cg = dir.path().join("cgroup");
    write(&cg, "cgroup.controllers", "");
    write(&cg, &format!("system.slice/docker-{ID}.scope/memory.current"), "5\n");
    let mut containers = containers();
    containers.get_mut(ID).unwrap().labels = vec![("container_label_app".into(), "shop".into())];
    let out = text(&collect(&cg, dir.path(), dir.path(), &containers).unwrap());
    let want = format!(
        "container_memory_usage_bytes{{container_label_app=\"shop\",id=\"/system.slice/docker-{ID}.scope\",image=\"nginx:1.25\",name=\"web\"}} 5"
    );
    check(&out, &[&want]);
}

#[test]
fn docker_ids() {
    assert_eq!(docker_id(&format!("/system.slice/docker-{ID}.scope")), Some(ID));
    assert_eq!(docker_id(&format!("/docker/{ID}")), Some(ID));
    assert_eq!(docker_id("/system.slice/docker-abc.scope"), None);
    assert_eq!(docker_id("/user.slice"), None);
}

#[test]
fn cgroup_v2() {
    let dir = tempfile::tempdir().unwrap();
    let sys = dir.path().join("sys");
    let proc = dir.path().join("proc");
    let cg = sys.join("fs/cgroup");
    write(&cg, "cgroup.controllers", "cpu io memory pids\n");
    write(&cg, "cpu.stat", "usage_usec 5000000\nuser_usec 3000000\nsystem_usec 2000000\n");
    write(&cg, "memory.stat", "anon 100\nfile 50\ninactive_file 20\n");
    let c = format!("system.slice/docker-{ID}.scope");
    write(&cg, &format!("{c}/cpu.stat"), "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\nnr_periods 40\nnr_throttled 4\nthrottled_usec 250000\n");
    write(&cg, &format!("{c}/memory.current"), "10485760\n");
    write(&cg, &format!("{c}/memory.stat"), "anon 4194304\nfile 6291456\nfile_mapped 1024\ninactive_file 2097152\n");
    write(&cg, &format!("{c}/memory.max"), "max\n");
    write(&cg, &format!("{c}/cpu.max"), "50000 100000\n");
    write(&cg, &format!("{c}/memory.events"), "low 0\nhigh 0\nmax 0\noom 1\noom_kill 1\n");
    write(&cg, &format!("{c}/memory.swap.current"), "0\n");
    write(&cg, &format!("{c}/pids.current"), "7\n");
    write(&cg, &format!("{c}/pids.max"), "100\n");
    write(&cg, &format!("{c}/io.stat"), "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n");
    write(&cg, &format!("{c}/cgroup.procs"), "4242\n4243\n");
    write(&sys, "dev/block/8:0/uevent", "MAJOR=8\nMINOR=0\nDEVNAME=sda\n");
    write(
        &proc,
        "4242/net/dev",
        "Inter-|   Receive                                                |  Transmit\n \
         face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
         lo:  100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n  \
         eth0: 1500 10 1 2 0 0 0 0 2500 20 3 4 0 0 0 0\n",
    );
    let families = collect(&cg, &sys, &proc, &containers()).unwrap();
    let out = text(&families);
    let id = format!("/system.slice/docker-{ID}.scope");
    let l = format!("id=\"{id}\",image=\"nginx:1.25\",name=\"web\"");
    check(
        &out,
        &[
            &format!("container_cpu_usage_seconds_total{{{l}}} 1.5"),
            &format!("container_cpu_user_seconds_total{{{l}}} 1"),
            &format!("container_cpu_system_seconds_total{{{l}}} 0.5"),
            &format!("container_memory_usage_bytes{{{l}}} 1.048576e+07"),
            &format!("container_memory_working_set_bytes{{{l}}} 8.388608e+06"),
            &format!("container_memory_rss{{{l}}} 4.194304e+06"),
            &format!("container_memory_cache{{{l}}} 6.291456e+06"),
            &format!("container_memory_mapped_file{{{l}}} 1024"),
            &format!("container_memory_swap{{{l}}} 0"),
            &format!("container_threads{{{l}}} 7"),
            &format!("container_cpu_cfs_periods_total{{{l}}} 40"),
            &format!("container_cpu_cfs_throttled_periods_total{{{l}}} 4"),
            &format!("container_cpu_cfs_throttled_seconds_total{{{l}}} 0.25"),
            &format!("container_spec_cpu_quota{{{l}}} 50000"),
            &format!("container_spec_cpu_period{{{l}}} 100000"),
            &format!("container_oom_events_total{{{l}}} 1"),
            &format!("container_threads_max{{{l}}} 100"),
            &format!("container_fs_reads_bytes_total{{{l},device=\"/dev/sda\"}} 4096"),
            &format!("container_fs_writes_bytes_total{{{l},device=\"/dev/sda\"}} 8192"),
            &format!("container_fs_reads_total{{{l},device=\"/dev/sda\"}} 1"),
            &format!("container_fs_writes_total{{{l},device=\"/dev/sda\"}} 2"),
            &format!("container_network_receive_bytes_total{{id=\"{id}\",image=\"nginx:1.25\",interface=\"eth0\",name=\"web\"}} 1500"),
            &format!("container_network_transmit_packets_dropped_total{{id=\"{id}\",image=\"nginx:1.25\",interface=\"eth0\",name=\"web\"}} 4"),
            &format!("container_start_time_seconds{{{l}}} 1.7e+09"),
            "container_cpu_usage_seconds_total{id=\"/\",image=\"\",name=\"\"} 5",
            "container_memory_usage_bytes{id=\"/\",image=\"\",name=\"\"} 150",
            "container_memory_working_set_bytes{id=\"/\",image=\"\",name=\"\"} 130",
        ],
    );
    // Unlimited memory is not reported as a limit; the loopback interface is left out.
    assert!(!out.contains(&format!("container_spec_memory_limit_bytes{{{l}}}")));
    assert!(!out.contains("interface=\"lo\""));
    // Without a quota (no periods counted) there are no CFS families for the root.
    assert!(!out.contains("container_cpu_cfs_periods_total{id=\"/\""));
    assert!(out.contains("container_last_seen{id=\"/system.slice\",image=\"\",name=\"\"}"));
}

#[test]
fn cgroup_v1() {
    let dir = tempfile::tempdir().unwrap();
    let sys = dir.path().join("sys");
    let cg = sys.join("fs/cgroup");
    let c = format!("docker/{ID}");
    write(&cg, &format!("cpu,cpuacct/{c}/cpuacct.usage"), "2500000000\n");
    write(&cg, &format!("cpu,cpuacct/{c}/cpuacct.stat"), "user 150\nsystem 50\n");
    write(&cg, &format!("cpu,cpuacct/{c}/cpu.stat"), "nr_periods 10\nnr_throttled 2\nthrottled_time 1500000000\n");
    write(&cg, &format!("memory/{c}/memory.usage_in_bytes"), "1000\n");
    write(
        &cg,
        &format!("memory/{c}/memory.stat"),
        "total_rss 600\ntotal_cache 400\ntotal_inactive_file 300\ntotal_swap 5\n",
    );
    write(&cg, &format!("memory/{c}/memory.limit_in_bytes"), "2000\n");
    write(&cg, &format!("memory/{c}/memory.failcnt"), "3\n");
    write(
        &cg,
        &format!("blkio/{c}/blkio.throttle.io_service_bytes"),
        "8:16 Read 10\n8:16 Write 20\n8:16 Total 30\nTotal 30\n",
    );
    write(&cg, &format!("pids/{c}/pids.current"), "4\n");
    let families = collect(&cg, &sys, &dir.path().join("proc"), &containers()).unwrap();
    let out = text(&families);
    let l = format!("id=\"/docker/{ID}\",image=\"nginx:1.25\",name=\"web\"");
    check(
        &out,
        &[
            &format!("container_cpu_usage_seconds_total{{{l}}} 2.5"),
            &format!("container_cpu_user_seconds_total{{{l}}} 1.5"),
            &format!("container_cpu_system_seconds_total{{{l}}} 0.5"),
            &format!("container_memory_usage_bytes{{{l}}} 1000"),
            &format!("container_memory_working_set_bytes{{{l}}} 700"),
            &format!("container_memory_rss{{{l}}} 600"),
            &format!("container_memory_swap{{{l}}} 5"),
            &format!("container_spec_memory_limit_bytes{{{l}}} 2000"),
            &format!("container_memory_failcnt{{{l}}} 3"),
            &format!("container_threads{{{l}}} 4"),
            &format!("container_cpu_cfs_throttled_seconds_total{{{l}}} 1.5"),
            &format!("container_cpu_cfs_periods_total{{{l}}} 10"),
            &format!("container_fs_reads_bytes_total{{{l},device=\"8:16\"}} 10"),
            &format!("container_fs_writes_bytes_total{{{l},device=\"8:16\"}} 20"),
        ],
    );
}

#[test]
fn no_cgroups_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(collect(dir.path(), dir.path(), dir.path(), &HashMap::new()).is_err());
}
