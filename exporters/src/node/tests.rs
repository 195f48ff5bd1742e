//! Collectors against small hand-written `/proc` and `/sys` trees built in temp dirs.

use std::path::Path;

use super::{Context, NodeConfig, COLLECTORS};
use crate::registry::{normalize, write_text};

fn write_tree(root: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }
}

/// Runs collector `name` over a tree holding `files` (paths under `proc/`, `sys/`, `root/`,
/// `udev/`, `textfile/`) and returns its text output or error.
fn run(name: &str, files: &[(&str, &str)], extra_flags: &[&str]) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for sub in ["proc", "sys", "root", "udev"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    write_tree(root, files);
    let mut args = vec![
        format!("--path.procfs={}", root.join("proc").display()),
        format!("--path.sysfs={}", root.join("sys").display()),
        format!("--path.rootfs={}", root.join("root").display()),
        format!("--path.udev.data={}", root.join("udev").display()),
    ];
    if files.iter().any(|(path, _)| path.starts_with("textfile/")) {
        args.push(format!("--collector.textfile.directory={}", root.join("textfile").display()));
    }
    args.extend(extra_flags.iter().map(|f| f.to_string()));
    let config = NodeConfig::from_args(args).unwrap();
    let context = Context::new(&config).unwrap();
    let collect = COLLECTORS.iter().find(|c| c.0 == name).unwrap().2;
    let mut families = collect(&context).map_err(|e| e.to_string())?;
    normalize(&mut families);
    let mut out = String::new();
    write_text(&mut out, &families);
    Ok(out.replace(&root.display().to_string(), "ROOT"))
}

/// Every line of `expected` appears in the collector's output.
fn check(name: &str, files: &[(&str, &str)], expected: &[&str]) {
    check_with(name, files, &[], expected)
}

fn check_with(name: &str, files: &[(&str, &str)], flags: &[&str], expected: &[&str]) {
    let out = run(name, files, flags).unwrap_or_else(|err| panic!("{name}: {err}"));
    for line in expected {
        assert!(out.lines().any(|l| l == *line), "{name}: missing {line:?} in\n{out}");
    }
}

fn check_error(name: &str, files: &[(&str, &str)], expected: &str) {
    match run(name, files, &[]) {
        Ok(out) => panic!("{name}: expected an error containing {expected:?}, got\n{out}"),
        Err(err) => assert!(err.contains(expected), "{name}: {err} does not contain {expected:?}"),
    }
}

const STAT: &str = "cpu  300 10 200 5000 40 0 6 1 0 0\n\
cpu0 150 5 100 2500 20 0 3 1 7 2\n\
cpu1 150 5 100 2500 20 0 3 0 0 0\n\
intr 12345 1 2 3\nctxt 999\nbtime 1700000000\nprocesses 4321\nprocs_running 3\nprocs_blocked 1\nsoftirq 5 1 1\n";

#[test]
fn cpu_and_stat() {
    check(
        "cpu",
        &[("proc/stat", STAT)],
        &[
            "node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 1.5",
            "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 25",
            "node_cpu_seconds_total{cpu=\"1\",mode=\"steal\"} 0",
            "node_cpu_guest_seconds_total{cpu=\"0\",mode=\"user\"} 0.07",
            "node_cpu_guest_seconds_total{cpu=\"0\",mode=\"nice\"} 0.02",
            "# TYPE node_cpu_seconds_total counter",
        ],
    );
    check(
        "cpu",
        &[
            ("proc/stat", STAT),
            ("sys/devices/system/cpu/isolated", "1,3-4\n"),
            ("sys/devices/system/cpu/cpu0/thermal_throttle/core_throttle_count", "5\n"),
            ("sys/devices/system/cpu/cpu0/thermal_throttle/package_throttle_count", "30\n"),
            ("sys/devices/system/cpu/cpu0/topology/core_id", "0\n"),
            ("sys/devices/system/cpu/cpu0/topology/physical_package_id", "0\n"),
            ("sys/devices/system/cpu/cpu1/thermal_throttle/core_throttle_count", "5\n"),
            ("sys/devices/system/cpu/cpu1/thermal_throttle/package_throttle_count", "30\n"),
            ("sys/devices/system/cpu/cpu1/topology/core_id", "0\n"),
            ("sys/devices/system/cpu/cpu1/topology/physical_package_id", "0\n"),
        ],
        &[
            "node_cpu_isolated{cpu=\"1\"} 1",
            "node_cpu_isolated{cpu=\"4\"} 1",
            "node_cpu_core_throttles_total{core=\"0\",package=\"0\"} 5",
            "node_cpu_package_throttles_total{package=\"0\"} 30",
        ],
    );
    let throttled = run(
        "cpu",
        &[("proc/stat", STAT), ("sys/devices/system/cpu/cpu1/thermal_throttle/core_throttle_count", "5\n")],
        &[],
    )
    .unwrap();
    assert!(!throttled.contains("throttles"), "no topology, no throttle metrics:\n{throttled}");
    let cpu = run("cpu", &[("proc/stat", STAT)], &[]).unwrap();
    assert!(!cpu.contains("cpu=\"\""), "the aggregate line is not a CPU:\n{cpu}");
    check(
        "stat",
        &[("proc/stat", STAT)],
        &[
            "node_intr_total 12345",
            "node_context_switches_total 999",
            "node_boot_time_seconds 1.7e+09",
            "node_forks_total 4321",
            "node_procs_running 3",
            "node_procs_blocked 1",
            "# TYPE node_boot_time_seconds gauge",
        ],
    );
    check_error("cpu", &[("proc/stat", "cpu0 1 x 3\n")], "stat:1: bad cpu time \"x\"");
    check_error("stat", &[], "stat: No such file");
}

