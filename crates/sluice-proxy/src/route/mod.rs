//! The route table: a [`RouteConfig`] compiled for matching requests.
//!
//! Compiling does everything that does not depend on the request once: domains go into an
//! index (see `domains.rs` for precedence), regexes are built and anchored, header names
//! parsed, weights summed. Selecting then costs one domain lookup plus the routes of one
//! virtual host tried in order, the first match winning (Envoy's semantics; config order is
//! the author's priority order).
//!
//! A table is immutable, `Send + Sync`, and meant to be shared behind an `Arc` and swapped
//! whole when the config changes, like the other runtime objects.
//!
//! Allocation while selecting: none, except a header rule testing a header that the request
//! repeats (the values are joined, see `header.rs`), a query piece containing `%` (decoded,
//! see `query.rs`), and a host with upper-case letters (lower-cased for the exact-domain map).

mod domains;
mod error;
mod grpc;
mod header;
mod matcher;
mod path;
mod prefix_index;
mod query;
mod request;
mod stats;
mod trie;
mod value;
mod weighted;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use regex::Regex;
use sluice_config::route::{HeaderMutations, Route, RouteAction, RouteConfig, VirtualHost};

pub use error::CompileError;
pub use header::HeaderMatcher;
pub use request::RequestView;
pub use stats::RouteStats;
pub use value::ValueMatcher;
pub use weighted::{ClusterChoice, WeightedClusters};

use domains::{DomainError, DomainIndex};
use matcher::RouteMatcher;
use prefix_index::PrefixIndex;

#[derive(Debug)]
pub struct RouteTable {
    name: String,
    headers: HeaderMutations,
    virtual_hosts: Vec<CompiledVirtualHost>,
    domains: DomainIndex,
}

#[derive(Debug)]
pub struct CompiledVirtualHost {
    name: String,
    headers: HeaderMutations,
    attempt_count: AttemptCount,
    routes: Vec<CompiledRoute>,
    /// Built for large virtual hosts only (see [`prefix_index::MIN_ROUTES`]).
    index: Option<PrefixIndex>,
}

#[derive(Debug)]
pub struct CompiledRoute {
    config: Route,
    matcher: RouteMatcher,
    clusters: Option<ClusterChoice>,
    regex_rewrite: Option<Regex>,
    /// The route's own counters, when it has a `stat_prefix`.
    stats: Option<Arc<RouteStats>>,
    /// `name`, shared with the records of the requests it routes.
    name: Option<Arc<str>>,
}

impl RouteTable {
    /// Compiles every virtual host and route, failing on the first problem: an invalid or
    /// duplicated domain, a regex that does not compile, a bad header name in a matcher, or
    /// weighted clusters with nothing to pick.
    pub fn compile(config: &RouteConfig) -> Result<RouteTable, CompileError> {
        let mut domains = DomainIndex::default();
        for (index, vhost) in config.virtual_hosts.iter().enumerate() {
            for domain in &vhost.domains {
                domains
                    .insert(domain, index)
                    .map_err(|e| domain_error(e, config, vhost, domain))?;
            }
        }
        let virtual_hosts = config
            .virtual_hosts
            .iter()
            .map(|vhost| CompiledVirtualHost::compile(&config.name, vhost))
            .collect::<Result<_, _>>()?;
        Ok(RouteTable {
            name: config.name.clone(),
            headers: config.headers.clone(),
            virtual_hosts,
            domains,
        })
    }

    /// The route for a request: the first matching route of the virtual host chosen by the
    /// authority. `None` when no virtual host takes the authority or none of its routes
    /// matches (a 404 either way; use [`RouteTable::virtual_host`] to tell them apart).
    pub fn select(&self, req: &RequestView<'_>) -> Option<&CompiledRoute> {
        self.virtual_host(req.authority())?.select(req)
    }

    /// The virtual host for an authority (`Host` / `:authority`, with or without a port).
    pub fn virtual_host(&self, authority: &str) -> Option<&CompiledVirtualHost> {
        self.virtual_hosts.get(self.domains.find(authority)?)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Header mutations of the whole table (applied after the route's and virtual host's).
    pub fn headers(&self) -> &HeaderMutations {
        &self.headers
    }

    /// In config order.
    pub fn virtual_hosts(&self) -> &[CompiledVirtualHost] {
        &self.virtual_hosts
    }
}

fn domain_error(
    e: DomainError,
    config: &RouteConfig,
    vhost: &VirtualHost,
    domain: &str,
) -> CompileError {
    match e {
        DomainError::Invalid(reason) => CompileError::InvalidDomain {
            virtual_host: vhost.name.clone(),
            domain: domain.to_string(),
            reason,
        },
        DomainError::Taken(owner) => CompileError::DuplicateDomain {
            domain: domain.to_string(),
            first: config
                .virtual_hosts
                .get(owner)
                .map_or_else(String::new, |v| v.name.clone()),
            second: vhost.name.clone(),
        },
    }
}

impl CompiledVirtualHost {
    fn compile(config_name: &str, vhost: &VirtualHost) -> Result<Self, CompileError> {
        let routes = vhost
            .routes
            .iter()
            .enumerate()
            .map(|(index, route)| {
                let label = route_label(config_name, &vhost.name, index, route);
                CompiledRoute::compile(route, &label, &vhost.name)
            })
            .collect::<Result<_, _>>()?;
        Ok(CompiledVirtualHost {
            name: vhost.name.clone(),
            headers: vhost.headers.clone(),
            attempt_count: AttemptCount {
                request: vhost.include_request_attempt_count,
                response: vhost.include_attempt_count_in_response,
            },
            routes,
            index: (vhost.routes.len() >= prefix_index::MIN_ROUTES)
                .then(|| PrefixIndex::new(&vhost.routes)),
        })
    }

