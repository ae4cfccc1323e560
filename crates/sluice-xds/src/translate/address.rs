//! Envoy's `Address` as a native address: `ip:port`, `[v6]:port`, `unix:/path`, or for DNS
//! clusters `name:port`.
//!
//! Listeners and endpoints share this one translator so that both refuse the same things in
//! the same words; what differs between them is only which forms they may take ([`Role`]).

use envoy_types::pb::envoy::config::core::v3::address::Address as Kind;
use envoy_types::pb::envoy::config::core::v3::socket_address::{PortSpecifier, Protocol};
use envoy_types::pb::envoy::config::core::v3::Address;
use sluice_config::yaml::Node;

use super::tree::{ignored, join, text};
use super::{Error, Result};

/// What an address is for, which decides the forms it may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A listener binds it: an IP address or a Unix socket.
    Listener,
    /// An endpoint of a STATIC or EDS cluster, which resolves nothing: an IP address or a
    /// Unix socket.
    Endpoint,
    /// An endpoint of a STRICT_DNS or LOGICAL_DNS cluster: an IP address or a host name (a
    /// Unix socket has nothing to resolve).
    DnsEndpoint,
}

/// The native address text of `a`; `field` names the `Address` in errors.
pub fn address(a: Option<&Address>, field: &str, role: Role) -> Result<String> {
    match a.and_then(|a| a.address.as_ref()) {
        None => Err(Error::new(field, "is required")),
        Some(Kind::SocketAddress(s)) => {
            let path = join(field, "socket_address");
            if s.protocol == Protocol::Udp as i32 {
                return Err(Error::new(
                    join(&path, "protocol"),
                    "UDP is not supported by Sluice",
                ));
            }
            if !s.resolver_name.is_empty() {
                return Err(Error::new(
                    join(&path, "resolver_name"),
                    "is not supported by Sluice (custom resolvers)",
                ));
            }
            if !s.network_namespace_filepath.is_empty() {
                return Err(Error::new(
                    join(&path, "network_namespace_filepath"),
                    "is not supported by Sluice",
                ));
            }
            // Envoy binds `::` for IPv6 only unless this is set; Sluice's sockets take both
            // families, so a listener accepts at least what Envoy's would.
            ignored(s.ipv4_compat, &path, "ipv4_compat");
            let port = match &s.port_specifier {
                Some(PortSpecifier::PortValue(p)) if (1..=65535).contains(p) => *p,
                Some(PortSpecifier::PortValue(p)) => {
                    return Err(Error::new(
                        join(&path, "port_value"),
                        format!("must be from 1 to 65535, found {p}"),
                    ))
                }
                Some(PortSpecifier::NamedPort(_)) => {
                    return Err(Error::new(
                        join(&path, "named_port"),
                        "is not supported by Sluice (give port_value)",
                    ))
                }
                None => return Err(Error::new(join(&path, "port_value"), "is required")),
            };
            let host = s.address.as_str();
            let at = join(&path, "address");
            match host.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V6(ip)) => Ok(format!("[{ip}]:{port}")),
                Ok(ip) => Ok(format!("{ip}:{port}")),
                Err(_) if host.is_empty() => Err(Error::new(at, "is required")),
                Err(_) => match role {
                    Role::DnsEndpoint if sluice_config::address::is_host_name(host) => {
                        Ok(format!("{host}:{port}"))
                    }
                    Role::DnsEndpoint => Err(Error::new(
                        at,
                        format!("\"{host}\" is neither an IP address nor a host name"),
                    )),
                    Role::Endpoint => Err(Error::new(
                        at,
                        format!(
                            "\"{host}\" is not an IP address: STATIC and EDS clusters need one \
                             (a host name needs a STRICT_DNS or LOGICAL_DNS cluster)"
                        ),
                    )),
                    Role::Listener => Err(Error::new(
                        at,
                        format!(
                            "\"{host}\" is not an IP address: a listener binds an IP address \
                             (or a Unix socket, as pipe)"
                        ),
                    )),
                },
            }
        }
        Some(Kind::Pipe(p)) => {
            let path = join(field, "pipe");
            if role == Role::DnsEndpoint {
                return Err(Error::new(
                    path,
                    "a DNS cluster resolves names; a Unix socket needs a STATIC or EDS cluster",
                ));
            }
            if p.path.is_empty() {
                return Err(Error::new(join(&path, "path"), "is required"));
            }
            if p.path.starts_with('@') {
                return Err(Error::new(
                    join(&path, "path"),
                    "abstract Unix sockets are not supported by Sluice; use a filesystem path",
                ));
            }
            // A listener's mode is read by `socket_mode`; a client's socket has none.
            if role != Role::Listener {
                ignored(p.mode != 0, &path, "mode");
            }
            Ok(format!("unix:{}", p.path))
        }
        Some(Kind::EnvoyInternalAddress(_)) => Err(Error::new(
            join(field, "envoy_internal_address"),
            "is not supported by Sluice (internal listeners)",
        )),
    }
}