#[test]
fn memory_and_load() {
    check(
        "loadavg",
        &[("proc/loadavg", "0.25 0.50 1.00 2/300 4000\n")],
        &["node_load1 0.25", "node_load5 0.5", "node_load15 1"],
    );
    check_error("loadavg", &[("proc/loadavg", "0.25\n")], "expected three load averages");
    check(
        "meminfo",
        &[("proc/meminfo", "MemTotal:        2048 kB\nActive(anon):      16 kB\nHugePages_Total:       3\n")],
        &[
            "node_memory_MemTotal_bytes 2.097152e+06",
            "node_memory_Active_anon_bytes 16384",
            "node_memory_HugePages_Total 3",
        ],
    );
    check(
        "vmstat",
        &[("proc/vmstat", "nr_free_pages 10\npgfault 20\npgmajfault 2\noom_kill 1\npswpin 0\n")],
        &[
            "node_vmstat_pgfault 20",
            "node_vmstat_pgmajfault 2",
            "node_vmstat_oom_kill 1",
            "# TYPE node_vmstat_pgfault untyped",
        ],
    );
    let vmstat = run("vmstat", &[("proc/vmstat", "nr_free_pages 10\n")], &[]).unwrap();
    assert_eq!(vmstat, "", "fields outside --collector.vmstat.fields are left out");
    check(
        "filefd",
        &[("proc/sys/fs/file-nr", "1024\t0\t9223372036854775807\n")],
        &["node_filefd_allocated 1024", "node_filefd_maximum 9.223372036854776e+18"],
    );
    check(
        "entropy",
        &[("proc/sys/kernel/random/entropy_avail", "256\n"), ("proc/sys/kernel/random/poolsize", "256\n")],
        &["node_entropy_available_bits 256", "node_entropy_pool_size_bits 256"],
    );
}

#[test]
fn pressure_stall_information() {
    let some_full =
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=2500000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\n";
    check(
        "pressure",
        &[
            ("proc/pressure/cpu", "some avg10=0.00 avg60=0.00 avg300=0.00 total=7326856\n"),
            ("proc/pressure/io", some_full),
            ("proc/pressure/memory", some_full),
        ],
        &[
            "node_pressure_cpu_waiting_seconds_total 7.326855999999999",
            "node_pressure_io_waiting_seconds_total 2.5",
            "node_pressure_io_stalled_seconds_total 1",
            "node_pressure_memory_stalled_seconds_total 1",
        ],
    );
    check_error("pressure", &[], "pressure information is unavailable");
}

