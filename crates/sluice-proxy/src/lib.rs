//! Sluice's HTTP proxying: this crate will hold the HTTP stream lifecycle (decode a request,
//! pick a route, forward it upstream, relay the response) and the router that drives it. For
//! now it holds the router's matching core, [`route::RouteTable`]: a route configuration
//! compiled once (domains indexed, regexes built, weights summed) so that choosing the route
//! for a request does no parsing, no regex compilation and no scan over every virtual host.

pub mod route;
