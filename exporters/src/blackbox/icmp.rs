//! The ICMP prober: one echo request over a raw socket (root or CAP_NET_RAW), as
//! blackbox_exporter sends it: ICMP over IPv4, ICMPv6 over IPv6 (`preferred_ip_protocol: ip6`).
//! The reply's TTL (IPv4 header) or hop limit (IPv6 ancillary data, `IPV6_RECVHOPLIMIT`) is
//! reported as `probe_icmp_reply_hop_limit`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

/// Sequence numbers of successive probes.
static SEQUENCE: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(1);

fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in bytes.chunks(2) {
        let word =
            if chunk.len() == 2 { u16::from_be_bytes([chunk[0], chunk[1]]) } else { u16::from_be_bytes([chunk[0], 0]) };
        sum = sum.wrapping_add(word as u32);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// ICMPv6 echo request and reply types (RFC 4443).
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;

/// An ICMPv4 echo request with `id` and `seq`.
fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    echo_request_typed(8, id, seq)
}

/// An echo request of ICMP type `kind`. The checksum is ICMPv4's; for ICMPv6 the kernel
/// computes it over the pseudo-header on raw sockets and overwrites the field.
fn echo_request_typed(kind: u8, id: u16, seq: u16) -> Vec<u8> {
    let mut packet = vec![kind, 0, 0, 0];
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(b"Prometheus Blackbox Exporter");
    let sum = checksum(&packet);
    packet[2..4].copy_from_slice(&sum.to_be_bytes());
    packet
}

/// The TTL of an echo reply to `id`/`seq` in a raw IPv4 packet, if it is one.
fn parse_reply(packet: &[u8], id: u16, seq: u16) -> Option<u8> {
    let header_len = (*packet.first()? & 0x0f) as usize * 4;
    let ttl = *packet.get(8)?;
    let icmp = packet.get(header_len..)?;
    if icmp.len() < 8 || icmp[0] != 0 {
        return None;
    }
    (u16::from_be_bytes([icmp[4], icmp[5]]) == id && u16::from_be_bytes([icmp[6], icmp[7]]) == seq).then_some(ttl)
}

/// Whether an ICMPv6 packet (raw ICMPv6 sockets deliver it without the IPv6 header) is the
/// echo reply to `id`/`seq`.
fn is_echo_reply_v6(icmp: &[u8], id: u16, seq: u16) -> bool {
    icmp.len() >= 8
        && icmp[0] == ICMPV6_ECHO_REPLY
        && u16::from_be_bytes([icmp[4], icmp[5]]) == id
        && u16::from_be_bytes([icmp[6], icmp[7]]) == seq
}

/// Sends one echo request and waits for the reply: (setup seconds, rtt seconds, TTL or hop
/// limit; `None` when the kernel did not pass the hop limit along).
pub(crate) fn ping(target: IpAddr, timeout: Duration) -> Result<(f64, f64, Option<u8>), String> {
    match target {
        IpAddr::V4(v4) => ping_v4(v4, timeout).map(|(setup, rtt, ttl)| (setup, rtt, Some(ttl))),
        IpAddr::V6(v6) => ping_v6(v6, timeout),
    }
}

/// The receive timeout of a socket, so a lost reply ends the wait.
///
/// # Safety
/// `fd` must be an open socket.
unsafe fn set_receive_timeout(fd: libc::c_int, timeout: Duration) {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: `tv` lives across the call and its size is passed.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
}

/// ICMPv6 echo over a raw `IPPROTO_ICMPV6` socket, reading the reply's hop limit from the
/// `IPV6_HOPLIMIT` control message as blackbox_exporter does.
fn ping_v6(target: Ipv6Addr, timeout: Duration) -> Result<(f64, f64, Option<u8>), String> {
    let setup_start = Instant::now();
    // SAFETY: plain socket syscalls on a descriptor owned by this function and closed on
    // every path; every buffer and struct passed lives across the call with its true size.
    unsafe {
        let fd = libc::socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6);
        if fd < 0 {
            return Err(format!("raw ICMPv6 socket: {} (needs root or CAP_NET_RAW)", std::io::Error::last_os_error()));
        }
        let result = (|| {
            set_receive_timeout(fd, timeout);
            let on: libc::c_int = 1;
            libc::setsockopt(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_RECVHOPLIMIT,
                &on as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            let mut addr: libc::sockaddr_in6 = std::mem::zeroed();
            addr.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            addr.sin6_addr.s6_addr = target.octets();
            let id = (std::process::id() & 0xffff) as u16;
            let seq = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let packet = echo_request_typed(ICMPV6_ECHO_REQUEST, id, seq);
            let setup = setup_start.elapsed().as_secs_f64();
            let sent_at = Instant::now();
            let sent = libc::sendto(
                fd,
                packet.as_ptr() as *const libc::c_void,
                packet.len(),
                0,
                &addr as *const libc::sockaddr_in6 as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            );
            if sent < 0 {
                return Err(format!("sending echo request: {}", std::io::Error::last_os_error()));
            }
            let mut buf = [0u8; 1500];
            // Room for one `int` control message, aligned as cmsghdr requires.
            let mut control = [0u64; 8];
            while sent_at.elapsed() < timeout {
                let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
                let mut message: libc::msghdr = std::mem::zeroed();
                message.msg_iov = &mut iov;
                message.msg_iovlen = 1;
                message.msg_control = control.as_mut_ptr() as *mut libc::c_void;
                message.msg_controllen = std::mem::size_of_val(&control) as _;
                let n = libc::recvmsg(fd, &mut message, 0);
                if n < 0 {
                    return Err(format!("waiting for echo reply: {}", std::io::Error::last_os_error()));
                }
                if !is_echo_reply_v6(&buf[..n as usize], id, seq) {
                    continue;
                }
                let mut hop_limit = None;
                let mut cmsg = libc::CMSG_FIRSTHDR(&message);
                while !cmsg.is_null() {
                    if (*cmsg).cmsg_level == libc::IPPROTO_IPV6 && (*cmsg).cmsg_type == libc::IPV6_HOPLIMIT {
                        let value = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::c_int);
                        hop_limit = u8::try_from(value).ok();
                    }
                    cmsg = libc::CMSG_NXTHDR(&message, cmsg);
                }
                return Ok((setup, sent_at.elapsed().as_secs_f64(), hop_limit));
            }
            Err("no echo reply before the timeout".to_string())
        })();
        libc::close(fd);
        result
    }
}

