//! Addresses as config writes them: `host:port`, `[v6]:port`, or `unix:/path`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::decode::{Cx, Decode};
use crate::yaml::Node;

/// Where to listen or connect.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    Tcp(SocketAddr),
    /// A filesystem Unix-domain socket path.
    Unix(PathBuf),
}

impl Address {
    pub fn parse(text: &str) -> Result<Address, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(format!(
                    "invalid unix socket address \"{text}\": expected unix:/path/to.sock"
                ));
            }
            if path.starts_with('@') {
                return Err(format!(
                    "invalid unix socket address \"{text}\": abstract sockets are not supported; use a filesystem path"
                ));
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        text.parse::<SocketAddr>().map(Address::Tcp).map_err(|_| {
            if text.contains(':') && !text.starts_with('[') && text.matches(':').count() > 1 {
                format!("invalid socket address \"{text}\": write IPv6 addresses as [addr]:port")
            } else {
                format!("invalid socket address \"{text}\"")
            }
        })
    }

    pub fn as_tcp(&self) -> Option<SocketAddr> {
        match self {
            Address::Tcp(a) => Some(*a),
            Address::Unix(_) => None,
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(a) => write!(f, "{a}"),
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl Decode for Address {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let text = String::decode(node, path, cx)?;
        match Address::parse(&text) {
            Ok(a) => Some(a),
            Err(e) => {
                cx.error(node.line, path, e);
                None
            }
        }
    }
}

/// Where a control plane (xDS, SDS) listens: an [`Address`], or `name:port` with a DNS name
/// resolved at each connection (a control plane's address is usually a service name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAddress {
    Addr(Address),
    Host { name: String, port: u16 },
}

impl ServerAddress {
    pub fn parse(text: &str) -> Result<ServerAddress, String> {
        match Address::parse(text) {
            Ok(a) => Ok(ServerAddress::Addr(a)),
            Err(e) => match name_and_port(text) {
                Some((name, port)) => Ok(ServerAddress::Host {
                    name: name.to_string(),
                    port,
                }),
                None => Err(format!(
                    "{e}: expected host:port, [v6]:port, name:port or unix:/path"
                )),
            },
        }
    }
}

impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAddress::Addr(a) => a.fmt(f),
            ServerAddress::Host { name, port } => write!(f, "{name}:{port}"),
        }
    }
}

impl Decode for ServerAddress {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let text = String::decode(node, path, cx)?;
        match ServerAddress::parse(&text) {
            Ok(a) => Some(a),
            Err(e) => {
                cx.error(node.line, path, e);
                None
            }
        }
    }
}

/// `name:port` with a plausible DNS name and a port above 0.
pub(crate) fn name_and_port(text: &str) -> Option<(&str, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    is_host_name(host).then_some((host, port))
}

/// A DNS name as a DNS cluster's endpoint may give one: dot-separated labels of letters,
/// digits, `-` and `_`, none empty or longer than 63 bytes, not starting or ending with `-`,
/// 253 bytes at most.
pub fn is_host_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            Address::parse("127.0.0.1:9000"),
            Ok(Address::Tcp("127.0.0.1:9000".parse().unwrap()))
        );
        assert_eq!(
            Address::parse("[::1]:9000"),
            Ok(Address::Tcp("[::1]:9000".parse().unwrap()))
        );
        assert_eq!(
            Address::parse("unix:/run/x.sock"),
            Ok(Address::Unix("/run/x.sock".into()))
        );
    }

    #[test]
    fn rejects_with_reasons() {
        assert_eq!(
            Address::parse("0.0.0.0:80a"),
            Err("invalid socket address \"0.0.0.0:80a\"".to_string())
        );
        assert!(Address::parse("::1:80")
            .unwrap_err()
            .contains("[addr]:port"));
        assert!(Address::parse("unix:").is_err());
        assert!(Address::parse("localhost").is_err());
    }

    #[test]
    fn server_addresses_take_dns_names() {
        assert_eq!(
            ServerAddress::parse("istiod.istio-system.svc:15010"),
            Ok(ServerAddress::Host {
                name: "istiod.istio-system.svc".into(),
                port: 15010
            })
        );
        assert_eq!(
            ServerAddress::parse("127.0.0.1:18000"),
            Ok(ServerAddress::Addr(Address::Tcp(
                "127.0.0.1:18000".parse().unwrap()
            )))
        );
        assert!(ServerAddress::parse("cp:0").is_err());
        assert!(ServerAddress::parse("cp")
            .unwrap_err()
            .contains("name:port"));
        assert!(ServerAddress::parse("bad name:80").is_err());
    }
}
