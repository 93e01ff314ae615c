//! Which address a request came from, behind reverse proxies (`--trusted-proxy`).
//!
//! `X-Forwarded-For` is believed only from a trusted proxy, and only as far as it goes through
//! trusted proxies: read from the right, the first address that is not a trusted proxy is the
//! client. A client that writes the header itself gains nothing, since what it wrote sits to
//! the left of what its proxy appended.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// The networks whose `X-Forwarded-For` is believed. Empty: the header is ignored.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// From addresses (`127.0.0.1`, `::1`) and networks (`10.0.0.0/8`); the error names the
    /// one that is neither.
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Result<TrustedProxies, String> {
        list.iter()
            .map(|raw| {
                let raw = raw.as_ref().trim();
                IpNet::from_str(raw)
                    .or_else(|_| IpAddr::from_str(raw).map(IpNet::from))
                    .map_err(|_| {
                        format!("{raw:?} is neither an IP address nor a network such as 10.0.0.0/8")
                    })
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The client's address: `peer`'s, unless `peer` is a trusted proxy, then the rightmost
    /// address of `forwarded_for` (the header's values, in order) that is not one. A header
    /// that cannot be read is not believed.
    pub fn client_of<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl Iterator<Item = &'a [u8]>,
    ) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let mut hops = Vec::new();
        for value in forwarded_for {
            let Ok(value) = std::str::from_utf8(value) else {
                return peer;
            };
            for hop in value.split(',') {
                match parse_hop(hop.trim()) {
                    Some(addr) => hops.push(addr.to_canonical()),
                    None => return peer,
                }
            }
        }
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            client = hop;
            if !self.trusts(hop) {
                break;
            }
        }
        client
    }
}

/// `203.0.113.7`, `2001:db8::1`, `[2001:db8::1]:443` or `203.0.113.7:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(addr) = IpAddr::from_str(hop) {
        return Some(addr);
    }
    std::net::SocketAddr::from_str(hop).ok().map(|s| s.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(trusted: &[&str], peer: &str, header: &[&str]) -> String {
        TrustedProxies::parse(trusted)
            .unwrap()
            .client_of(
                peer.parse().unwrap(),
                header.iter().map(|value| value.as_bytes()),
            )
            .to_string()
    }

    #[test]
    fn the_header_is_believed_only_from_a_trusted_proxy() {
        assert_eq!(client(&[], "127.0.0.1", &["203.0.113.7"]), "127.0.0.1");
        assert_eq!(
            client(&["10.0.0.0/8"], "192.0.2.1", &["203.0.113.7"]),
            "192.0.2.1"
        );
        assert_eq!(
            client(&["127.0.0.1"], "127.0.0.1", &["203.0.113.7"]),
            "203.0.113.7"
        );
        assert_eq!(client(&["127.0.0.1"], "127.0.0.1", &[]), "127.0.0.1");
    }

    #[test]
    fn what_the_client_wrote_itself_is_not_believed() {
        // The client sent "X-Forwarded-For: 198.51.100.1"; its proxy appended its address.
        assert_eq!(
            client(&["127.0.0.1"], "127.0.0.1", &["198.51.100.1, 203.0.113.7"]),
            "203.0.113.7"
        );
        // Through two trusted proxies, over two header lines.
        assert_eq!(
            client(
                &["127.0.0.1", "10.0.0.0/8"],
                "127.0.0.1",
                &["198.51.100.1, 203.0.113.7", "10.1.2.3"]
            ),
            "203.0.113.7"
        );
        // Every hop trusted: the leftmost.
        assert_eq!(
            client(&["10.0.0.0/8", "127.0.0.1"], "127.0.0.1", &["10.0.0.5"]),
            "10.0.0.5"
        );
    }

    #[test]
    fn an_unreadable_header_is_not_believed() {
        assert_eq!(
            client(&["127.0.0.1"], "127.0.0.1", &["unknown"]),
            "127.0.0.1"
        );
        assert_eq!(
            client(&["127.0.0.1"], "127.0.0.1", &["[2001:db8::1]:443"]),
            "2001:db8::1"
        );
        assert_eq!(
            client(&["::1"], "::ffff:127.0.0.1", &["203.0.113.7"]),
            "127.0.0.1"
        );
        assert!(TrustedProxies::parse(&["10.0.0.0/33"]).is_err());
        assert!(TrustedProxies::parse(&["proxy.local"]).is_err());
    }
}
