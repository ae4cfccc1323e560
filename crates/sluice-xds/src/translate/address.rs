//! Envoy's `Address` as a native address: `ip:port`, `[v6]:port` or `unix:/path`.

use envoy_types::pb::envoy::config::core::v3::address::Address as Kind;
use envoy_types::pb::envoy::config::core::v3::socket_address::{PortSpecifier, Protocol};
use envoy_types::pb::envoy::config::core::v3::Address;

use super::tree::{join, text, unsupported};
use super::{Error, Result};
use sluice_config::yaml::Node;

/// The native address text; `field` names the `Address` in errors. `names_allowed` lets
/// `address` be a host name (DNS clusters); elsewhere it must be an IP address.
pub fn address(a: Option<&Address>, field: &str, names_allowed: bool) -> Result<Node> {
    address_text(a, field, names_allowed).map(|t| text(&t))
}

pub fn address_text(a: Option<&Address>, field: &str, names_allowed: bool) -> Result<String> {
    match a.and_then(|a| a.address.as_ref()) {
        None => Err(Error::new(field, "is required")),
        Some(Kind::SocketAddress(s)) => {
            let path = join(field, "socket_address");
            unsupported(s.protocol == Protocol::Udp as i32, &join(&path, "protocol"))?;
            unsupported(!s.resolver_name.is_empty(), &join(&path, "resolver_name"))?;
            unsupported(
                !s.network_namespace_filepath.is_empty(),
                &join(&path, "network_namespace_filepath"),
            )?;
            let port = match &s.port_specifier {
                Some(PortSpecifier::PortValue(p)) if *p <= 65535 => *p,
                Some(PortSpecifier::PortValue(p)) => {
                    return Err(Error::new(
                        join(&path, "port_value"),
                        format!("must be at most 65535, found {p}"),
                    ))
                }
                Some(PortSpecifier::NamedPort(_)) => {
                    return Err(Error::new(
                        join(&path, "named_port"),
                        "is not supported by Sluice",
                    ))
                }
                None => return Err(Error::new(join(&path, "port_value"), "is required")),
            };
            let host = s.address.as_str();
            match host.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V6(ip)) => Ok(format!("[{ip}]:{port}")),
                Ok(ip) => Ok(format!("{ip}:{port}")),
                Err(_) if names_allowed && !host.is_empty() => Ok(format!("{host}:{port}")),
                Err(_) => Err(Error::new(
                    join(&path, "address"),
                    format!("expected an IP address, found \"{host}\""),
                )),
            }
        }
        Some(Kind::Pipe(p)) => {
            let path = join(field, "pipe");
            unsupported(p.mode != 0, &join(&path, "mode"))?;
            if p.path.is_empty() || p.path.starts_with('@') {
                return Err(Error::new(
                    join(&path, "path"),
                    "must be a filesystem path (abstract sockets are not supported)",
                ));
            }
            Ok(format!("unix:{}", p.path))
        }
        Some(Kind::EnvoyInternalAddress(_)) => Err(Error::new(
            join(field, "envoy_internal_address"),
            "is not supported by Sluice",
        )),
    }
}