/// The native `socket_mode` of a listener bound to a Unix socket with a `mode`: the socket
/// file's permissions, written in octal as the native key takes them.
pub fn socket_mode(a: Option<&Address>, field: &str) -> Result<Option<Node>> {
    match a.and_then(|a| a.address.as_ref()) {
        Some(Kind::Pipe(p)) if p.mode > 0o777 => Err(Error::new(
            join(field, "pipe.mode"),
            format!("must be at most 0777 (511), found {}", p.mode),
        )),
        Some(Kind::Pipe(p)) if p.mode != 0 => Ok(Some(text(&format!("{:04o}", p.mode)))),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::{EnvoyInternalAddress, Pipe, SocketAddress};

    fn socket(host: &str, port: u32) -> Address {
        Address {
            address: Some(Kind::SocketAddress(SocketAddress {
                address: host.into(),
                port_specifier: Some(PortSpecifier::PortValue(port)),
                ..Default::default()
            })),
        }
    }

    fn pipe(path: &str, mode: u32) -> Address {
        Address {
            address: Some(Kind::Pipe(Pipe {
                path: path.into(),
                mode,
            })),
        }
    }

    fn err(a: &Address, role: Role) -> (String, String) {
        let e = address(Some(a), "address", role).unwrap_err();
        (e.field, e.message)
    }

    #[test]
    fn ips_and_unix_sockets_in_the_native_forms() {
        for role in [Role::Listener, Role::Endpoint, Role::DnsEndpoint] {
            let ok = |a: &Address| address(Some(a), "address", role).unwrap();
            assert_eq!(ok(&socket("0.0.0.0", 8080)), "0.0.0.0:8080");
            assert_eq!(ok(&socket("::", 443)), "[::]:443");
            assert_eq!(ok(&socket("fd00:0::1", 1)), "[fd00::1]:1");
        }
        for role in [Role::Listener, Role::Endpoint] {
            assert_eq!(
                address(Some(&pipe("/run/s.sock", 0)), "address", role).unwrap(),
                "unix:/run/s.sock"
            );
        }
    }

    #[test]
    fn only_dns_endpoints_take_host_names() {
        assert_eq!(
            address(Some(&socket("backend.local", 80)), "a", Role::DnsEndpoint).unwrap(),
            "backend.local:80"
        );
        let (field, message) = err(&socket("backend.local", 80), Role::Listener);
        assert_eq!(field, "address.socket_address.address");
        assert_eq!(
            message,
            "\"backend.local\" is not an IP address: a listener binds an IP address (or a Unix socket, as pipe)"
        );
        let (_, message) = err(&socket("backend.local", 80), Role::Endpoint);
        assert!(message.contains("STRICT_DNS"), "{message}");
        let (_, message) = err(&socket("not a name", 80), Role::DnsEndpoint);
        assert!(message.contains("neither"), "{message}");
        let (field, message) = err(&socket("", 80), Role::Listener);
        assert_eq!(
            (field.as_str(), message.as_str()),
            ("address.socket_address.address", "is required")
        );
    }

    #[test]
    fn ports_must_be_real() {
        for role in [Role::Listener, Role::Endpoint] {
            let (field, message) = err(&socket("10.0.0.1", 0), role);
            assert_eq!(field, "address.socket_address.port_value");
            assert_eq!(message, "must be from 1 to 65535, found 0");
            let (_, message) = err(&socket("10.0.0.1", 65536), role);
            assert_eq!(message, "must be from 1 to 65535, found 65536");
        }
        let mut named = socket("10.0.0.1", 80);
        if let Some(Kind::SocketAddress(s)) = &mut named.address {
            s.port_specifier = Some(PortSpecifier::NamedPort("http".into()));
        }
        assert_eq!(
            err(&named, Role::Listener).0,
            "address.socket_address.named_port"
        );
    }

    #[test]
    fn unix_sockets_and_what_is_refused() {
        assert_eq!(
            err(&pipe("@abstract", 0), Role::Listener).0,
            "address.pipe.path"
        );
        assert_eq!(err(&pipe("", 0), Role::Endpoint).0, "address.pipe.path");
        assert_eq!(
            err(&pipe("/run/a.sock", 0), Role::DnsEndpoint).0,
            "address.pipe"
        );
        let internal = Address {
            address: Some(Kind::EnvoyInternalAddress(EnvoyInternalAddress::default())),
        };
        assert_eq!(
            err(&internal, Role::Listener).0,
            "address.envoy_internal_address"
        );
        assert_eq!(
            address(None, "address", Role::Listener).unwrap_err().field,
            "address"
        );
        let mut udp = socket("10.0.0.1", 53);
        if let Some(Kind::SocketAddress(s)) = &mut udp.address {
            s.protocol = Protocol::Udp as i32;
        }
        assert_eq!(
            err(&udp, Role::Listener).0,
            "address.socket_address.protocol"
        );
    }

    #[test]
    fn a_listeners_pipe_mode_is_its_socket_mode() {
        let mode = |a: &Address| socket_mode(Some(a), "address");
        assert_eq!(
            mode(&pipe("/run/s.sock", 0o660))
                .unwrap()
                .unwrap()
                .as_scalar(),
            Some("0660")
        );
        assert!(mode(&pipe("/run/s.sock", 0)).unwrap().is_none());
        assert!(mode(&socket("10.0.0.1", 80)).unwrap().is_none());
        assert_eq!(
            mode(&pipe("/run/s.sock", 0o1777)).unwrap_err().field,
            "address.pipe.mode"
        );
    }
}
