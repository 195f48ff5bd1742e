//! Network collectors: interfaces, protocol counters, sockets, conntrack.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::{parse_number, read, read_f64, Context};
use crate::Error;
use sextant_model::exposition::{MetricFamily, MetricType};

pub(super) fn arp(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let path = ctx.proc("net/arp");
    let text = read(&path)?;
    let mut per_device: BTreeMap<&str, f64> = BTreeMap::new();
    for line in text.lines().skip(1) {
        if let Some(device) = line.split_ascii_whitespace().nth(5) {
            *per_device.entry(device).or_insert(0.0) += 1.0;
        }
    }
    let mut fam = MetricFamily::new("node_arp_entries", "ARP entries by device", MetricType::Gauge);
    for (device, count) in per_device {
        fam.push(&[("device", device)], count);
    }
    Ok(vec![fam])
}

pub(super) fn conntrack(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let count_path = ctx.proc("sys/net/netfilter/nf_conntrack_count");
    let entries = match read_f64(&count_path) {
        Ok(value) => value,
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NoData("conntrack is not loaded".into()))
        }
        Err(err) => return Err(err),
    };
    let limit = read_f64(&ctx.proc("sys/net/netfilter/nf_conntrack_max"))?;
    let mut families = vec![
        MetricFamily::single(
            "node_nf_conntrack_entries",
            "Number of currently allocated flow entries for connection tracking.",
            MetricType::Gauge,
            entries,
        ),
        MetricFamily::single(
            "node_nf_conntrack_entries_limit",
            "Maximum size of connection tracking table.",
            MetricType::Gauge,
            limit,
        ),
    ];
    // Per-CPU hexadecimal counters under a header line; summed over CPUs.
    let stat_path = ctx.proc("net/stat/nf_conntrack");
    let text = read(&stat_path)?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_ascii_whitespace().collect();
    let mut sums = vec![0.0; header.len()];
    for (line_no, line) in lines.enumerate() {
        for (idx, value) in line.split_ascii_whitespace().enumerate().take(header.len()) {
            let value = u64::from_str_radix(value, 16)
                .map_err(|_| Error::parse(&stat_path, line_no + 2, format!("bad hex value {value:?}")))?;
            sums[idx] += value as f64;
        }
    }
    let fields = [
        ("found", "Number of searched entries which were successful."),
        ("invalid", "Number of packets seen which can not be tracked."),
        ("ignore", "Number of packets seen which are already connected to a conntrack entry."),
        ("insert", "Number of entries inserted into the list."),
        ("insert_failed", "Number of entries for which list insertion was attempted but failed."),
        ("drop", "Number of packets dropped due to conntrack failure."),
        (
            "early_drop",
            "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached.",
        ),
        ("search_restart", "Number of conntrack table lookups which had to be restarted due to hashtable resizes."),
    ];
    for (field, help) in fields {
        let value = header.iter().position(|h| *h == field).map(|idx| sums[idx]).unwrap_or(0.0);
        families.push(MetricFamily::single(format!("node_nf_conntrack_stat_{field}"), help, MetricType::Gauge, value));
    }
    Ok(families)
}

fn netdev_included(ctx: &Context, device: &str) -> bool {
    if let Some(exclude) = &ctx.netdev_exclude {
        if exclude.is_match(device) {
            return false;
        }
    }
    match &ctx.netdev_include {
        Some(include) => include.is_match(device),
        None => true,
    }
}

pub(super) fn netdev(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let path = ctx.proc("net/dev");
    let text = read(&path)?;
    const RECEIVE: [&str; 8] = ["bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast"];
    const TRANSMIT: [&str; 8] = ["bytes", "packets", "errs", "drop", "fifo", "colls", "carrier", "compressed"];
    let mut families: BTreeMap<String, MetricFamily> = BTreeMap::new();
    let mut add = |direction: &str, field: &str, device: &str, value: f64| {
        let name = format!("node_network_{direction}_{field}_total");
        families
            .entry(name.clone())
            .or_insert_with(|| {
                MetricFamily::new(name, format!("Network device statistic {direction}_{field}."), MetricType::Counter)
            })
            .push(&[("device", device)], value);
    };
    for (line_no, line) in text.lines().enumerate().skip(2) {
        let Some((device, counters)) = line.split_once(':') else { continue };
        let device = device.trim();
        if !netdev_included(ctx, device) {
            continue;
        }
        let values: Vec<f64> = counters
            .split_ascii_whitespace()
            .map(|v| v.parse::<f64>().map_err(|_| Error::parse(&path, line_no + 1, format!("bad counter {v:?}"))))
            .collect::<Result<_, _>>()?;
        if values.len() < 16 {
            return Err(Error::parse(&path, line_no + 1, "expected 16 counters"));
        }
        for (field, value) in RECEIVE.iter().zip(&values[..8]) {
            add("receive", field, device, *value);
        }
        for (field, value) in TRANSMIT.iter().zip(&values[8..16]) {
            add("transmit", field, device, *value);
        }
        if ctx.netdev_netlink {
            // node_exporter reads link statistics over netlink by default, which also carry
            // the drops for unknown protocols; sysfs has the same counter.
            let nohandler = read_f64(&ctx.sys(&format!("class/net/{device}/statistics/rx_nohandler"))).unwrap_or(0.0);
            add("receive", "nohandler", device, nohandler);
        }
    }
    Ok(families.into_values().collect())
}

