//! The ICMP prober: one IPv4 echo request over a raw socket (root or CAP_NET_RAW), as
//! blackbox_exporter sends it, reporting the reply's TTL as `probe_icmp_reply_hop_limit`.

use std::net::Ipv4Addr;
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

/// An echo request with `id` and `seq`.
fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut packet = vec![8, 0, 0, 0];
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

/// Sends one echo request and waits for the reply: (setup seconds, rtt seconds, TTL).
pub(crate) fn ping(target: Ipv4Addr, timeout: Duration) -> Result<(f64, f64, u8), String> {
    let setup_start = Instant::now();
    // SAFETY: plain socket syscalls on a descriptor owned by this function and closed on
    // every path; buffers are valid for the lengths passed.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP);
        if fd < 0 {
            return Err(format!("raw ICMP socket: {} (needs root or CAP_NET_RAW)", std::io::Error::last_os_error()));
        }
        let result = (|| {
            let tv = libc::timeval {
                tv_sec: timeout.as_secs() as libc::time_t,
                tv_usec: timeout.subsec_micros() as libc::suseconds_t,
            };
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const libc::timeval as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
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
}
