//! The HTTP client that sends webhooks, with a guard against server-side request forgery: by
//! default no request reaches a loopback, private, link-local or otherwise internal address,
//! whether the URL names it or DNS answers with it. The guard sits in the resolver, so the
//! address checked is the address connected to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// Addresses a webhook must not reach unless the operator allows it: every block of IANA's
/// IPv4 and IPv6 special-purpose address registries, multicast, the reserved 240.0.0.0/4, the
/// deprecated site-local fec0::/10, and any address of this host's own interfaces. An IPv6
/// address that carries an IPv4 one (mapped, translated by NAT64, 6to4) is judged by the IPv4
/// address it leads to.
pub fn is_internal(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(a) => embedded_v4(a).map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let special = match ip {
        IpAddr::V4(a) => is_special_v4(a),
        IpAddr::V6(a) => is_special_v6(a),
    };
    special || is_own_address(ip)
}

/// `(network, prefix length)` blocks of IPv4 that are not the public Internet.
const SPECIAL_V4: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),       // "this network"
    ([10, 0, 0, 0], 8),      // private
    ([100, 64, 0, 0], 10),   // shared address space (carrier-grade NAT)
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local (cloud metadata services live here)
    ([172, 16, 0, 0], 12),   // private
    ([192, 0, 0, 0], 24),    // IETF protocol assignments (DS-Lite, NAT64 discovery, …)
    ([192, 0, 2, 0], 24),    // documentation (TEST-NET-1)
    ([192, 31, 196, 0], 24), // AS112
    ([192, 52, 193, 0], 24), // AMT
    ([192, 88, 99, 0], 24),  // 6to4 relay anycast (deprecated)
    ([192, 168, 0, 0], 16),  // private
    ([192, 175, 48, 0], 24), // AS112 direct delegation
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // documentation (TEST-NET-2)
    ([203, 0, 113, 0], 24),  // documentation (TEST-NET-3)
    ([224, 0, 0, 0], 4),     // multicast
    ([240, 0, 0, 0], 4),     // reserved, and 255.255.255.255 (broadcast)
];

/// `(network, prefix length)` blocks of IPv6 that are not the public Internet. The blocks
/// that embed an IPv4 address are in `embedded_v4`.
const SPECIAL_V6: &[(u128, u32)] = &[
    (0, 96),                           // ::/128, ::1/128 and IPv4-compatible ::a.b.c.d
    (0x0064_ff9b_0001 << 80, 48),      // 64:ff9b:1::/48, local-use translation
    (0x0100 << 112, 64),               // 100::/64, discard-only
    (0x0100_0000_0000_0001 << 64, 64), // 100:0:0:1::/64, dummy prefix
    (0x2001 << 112, 23),               // 2001::/23, IETF protocol assignments (Teredo, ORCHID, …)
    (0x2001_0db8 << 96, 32),           // 2001:db8::/32, documentation
    (0x2620_004f_8000 << 80, 48),      // 2620:4f:8000::/48, AS112
    (0x3fff << 112, 20),               // 3fff::/20, documentation
    (0x5f00 << 112, 16),               // 5f00::/16, segment routing
    (0xfc00 << 112, 7),                // fc00::/7, unique local
    (0xfe80 << 112, 10),               // fe80::/10, link-local
    (0xfec0 << 112, 10),               // fec0::/10, site-local (deprecated)
    (0xff00 << 112, 8),                // ff00::/8, multicast
];

fn in_block(address: u128, network: u128, prefix: u32, width: u32) -> bool {
    let shift = width - prefix;
    if shift >= width {
        return true;
    }
    address >> shift == network >> shift
}

fn is_special_v4(a: Ipv4Addr) -> bool {
    let address = u128::from(u32::from(a));
    SPECIAL_V4.iter().any(|(network, prefix)| {
        in_block(
            address,
            u128::from(u32::from_be_bytes(*network)),
            *prefix,
            32,
        )
    })
}

fn is_special_v6(a: Ipv6Addr) -> bool {
    let address = u128::from(a);
    SPECIAL_V6
        .iter()
        .any(|(network, prefix)| in_block(address, *network, *prefix, 128))
}

/// The IPv4 address an IPv6 one leads to: IPv4-mapped `::ffff:a.b.c.d`, the translated
/// `::ffff:0:a.b.c.d`, NAT64's well-known `64:ff9b::a.b.c.d`, and 6to4's `2002:aabb:ccdd::`.
fn embedded_v4(a: Ipv6Addr) -> Option<Ipv4Addr> {
    let address = u128::from(a);
    let low = Ipv4Addr::from(address as u32);
    let prefix96 = address >> 32;
    if prefix96 == 0xffff || prefix96 == 0xffff_0000 || prefix96 == 0x0064_ff9b_u128 << 64 {
        return Some(low);
    }
    if address >> 112 == 0x2002 {
        return Some(Ipv4Addr::from((address >> 80) as u32));
    }
    None
}

/// Whether `ip` is one of this host's own addresses: only those can be bound to. Binding
/// asks the kernel, so every interface counts, whatever its address.
fn is_own_address(ip: IpAddr) -> bool {
    if ip.is_unspecified() {
        return true;
    }
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| !is_internal(a.ip()))
                .collect();
            if allowed.is_empty() {
                let err: Box<dyn std::error::Error + Send + Sync> = if found.is_empty() {
                    format!("{host} does not resolve").into()
                } else {
                    format!(
                        "{host} resolves only to internal addresses, which webhooks may not reach \
                         (start memberd with --allow-private-webhook-targets to allow them)"
                    )
                    .into()
                };
                return Err(err);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

pub fn client(timeout: Duration, allow_private: bool) -> reqwest::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        // A redirect could lead anywhere; Standard Webhooks senders do not follow them.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("memberd-webhooks/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(30));
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(GuardedResolver));
    }
    builder.build()
}