pub(super) fn netclass(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let base = ctx.sys("class/net");
    let devices = std::fs::read_dir(&base).map_err(|err| Error::io(&base, err))?;
    let mut names: Vec<String> = devices.flatten().filter_map(|e| e.file_name().into_string().ok()).collect();
    names.sort();
    // (file, metric, type, help)
    const ATTRIBUTES: &[(&str, &str, MetricType)] = &[
        ("addr_assign_type", "address_assign_type", MetricType::Gauge),
        ("carrier", "carrier", MetricType::Gauge),
        ("carrier_changes", "carrier_changes_total", MetricType::Counter),
        ("carrier_up_count", "carrier_up_changes_total", MetricType::Counter),
        ("carrier_down_count", "carrier_down_changes_total", MetricType::Counter),
        ("dev_id", "device_id", MetricType::Gauge),
        ("dormant", "dormant", MetricType::Gauge),
        ("flags", "flags", MetricType::Gauge),
        ("ifindex", "iface_id", MetricType::Gauge),
        ("iflink", "iface_link", MetricType::Gauge),
        ("link_mode", "iface_link_mode", MetricType::Gauge),
        ("mtu", "mtu_bytes", MetricType::Gauge),
        ("name_assign_type", "name_assign_type", MetricType::Gauge),
        ("netdev_group", "net_dev_group", MetricType::Gauge),
        ("speed", "speed_bytes", MetricType::Gauge),
        ("tx_queue_len", "transmit_queue_length", MetricType::Gauge),
        ("type", "protocol_type", MetricType::Gauge),
    ];
    let mut families: Vec<MetricFamily> = ATTRIBUTES
        .iter()
        .map(|(file, metric, kind)| {
            MetricFamily::new(format!("node_network_{metric}"), format!("Network device property: {file}"), *kind)
        })
        .collect();
    let mut info = MetricFamily::new(
        "node_network_info",
        "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
        MetricType::Gauge,
    );
    let mut up =
        MetricFamily::new("node_network_up", "Value is 1 if operstate is 'up', 0 otherwise.", MetricType::Gauge);
    for device in names {
        if ctx.netclass_ignored.is_match(&device) {
            continue;
        }
        let dir = base.join(&device);
        if !dir.is_dir() {
            continue;
        }
        let text_attr = |file: &str| -> Option<String> {
            crate::process::read_file(dir.join(file)).ok().map(|t| t.trim_end_matches('\n').to_string())
        };
        let operstate = text_attr("operstate").unwrap_or_default();
        let address = text_attr("address").unwrap_or_default();
        let broadcast = text_attr("broadcast").unwrap_or_default();
        let duplex = text_attr("duplex").unwrap_or_default();
        let ifalias = text_attr("ifalias").unwrap_or_default();
        info.push(
            &[
                ("address", &address),
                ("broadcast", &broadcast),
                ("device", &device),
                ("duplex", &duplex),
                ("ifalias", &ifalias),
                ("operstate", &operstate),
            ],
            1.0,
        );
        up.push(&[("device", &device)], if operstate == "up" { 1.0 } else { 0.0 });
        for ((file, _, _), fam) in ATTRIBUTES.iter().zip(families.iter_mut()) {
            // Attributes the driver does not support fail to read (EINVAL): left out.
            let Some(text) = text_attr(file) else { continue };
            let Some(mut value) = parse_number(text.trim()) else { continue };
            if *file == "speed" {
                value *= 125000.0;
            }
            fam.push(&[("device", &device)], value);
        }
    }
    families.push(info);
    families.push(up);
    Ok(families)
}

