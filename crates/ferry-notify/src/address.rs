//! Which addresses a webhook may reach without an admin's permission: the public internet.
//! Loopback, link-local and private addresses lead to the server itself, its network and
//! its cloud's metadata service; a team lead's webhook must not be a way in there. No I/O
//! here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The kind of non-public address `ip` is, as people name it (`a loopback address
/// (127.0.0.0/8)`), or `None` for a public one. An IPv4 address inside IPv6 (`::ffff:a.b.c.d`)
/// is judged as the IPv4 address it is.
pub fn private_range(ip: IpAddr) -> Option<&'static str> {
    match ip.to_canonical() {
        IpAddr::V4(ip) => private_v4(ip),
        IpAddr::V6(ip) => private_v6(ip),
    }
}

fn private_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    Some(match (a, b) {
        (127, _) => "a loopback address (127.0.0.0/8)",
        (0, _) => "an unspecified address (0.0.0.0/8)",
        (10, _) => "a private address (10.0.0.0/8)",
        (172, 16..=31) => "a private address (172.16.0.0/12)",
        (192, 168) => "a private address (192.168.0.0/16)",
        (169, 254) => "a link-local address (169.254.0.0/16)",
        (100, 64..=127) => "a shared address (100.64.0.0/10)",
        _ => return None,
    })
}

fn private_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("a loopback address (::1)")
    } else if ip.is_unspecified() {
        Some("an unspecified address (::)")
    } else if first & 0xfe00 == 0xfc00 {
        Some("a unique local address (fc00::/7)")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address (fe80::/10)")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_link_local_ranges_are_named_and_public_ones_pass() {
        let private = [
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("10.1.2.3", "10.0.0.0/8"),
            ("172.16.0.1", "172.16.0.0/12"),
            ("172.31.255.255", "172.16.0.0/12"),
            ("192.168.1.1", "192.168.0.0/16"),
            ("169.254.169.254", "link-local"),
            ("100.100.100.200", "100.64.0.0/10"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fc00::1", "fc00::/7"),
            ("fd12:3456::1", "fc00::/7"),
            ("fe80::1", "fe80::/10"),
            ("febf::1", "fe80::/10"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "10.0.0.0/8"),
        ];
        for (ip, range) in private {
            let named = private_range(ip.parse().unwrap());
            assert!(named.is_some_and(|n| n.contains(range)), "{ip}: {named:?}");
        }
        let public = [
            "1.1.1.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.169.0.1",
            "169.253.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "11.0.0.1",
            "2001:db8::1",
            "2606:4700::1111",
            "fec0::1",
            "::ffff:8.8.8.8",
        ];
        for ip in public {
            assert_eq!(private_range(ip.parse().unwrap()), None, "{ip}");
        }
    }
}
