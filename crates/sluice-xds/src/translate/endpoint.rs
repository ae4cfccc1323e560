//! Envoy's `ClusterLoadAssignment` (EDS, or a cluster's `load_assignment`) as the native
//! `endpoints:` list.
//!
//! The native list is flat: each endpoint carries its locality (`region`, `zone`,
//! `sub_zone`) and `priority`, so a `LocalityLbEndpoints` group becomes those keys on each of
//! its endpoints, in the order given. Endpoints the control plane reports as `UNHEALTHY`,
//! `DRAINING` or `TIMEOUT` are left out: Envoy does not pick them while their level has
//! enough healthy hosts, and the native model has no per-endpoint health to carry.

use envoy_types::pb::envoy::config::core::v3::{HealthStatus, Locality};
use envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier;
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
};
use sluice_config::yaml::Node;

use super::tree::{ignored, index, join, list, number, string_map, string_metadata, text, Map};
use super::{address, Error, Result};

/// The metadata namespace Envoy's load balancers (subsets) read endpoint labels from.
const LB_NAMESPACE: &str = "envoy.lb";
/// The labels a cluster's `transport_socket_matches` select an endpoint's transport by.
const TRANSPORT_NAMESPACE: &str = "envoy.transport_socket_match";

/// The native bounds of an endpoint's `weight` and `priority` (`cluster_decode.rs`).
const MAX_WEIGHT: u32 = 128;
const MAX_PRIORITY: u32 = 127;

/// The endpoints of a ClusterLoadAssignment (EDS, or a cluster's `load_assignment`).
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoints {
    /// The native `endpoints:` list.
    pub list: Node,
    /// `policy.overprovisioning_factor`, as the native cluster key `overprovisioning_factor` (percent).
    pub overprovisioning_factor: Option<u32>,
}

/// The endpoints of an EDS resource: addresses must be IP addresses (or Unix sockets), as in
/// Envoy, where an EDS cluster resolves nothing.
pub fn endpoints(cla: &ClusterLoadAssignment) -> Result<Endpoints> {
    translate(cla, false)
}

/// The endpoints of `cla`; `dns` allows host names (`STRICT_DNS` and `LOGICAL_DNS` clusters),
/// and forbids Unix sockets, which a DNS cluster cannot resolve.
pub(crate) fn translate(cla: &ClusterLoadAssignment, dns: bool) -> Result<Endpoints> {
    // Matched to its cluster by the caller (the subscription name).
    ignored(!cla.cluster_name.is_empty(), "", "cluster_name");
    // Only `endpoint_name` references reach these, and those are refused below.
    ignored(!cla.named_endpoints.is_empty(), "", "named_endpoints");
    let overprovisioning_factor = match &cla.policy {
        None => None,
        Some(p) => {
            let path = "policy";
            if let Some((i, _)) = p
                .drop_overloads
                .iter()
                .enumerate()
                .find(|(_, d)| d.drop_percentage.as_ref().is_some_and(|f| f.numerator > 0))
            {
                return Err(Error::new(
                    index(&join(path, "drop_overloads"), i),
                    "is not supported by Sluice (no load shedding by drop categories)",
                ));
            }
            if p.endpoint_stale_after
                .as_ref()
                .is_some_and(|d| d.seconds != 0 || d.nanos != 0)
            {
                return Err(Error::new(
                    join(path, "endpoint_stale_after"),
                    "is not supported by Sluice (endpoints never go stale)",
                ));
            }
            if p.weighted_priority_health {
                return Err(Error::new(
                    join(path, "weighted_priority_health"),
                    "is not supported by Sluice (a level's health counts hosts, not weights)",
                ));
            }
            match p.overprovisioning_factor.as_ref().map(|f| f.value) {
                None => None,
                Some(f) if (100..=1000).contains(&f) => Some(f),
                Some(f) => {
                    return Err(Error::new(
                        join(path, "overprovisioning_factor"),
                        format!("must be from 100 to 1000 in Sluice, found {f}"),
                    ))
                }
            }
        }
    };
    let mut out = Vec::new();
    for (i, group) in cla.endpoints.iter().enumerate() {
        locality_endpoints(group, &index("endpoints", i), dns, &mut out)?;
    }
    Ok(Endpoints {
        list: list(out),
        overprovisioning_factor,
    })
}