/// ICMPv4 echo over a raw socket; the TTL comes from the reply's IPv4 header.
fn ping_v4(target: Ipv4Addr, timeout: Duration) -> Result<(f64, f64, u8), String> {
    let setup_start = Instant::now();
    // SAFETY: plain socket syscalls on a descriptor owned by this function and closed on
    // every path; buffers are valid for the lengths passed.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP);
        if fd < 0 {
            return Err(format!("raw ICMP socket: {} (needs root or CAP_NET_RAW)", std::io::Error::last_os_error()));
        }
        let result = (|| {
            set_receive_timeout(fd, timeout);
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_addr.s_addr = u32::from_ne_bytes(target.octets());
            let id = (std::process::id() & 0xffff) as u16;
            let seq = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let packet = echo_request(id, seq);
            let setup = setup_start.elapsed().as_secs_f64();
            let sent_at = Instant::now();
            let sent = libc::sendto(
                fd,
                packet.as_ptr() as *const libc::c_void,
                packet.len(),
                0,
                &addr as *const libc::sockaddr_in as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            );
            if sent < 0 {
                return Err(format!("sending echo request: {}", std::io::Error::last_os_error()));
            }
            let mut buf = [0u8; 1500];
            while sent_at.elapsed() < timeout {
                let n = libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0);
                if n < 0 {
                    return Err(format!("waiting for echo reply: {}", std::io::Error::last_os_error()));
                }
                if let Some(ttl) = parse_reply(&buf[..n as usize], id, seq) {
                    return Ok((setup, sent_at.elapsed().as_secs_f64(), ttl));
                }
            }
            Err("no echo reply before the timeout".to_string())
        })();
        libc::close(fd);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets() {
        let request = echo_request(0x1234, 7);
        assert_eq!(checksum(&request), 0, "a packet with its checksum sums to zero");
        let mut reply = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 63, 1, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1];
        let mut icmp = request.clone();
        icmp[0] = 0;
        reply.extend_from_slice(&icmp);
        assert_eq!(parse_reply(&reply, 0x1234, 7), Some(63));
        assert_eq!(parse_reply(&reply, 0x1234, 8), None);
        assert_eq!(parse_reply(&reply[..22], 0x1234, 7), None);
        assert_eq!(parse_reply(&[], 1, 1), None);
    }

    #[test]
    fn icmpv6_packets() {
        let request = echo_request_typed(ICMPV6_ECHO_REQUEST, 0x1234, 7);
        assert_eq!(request[0], 128);
        assert!(!is_echo_reply_v6(&request, 0x1234, 7), "our own request is not the reply");
        let mut reply = request.clone();
        reply[0] = ICMPV6_ECHO_REPLY;
        assert!(is_echo_reply_v6(&reply, 0x1234, 7));
        assert!(!is_echo_reply_v6(&reply, 0x1234, 8));
        assert!(!is_echo_reply_v6(&reply, 0x1235, 7));
        assert!(!is_echo_reply_v6(&reply[..7], 0x1234, 7));
    }

    /// An echo to ::1 over ICMPv6 when raw sockets are allowed here (root or CAP_NET_RAW);
    /// without them the error must say so.
    #[test]
    fn ping_ipv6_loopback() {
        match ping(IpAddr::V6(Ipv6Addr::LOCALHOST), Duration::from_secs(2)) {
            Ok((setup, rtt, hop_limit)) => {
                assert!(setup >= 0.0 && rtt > 0.0, "{setup} {rtt}");
                assert_eq!(hop_limit, Some(64), "loopback replies with the default hop limit");
            }
            Err(message) => assert!(message.contains("raw ICMPv6 socket"), "{message}"),
        }
    }
}
