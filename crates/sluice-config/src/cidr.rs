//! IP ranges (`10.0.0.0/8`, `::1/128`, or a bare address for one host), as filter-chain
//! matches and RBAC write them. Envoy's long form `{ address_prefix, prefix_len }` is read too.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::decode::{join, scalar, Cx, Decode, Fields};
use crate::yaml::{Node, NodeKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr(IpNet);

impl Cidr {
    /// Whether `ip` is in the range. An IPv4 client seen on a dual-stack socket as
    /// `::ffff:a.b.c.d` matches IPv4 ranges.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }

    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }

    pub fn parse(text: &str) -> Result<Cidr, String> {
        let net = if text.contains('/') {
            text.parse::<IpNet>().map_err(|_| {
                format!("\"{text}\" is not an IP range such as 10.0.0.0/8 or fd00::/8")
            })?
        } else {
            let ip = text.parse::<IpAddr>().map_err(|_| {
                format!("\"{text}\" is not an IP address or a range such as 10.0.0.0/8")
            })?;
            IpNet::from(ip)
        };
        // `10.1.2.3/8` means 10.0.0.0/8: say it the way it is used.
        Ok(Cidr(net.trunc()))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Decode for Cidr {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        if let NodeKind::Map(_) = &node.kind {
            let mut f = Fields::new(node, path, cx)?;
            let prefix = f.required::<String>("address_prefix", cx);
            let len = f.optional::<u8>("prefix_len", cx);
            f.finish(cx);
            let (prefix, len) = (prefix?, len.ok()?);
            let text = match len {
                Some(len) => format!("{prefix}/{len}"),
                None => prefix,
            };
            return match Cidr::parse(&text) {
                Ok(c) => Some(c),
                Err(e) => {
                    cx.error(node.line, &join(path, "address_prefix"), e);
                    None
                }
            };
        }
        let text = scalar(node, path, cx, "an IP range such as 10.0.0.0/8")?;
        match Cidr::parse(text) {
            Ok(c) => Some(c),
            Err(e) => {
                cx.error(node.line, path, e);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ranges_and_single_hosts() {
        let r = Cidr::parse("10.1.2.3/8").unwrap();
        assert_eq!(r.to_string(), "10.0.0.0/8");
        assert!(r.contains("10.200.0.1".parse().unwrap()));
        assert!(r.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!r.contains("11.0.0.1".parse().unwrap()));
        let one = Cidr::parse("::1").unwrap();
        assert_eq!(one.prefix_len(), 128);
        assert!(one.contains("::1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("example.com").is_err());
    }
}
