//! Which IP addresses lie inside a network rather than on the internet: the addresses a
//! worker refuses to fetch from when it denies private addresses.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address counts as private. `Display` reads as a noun phrase: "a loopback address".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// 127.0.0.0/8, ::1: this machine.
    Loopback,
    /// 0.0.0.0/8, ::: "this host"; connecting to it reaches this machine.
    Unspecified,
    /// 169.254.0.0/16 (cloud metadata services live at 169.254.169.254), fe80::/10.
    LinkLocal,
    /// RFC 1918 (10/8, 172.16/12, 192.168/16), unique local fc00::/7 and the deprecated
    /// site-local fec0::/10.
    Private,
    /// 100.64.0.0/10, carrier-grade NAT (RFC 6598): inside a provider's network.
    SharedNat,
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressClass::Loopback => "a loopback address",
            AddressClass::Unspecified => "an unspecified address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::Private => "a private address",
            AddressClass::SharedNat => "a shared (carrier-grade NAT) address",
        })
    }
}

/// The class of a non-public address; `None` for an address on the internet. IPv4
/// addresses embedded in IPv6 (`::ffff:127.0.0.1`, `::127.0.0.1`) count as the IPv4
/// address they carry, because that is where a connection to them goes.
pub fn classify(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some(AddressClass::Loopback)
    } else if a == 0 {
        Some(AddressClass::Unspecified)
    } else if ip.is_link_local() {
        Some(AddressClass::LinkLocal)
    } else if ip.is_private() {
        Some(AddressClass::Private)
    } else if a == 100 && (b & 0b1100_0000) == 64 {
        Some(AddressClass::SharedNat)
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressClass> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some(AddressClass::Loopback)
    } else if ip.is_unspecified() {
        Some(AddressClass::Unspecified)
    } else if let Some(v4) = embedded_v4(ip) {
        classify_v4(v4)
    } else if (first & 0xffc0) == 0xfe80 {
        Some(AddressClass::LinkLocal)
    } else if (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfec0 {
        Some(AddressClass::Private)
    } else {
        None
    }
}

/// The IPv4 address of an IPv4-mapped (`::ffff:a.b.c.d`) or IPv4-compatible (`::a.b.c.d`)
/// IPv6 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    ip.to_ipv4_mapped().or_else(|| match ip.segments() {
        [0, 0, 0, 0, 0, 0, _, _] => ip.to_ipv4(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(ip: &str) -> Option<AddressClass> {
        classify(ip.parse().unwrap())
    }

    #[test]
    fn classifies_every_private_range_at_its_edges() {
        use AddressClass::*;
        for (ip, expected) in [
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("::1", Loopback),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("::", Unspecified),
            ("169.254.169.254", LinkLocal),
            ("169.254.0.1", LinkLocal),
            ("fe80::1", LinkLocal),
            ("febf:ffff::1", LinkLocal),
            ("10.0.0.1", Private),
            ("10.255.255.255", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fec0::1", Private),
            ("100.64.0.1", SharedNat),
            ("100.127.255.255", SharedNat),
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::ffff:10.1.2.3", Private),
            ("::ffff:100.64.0.1", SharedNat),
            ("::ffff:0.0.0.0", Unspecified),
            ("::127.0.0.1", Loopback),
            ("::192.168.0.1", Private),
        ] {
            assert_eq!(class(ip), Some(expected), "{ip}");
        }
    }

    #[test]
    fn leaves_public_addresses_alone() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "169.253.255.255",
            "192.167.1.1",
            "11.0.0.1",
            "126.255.255.255",
            "2606:4700::1111",
            "2001:db8::1",
            "fbff::1",
            "ff02::1",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(class(ip), None, "{ip}");
        }
    }

    #[test]
    fn reads_as_a_noun_phrase() {
        assert_eq!(AddressClass::Loopback.to_string(), "a loopback address");
        assert_eq!(
            AddressClass::Unspecified.to_string(),
            "an unspecified address"
        );
    }
}