#[test]
fn network_devices() {
    let dev = "Inter-|   Receive                                                |  Transmit\n \
face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0\n  \
eth0: 5000      50    1    2    3     4          5         6     7000      70    7    8    9    10      11         12\n";
    check(
        "netdev",
        &[("proc/net/dev", dev), ("sys/class/net/eth0/statistics/rx_nohandler", "4\n")],
        &[
            "node_network_receive_bytes_total{device=\"eth0\"} 5000",
            "node_network_receive_frame_total{device=\"eth0\"} 4",
            "node_network_receive_multicast_total{device=\"eth0\"} 6",
            "node_network_transmit_colls_total{device=\"eth0\"} 10",
            "node_network_transmit_carrier_total{device=\"eth0\"} 11",
            "node_network_transmit_compressed_total{device=\"eth0\"} 12",
            "node_network_receive_nohandler_total{device=\"eth0\"} 4",
            "node_network_receive_bytes_total{device=\"lo\"} 1000",
        ],
    );
    let excluded = run("netdev", &[("proc/net/dev", dev)], &["--collector.netdev.device-exclude=^lo$"]).unwrap();
    assert!(!excluded.contains("device=\"lo\""), "{excluded}");
    let no_netlink = run("netdev", &[("proc/net/dev", dev)], &["--no-collector.netdev.netlink"]).unwrap();
    assert!(!no_netlink.contains("nohandler"), "{no_netlink}");

    let eth0 = |file: &str, value: &str| (format!("sys/class/net/eth0/{file}"), value.to_string());
    let files: Vec<(String, String)> = vec![
        eth0("operstate", "up\n"),
        eth0("address", "02:00:00:00:00:01\n"),
        eth0("broadcast", "ff:ff:ff:ff:ff:ff\n"),
        eth0("duplex", "full\n"),
        eth0("ifalias", "\n"),
        eth0("mtu", "1500\n"),
        eth0("speed", "1000\n"),
        eth0("flags", "0x1003\n"),
        eth0("carrier_changes", "2\n"),
        eth0("type", "1\n"),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    check(
        "netclass",
        &files,
        &[
            "node_network_info{address=\"02:00:00:00:00:01\",broadcast=\"ff:ff:ff:ff:ff:ff\",device=\"eth0\",duplex=\"full\",ifalias=\"\",operstate=\"up\"} 1",
            "node_network_up{device=\"eth0\"} 1",
            "node_network_mtu_bytes{device=\"eth0\"} 1500",
            "node_network_speed_bytes{device=\"eth0\"} 1.25e+08",
            "node_network_flags{device=\"eth0\"} 4099",
            "node_network_carrier_changes_total{device=\"eth0\"} 2",
            "node_network_protocol_type{device=\"eth0\"} 1",
        ],
    );
    check_error("netclass", &[], "class/net");
}

#[test]
fn protocol_statistics() {
    check(
        "netstat",
        &[
            ("proc/net/netstat", "TcpExt: SyncookiesSent ListenDrops TCPTimeouts\nTcpExt: 1 2 3\nIpExt: InOctets OutOctets\nIpExt: 100 200\n"),
            ("proc/net/snmp", "Tcp: RtoMin CurrEstab InErrs\nTcp: 200 4 0\nUdp: InDatagrams NoPorts\nUdp: 7 1\n"),
            ("proc/net/snmp6", "Ip6InOctets                     900\nUdp6InDatagrams 5\nIp6InReceives 3\n"),
        ],
        &[
            "node_netstat_TcpExt_SyncookiesSent 1",
            "node_netstat_TcpExt_ListenDrops 2",
            "node_netstat_IpExt_InOctets 100",
            "node_netstat_Tcp_CurrEstab 4",
            "node_netstat_Tcp_InErrs 0",
            "node_netstat_Udp_NoPorts 1",
            "node_netstat_Ip6_InOctets 900",
            "node_netstat_Udp6_InDatagrams 5",
            "# TYPE node_netstat_Tcp_CurrEstab untyped",
        ],
    );
    check_error(
        "netstat",
        &[("proc/net/netstat", "TcpExt: A\nIpExt: 1\n"), ("proc/net/snmp", "")],
        "netstat:2: IpExt: after TcpExt: header",
    );
    check(
        "sockstat",
        &[
            ("proc/net/sockstat", "sockets: used 100\nTCP: inuse 5 orphan 0 tw 2 alloc 8 mem 3\nUDP: inuse 1 mem 1\nFRAG: inuse 0 memory 0\n"),
            ("proc/net/sockstat6", "TCP6: inuse 2\n"),
        ],
        &[
            "node_sockstat_sockets_used 100",
            "node_sockstat_TCP_inuse 5",
            "node_sockstat_TCP_tw 2",
            "node_sockstat_TCP_mem 3",
            &format!("node_sockstat_TCP_mem_bytes {}", 3 * super::net::page_size_for_tests() as u64),
            "node_sockstat_FRAG_memory 0",
            "node_sockstat_TCP6_inuse 2",
        ],
    );
    check(
        "softnet",
        &[("proc/net/softnet_stat", "0000000a 00000001 00000002 00000000\n000000ff 00000000 00000000 00000000\n")],
        &[
            "node_softnet_processed_total{cpu=\"0\"} 10",
            "node_softnet_dropped_total{cpu=\"0\"} 1",
            "node_softnet_times_squeezed_total{cpu=\"0\"} 2",
            "node_softnet_processed_total{cpu=\"1\"} 255",
        ],
    );
    check(
        "arp",
        &[(
            "proc/net/arp",
            "IP address       HW type     Flags       HW address            Mask     Device\n\
             10.0.0.1 0x1 0x2 02:00:00:00:00:01 * eth0\n10.0.0.2 0x1 0x2 02:00:00:00:00:02 * eth0\n\
             10.1.0.1 0x1 0x2 02:00:00:00:00:03 * eth1\n",
        )],
        &["node_arp_entries{device=\"eth0\"} 2", "node_arp_entries{device=\"eth1\"} 1"],
    );
    let conntrack_stat = "entries  searched found new invalid ignore delete delete_list insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n\
0000000a  00000000 00000001 00000000 00000002 00000003 00000000 00000000 00000004 00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000005\n\
0000000a  00000000 00000001 00000000 00000002 00000003 00000000 00000000 00000004 00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000005\n";
    check(
        "conntrack",
        &[
            ("proc/sys/net/netfilter/nf_conntrack_count", "12\n"),
            ("proc/sys/net/netfilter/nf_conntrack_max", "262144\n"),
            ("proc/net/stat/nf_conntrack", conntrack_stat),
        ],
        &[
            "node_nf_conntrack_entries 12",
            "node_nf_conntrack_entries_limit 262144",
            "node_nf_conntrack_stat_found 2",
            "node_nf_conntrack_stat_invalid 4",
            "node_nf_conntrack_stat_ignore 6",
            "node_nf_conntrack_stat_insert 8",
            "node_nf_conntrack_stat_search_restart 10",
        ],
    );
    check_error("conntrack", &[], "no data: conntrack is not loaded");
}

const TCP_TABLE: &str =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n   \
1: 0100007F:0016 0100007F:D431 01 00000010:00000002 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1\n";

#[test]
fn sockets() {
    check(
        "udp_queues",
        &[("proc/net/udp", TCP_TABLE)],
        &["node_udp_queues{ip=\"v4\",queue=\"tx\"} 16", "node_udp_queues{ip=\"v4\",queue=\"rx\"} 2"],
    );
    check(
        "tcpstat",
        &[("proc/net/tcp", TCP_TABLE), ("proc/net/tcp6", TCP_TABLE)],
        &[
            "node_tcp_connection_states{state=\"listen\"} 2",
            "node_tcp_connection_states{state=\"established\"} 2",
            "node_tcp_connection_states{state=\"tx_queued_bytes\"} 32",
            "node_tcp_connection_states{state=\"rx_queued_bytes\"} 4",
        ],
    );
}

#[test]
fn interrupts_and_schedstat() {
    check(
        "interrupts",
        &[(
            "proc/interrupts",
            "           CPU0       CPU1       \n  0:         22          0   IO-APIC   2-edge      timer\n\
             NMI:          1          2   Non-maskable interrupts\nERR:          0\n",
        )],
        &[
            "node_interrupts_total{cpu=\"0\",devices=\"2-edge timer\",info=\"IO-APIC\",type=\"0\"} 22",
            "node_interrupts_total{cpu=\"1\",devices=\"2-edge timer\",info=\"IO-APIC\",type=\"0\"} 0",
            "node_interrupts_total{cpu=\"1\",devices=\"\",info=\"Non-maskable interrupts\",type=\"NMI\"} 2",
        ],
    );
    check(
        "schedstat",
        &[("proc/schedstat", "version 15\ntimestamp 4294\ncpu0 0 0 0 0 0 0 2000000000 500000000 42\ndomain0 3 1 2\n")],
        &[
            "node_schedstat_running_seconds_total{cpu=\"0\"} 2",
            "node_schedstat_waiting_seconds_total{cpu=\"0\"} 0.5",
            "node_schedstat_timeslices_total{cpu=\"0\"} 42",
        ],
    );
    check_error("schedstat", &[], "schedstat");
}

#[test]
fn processes() {
    check(
        "processes",
        &[
            ("proc/1/stat", "1 (init (x)) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 10 100 5\n"),
            ("proc/1/task/1/stat", "1 (init) S 0\n"),
            ("proc/42/stat", "42 (worker) R 1 42 42 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 3 0 10 100 5\n"),
            ("proc/42/task/42/stat", "42 (worker) R 1\n"),
            ("proc/42/task/43/stat", "43 (worker) S 1\n"),
            ("proc/42/task/44/stat", "44 (worker) D 1\n"),
            ("proc/sys/kernel/threads-max", "63000\n"),
            ("proc/sys/kernel/pid_max", "4194304\n"),
        ],
        &[
            "node_processes_pids 2",
            "node_processes_threads 4",
            "node_processes_state{state=\"R\"} 1",
            "node_processes_state{state=\"S\"} 1",
            "node_processes_threads_state{thread_state=\"S\"} 2",
            "node_processes_threads_state{thread_state=\"D\"} 1",
            "node_processes_max_threads 63000",
            "node_processes_max_processes 4.194304e+06",
        ],
    );
}

#[test]
fn disks() {
    let diskstats = "   8       0 sda 100 2 800 30 50 5 400 70 0 90 100 1 0 8 4 6 12\n   \
8       1 sda1 1 0 8 0 0 0 0 0 0 0 0\n   7       0 loop0 1 0 8 0 0 0 0 0 0 0 0 0 0 0 0\n";
    check(
        "diskstats",
        &[
            ("proc/diskstats", diskstats),
            ("udev/b8:0", "S:disk/by-id/x\nE:ID_MODEL=QEMU_HARDDISK\nE:ID_SERIAL_SHORT=QM001\nE:ID_PATH=pci-0000:00:01.1\n"),
        ],
        &[
            "node_disk_reads_completed_total{device=\"sda\"} 100",
            "node_disk_read_bytes_total{device=\"sda\"} 409600",
            "node_disk_read_time_seconds_total{device=\"sda\"} 0.03",
            "node_disk_written_bytes_total{device=\"sda\"} 204800",
            "node_disk_io_time_weighted_seconds_total{device=\"sda\"} 0.1",
            "node_disk_discarded_sectors_total{device=\"sda\"} 8",
            "node_disk_flush_requests_total{device=\"sda\"} 6",
            "node_disk_flush_requests_time_seconds_total{device=\"sda\"} 0.012",
            "node_disk_info{device=\"sda\",major=\"8\",minor=\"0\",model=\"QEMU_HARDDISK\",path=\"pci-0000:00:01.1\",revision=\"\",serial=\"QM001\",wwn=\"\"} 1",
        ],
    );
    let out = run("diskstats", &[("proc/diskstats", diskstats)], &[]).unwrap();
    assert!(!out.contains("sda1") && !out.contains("loop0"), "partitions and loops are excluded:\n{out}");
    check_error("diskstats", &[("proc/diskstats", "8 0 sda 1 2\n")], "diskstats:1: expected at least 14 fields");
}

#[test]
fn filesystems() {
    // The mount table names the temp root itself (as "/" inside --path.rootfs), an excluded
    // /proc and a mount point that does not exist (device_error).
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let mounts = format!(
        "/dev/vda {} ext4 rw,relatime 0 0\nproc {}/proc proc rw 0 0\n/dev/vdb {}/gone ext4 ro 0 0\n",
        root.display(),
        root.display(),
        root.display()
    );
    let out = run("filesystem", &[("proc/1/mounts", &mounts)], &[]).unwrap();
    // run() builds its own tree, so the mount table above points at another temp dir: only
    // mount points under that run's rootfs count. Check the rootfs stripping on this one.
    assert!(!out.contains("fstype=\"proc\""), "{out}");
    let direct = {
        let config = NodeConfig::from_args([
            format!("--path.procfs={}", dir.path().join("proc").display()),
            format!("--path.rootfs={}", root.display()),
        ])
        .unwrap();
        write_tree(dir.path(), &[("proc/1/mounts", &mounts)]);
        std::fs::create_dir_all(&root).unwrap();
        let context = Context::new(&config).unwrap();
        let mut families = super::disk::filesystem(&context).unwrap();
        normalize(&mut families);
        let mut out = String::new();
        write_text(&mut out, &families);
        out
    };
    for expected in [
        "node_filesystem_readonly{device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/\"} 0",
        "node_filesystem_device_error{device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/\"} 0",
        "node_filesystem_device_error{device=\"/dev/vdb\",fstype=\"ext4\",mountpoint=\"/gone\"} 1",
    ] {
        assert!(direct.lines().any(|l| l == expected), "missing {expected:?} in\n{direct}");
    }
    assert!(direct.contains("node_filesystem_size_bytes{device=\"/dev/vda\""), "{direct}");
    assert!(!direct.contains("fstype=\"proc\""), "{direct}");
}

#[test]
fn hardware() {
    check(
        "thermal_zone",
        &[
            ("sys/class/thermal/thermal_zone0/type", "acpitz\n"),
            ("sys/class/thermal/thermal_zone0/temp", "42500\n"),
            ("sys/class/thermal/cooling_device0/type", "Processor\n"),
            ("sys/class/thermal/cooling_device0/cur_state", "0\n"),
            ("sys/class/thermal/cooling_device0/max_state", "3\n"),
        ],
        &[
            "node_thermal_zone_temp{type=\"acpitz\",zone=\"0\"} 42.5",
            "node_cooling_device_cur_state{name=\"0\",type=\"Processor\"} 0",
            "node_cooling_device_max_state{name=\"0\",type=\"Processor\"} 3",
        ],
    );
    check(
        "cpufreq",
        &[
            ("sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq", "1800000\n"),
            ("sys/devices/system/cpu/cpu0/cpufreq/scaling_max_freq", "3000000\n"),
            ("sys/devices/system/cpu/cpufreq/policy0/scaling_cur_freq", "1\n"),
        ],
        &[
            "node_cpu_scaling_frequency_hertz{cpu=\"0\"} 1.8e+09",
            "node_cpu_scaling_frequency_max_hertz{cpu=\"0\"} 3e+09",
        ],
    );
    check(
        "hwmon",
        &[
            ("sys/class/hwmon/hwmon0/name", "coretemp\n"),
            ("sys/class/hwmon/hwmon0/temp1_input", "55000\n"),
            ("sys/class/hwmon/hwmon0/temp1_crit", "100000\n"),
            ("sys/class/hwmon/hwmon0/temp1_crit_alarm", "0\n"),
            ("sys/class/hwmon/hwmon0/temp1_label", "Package id 0\n"),
            ("sys/class/hwmon/hwmon0/fan1_input", "1200\n"),
            ("sys/class/hwmon/hwmon0/fan1_min", "300\n"),
            ("sys/class/hwmon/hwmon0/in0_input", "1200\n"),
            ("sys/class/hwmon/hwmon0/uevent", "x\n"),
        ],
        &[
            "node_hwmon_chip_names{chip=\"coretemp\",chip_name=\"coretemp\"} 1",
            "node_hwmon_temp_celsius{chip=\"coretemp\",sensor=\"temp1\"} 55",
            "node_hwmon_temp_crit_celsius{chip=\"coretemp\",sensor=\"temp1\"} 100",
            "node_hwmon_temp_crit_alarm_celsius{chip=\"coretemp\",sensor=\"temp1\"} 0",
            "node_hwmon_sensor_label{chip=\"coretemp\",label=\"Package id 0\",sensor=\"temp1\"} 1",
            "node_hwmon_fan_rpm{chip=\"coretemp\",sensor=\"fan1\"} 1200",
            "node_hwmon_fan_min_rpm{chip=\"coretemp\",sensor=\"fan1\"} 300",
            "node_hwmon_in_volts{chip=\"coretemp\",sensor=\"in0\"} 1.2",
        ],
    );
    check_error("hwmon", &[], "class/hwmon");
    check(
        "powersupplyclass",
        &[
            ("sys/class/power_supply/AC/online", "1\n"),
            ("sys/class/power_supply/AC/type", "Mains\n"),
            ("sys/class/power_supply/BAT0/capacity", "81\n"),
            ("sys/class/power_supply/BAT0/energy_now", "40000000\n"),
            ("sys/class/power_supply/BAT0/status", "Discharging\n"),
        ],
        &[
            "node_power_supply_online{power_supply=\"AC\"} 1",
            "node_power_supply_info{power_supply=\"AC\",type=\"Mains\"} 1",
            "node_power_supply_capacity{power_supply=\"BAT0\"} 81",
            "node_power_supply_energy_watthour{power_supply=\"BAT0\"} 40",
            "node_power_supply_info{power_supply=\"BAT0\",status=\"Discharging\"} 1",
        ],
    );
}

#[test]
fn edac_bonding_rapl() {
    check(
        "edac",
        &[
            ("sys/devices/system/edac/mc/mc0/ce_count", "3\n"),
            ("sys/devices/system/edac/mc/mc0/ue_count", "1\n"),
            ("sys/devices/system/edac/mc/mc0/ce_noinfo_count", "0\n"),
            ("sys/devices/system/edac/mc/mc0/ue_noinfo_count", "0\n"),
            ("sys/devices/system/edac/mc/mc0/csrow0/ce_count", "2\n"),
            ("sys/devices/system/edac/mc/mc0/csrow0/ue_count", "1\n"),
        ],
        &[
            "node_edac_correctable_errors_total{controller=\"0\"} 3",
            "node_edac_uncorrectable_errors_total{controller=\"0\"} 1",
            "node_edac_csrow_correctable_errors_total{controller=\"0\",csrow=\"unknown\"} 0",
            "node_edac_csrow_correctable_errors_total{controller=\"0\",csrow=\"0\"} 2",
            "node_edac_csrow_uncorrectable_errors_total{controller=\"0\",csrow=\"0\"} 1",
        ],
    );
    assert_eq!(run("edac", &[], &[]).unwrap(), "", "no controllers, no metrics, no failure");
    check(
        "bonding",
        &[
            ("sys/class/net/bonding_masters", "bond0\n"),
            ("sys/class/net/bond0/bonding/slaves", "eth0 eth1\n"),
            ("sys/class/net/bond0/lower_eth0/bonding_slave/mii_status", "up\n"),
            ("sys/class/net/bond0/slave_eth1/bonding_slave/mii_status", "down\n"),
        ],
        &["node_bonding_slaves{master=\"bond0\"} 2", "node_bonding_active{master=\"bond0\"} 1"],
    );
    check_error("bonding", &[], "no data");
    check(
        "rapl",
        &[
            ("sys/class/powercap/intel-rapl:0/name", "package-0\n"),
            ("sys/class/powercap/intel-rapl:0/energy_uj", "2500000\n"),
            ("sys/class/powercap/intel-rapl:0/max_energy_range_uj", "262143328850\n"),
            ("sys/class/powercap/intel-rapl:0:0/name", "core\n"),
            ("sys/class/powercap/intel-rapl:0:0/energy_uj", "1000000\n"),
            ("sys/class/powercap/intel-rapl:0:0/max_energy_range_uj", "262143328850\n"),
        ],
        &[
            "node_rapl_package_joules_total{index=\"0\",path=\"ROOT/sys/class/powercap/intel-rapl:0\"} 2.5",
            "node_rapl_core_joules_total{index=\"0\",path=\"ROOT/sys/class/powercap/intel-rapl:0:0\"} 1",
        ],
    );
    check_error("rapl", &[], "no data");
}

#[test]
fn host_identity_and_clocks() {
    check(
        "os",
        &[(
            "root/etc/os-release",
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n\
             VERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n# comment\n",
        )],
        &[
            "node_os_info{build_id=\"\",id=\"debian\",id_like=\"\",image_id=\"\",image_version=\"\",name=\"Debian GNU/Linux\",pretty_name=\"Debian GNU/Linux 12 (bookworm)\",variant=\"\",variant_id=\"\",version=\"12 (bookworm)\",version_codename=\"bookworm\",version_id=\"12\"} 1",
            "node_os_version{id=\"debian\",id_like=\"\",name=\"Debian GNU/Linux\"} 12",
        ],
    );
    check(
        "os",
        &[("root/usr/lib/os-release", "ID=x\nVERSION_ID=22.04.3\n")],
        &["node_os_version{id=\"x\",id_like=\"\",name=\"\"} 22.04"],
    );
    check_error("os", &[], "os-release");
    check(
        "time",
        &[
            ("sys/devices/system/clocksource/clocksource0/available_clocksource", "tsc hpet acpi_pm \n"),
            ("sys/devices/system/clocksource/clocksource0/current_clocksource", "tsc\n"),
        ],
        &[
            "node_time_clocksource_available_info{clocksource=\"hpet\",device=\"0\"} 1",
            "node_time_clocksource_current_info{clocksource=\"tsc\",device=\"0\"} 1",
            "# TYPE node_time_seconds gauge",
        ],
    );
    check("selinux", &[], &["node_selinux_enabled 0"]);
    check("selinux", &[("sys/fs/selinux/enforce", "1\n")], &["node_selinux_enabled 1", "node_selinux_current_mode 1"]);
    check("uname", &[], &["# TYPE node_uname_info gauge"]);
    check("timex", &[], &["# TYPE node_timex_sync_status gauge", "# TYPE node_timex_pps_jitter_total counter"]);
}

#[test]
fn textfiles() {
    check(
        "textfile",
        &[
            ("textfile/good.prom", "# HELP job_ok Whether it ran.\n# TYPE job_ok gauge\njob_ok{job=\"backup\"} 1\n"),
            ("textfile/ignored.txt", "not read 1 2 3\n"),
        ],
        &["job_ok{job=\"backup\"} 1", "# TYPE job_ok gauge", "node_textfile_scrape_error 0"],
    );
    let out = run("textfile", &[("textfile/good.prom", "a 1\n"), ("textfile/bad.prom", "a 1 2\n")], &[]).unwrap();
    assert!(out.contains("node_textfile_scrape_error 1\n"), "{out}");
    assert!(out.contains("node_textfile_mtime_seconds{file=\"ROOT/textfile/good.prom\"}"), "{out}");
    assert!(!out.contains("bad.prom"), "{out}");
    check("textfile", &[], &["node_textfile_scrape_error 0"]);
}

#[test]
fn flags() {
    let config = NodeConfig::from_args([
        "--collector.disable-defaults",
        "--collector.cpu",
        "-collector.processes",
        "--no-collector.processes",
        "--collector.meminfo=true",
        "--collector.textfile.directory",
        "/tmp/x",
        "-web.listen-address=127.0.0.1:1",
        "--collector.systemd",
        "--log.level=debug",
        "--collector.filesystem.mount-timeout=500ms",
    ])
    .unwrap();
    assert_eq!(config.mount_timeout, std::time::Duration::from_millis(500));
    assert_eq!(config.collectors, vec!["cpu", "meminfo"]);
    assert_eq!(config.listen_address, "127.0.0.1:1");
    assert_eq!(config.textfile_directory.as_deref(), Some(Path::new("/tmp/x")));
    assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);

    let defaults = NodeConfig::from_args(Vec::<String>::new()).unwrap();
    assert!(defaults.collectors.iter().any(|c| c == "cpu"));
    assert!(!defaults.collectors.iter().any(|c| c == "processes"));

    for (args, expected) in [
        (vec!["--collector.nonsense"], "unknown flag"),
        (vec!["--web.unknown=1"], "unknown flag"),
        (vec!["--path.procfs"], "expected a value"),
        (vec!["stray"], "unexpected argument"),
        (vec!["--collector.vmstat.fields=("], "--collector.vmstat.fields"),
        (vec!["--collector.timeout=0s"], "bad duration"),
        // The server reads --web.config.file (`sextant exporter` takes it off first), not NodeConfig.
        (vec!["--web.config.file=web.yml"], "unknown flag"),
    ] {
        let err = NodeConfig::from_args(args.clone()).unwrap_err().to_string();
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn a_missing_proc_file_fails_that_collector_only() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[("proc/loadavg", "1 2 3 1/1 1\n")]);
    let config = NodeConfig::from_args([
        format!("--path.procfs={}", dir.path().join("proc").display()),
        "--collector.disable-defaults".to_string(),
        "--collector.loadavg".to_string(),
        "--collector.meminfo".to_string(),
    ])
    .unwrap();
    let registry = config.registry().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let text = runtime.block_on(registry.encode(crate::Format::Text));
    assert!(text.contains("node_load1 1\n"), "{text}");
    assert!(text.contains("node_scrape_collector_success{collector=\"loadavg\"} 1\n"), "{text}");
    assert!(text.contains("node_scrape_collector_success{collector=\"meminfo\"} 0\n"), "{text}");
}