/// The endpoints of one locality group (at `path`), appended to `out`.
#[allow(deprecated)] // `load_balancer_endpoints`, matched to be refused
fn locality_endpoints(
    g: &LocalityLbEndpoints,
    path: &str,
    dns: bool,
    out: &mut Vec<Node>,
) -> Result<()> {
    use envoy_types::pb::envoy::config::endpoint::v3::locality_lb_endpoints::LbConfig;
    match &g.lb_config {
        None => {}
        Some(LbConfig::LedsClusterLocalityConfig(_)) => {
            return Err(Error::new(
                join(path, "leds_cluster_locality_config"),
                "is not supported by Sluice (LEDS)",
            ))
        }
        Some(LbConfig::LoadBalancerEndpoints(_)) => {
            return Err(Error::new(
                join(path, "load_balancer_endpoints"),
                "is not supported by Sluice",
            ))
        }
    }
    if g.priority > MAX_PRIORITY {
        return Err(Error::new(
            join(path, "priority"),
            format!(
                "must be at most {MAX_PRIORITY} in Sluice, found {}",
                g.priority
            ),
        ));
    }
    // Envoy reads locality weights only with `locality_weighted_lb_config`, which the cluster
    // translation refuses; without it they do nothing.
    ignored(
        g.load_balancing_weight.is_some(),
        path,
        "load_balancing_weight",
    );
    // Locality metadata only selects transport sockets (`transport_socket_matches`, refused).
    ignored(g.metadata.is_some(), path, "metadata");
    // Not implemented by Envoy.
    ignored(g.proximity.is_some(), path, "proximity");
    let locality = g.locality.clone().unwrap_or_default();
    for (i, e) in g.lb_endpoints.iter().enumerate() {
        let at = index(&join(path, "lb_endpoints"), i);
        if let Some(node) = lb_endpoint(e, &at, &locality, g.priority, dns)? {
            out.push(node);
        }
    }
    Ok(())
}

/// One endpoint (at `path`), or `None` when its health status keeps Envoy from sending
/// traffic to it.
fn lb_endpoint(
    e: &LbEndpoint,
    path: &str,
    locality: &Locality,
    priority: u32,
    dns: bool,
) -> Result<Option<Node>> {
    let status = HealthStatus::try_from(e.health_status).map_err(|_| {
        Error::new(
            join(path, "health_status"),
            format!("unknown health status {}", e.health_status),
        )
    })?;
    let endpoint = match &e.host_identifier {
        Some(HostIdentifier::Endpoint(ep)) => ep,
        Some(HostIdentifier::EndpointName(_)) => {
            return Err(Error::new(
                join(path, "endpoint_name"),
                "is not supported by Sluice (named endpoint references)",
            ))
        }
        None => return Err(Error::new(join(path, "endpoint"), "is required")),
    };
    let mut m = Map::new();
    let address = endpoint_address(endpoint, &join(path, "endpoint"), dns)?;
    m.set("address", text(&address));
    match e.load_balancing_weight.as_ref().map(|w| w.value) {
        None => {}
        Some(w) if (1..=MAX_WEIGHT).contains(&w) => {
            m.set("weight", number(w));
        }
        Some(w) => {
            return Err(Error::new(
                join(path, "load_balancing_weight"),
                format!("must be from 1 to {MAX_WEIGHT} in Sluice, found {w}"),
            ))
        }
    }
    if let Some(md) = &e.metadata {
        let pairs = string_metadata(
            md.filter_metadata.get(LB_NAMESPACE),
            &join(
                path,
                &format!("metadata.filter_metadata[\"{LB_NAMESPACE}\"]"),
            ),
        )?;
        if !pairs.is_empty() {
            m.set("metadata", string_map(&pairs));
        }
        let transport = string_metadata(
            md.filter_metadata.get(TRANSPORT_NAMESPACE),
            &join(
                path,
                &format!("metadata.filter_metadata[\"{TRANSPORT_NAMESPACE}\"]"),
            ),
        )?;
        if !transport.is_empty() {
            m.set("transport_socket_match", string_map(&transport));
        }
        // Other namespaces (a control plane's own) select nothing Sluice has.
        ignored(
            md.filter_metadata
                .keys()
                .any(|k| k != LB_NAMESPACE && k != TRANSPORT_NAMESPACE)
                || !md.typed_filter_metadata.is_empty(),
            path,
            "metadata",
        );
    }
    for (key, value) in [
        ("region", &locality.region),
        ("zone", &locality.zone),
        ("sub_zone", &locality.sub_zone),
    ] {
        if !value.is_empty() {
            m.set(key, text(value));
        }
    }
    if priority != 0 {
        m.set("priority", number(priority));
    }
    // Checked after the rest, so a bad endpoint is reported even when it is not healthy.
    match status {
        HealthStatus::Unhealthy | HealthStatus::Draining | HealthStatus::Timeout => Ok(None),
        // Sluice has no degraded tier: a degraded host is used like a healthy one.
        HealthStatus::Unknown | HealthStatus::Healthy | HealthStatus::Degraded => {
            Ok(Some(m.build()))
        }
    }
}

