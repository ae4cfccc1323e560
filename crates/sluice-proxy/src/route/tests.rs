//! Whole-table tests: virtual host choice through the public API, route order, actions,
//! compile errors, and a table with ten thousand virtual hosts. Each matcher kind has its
//! own tests next to it.

use http::{HeaderMap, HeaderValue, Request};
use sluice_config::model::ClusterRef;
use sluice_config::route::*;

use super::*;

fn cluster(name: &str) -> ClusterRef {
    ClusterRef {
        name: name.into(),
        path: String::new(),
        line: 0,
    }
}

fn forward(target: ClusterTarget) -> RouteAction {
    RouteAction::Forward(Box::new(ForwardAction {
        target,
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
    }))
}

fn route(name: &str, path: PathMatch) -> Route {
    Route {
        stat_prefix: None,
        name: Some(name.into()),
        matcher: RouteMatch {
            path,
            case_sensitive: true,
            headers: vec![],
            query_parameters: vec![],
            grpc: None,
        },
        action: forward(ClusterTarget::Cluster(cluster(name))),
        headers: Default::default(),
        line: 1,
    }
}

fn vhost(name: &str, domains: &[&str], routes: Vec<Route>) -> VirtualHost {
    VirtualHost {
        name: name.into(),
        domains: domains.iter().map(|d| d.to_string()).collect(),
        routes,
        headers: Default::default(),
        include_request_attempt_count: false,
        include_attempt_count_in_response: false,
    }
}

fn config(virtual_hosts: Vec<VirtualHost>) -> RouteConfig {
    RouteConfig {
        name: "main".into(),
        virtual_hosts,
        headers: Default::default(),
        line: 1,
    }
}

/// One catch-all route per virtual host, named after it.
fn hosts_table(hosts: &[(&str, &[&str])]) -> RouteTable {
    let vhosts = hosts
        .iter()
        .map(|(name, domains)| {
            vhost(
                name,
                domains,
                vec![route(name, PathMatch::Prefix("/".into()))],
            )
        })
        .collect();
    RouteTable::compile(&config(vhosts)).unwrap()
}

fn select<'t>(table: &'t RouteTable, authority: &str, pq: &str, h: &HeaderMap) -> Option<&'t str> {
    table
        .select(&RequestView::new("GET", authority, pq, h))
        .and_then(CompiledRoute::name)
}

fn vhost_name<'t>(table: &'t RouteTable, authority: &str) -> Option<&'t str> {
    table.virtual_host(authority).map(CompiledVirtualHost::name)
}

#[test]
fn table_is_shareable_across_workers() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RouteTable>();
}

#[test]
fn domain_precedence_through_the_table() {
    let t = hosts_table(&[
        ("any", &["*"]),
        ("prefix", &["shop.*"]),
        ("suffix", &["*.example.com"]),
        ("longer-suffix", &["*.eu.example.com"]),
        ("exact", &["shop.example.com", "Www.Example.com"]),
    ]);
    assert_eq!(vhost_name(&t, "shop.example.com"), Some("exact"));
    assert_eq!(vhost_name(&t, "WWW.EXAMPLE.COM:443"), Some("exact"));
    assert_eq!(vhost_name(&t, "api.example.com"), Some("suffix"));
    assert_eq!(vhost_name(&t, "shop.eu.example.com"), Some("longer-suffix"));
    assert_eq!(vhost_name(&t, "shop.example.org"), Some("prefix"));
    assert_eq!(vhost_name(&t, "example.com"), Some("any"));
    assert_eq!(vhost_name(&t, ""), Some("any"));
    let h = HeaderMap::new();
    assert_eq!(select(&t, "api.example.com:8080", "/x", &h), Some("suffix"));
}

#[test]
fn ipv6_authorities() {
    let t = hosts_table(&[("v6", &["[::1]", "[2001:db8::1]"]), ("v4", &["127.0.0.1"])]);
    assert_eq!(vhost_name(&t, "[::1]:8080"), Some("v6"));
    assert_eq!(vhost_name(&t, "[::1]"), Some("v6"));
    assert_eq!(vhost_name(&t, "[2001:DB8::1]:443"), Some("v6"));
    assert_eq!(vhost_name(&t, "127.0.0.1:80"), Some("v4"));
    assert_eq!(vhost_name(&t, "[::2]:8080"), None);
    assert_eq!(vhost_name(&t, "::1"), None);
}