pub(super) fn netstat(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let mut values: Vec<(Arc<str>, f64)> = Vec::new();
    // The kernel's header lines and counter names never change while it runs: each is turned
    // into metric keys and matched against --collector.netstat.fields once, then looked up.
    let mut known = ctx.netstat_keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    for file in ["net/netstat", "net/snmp"] {
        let path = ctx.proc(file);
        let text = read(&path)?;
        let lines: Vec<&str> = text.lines().collect();
        for (pair_idx, pair) in lines.chunks(2).enumerate() {
            let [names, numbers] = pair else { continue };
            let (Some(protocol), Some(protocol_again)) =
                (names.split_ascii_whitespace().next(), numbers.split_ascii_whitespace().next())
            else {
                continue;
            };
            if protocol != protocol_again {
                return Err(Error::parse(&path, pair_idx * 2 + 2, format!("{protocol_again} after {protocol} header")));
            }
            if !known.headers.contains_key(*names) {
                let mut columns = names.split_ascii_whitespace();
                let protocol = columns.next().unwrap_or_default().trim_end_matches(':');
                let keys = columns
                    .map(|name| {
                        let key = format!("{protocol}_{name}");
                        ctx.netstat_fields.is_match(&key).then(|| Arc::from(key))
                    })
                    .collect();
                known.headers.insert((*names).to_string(), keys);
            }
            let keys = &known.headers[*names];
            for (key, number) in keys.iter().zip(numbers.split_ascii_whitespace().skip(1)) {
                if let Some(key) = key {
                    if let Ok(number) = number.parse::<f64>() {
                        values.push((key.clone(), number));
                    }
                }
            }
        }
    }
    // IPv6 statistics are "Ip6InReceives 12" lines; the protocol runs up to the first "6".
    if let Ok(text) = crate::process::read_file(ctx.proc("net/snmp6")) {
        for line in text.lines() {
            let mut fields = line.split_ascii_whitespace();
            let (Some(name), Some(number)) = (fields.next(), fields.next()) else { continue };
            if !known.names.contains_key(name) {
                let key = name.find('6').map(|six| format!("{}_{}", &name[..=six], &name[six + 1..]));
                let key = key.filter(|key| ctx.netstat_fields.is_match(key)).map(Arc::from);
                known.names.insert(name.to_string(), key);
            }
            if let Some(key) = &known.names[name] {
                if let Ok(number) = number.parse::<f64>() {
                    values.push((key.clone(), number));
                }
            }
        }
    }
    drop(known);
    Ok(values
        .into_iter()
        .map(|(key, value)| {
            let help = format!("Statistic {}.", key.replacen('_', "", 1));
            MetricFamily::single(format!("node_netstat_{key}"), help, MetricType::Unknown, value)
        })
        .collect())
}

/// The netstat collector's keys, by header line of `/proc/net/netstat` and `/proc/net/snmp`
/// (one key per column) and by counter name of `/proc/net/snmp6`; `None` where
/// `--collector.netstat.fields` leaves the counter out.
#[derive(Default)]
pub(super) struct NetstatKeys {
    headers: HashMap<String, Vec<Option<Arc<str>>>>,
    names: HashMap<String, Option<Arc<str>>>,
}

fn page_size() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as f64
    } else {
        4096.0
    }
}

pub(super) fn sockstat(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let mut families = Vec::new();
    let page = page_size();
    for (file, required) in [("net/sockstat", true), ("net/sockstat6", false)] {
        let path = ctx.proc(file);
        let text = match crate::process::read_file(&path) {
            Ok(text) => text,
            Err(err) if !required && err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(Error::io(&path, err)),
        };
        for (line_no, line) in text.lines().enumerate() {
            let Some((protocol, rest)) = line.split_once(':') else { continue };
            let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
            if fields.len() % 2 != 0 {
                return Err(Error::parse(&path, line_no + 1, "odd number of fields"));
            }
            for pair in fields.chunks(2) {
                let value: f64 = pair[1]
                    .parse()
                    .map_err(|_| Error::parse(&path, line_no + 1, format!("bad value {:?}", pair[1])))?;
                let name = format!("node_sockstat_{protocol}_{}", pair[0]);
                families.push(MetricFamily::single(
                    name,
                    format!("Number of {protocol} sockets in state {}.", pair[0]),
                    MetricType::Gauge,
                    value,
                ));
                if pair[0] == "mem" {
                    families.push(MetricFamily::single(
                        format!("node_sockstat_{protocol}_mem_bytes"),
                        format!("Number of {protocol} sockets in state mem_bytes."),
                        MetricType::Gauge,
                        value * page,
                    ));
                }
            }
        }
    }
    Ok(families)
}

