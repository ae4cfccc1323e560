//! Selecting the route for a request in a table of 10,000 routes: 100 virtual hosts of 100
//! routes each, mostly path prefixes, with exact paths, header matches and a few regexes mixed
//! in. The hit is the 98th route of the last virtual host (97 routes tried before it); the
//! miss tries all 100 routes of its virtual host.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue};
use sluice_config::model::ClusterRef;
use sluice_config::route::*;
use sluice_proxy::route::{RequestView, RouteTable};

const VIRTUAL_HOSTS: usize = 100;
const ROUTES_PER_HOST: usize = 100;

fn route(v: usize, k: usize) -> Route {
    let mut headers = Vec::new();
    let path = if k.is_multiple_of(10) {
        PathMatch::Exact(format!("/v1/exact/{k}"))
    } else if k % 25 == 7 {
        PathMatch::Regex(format!("/v2/items/[0-9]+/r{k}"))
    } else {
        if k % 4 == 1 {
            headers.push(HeaderMatch {
                name: "x-tenant".into(),
                value: ValueMatch::Exact(format!("tenant-{k}")),
                invert: false,
            });
        }
        PathMatch::Prefix(format!("/api/r{k}/"))
    };
    Route {
        stat_prefix: None,
        name: Some(format!("vh{v}-r{k}")),
        matcher: RouteMatch {
            path,
            case_sensitive: true,
            headers,
            query_parameters: vec![],
            grpc: None,
        },
        action: RouteAction::Forward(Box::new(ForwardAction {
            target: ClusterTarget::Cluster(ClusterRef {
                name: format!("cluster-{v}-{}", k % 7),
                path: String::new(),
                line: 0,
            }),
            timeout: Some(DEFAULT_ROUTE_TIMEOUT),
            grpc_timeout_header_max: None,
            retry_policy: None,
            request_mirror: None,
            prefix_rewrite: None,
            regex_rewrite: None,
            host_rewrite_literal: None,
            metadata_match: Default::default(),
            hash_policy: Vec::new(),
            priority: Default::default(),
        })),
        headers: Default::default(),
        line: 1,
    }
}

fn table() -> RouteTable {
    let virtual_hosts = (0..VIRTUAL_HOSTS)
        .map(|v| VirtualHost {
            name: format!("vh{v}"),
            domains: vec![
                format!("svc{v}.example.com"),
                format!("*.svc{v}.example.net"),
            ],
            routes: (0..ROUTES_PER_HOST).map(|k| route(v, k)).collect(),
            headers: Default::default(),
            include_request_attempt_count: false,
            include_attempt_count_in_response: false,
        })
        .collect();
    let config = RouteConfig {
        name: "bench".into(),
        virtual_hosts,
        headers: Default::default(),
        line: 1,
    };
    RouteTable::compile(&config).unwrap_or_else(|e| panic!("{e}"))
}

fn bench(c: &mut Criterion) {
    let table = table();
    let mut headers = HeaderMap::new();
    headers.insert("user-agent", HeaderValue::from_static("bench/1.0"));
    headers.insert("accept", HeaderValue::from_static("*/*"));
    headers.insert("x-tenant", HeaderValue::from_static("tenant-97"));
    headers.insert("cookie", HeaderValue::from_static("session=abc123"));

    let hit = RequestView::new(
        "GET",
        "svc99.example.com",
        "/api/r97/items/42?view=full",
        &headers,
    );
    let miss = RequestView::new(
        "GET",
        "svc99.example.com",
        "/nothing/here?view=full",
        &headers,
    );
    assert_eq!(table.select(&hit).and_then(|r| r.name()), Some("vh99-r97"));
    assert!(table.select(&miss).is_none());

    let mut group = c.benchmark_group("route_10000");
    group.bench_function("hit_near_end", |b| {
        b.iter(|| black_box(table.select(black_box(&hit))).is_some())
    });
    group.bench_function("miss", |b| {
        b.iter(|| black_box(table.select(black_box(&miss))).is_some())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