#[test]
fn first_matching_route_wins() {
    let routes = vec![
        route("health", PathMatch::Exact("/healthz".into())),
        route("users", PathMatch::Regex("/users/[0-9]+".into())),
        route("api", PathMatch::Prefix("/api/".into())),
        route("shadowed", PathMatch::Prefix("/api/v2".into())),
        route("root", PathMatch::Prefix("/".into())),
    ];
    let t = RouteTable::compile(&config(vec![vhost("vh", &["*"], routes)])).unwrap();
    let h = HeaderMap::new();
    assert_eq!(select(&t, "a", "/healthz", &h), Some("health"));
    assert_eq!(select(&t, "a", "/healthz?verbose", &h), Some("health"));
    assert_eq!(select(&t, "a", "/healthz/", &h), Some("root"));
    assert_eq!(select(&t, "a", "/users/7", &h), Some("users"));
    assert_eq!(select(&t, "a", "/users/x", &h), Some("root"));
    assert_eq!(select(&t, "a", "/api/v2/x", &h), Some("api"));
}

#[test]
fn no_route() {
    let t = RouteTable::compile(&config(vec![vhost(
        "vh",
        &["a.example"],
        vec![route("only", PathMatch::Prefix("/only".into()))],
    )]))
    .unwrap();
    let h = HeaderMap::new();
    // Known host, no route matches.
    assert!(t.virtual_host("a.example").is_some());
    assert_eq!(select(&t, "a.example", "/other", &h), None);
    // Unknown host.
    assert_eq!(select(&t, "b.example", "/only", &h), None);
    // Empty tables and empty virtual hosts.
    let empty = RouteTable::compile(&config(vec![])).unwrap();
    assert_eq!(select(&empty, "a", "/", &h), None);
    let no_routes = RouteTable::compile(&config(vec![vhost("vh", &["*"], vec![])])).unwrap();
    assert_eq!(select(&no_routes, "a", "/", &h), None);
}

#[test]
fn case_sensitivity_of_paths() {
    let mut insensitive = route("ci", PathMatch::Prefix("/Api".into()));
    insensitive.matcher.case_sensitive = false;
    let routes = vec![route("cs", PathMatch::Exact("/Exact".into())), insensitive];
    let t = RouteTable::compile(&config(vec![vhost("vh", &["*"], routes)])).unwrap();
    let h = HeaderMap::new();
    assert_eq!(select(&t, "a", "/Exact", &h), Some("cs"));
    assert_eq!(select(&t, "a", "/exact", &h), None);
    assert_eq!(select(&t, "a", "/aPI/x", &h), Some("ci"));
}

#[test]
fn header_query_and_grpc_rules_pick_between_routes() {
    let mut canary = route("canary", PathMatch::Prefix("/".into()));
    canary.matcher.headers.push(HeaderMatch {
        name: "x-canary".into(),
        value: ValueMatch::Present,
        invert: false,
    });
    let mut debug = route("debug", PathMatch::Prefix("/".into()));
    debug.matcher.query_parameters.push(QueryParameterMatch {
        name: "debug".into(),
        value: ValueMatch::Exact("1".into()),
    });
    let mut grpc = route("grpc", PathMatch::Prefix("/".into()));
    grpc.matcher.grpc = Some(GrpcMatch {
        service: Some("pkg.Svc".into()),
        method: None,
    });
    let routes = vec![
        canary,
        debug,
        grpc,
        route("default", PathMatch::Prefix("/".into())),
    ];
    let t = RouteTable::compile(&config(vec![vhost("vh", &["*"], routes)])).unwrap();

    let plain = HeaderMap::new();
    assert_eq!(select(&t, "a", "/x", &plain), Some("default"));
    assert_eq!(select(&t, "a", "/x?debug=1", &plain), Some("debug"));
    assert_eq!(select(&t, "a", "/x?debug=0", &plain), Some("default"));
    let mut canary_h = HeaderMap::new();
    canary_h.insert("x-canary", HeaderValue::from_static(""));
    assert_eq!(select(&t, "a", "/x?debug=1", &canary_h), Some("canary"));
    let mut grpc_h = HeaderMap::new();
    grpc_h.insert("content-type", HeaderValue::from_static("application/grpc"));
    assert_eq!(select(&t, "a", "/pkg.Svc/Get", &grpc_h), Some("grpc"));
    assert_eq!(select(&t, "a", "/other.Svc/Get", &grpc_h), Some("default"));
    assert_eq!(select(&t, "a", "/pkg.Svc/Get", &plain), Some("default"));
}