pub(super) fn softnet(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let path = ctx.proc("net/softnet_stat");
    let text = read(&path)?;
    let mut processed =
        MetricFamily::new("node_softnet_processed_total", "Number of processed packets", MetricType::Counter);
    let mut dropped = MetricFamily::new("node_softnet_dropped_total", "Number of dropped packets", MetricType::Counter);
    let mut squeezed = MetricFamily::new(
        "node_softnet_times_squeezed_total",
        "Number of times processing packets ran out of quota",
        MetricType::Counter,
    );
    for (cpu, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields.len() < 3 {
            return Err(Error::parse(&path, cpu + 1, "expected at least 3 columns"));
        }
        let hex = |idx: usize| -> Result<f64, Error> {
            u32::from_str_radix(fields[idx], 16)
                .map(f64::from)
                .map_err(|_| Error::parse(&path, cpu + 1, format!("bad hex value {:?}", fields[idx])))
        };
        let cpu = cpu.to_string();
        processed.push(&[("cpu", &cpu)], hex(0)?);
        dropped.push(&[("cpu", &cpu)], hex(1)?);
        squeezed.push(&[("cpu", &cpu)], hex(2)?);
    }
    Ok(vec![processed, dropped, squeezed])
}

/// Sums of the hexadecimal `tx_queue:rx_queue` column of `/proc/net/{udp,tcp}[6]`.
fn queue_sums(text: &str) -> (f64, f64) {
    let mut tx = 0.0;
    let mut rx = 0.0;
    for line in text.lines().skip(1) {
        let Some(queues) = line.split_ascii_whitespace().nth(4) else { continue };
        let Some((t, r)) = queues.split_once(':') else { continue };
        tx += u64::from_str_radix(t, 16).unwrap_or(0) as f64;
        rx += u64::from_str_radix(r, 16).unwrap_or(0) as f64;
    }
    (tx, rx)
}