/// The native address text of an `Endpoint` (at `path`), checking what the native side
/// cannot carry.
fn endpoint_address(e: &Endpoint, path: &str, dns: bool) -> Result<String> {
    // Used for `auto_host_rewrite` and `auto_host_sni`, which are refused where they would
    // read it; it does not route.
    ignored(!e.hostname.is_empty(), path, "hostname");
    ignored(!e.observability_name.is_empty(), path, "observability_name");
    if !e.additional_addresses.is_empty() {
        return Err(Error::new(
            join(path, "additional_addresses"),
            "is not supported by Sluice (one address per endpoint)",
        ));
    }
    if let Some(hc) = &e.health_check_config {
        let hc_path = join(path, "health_check_config");
        let refuse = |field: &str, what: &str| {
            Err(Error::new(
                join(&hc_path, field),
                format!("is not supported by Sluice ({what})"),
            ))
        };
        if hc.port_value != 0 {
            return refuse("port_value", "health checks use the endpoint's own port");
        }
        if !hc.hostname.is_empty() {
            return refuse("hostname", "the health check's host is the cluster's");
        }
        if hc.address.is_some() {
            return refuse("address", "health checks use the endpoint's own address");
        }
        if hc.disable_active_health_check {
            return refuse(
                "disable_active_health_check",
                "a cluster's health check covers all its endpoints",
            );
        }
    }
    let role = if dns {
        address::Role::DnsEndpoint
    } else {
        address::Role::Endpoint
    };
    address::address(e.address.as_ref(), &join(path, "address"), role)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::address::Address as AddressKind;
    use envoy_types::pb::envoy::config::core::v3::socket_address::{PortSpecifier, Protocol};
    use envoy_types::pb::envoy::config::core::v3::{Address, Metadata, Pipe, SocketAddress};
    use envoy_types::pb::envoy::config::endpoint::v3::cluster_load_assignment::policy::DropOverload;
    use envoy_types::pb::envoy::config::endpoint::v3::cluster_load_assignment::Policy;
    use envoy_types::pb::envoy::config::endpoint::v3::endpoint;
    use envoy_types::pb::envoy::r#type::v3::FractionalPercent;
    use envoy_types::pb::google::protobuf::{value, Struct, UInt32Value, Value};
    use sluice_config::yaml::NodeKind;

    /// A node in YAML flow style, for failure messages.
    pub(crate) fn show(n: &Node) -> String {
        match &n.kind {
            NodeKind::Null => "null".into(),
            NodeKind::Scalar { text, quoted: true } => format!("{text:?}"),
            NodeKind::Scalar { text, .. } => text.clone(),
            NodeKind::Seq(items) => {
                format!(
                    "[{}]",
                    items.iter().map(show).collect::<Vec<_>>().join(", ")
                )
            }
            NodeKind::Map(entries) => format!(
                "{{ {} }}",
                entries
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", show(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// Asserts `got` is the tree of the YAML `want` (lines aside).
    pub(crate) fn assert_yaml(got: &Node, want: &str) {
        let want = sluice_config::yaml::parse(want).unwrap();
        assert!(
            sluice_config::diff::same(got, &want),
            "got:  {}\nwant: {}",
            show(got),
            show(&want)
        );
    }

    pub(crate) fn socket(ip: &str, port: u32) -> Address {
        Address {
            address: Some(AddressKind::SocketAddress(SocketAddress {
                address: ip.into(),
                port_specifier: Some(PortSpecifier::PortValue(port)),
                ..Default::default()
            })),
        }
    }

    pub(crate) fn lb(address: Address) -> LbEndpoint {
        LbEndpoint {
            host_identifier: Some(HostIdentifier::Endpoint(Endpoint {
                address: Some(address),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn weighted(address: Address, weight: u32) -> LbEndpoint {
        LbEndpoint {
            load_balancing_weight: Some(UInt32Value { value: weight }),
            ..lb(address)
        }
    }

    fn with_status(e: LbEndpoint, status: HealthStatus) -> LbEndpoint {
        LbEndpoint {
            health_status: status as i32,
            ..e
        }
    }

    fn lb_metadata(pairs: &[(&str, value::Kind)]) -> Metadata {
        let fields = pairs
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    Value {
                        kind: Some(v.clone()),
                    },
                )
            })
            .collect();
        Metadata {
            filter_metadata: [(LB_NAMESPACE.to_string(), Struct { fields })].into(),
            ..Default::default()
        }
    }

    pub(crate) fn group(lb_endpoints: Vec<LbEndpoint>) -> LocalityLbEndpoints {
        LocalityLbEndpoints {
            lb_endpoints,
            ..Default::default()
        }
    }

    pub(crate) fn cla(groups: Vec<LocalityLbEndpoints>) -> ClusterLoadAssignment {
        ClusterLoadAssignment {
            cluster_name: "backend".into(),
            endpoints: groups,
            ..Default::default()
        }
    }

    fn error(c: &ClusterLoadAssignment) -> Error {
        endpoints(c).unwrap_err()
    }

    #[test]
    fn localities_priorities_weights_and_metadata() {
        let mut canary = weighted(socket("10.0.0.2", 8080), 3);
        canary.metadata = Some(lb_metadata(&[
            ("version", value::Kind::StringValue("v2".into())),
            ("canary", value::Kind::BoolValue(true)),
            ("shard", value::Kind::NumberValue(7.0)),
        ]));
        let c = ClusterLoadAssignment {
            policy: Some(Policy {
                overprovisioning_factor: Some(UInt32Value { value: 150 }),
                ..Default::default()
            }),
            ..cla(vec![
                LocalityLbEndpoints {
                    locality: Some(Locality {
                        region: "r1".into(),
                        zone: "z1".into(),
                        sub_zone: "rack1".into(),
                    }),
                    load_balancing_weight: Some(UInt32Value { value: 10 }),
                    ..group(vec![lb(socket("10.0.0.1", 8080)), canary])
                },
                LocalityLbEndpoints {
                    locality: Some(Locality {
                        zone: "z2".into(),
                        ..Default::default()
                    }),
                    priority: 1,
                    ..group(vec![
                        lb(socket("fd00::1", 443)),
                        lb(Address {
                            address: Some(AddressKind::Pipe(Pipe {
                                path: "/run/app.sock".into(),
                                mode: 0,
                            })),
                        }),
                    ])
                },
            ])
        };
        let e = endpoints(&c).unwrap();
        assert_eq!(e.overprovisioning_factor, Some(150));
        assert_yaml(
            &e.list,
            r#"
- { address: "10.0.0.1:8080", region: "r1", zone: "z1", sub_zone: "rack1" }
- address: "10.0.0.2:8080"
  weight: 3
  metadata: { canary: "true", shard: "7", version: "v2" }
  region: "r1"
  zone: "z1"
  sub_zone: "rack1"
- { address: "[fd00::1]:443", zone: "z2", priority: 1 }
- { address: "unix:/run/app.sock", zone: "z2", priority: 1 }
"#,
        );
    }

    #[test]
    fn unhealthy_draining_and_timed_out_endpoints_are_left_out_in_order() {
        let c = cla(vec![group(vec![
            with_status(lb(socket("10.0.0.1", 80)), HealthStatus::Healthy),
            with_status(lb(socket("10.0.0.2", 80)), HealthStatus::Unhealthy),
            with_status(lb(socket("10.0.0.3", 80)), HealthStatus::Degraded),
            with_status(lb(socket("10.0.0.4", 80)), HealthStatus::Draining),
            with_status(lb(socket("10.0.0.5", 80)), HealthStatus::Timeout),
            with_status(lb(socket("10.0.0.6", 80)), HealthStatus::Unknown),
        ])]);
        assert_yaml(
            &endpoints(&c).unwrap().list,
            r#"[{ address: "10.0.0.1:80" }, { address: "10.0.0.3:80" }, { address: "10.0.0.6:80" }]"#,
        );
        // A bad endpoint is an error even when it would be left out.
        let c = cla(vec![group(vec![with_status(
            lb(socket("10.0.0.1", 0)),
            HealthStatus::Draining,
        )])]);
        assert_eq!(
            error(&c).field,
            "endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value"
        );
    }

    #[test]
    fn empty_assignment() {
        let e = endpoints(&cla(vec![])).unwrap();
        assert_yaml(&e.list, "[]");
        assert_eq!(e.overprovisioning_factor, None);
    }

    #[test]
    fn bad_ports_and_addresses_are_errors_naming_the_field() {
        let at = |c: &ClusterLoadAssignment| {
            let e = error(c);
            (e.field, e.message)
        };
        let one = |e: LbEndpoint| cla(vec![group(vec![lb(socket("10.0.0.1", 80)), e])]);
        let (field, message) = at(&one(lb(socket("10.0.0.2", 0))));
        assert_eq!(
            field,
            "endpoints[0].lb_endpoints[1].endpoint.address.socket_address.port_value"
        );
        assert_eq!(message, "must be from 1 to 65535, found 0");
        let (field, message) = at(&one(lb(socket("10.0.0.2", 65536))));
        assert!(field.ends_with("socket_address.port_value"), "{field}");
        assert!(message.contains("65536"), "{message}");
        let (field, message) = at(&one(lb(socket("backend.local", 80))));
        assert_eq!(
            field,
            "endpoints[0].lb_endpoints[1].endpoint.address.socket_address.address"
        );
        assert!(message.contains("is not an IP address"), "{message}");
        assert!(message.contains("STRICT_DNS"), "{message}");
        let (field, _) = at(&one(lb(socket("", 80))));
        assert!(field.ends_with("socket_address.address"), "{field}");
        let mut named = lb(socket("10.0.0.2", 80));
        if let Some(HostIdentifier::Endpoint(e)) = &mut named.host_identifier {
            if let Some(Address {
                address: Some(AddressKind::SocketAddress(s)),
            }) = &mut e.address
            {
                s.port_specifier = Some(PortSpecifier::NamedPort("http".into()));
            }
        }
        assert!(at(&one(named)).0.ends_with("socket_address.named_port"));
        let abstract_socket = lb(Address {
            address: Some(AddressKind::Pipe(Pipe {
                path: "@app".into(),
                mode: 0,
            })),
        });
        assert!(at(&one(abstract_socket))
            .0
            .ends_with("endpoint.address.pipe.path"));
        let missing = LbEndpoint {
            host_identifier: Some(HostIdentifier::Endpoint(Endpoint::default())),
            ..Default::default()
        };
        assert_eq!(
            at(&one(missing)).0,
            "endpoints[0].lb_endpoints[1].endpoint.address"
        );
    }

    #[test]
    fn weights_and_priorities_out_of_the_native_range() {
        let c = cla(vec![group(vec![weighted(socket("10.0.0.1", 80), 129)])]);
        let e = error(&c);
        assert_eq!(
            e.field,
            "endpoints[0].lb_endpoints[0].load_balancing_weight"
        );
        assert_eq!(e.message, "must be from 1 to 128 in Sluice, found 129");
        let c = cla(vec![group(vec![weighted(socket("10.0.0.1", 80), 0)])]);
        assert_eq!(
            error(&c).field,
            "endpoints[0].lb_endpoints[0].load_balancing_weight"
        );
        let c = cla(vec![
            group(vec![]),
            LocalityLbEndpoints {
                priority: 128,
                ..group(vec![lb(socket("10.0.0.1", 80))])
            },
        ]);
        assert_eq!(error(&c).field, "endpoints[1].priority");
    }

    #[test]
    fn what_the_native_side_lacks_is_refused() {
        let named = LbEndpoint {
            host_identifier: Some(HostIdentifier::EndpointName("a".into())),
            ..Default::default()
        };
        assert_eq!(
            error(&cla(vec![group(vec![named])])).field,
            "endpoints[0].lb_endpoints[0].endpoint_name"
        );
        let mut extra = lb(socket("10.0.0.1", 80));
        if let Some(HostIdentifier::Endpoint(e)) = &mut extra.host_identifier {
            e.additional_addresses.push(endpoint::AdditionalAddress {
                address: Some(socket("10.0.0.2", 80)),
            });
        }
        assert_eq!(
            error(&cla(vec![group(vec![extra])])).field,
            "endpoints[0].lb_endpoints[0].endpoint.additional_addresses"
        );
        let mut hc_port = lb(socket("10.0.0.1", 80));
        if let Some(HostIdentifier::Endpoint(e)) = &mut hc_port.host_identifier {
            e.health_check_config = Some(endpoint::HealthCheckConfig {
                port_value: 9901,
                ..Default::default()
            });
        }
        assert_eq!(
            error(&cla(vec![group(vec![hc_port])])).field,
            "endpoints[0].lb_endpoints[0].endpoint.health_check_config.port_value"
        );
        let policy = |p: Policy| ClusterLoadAssignment {
            policy: Some(p),
            ..cla(vec![])
        };
        let drop = policy(Policy {
            drop_overloads: vec![DropOverload {
                category: "throttle".into(),
                drop_percentage: Some(FractionalPercent {
                    numerator: 10,
                    denominator: 0,
                }),
            }],
            ..Default::default()
        });
        assert_eq!(error(&drop).field, "policy.drop_overloads[0]");
        let factor = policy(Policy {
            overprovisioning_factor: Some(UInt32Value { value: 50 }),
            ..Default::default()
        });
        let e = error(&factor);
        assert_eq!(e.field, "policy.overprovisioning_factor");
        assert!(e.message.contains("100 to 1000"), "{}", e.message);
        let udp = {
            let mut a = socket("10.0.0.1", 53);
            if let Some(AddressKind::SocketAddress(s)) = &mut a.address {
                s.protocol = Protocol::Udp as i32;
            }
            a
        };
        assert_eq!(
            error(&cla(vec![group(vec![lb(udp)])])).field,
            "endpoints[0].lb_endpoints[0].endpoint.address.socket_address.protocol"
        );
    }

    #[test]
    fn dns_clusters_take_names_but_not_unix_sockets() {
        let c = cla(vec![group(vec![lb(socket("backend.local", 8080))])]);
        assert_yaml(
            &translate(&c, true).unwrap().list,
            r#"[{ address: "backend.local:8080" }]"#,
        );
        let bad = cla(vec![group(vec![lb(socket("not a name", 80))])]);
        assert!(translate(&bad, true)
            .unwrap_err()
            .field
            .ends_with("socket_address.address"));
        let pipe = cla(vec![group(vec![lb(Address {
            address: Some(AddressKind::Pipe(Pipe {
                path: "/run/a.sock".into(),
                mode: 0,
            })),
        })])]);
        assert_eq!(
            translate(&pipe, true).unwrap_err().field,
            "endpoints[0].lb_endpoints[0].endpoint.address.pipe"
        );
    }
}