/// Refuses a URL that names an internal address outright (the resolver never sees those).
pub fn check_literal(url: &Url, allow_private: bool) -> Result<(), String> {
    if allow_private {
        return Ok(());
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(a)) => IpAddr::V4(a),
        Some(url::Host::Ipv6(a)) => IpAddr::V6(a),
        Some(url::Host::Domain(d)) if is_localhost_name(d) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        _ => return Ok(()),
    };
    if is_internal(ip) {
        return Err(format!(
            "{ip} is an internal address, which webhooks may not reach \
             (start memberd with --allow-private-webhook-targets to allow it)"
        ));
    }
    Ok(())
}

/// `localhost` and every name under it (RFC 6761), with or without the root's dot.
fn is_localhost_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn internal(s: &str) -> bool {
        is_internal(s.parse().unwrap())
    }

    #[test]
    fn internal_addresses_are_recognised() {
        for inside in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "198.18.0.1",
            "198.19.255.254",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "192.0.0.170",
            "203.0.113.9",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "::8.8.8.8",
            "::ffff:0:127.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2001:db8::1",
            "2001::1",
            "100::1",
        ] {
            assert!(internal(inside), "{inside}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "100.128.0.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:808:808::1",
        ] {
            assert!(!internal(public), "{public}");
        }
    }

    #[test]
    fn this_hosts_own_addresses_are_internal() {
        // Whatever address the host reaches the outside from (no packet is sent: connecting a
        // UDP socket only picks the route), and, always, its loopback.
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        if socket.connect("192.0.2.1:9").is_ok() {
            let own = socket.local_addr().unwrap().ip();
            assert!(is_own_address(own), "{own}");
            assert!(is_internal(own), "{own}");
        }
        assert!(is_own_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))));
        assert!(!is_own_address("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn literal_internal_urls_are_refused_unless_allowed() {
        let url = Url::parse("http://127.0.0.1:9/x").unwrap();
        assert!(check_literal(&url, false).is_err());
        assert!(check_literal(&url, true).is_ok());
        for inside in [
            "http://[::1]/",
            "http://localhost/",
            "http://LOCALHOST./",
            "http://api.localhost/",
            "http://127.1/",
            "http://0x7f000001/",
            "http://[::ffff:169.254.169.254]/",
            "http://[64:ff9b::10.0.0.1]/",
            "http://198.18.0.1/",
        ] {
            let url = Url::parse(inside).unwrap();
            assert!(check_literal(&url, false).is_err(), "{inside}");
        }
        assert!(check_literal(&Url::parse("https://example.com/").unwrap(), false).is_ok());
        assert!(check_literal(&Url::parse("https://8.8.8.8/").unwrap(), false).is_ok());
    }

    /// Blocks of the public Internet, none of them special, to draw addresses from.
    const PUBLIC_V4: &[(u8, u32)] = &[(8, 8), (45, 8), (93, 8), (151, 8), (185, 8), (212, 8)];

    fn v4_in(network: [u8; 4], prefix: u32, host: u32) -> Ipv4Addr {
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        Ipv4Addr::from((u32::from_be_bytes(network) & mask) | (host & !mask))
    }

    fn v6_in(network: u128, prefix: u32, host: u128) -> Ipv6Addr {
        let mask = if prefix == 0 {
            0
        } else {
            u128::MAX << (128 - prefix)
        };
        Ipv6Addr::from((network & mask) | (host & !mask))
    }

    proptest! {
        #[test]
        fn every_address_of_a_special_v4_block_is_internal(i in 0..SPECIAL_V4.len(), host: u32) {
            let (network, prefix) = SPECIAL_V4[i];
            let a = v4_in(network, prefix, host);
            prop_assert!(is_internal(IpAddr::V4(a)), "{}", a);
        }

        #[test]
        fn every_address_of_a_special_v6_block_is_internal(i in 0..SPECIAL_V6.len(), host: u128) {
            let (network, prefix) = SPECIAL_V6[i];
            let a = v6_in(network, prefix, host);
            prop_assert!(is_internal(IpAddr::V6(a)), "{}", a);
        }

        #[test]
        fn public_addresses_are_not_internal(i in 0..PUBLIC_V4.len(), host: u32, v6_host: u128) {
            let (first, prefix) = PUBLIC_V4[i];
            let a = v4_in([first, 0, 0, 0], prefix, host);
            prop_assert!(!is_internal(IpAddr::V4(a)), "{}", a);
            // 2600::/12 and 2a00::/12 are allocated to registries for the public Internet.
            for network in [0x2600u128 << 112, 0x2a00u128 << 112] {
                let b = v6_in(network, 12, v6_host);
                prop_assert!(!is_internal(IpAddr::V6(b)), "{}", b);
            }
        }

        #[test]
        fn an_ipv6_form_of_an_ipv4_address_is_judged_as_that_address(raw: u32) {
            let v4 = Ipv4Addr::from(raw);
            let verdict = is_internal(IpAddr::V4(v4));
            let low = u128::from(raw);
            for form in [
                0xffff_u128 << 32 | low,                // ::ffff:a.b.c.d
                0xffff_0000_u128 << 32 | low,           // ::ffff:0:a.b.c.d
                0x0064_ff9b_u128 << 96 | low,           // 64:ff9b::a.b.c.d
                0x2002_u128 << 112 | low << 80 | 1,     // 2002:aabb:ccdd::1
            ] {
                let v6 = Ipv6Addr::from(form);
                prop_assert_eq!(is_internal(IpAddr::V6(v6)), verdict, "{} for {}", v6, v4);
            }
        }
    }
}