pub(super) fn udp_queues(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let mut fam = MetricFamily::new(
        "node_udp_queues",
        "Number of allocated memory in the kernel for UDP datagrams in bytes.",
        MetricType::Gauge,
    );
    for (file, ip) in [("net/udp", "v4"), ("net/udp6", "v6")] {
        let path = ctx.proc(file);
        match crate::process::read_file(&path) {
            Ok(text) => {
                let (tx, rx) = queue_sums(&text);
                fam.push(&[("ip", ip), ("queue", "tx")], tx);
                fam.push(&[("ip", ip), ("queue", "rx")], rx);
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && ip == "v6" => {}
            Err(err) => return Err(Error::io(&path, err)),
        }
    }
    Ok(vec![fam])
}

const TCP_STATES: [&str; 12] = [
    "",
    "established",
    "syn_sent",
    "syn_recv",
    "fin_wait1",
    "fin_wait2",
    "time_wait",
    "close",
    "close_wait",
    "last_ack",
    "listen",
    "closing",
];

/// Socket counts per TCP state and queue sums.
#[derive(Default)]
struct TcpTally {
    counts: [f64; TCP_STATES.len()],
    tx_queued: f64,
    rx_queued: f64,
}

impl TcpTally {
    fn add(&mut self, state: usize, tx: f64, rx: f64) {
        if let Some(count) = self.counts.get_mut(state) {
            *count += 1.0;
        }
        self.tx_queued += tx;
        self.rx_queued += rx;
    }
}

fn tcp_from_files(ctx: &Context, tally: &mut TcpTally) -> Result<(), Error> {
    for file in ["net/tcp", "net/tcp6"] {
        let path = ctx.proc(file);
        let text = match crate::process::read_file(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && file == "net/tcp6" => continue,
            Err(err) => return Err(Error::io(&path, err)),
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_ascii_whitespace().collect();
            let Some(state) = fields.get(3).and_then(|s| usize::from_str_radix(s, 16).ok()) else { continue };
            let (tx, rx) = fields
                .get(4)
                .and_then(|q| q.split_once(':'))
                .map(|(t, r)| (u64::from_str_radix(t, 16).unwrap_or(0), u64::from_str_radix(r, 16).unwrap_or(0)))
                .unwrap_or((0, 0));
            tally.add(state, tx as f64, rx as f64);
        }
    }
    Ok(())
}

/// Dumps the TCP sockets of one address family over netlink (`sock_diag`), as node_exporter
/// does: far cheaper than `/proc/net/tcp` with thousands of sockets. Listening sockets
/// report their accept backlog limit as write queue there, and so in `tx_queued_bytes`.
fn tcp_from_netlink(family: u8, tally: &mut TcpTally) -> std::io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLM_F_REQUEST: u16 = 1;
    const NLM_F_DUMP: u16 = 0x300;
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    // SAFETY: socket(2) with constant arguments; the result is checked below.
    let raw = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, libc::NETLINK_SOCK_DIAG) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    // nlmsghdr (16 bytes) + inet_diag_req_v2 (56 bytes): family, protocol, extensions,
    // padding, the state bit mask (all), and a zero socket id.
    let mut request = [0u8; 72];
    request[0..4].copy_from_slice(&72u32.to_ne_bytes());
    request[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    request[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    request[8..12].copy_from_slice(&1u32.to_ne_bytes());
    request[16] = family;
    request[17] = libc::IPPROTO_TCP as u8;
    request[20..24].copy_from_slice(&u32::MAX.to_ne_bytes());
    // SAFETY: an all-zero sockaddr_nl is valid; we set the family (pid 0 is the kernel).
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: the buffer and address are valid for the given lengths.
    let sent = unsafe {
        libc::sendto(
            socket.as_raw_fd(),
            request.as_ptr().cast(),
            request.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let read_u32 = |buf: &[u8], at: usize| -> u32 {
        buf.get(at..at + 4).map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(0)
    };
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: the buffer is valid for writes of its length.
        let received = unsafe { libc::recv(socket.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len(), 0) };
        if received < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        let data = &buffer[..received as usize];
        if data.is_empty() {
            return Ok(());
        }
        let mut offset = 0;
        while offset + 16 <= data.len() {
            let length = read_u32(data, offset) as usize;
            let kind = data.get(offset + 4..offset + 6).map(|b| u16::from_ne_bytes([b[0], b[1]])).unwrap_or(0);
            if length < 16 || offset + length > data.len() {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "truncated netlink message"));
            }
            match kind {
                NLMSG_DONE => return Ok(()),
                NLMSG_ERROR => {
                    let code = read_u32(data, offset + 16) as i32;
                    return Err(std::io::Error::from_raw_os_error(-code));
                }
                _ => {
                    // inet_diag_msg: family, state, timer, retrans, socket id (48 bytes),
                    // expires, rqueue, wqueue, ...
                    let message = &data[offset + 16..offset + length];
                    if message.len() >= 64 {
                        let rx = read_u32(message, 56) as f64;
                        let tx = read_u32(message, 60) as f64;
                        tally.add(message[1] as usize, tx, rx);
                    }
                }
            }
            offset += (length + 3) & !3;
        }
    }
}

pub(super) fn tcpstat(ctx: &Context) -> Result<Vec<MetricFamily>, Error> {
    let mut tally = TcpTally::default();
    // netlink sees this host's sockets; a --path.procfs tree is read from its files.
    let from_netlink = ctx.procfs == std::path::Path::new("/proc") && {
        let mut netlink = TcpTally::default();
        let ok = tcp_from_netlink(libc::AF_INET as u8, &mut netlink).is_ok();
        // A kernel without IPv6 has no IPv6 sockets to count.
        let _ = ok && tcp_from_netlink(libc::AF_INET6 as u8, &mut netlink).is_ok();
        if ok {
            tally = netlink;
        }
        ok
    };
    if !from_netlink {
        tcp_from_files(ctx, &mut tally)?;
    }
    let mut fam = MetricFamily::new("node_tcp_connection_states", "Number of connection states.", MetricType::Gauge);
    for (state, count) in TCP_STATES.iter().zip(tally.counts) {
        if !state.is_empty() && count > 0.0 {
            fam.push(&[("state", state)], count);
        }
    }
    fam.push(&[("state", "rx_queued_bytes")], tally.rx_queued);
    fam.push(&[("state", "tx_queued_bytes")], tally.tx_queued);
    Ok(vec![fam])
}

#[cfg(test)]
pub(super) fn page_size_for_tests() -> f64 {
    page_size()
}