/// The files the collectors parse, for the property test below.
const PARSED_FILES: &[&str] = &[
    "proc/stat",
    "proc/loadavg",
    "proc/meminfo",
    "proc/vmstat",
    "proc/diskstats",
    "proc/interrupts",
    "proc/schedstat",
    "proc/1/mounts",
    "proc/net/dev",
    "proc/net/netstat",
    "proc/net/snmp",
    "proc/net/snmp6",
    "proc/net/sockstat",
    "proc/net/softnet_stat",
    "proc/net/arp",
    "proc/net/udp",
    "proc/net/tcp",
    "proc/net/stat/nf_conntrack",
    "proc/sys/net/netfilter/nf_conntrack_count",
    "proc/sys/net/netfilter/nf_conntrack_max",
    "proc/sys/fs/file-nr",
    "proc/pressure/cpu",
    "proc/pressure/io",
    "proc/pressure/memory",
    "root/etc/os-release",
    "sys/class/net/eth0/speed",
    "sys/class/hwmon/hwmon0/temp1_input",
    "sys/class/thermal/thermal_zone0/temp",
];

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]

    /// Garbage in any /proc or /sys file is an error or odd values, never a panic.
    #[test]
    fn collectors_never_panic_on_garbage(contents in proptest::collection::vec("(?s).{0,120}|([0-9a-f: ()\\t\\n-]{0,120})", PARSED_FILES.len())) {
        let dir = tempfile::tempdir().unwrap();
        for (file, text) in PARSED_FILES.iter().zip(&contents) {
            write_tree(dir.path(), &[(file, text)]);
        }
        let config = NodeConfig::from_args([
            format!("--path.procfs={}", dir.path().join("proc").display()),
            format!("--path.sysfs={}", dir.path().join("sys").display()),
            format!("--path.rootfs={}", dir.path().join("root").display()),
        ])
        .unwrap();
        let context = Context::new(&config).unwrap();
        for (_, _, collect) in COLLECTORS {
            let _ = collect(&context);
        }
    }
}