#[test]
fn selects_from_request_parts() {
    let t = hosts_table(&[("api", &["api.example.com"]), ("any", &["*"])]);
    let (parts, ()) = Request::get("/v1?x=1")
        .header("host", "API.example.com:8443")
        .body(())
        .unwrap()
        .into_parts();
    let r = t.select(&RequestView::from_parts(&parts)).unwrap();
    assert_eq!(r.name(), Some("api"));
}

#[test]
fn actions_are_compiled() {
    let mut weighted = route("weighted", PathMatch::Prefix("/w".into()));
    weighted.action = forward(ClusterTarget::Weighted(vec![
        WeightedCluster {
            cluster: cluster("blue"),
            weight: 0,
            metadata_match: Default::default(),
        },
        WeightedCluster {
            cluster: cluster("green"),
            weight: 1,
            metadata_match: Default::default(),
        },
    ]));
    let mut rewrite = route("rewrite", PathMatch::Prefix("/r".into()));
    if let RouteAction::Forward(f) = &mut rewrite.action {
        f.regex_rewrite = Some(RegexRewrite {
            pattern: "^/r/(.*)$".into(),
            substitution: "/\\1".into(),
        });
    }
    let mut direct = route("direct", PathMatch::Prefix("/d".into()));
    direct.action = RouteAction::DirectResponse(DirectResponse {
        status: 200,
        body: "ok".into(),
    });
    let t = RouteTable::compile(&config(vec![vhost(
        "vh",
        &["*"],
        vec![weighted, rewrite, direct],
    )]))
    .unwrap();
    let h = HeaderMap::new();
    let pick = |pq: &str| t.select(&RequestView::new("GET", "a", pq, &h)).unwrap();

    let w = pick("/w");
    assert_eq!(w.clusters().unwrap().choose().cluster.name, "green");
    assert!(w.regex_rewrite().is_none());
    let r = pick("/r/x");
    assert_eq!(r.clusters().unwrap().choose().cluster.name, "rewrite");
    assert_eq!(r.regex_rewrite().unwrap().replace("/r/x", "/$1"), "/x");
    let d = pick("/d");
    assert!(d.clusters().is_none());
    assert!(matches!(d.action(), RouteAction::DirectResponse(_)));
}

#[test]
fn compile_errors() {
    let err = |vhosts: Vec<VirtualHost>| RouteTable::compile(&config(vhosts)).unwrap_err();

    let e = err(vec![
        vhost("one", &["a.example"], vec![]),
        vhost("two", &["A.example"], vec![]),
    ]);
    assert!(
        matches!(&e, CompileError::DuplicateDomain { first, second, .. } if first == "one" && second == "two"),
        "{e}"
    );

    let e = err(vec![vhost("vh", &["a.*.example"], vec![])]);
    assert!(matches!(e, CompileError::InvalidDomain { .. }), "{e}");

    let mut unnamed = route("x", PathMatch::Regex("/(".into()));
    unnamed.name = None;
    unnamed.line = 42;
    let e = err(vec![vhost(
        "vh",
        &["*"],
        vec![route("ok", PathMatch::Prefix("/".into())), unnamed],
    )]);
    assert!(matches!(e, CompileError::InvalidRegex { .. }), "{e}");
    assert!(e.to_string().contains("main/vh/#1 (line 42)"), "{e}");

    let mut query = route("q", PathMatch::Prefix("/".into()));
    query.matcher.query_parameters.push(QueryParameterMatch {
        name: "a".into(),
        value: ValueMatch::Regex("[".into()),
    });
    let e = err(vec![vhost("vh", &["*"], vec![query])]);
    assert!(e.to_string().contains("query parameter \"a\""), "{e}");

    let mut rewrite = route("rw", PathMatch::Prefix("/".into()));
    if let RouteAction::Forward(f) = &mut rewrite.action {
        f.regex_rewrite = Some(RegexRewrite {
            pattern: "(".into(),
            substitution: String::new(),
        });
    }
    let e = err(vec![vhost("vh", &["*"], vec![rewrite])]);
    assert!(e.to_string().contains("regex_rewrite"), "{e}");

    let mut zero = route("zero", PathMatch::Prefix("/".into()));
    zero.action = forward(ClusterTarget::Weighted(vec![WeightedCluster {
        cluster: cluster("a"),
        weight: 0,
        metadata_match: Default::default(),
    }]));
    let e = err(vec![vhost("vh", &["*"], vec![zero])]);
    assert!(matches!(e, CompileError::NoWeight { .. }), "{e}");
}

