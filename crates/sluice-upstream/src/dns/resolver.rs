//! Asking DNS for a name's addresses: a hickory resolver set up from a cluster's
//! `dns_resolvers` and `dns_lookup_family`, behind a small trait so the refresh task can be
//! tested without a name server.

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;
use sluice_config::{ClusterConfig, DnsLookupFamily};

/// Looks names up.
pub(crate) trait Resolve: Send + Sync + 'static {
    /// Every address of `name`. `Ok` with none means the server answered that the name has
    /// no address (NXDOMAIN, or no record of the family asked); `Err` means no answer
    /// (timeout, refused, server failure), which says nothing about the name.
    fn resolve(&self, name: &str) -> impl Future<Output = Result<Vec<IpAddr>, String>> + Send;
}

/// How long one lookup of a name may take, retries and address families included. Past it
/// the lookup counts as failed (the name keeps its hosts) and the next refresh asks again;
/// hickory's own defaults could spend 30s on a dead server.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one query may wait for its answer before hickory sends it again; two tries of
/// each family fit in [`LOOKUP_TIMEOUT`] when `auto` falls back from IPv6 to IPv4.
const QUERY_TIMEOUT: Duration = Duration::from_secs(1);

/// A hickory resolver for one cluster.
pub(crate) struct DnsResolver(TokioResolver);

impl DnsResolver {
    /// Asks the cluster's `dns_resolvers` (UDP, and TCP for truncated answers), or the servers
    /// of `/etc/resolv.conf` when it names none. Fails only when the system config cannot be
    /// read; the caller retries on its next refresh.
    pub(crate) fn new(config: &ClusterConfig) -> Result<DnsResolver, String> {
        let (servers, mut opts) = if config.dns_resolvers.is_empty() {
            let (servers, mut opts) =
                hickory_resolver::system_conf::read_system_conf().map_err(|e| {
                    format!(
                        "cannot read the system DNS config (/etc/resolv.conf): {e}; \
                         set dns_resolvers on the cluster"
                    )
                })?;
            // As getaddrinfo would: /etc/hosts first.
            opts.use_hosts_file = ResolveHosts::Always;
            (servers, opts)
        } else {
            let servers = config
                .dns_resolvers
                .iter()
                .map(|server| {
                    let mut ns = NameServerConfig::udp_and_tcp(server.ip());
                    for connection in &mut ns.connections {
                        connection.port = server.port();
                    }
                    ns
                })
                .collect();
            let mut opts = ResolverOpts::default();
            // Servers named in the config are the whole truth: a stale /etc/hosts line must
            // not shadow them.
            opts.use_hosts_file = ResolveHosts::Never;
            (ResolverConfig::from_name_servers(servers), opts)
        };
        opts.ip_strategy = strategy(config.dns_lookup_family);
        opts.timeout = QUERY_TIMEOUT;
        opts.attempts = 1;
        // No caching: every refresh asks the server. A cached answer would live for its TTL
        // (often minutes), hiding changes that `dns_refresh_rate` promises to see.
        opts.cache_size = 0;
        opts.positive_max_ttl = Some(Duration::ZERO);
        opts.negative_max_ttl = Some(Duration::ZERO);
        TokioResolver::builder_with_config(servers, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map(DnsResolver)
            .map_err(|e| format!("cannot set up the DNS resolver: {e}"))
    }
}

impl Resolve for DnsResolver {
    async fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        match tokio::time::timeout(LOOKUP_TIMEOUT, self.0.lookup_ip(name)).await {
            Ok(Ok(lookup)) => Ok(lookup.iter().collect()),
            Ok(Err(e)) if e.is_no_records_found() => Ok(Vec::new()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {LOOKUP_TIMEOUT:?}")),
        }
    }
}

/// Envoy's `dns_lookup_family` as hickory's query strategy.
fn strategy(family: DnsLookupFamily) -> LookupIpStrategy {
    match family {
        DnsLookupFamily::V4Only => LookupIpStrategy::Ipv4Only,
        DnsLookupFamily::V6Only => LookupIpStrategy::Ipv6Only,
        DnsLookupFamily::Auto => LookupIpStrategy::Ipv6thenIpv4,
        DnsLookupFamily::V4Preferred => LookupIpStrategy::Ipv4thenIpv6,
        DnsLookupFamily::All => LookupIpStrategy::Ipv4AndIpv6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_map_to_strategies() {
        assert_eq!(
            strategy(DnsLookupFamily::Auto),
            LookupIpStrategy::Ipv6thenIpv4
        );
        assert_eq!(
            strategy(DnsLookupFamily::V4Preferred),
            LookupIpStrategy::Ipv4thenIpv6
        );
        assert_eq!(
            strategy(DnsLookupFamily::All),
            LookupIpStrategy::Ipv4AndIpv6
        );
    }

    #[tokio::test]
    async fn builds_from_configured_servers() {
        let config = crate::testing::cluster_config(
            "{ name: c, type: strict_dns, dns_resolvers: [\"127.0.0.1:5353\"], endpoints: [{ address: \"a.test:80\" }] }",
        );
        let resolver = DnsResolver::new(&config).unwrap();
        // IP literals are answered without asking anyone.
        assert_eq!(
            resolver.resolve("127.0.0.9").await,
            Ok(vec!["127.0.0.9".parse().unwrap()])
        );
    }
}