    /// The first route, in config order, whose match holds.
    pub fn select(&self, req: &RequestView<'_>) -> Option<&CompiledRoute> {
        match &self.index {
            None => self.routes.iter().find(|route| route.matches(req)),
            Some(index) => index.find(req.path(), |i| {
                self.routes
                    .get(i as usize)
                    .filter(|route| route.matches(req))
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn routes(&self) -> &[CompiledRoute] {
        &self.routes
    }

    /// Header mutations of this virtual host (applied after the route's).
    pub fn headers(&self) -> &HeaderMutations {
        &self.headers
    }

    /// Where `x-envoy-attempt-count` goes.
    pub fn attempt_count(&self) -> AttemptCount {
        self.attempt_count
    }
}

/// Whether `x-envoy-attempt-count` is set on upstream requests and on the response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttemptCount {
    pub request: bool,
    pub response: bool,
}

/// How errors name a route: `config/virtual_host/name (line N)`, or `#index` for an unnamed
/// route, so the message leads back to the YAML even from an xDS-built table.
fn route_label(config: &str, vhost: &str, index: usize, route: &Route) -> String {
    match &route.name {
        Some(name) => format!("{config}/{vhost}/{name} (line {})", route.line),
        None => format!("{config}/{vhost}/#{index} (line {})", route.line),
    }
}

impl CompiledRoute {
    fn compile(route: &Route, label: &str, vhost: &str) -> Result<Self, CompileError> {
        let matcher = RouteMatcher::compile(&route.matcher, label)?;
        let (clusters, regex_rewrite) = match &route.action {
            RouteAction::Forward(forward) => {
                let clusters = ClusterChoice::compile(&forward.target, &forward.metadata_match)
                    .ok_or_else(|| CompileError::NoWeight {
                        route: label.to_string(),
                    })?;
                // Built here, not per request, and so that a bad pattern fails the config
                // rather than the request that first needs it.
                let rewrite = forward
                    .regex_rewrite
                    .as_ref()
                    .map(|rw| {
                        Regex::new(&rw.pattern).map_err(|source| CompileError::InvalidRegex {
                            route: label.to_string(),
                            what: "regex_rewrite".to_string(),
                            pattern: rw.pattern.clone(),
                            source: Box::new(source),
                        })
                    })
                    .transpose()?;
                (Some(clusters), rewrite)
            }
            RouteAction::Redirect(_) | RouteAction::DirectResponse(_) => (None, None),
        };
        Ok(CompiledRoute {
            config: route.clone(),
            matcher,
            clusters,
            regex_rewrite,
            stats: route
                .stat_prefix
                .as_deref()
                .map(|prefix| Arc::new(RouteStats::new(vhost, prefix))),
            name: route.name.as_deref().map(Arc::from),
        })
    }

    /// Whether this route's match (path, gRPC, headers, query) holds for the request.
    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        self.matcher.matches(req)
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The route's `name` as a shared string, for records that outlive the request.
    pub fn shared_name(&self) -> Option<&Arc<str>> {
        self.name.as_ref()
    }

    /// The route's counters, when it has a `stat_prefix`.
    pub fn stats(&self) -> Option<&RouteStats> {
        self.stats.as_deref()
    }

    /// The route as configured, for the action's details (timeouts, retries, rewrites).
    pub fn config(&self) -> &Route {
        &self.config
    }

    pub fn action(&self) -> &RouteAction {
        &self.config.action
    }

    /// Where a forwarded request goes; `None` for redirects and direct responses.
    pub fn clusters(&self) -> Option<&ClusterChoice> {
        self.clusters.as_ref()
    }

    /// The compiled `regex_rewrite` pattern (unanchored: it rewrites every match in the
    /// path, with the configured substitution).
    pub fn regex_rewrite(&self) -> Option<&Regex> {
        self.regex_rewrite.as_ref()
    }
}