#[test]
fn ten_thousand_virtual_hosts() {
    const N: usize = 10_000;
    let mut vhosts = Vec::with_capacity(3 * N + 1);
    for i in 0..N {
        let routes = |name: &str| vec![route(name, PathMatch::Prefix("/".into()))];
        let exact = format!("exact-{i}");
        vhosts.push(vhost(
            &exact,
            &[format!("svc{i}.example.com").as_str()],
            routes(&exact),
        ));
        let suffix = format!("suffix-{i}");
        vhosts.push(vhost(
            &suffix,
            &[format!("*.t{i}.example.org").as_str()],
            routes(&suffix),
        ));
        let prefix = format!("prefix-{i}");
        vhosts.push(vhost(
            &prefix,
            &[format!("app{i}.*").as_str()],
            routes(&prefix),
        ));
    }
    vhosts.push(vhost(
        "default",
        &["*"],
        vec![route("default", PathMatch::Prefix("/".into()))],
    ));
    let t = RouteTable::compile(&config(vhosts)).unwrap();
    assert_eq!(t.virtual_hosts().len(), 3 * N + 1);

    for i in (0..N).step_by(97).chain([0, 1, 9, 10, 99, 100, N - 1]) {
        assert_eq!(
            vhost_name(&t, &format!("svc{i}.example.com")),
            Some(&*format!("exact-{i}"))
        );
        assert_eq!(
            vhost_name(&t, &format!("SVC{i}.Example.com:8080")),
            Some(&*format!("exact-{i}"))
        );
        // `t1.` must not be confused with `t10.`, `t100.` ...: the suffix includes the dot.
        assert_eq!(
            vhost_name(&t, &format!("a.b.t{i}.example.org")),
            Some(&*format!("suffix-{i}"))
        );
        assert_eq!(
            vhost_name(&t, &format!("app{i}.internal")),
            Some(&*format!("prefix-{i}"))
        );
        // `app1.*` must not take `app10.x`: the prefix includes the dot.
        assert_eq!(
            vhost_name(&t, &format!("app{i}x.internal")),
            Some("default")
        );
        assert_eq!(
            vhost_name(&t, &format!("t{i}.example.org")),
            Some("default")
        );
    }
    assert_eq!(
        vhost_name(&t, &format!("svc{N}.example.com")),
        Some("default")
    );
    let h = HeaderMap::new();
    assert_eq!(
        select(&t, "svc5000.example.com", "/", &h),
        Some("exact-5000")
    );
}

/// The prefix index of a large virtual host picks exactly the route a scan in config order
/// would, over random mixes of prefixes, exact paths, regexes and case sensitivity.
#[test]
fn prefix_index_agrees_with_a_scan() {
    fastrand::seed(42);
    let segments = ["api", "API", "v1", "static", "a", ""];
    let pick = |v: &[&'static str]| v[fastrand::usize(..v.len())];
    for round in 0..50 {
        let routes: Vec<Route> = (0..40)
            .map(|i| {
                let (s1, s2) = (pick(&segments), pick(&segments));
                let path = match fastrand::u8(..6) {
                    0 => PathMatch::Exact(format!("/{s1}/{s2}")),
                    1 => PathMatch::Exact(format!("/{s1}")),
                    2 => PathMatch::Regex(format!("/{s1}/.*")),
                    3 => PathMatch::Prefix(format!("/{s1}")),
                    _ => PathMatch::Prefix(format!("/{s1}/{s2}")),
                };
                let mut r = route(&format!("r{i}"), path);
                r.matcher.case_sensitive = fastrand::bool();
                r
            })
            .collect();
        let vh = CompiledVirtualHost::compile("main", &vhost("vh", &["*"], routes)).unwrap();
        assert!(vh.index.is_some());
        let headers = http::HeaderMap::new();
        for _ in 0..200 {
            let tail = if fastrand::bool() { "x" } else { "" };
            let path = format!("/{}/{}{tail}", pick(&segments), pick(&segments));
            let path = if fastrand::bool() {
                path.to_ascii_uppercase()
            } else {
                path
            };
            let req = RequestView::new("GET", "h", &path, &headers);
            let scanned = vh
                .routes
                .iter()
                .find(|r| r.matches(&req))
                .and_then(|r| r.name());
            assert_eq!(
                vh.select(&req).and_then(|r| r.name()),
                scanned,
                "round {round}, {path}"
            );
        }
    }
}
