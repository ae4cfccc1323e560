//! Turning the latest DNS answers into cluster members. Hosts that stay keep their `Arc` (and
//! so their health, counters and connection pool); the cluster is republished only when the
//! set of members actually changed, so an unchanged answer costs no snapshot rebuild.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use sluice_config::{Address, DiscoveryType, EndpointAddress};

use crate::cluster::{host_of, Cluster};
use crate::host::Host;

/// What one update did to the members.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Change {
    pub added: Vec<Address>,
    pub removed: Vec<Address>,
}

impl Change {
    pub(crate) fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// Makes the members those the config and `answers` describe, if they differ from the current
/// ones. `answers[i]` holds the addresses last resolved for endpoint `i` (unused for
/// IP-literal endpoints; `None` while a name has had no answer yet).
pub(crate) fn apply(cluster: &Cluster, answers: &[Option<Vec<IpAddr>>]) -> Change {
    let current = cluster.hosts();
    let next = members(cluster, answers);
    let missing_from =
        |set: &[Arc<Host>], h: &&Arc<Host>| !set.iter().any(|other| Arc::ptr_eq(other, h));
    let change = Change {
        added: next
            .iter()
            .filter(|h| missing_from(&current, h))
            .map(|h| h.address.clone())
            .collect(),
        removed: current
            .iter()
            .filter(|h| missing_from(&next, h))
            .map(|h| h.address.clone())
            .collect(),
    };
    if !change.is_empty() {
        cluster.set_members(next);
    }
    change
}

/// The members `answers` describe, in endpoint order, reusing equal current hosts. A
/// `logical_dns` name contributes only its first address. Equal hosts (two names resolving to
/// one address) are kept once, so reuse stays one-to-one.
fn members(cluster: &Cluster, answers: &[Option<Vec<IpAddr>>]) -> Vec<Arc<Host>> {
    let logical = cluster.config.discovery == DiscoveryType::LogicalDns;
    let mut hosts: Vec<Arc<Host>> = Vec::new();
    for (i, e) in cluster.config.endpoints.iter().enumerate() {
        let addresses: Vec<Address> = match &e.address {
            EndpointAddress::Socket(a) => vec![a.clone()],
            EndpointAddress::Name { port, .. } => {
                let ips = answers.get(i).and_then(Option::as_deref).unwrap_or(&[]);
                let ips = if logical {
                    ips.get(..1).unwrap_or(ips)
                } else {
                    ips
                };
                ips.iter()
                    .map(|ip| Address::Tcp(SocketAddr::new(*ip, *port)))
                    .collect()
            }
        };
        for address in addresses {
            let candidate = host_of(e, address);
            if !hosts.iter().any(|h| h.same_endpoint(&candidate)) {
                hosts.push(cluster.reuse(candidate));
            }
        }
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(yaml: &str) -> Cluster {
        Cluster::from_config(&crate::testing::cluster_config(yaml)).unwrap()
    }

    fn ips(list: &[&str]) -> Option<Vec<IpAddr>> {
        Some(list.iter().map(|s| s.parse().unwrap()).collect())
    }

    fn addresses(c: &Cluster) -> Vec<String> {
        c.hosts().iter().map(|h| h.address.to_string()).collect()
    }

    const STRICT: &str = "{ name: c, type: strict_dns, endpoints: [{ address: \"a.test:80\", weight: 2, zone: z }, { address: \"127.0.0.1:9\" }] }";

    #[test]
    fn a_name_is_a_host_per_address_with_the_endpoints_attributes() {
        let c = cluster(STRICT);
        assert_eq!(addresses(&c), ["127.0.0.1:9"]);
        let change = apply(&c, &[ips(&["10.0.0.1", "10.0.0.2"]), None]);
        assert_eq!(change.added.len(), 2);
        assert!(change.removed.is_empty());
        assert_eq!(addresses(&c), ["10.0.0.1:80", "10.0.0.2:80", "127.0.0.1:9"]);
        let h = &c.hosts()[0];
        assert_eq!((h.weight, &*h.locality.zone), (2, "z"));
    }

    #[test]
    fn the_same_answer_changes_nothing_and_keeps_every_arc() {
        let c = cluster(STRICT);
        apply(&c, &[ips(&["10.0.0.1", "10.0.0.2"]), None]);
        let before = c.hosts();
        let snapshot = Arc::clone(&c.snapshot());
        // Same set in another order: DNS servers rotate their answers.
        let change = apply(&c, &[ips(&["10.0.0.2", "10.0.0.1"]), None]);
        assert!(change.is_empty(), "{change:?}");
        assert!(Arc::ptr_eq(&snapshot, &c.snapshot()), "republished");
        for (a, b) in before.iter().zip(c.hosts().iter()) {
            assert!(Arc::ptr_eq(a, b));
        }
    }

    #[test]
    fn hosts_that_stay_keep_their_arc_when_others_come_and_go() {
        let c = cluster(STRICT);
        apply(&c, &[ips(&["10.0.0.1", "10.0.0.2"]), None]);
        let stays = c.hosts()[1].clone();
        let literal = c.hosts()[2].clone();
        let change = apply(&c, &[ips(&["10.0.0.2", "10.0.0.3"]), None]);
        assert_eq!(
            change,
            Change {
                added: vec![Address::parse("10.0.0.3:80").unwrap()],
                removed: vec![Address::parse("10.0.0.1:80").unwrap()],
            }
        );
        let hosts = c.hosts();
        assert!(hosts.iter().any(|h| Arc::ptr_eq(h, &stays)));
        assert!(hosts.iter().any(|h| Arc::ptr_eq(h, &literal)));
    }

    #[test]
    fn an_empty_answer_removes_the_names_hosts() {
        let c = cluster(STRICT);
        apply(&c, &[ips(&["10.0.0.1"]), None]);
        let change = apply(&c, &[ips(&[]), None]);
        assert_eq!(change.removed.len(), 1);
        assert_eq!(addresses(&c), ["127.0.0.1:9"]);
    }

    #[test]
    fn names_resolving_to_one_address_make_one_host() {
        let c = cluster(
            "{ name: c, type: strict_dns, endpoints: [{ address: \"a.test:80\" }, { address: \"b.test:80\" }] }",
        );
        apply(&c, &[ips(&["10.0.0.1"]), ips(&["10.0.0.1"])]);
        assert_eq!(addresses(&c), ["10.0.0.1:80"]);
        assert!(apply(&c, &[ips(&["10.0.0.1"]), ips(&["10.0.0.1"])]).is_empty());
    }

    #[test]
    fn a_logical_name_is_one_host_at_its_first_address() {
        let c = cluster("{ name: c, type: logical_dns, endpoints: [{ address: \"a.test:80\" }] }");
        apply(&c, &[ips(&["10.0.0.1", "10.0.0.2"])]);
        assert_eq!(addresses(&c), ["10.0.0.1:80"]);
        let old = c.hosts()[0].clone();
        assert!(apply(&c, &[ips(&["10.0.0.1", "10.0.0.3"])]).is_empty());
        let change = apply(&c, &[ips(&["10.0.0.2", "10.0.0.1"])]);
        assert_eq!(change.added, [Address::parse("10.0.0.2:80").unwrap()]);
        assert_eq!(change.removed, std::slice::from_ref(&old.address));
        assert!(!Arc::ptr_eq(&old, &c.hosts()[0]));
    }
}
