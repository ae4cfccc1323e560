//! `choose()` over 1,000 hosts for each balancer: the per-request cost of picking a host.
//!
//! Hosts carry some requests in flight and latency samples, so `least_request` and
//! `peak_ewma` compare real numbers; hash policies get a different key each pick.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use sluice_config::{Address, LbConfig, LbPolicy};
use sluice_upstream::host::{Host, Locality, Metadata};
use sluice_upstream::lb::{self, hash_key, LbContext};

const HOSTS: usize = 1_000;

fn hosts(weighted: bool) -> Vec<Arc<Host>> {
    (0..HOSTS)
        .map(|i| {
            let address = Address::parse(&format!(
                "10.{}.{}.{}:8080",
                i / 65_536,
                i / 256 % 256,
                i % 256
            ))
            .unwrap_or_else(|e| panic!("{e}"));
            let weight = if weighted { 1 + (i % 5) as u32 } else { 1 };
            Arc::new(Host::new(
                address,
                weight,
                Metadata::default(),
                Locality::default(),
                0,
            ))
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    fastrand::seed(1);
    let config = LbConfig::default();
    let plain = hosts(false);
    let weighted = hosts(true);
    // Load: up to 7 requests in flight on each host, and a latency sample of 5-50ms.
    let mut held = Vec::new();
    for h in plain.iter().chain(&weighted) {
        for _ in 0..fastrand::usize(..8) {
            held.push(h.start_request());
        }
        h.record_latency(Duration::from_millis(fastrand::u64(5..50)));
    }
    let keys: Vec<u64> = (0..1024u32).map(|k| hash_key(&k.to_le_bytes())).collect();

    let cases = [
        ("round_robin", LbPolicy::RoundRobin, &plain, false),
        ("random", LbPolicy::Random, &plain, false),
        ("least_request", LbPolicy::LeastRequest, &plain, false),
        (
            "least_request_weighted",
            LbPolicy::LeastRequest,
            &weighted,
            false,
        ),
        ("ring_hash", LbPolicy::RingHash, &plain, true),
        ("maglev", LbPolicy::Maglev, &plain, true),
        ("peak_ewma", LbPolicy::PeakEwma, &plain, false),
    ];
    let mut group = c.benchmark_group("choose_1000_hosts");
    for (name, policy, hosts, hashed) in cases {
        let balancer = lb::build(policy, hosts, &config);
        let next = AtomicUsize::new(0);
        group.bench_function(name, |b| {
            b.iter(|| {
                let hash = hashed.then(|| keys[next.fetch_add(1, Ordering::Relaxed) % keys.len()]);
                black_box(balancer.choose(black_box(&LbContext { hash })))
            })
        });
    }
    group.finish();
    drop(held);
}

/// The whole per-request pick of `http_proxy`: load the cluster's snapshot, find the
/// subset, draw a priority level and a locality tier, ask the balancer. 1,000 endpoints over
/// two priorities and three zones, with `local_zone`, two subset selectors and a third of
/// the local zone down (so level and tier draws both happen).
fn cluster_pick(c: &mut Criterion) {
    let endpoints: String = (0..HOSTS)
        .map(|i| {
            format!(
                "{{ address: \"10.{}.{}.{}:8080\", zone: z{}, priority: {}, metadata: {{ version: v{}, stage: s{} }} }}, ",
                i / 65_536,
                i / 256 % 256,
                i % 256,
                i % 3,
                usize::from(i >= 900),
                i % 2,
                i % 4
            )
        })
        .collect();
    let yaml = format!(
        "clusters:\n  - {{ name: c, local_zone: z0, subset_selectors: [[version], [version, stage]], endpoints: [{endpoints}] }}\n"
    );
    let config = sluice_config::load_str(&yaml, "bench.yaml", &sluice_config::Registry::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let cluster = sluice_upstream::Cluster::from_config(&config.clusters[0])
        .unwrap_or_else(|e| panic!("{e}"));
    for h in cluster
        .hosts()
        .iter()
        .filter(|h| &*h.locality.zone == "z0")
        .step_by(3)
    {
        h.set_health_flag(sluice_upstream::host::health::FAILED_OUTLIER, true);
    }
    cluster.health_changed();
    let subset = sluice_config::metadata_key([("version", "v1")]);
    let mut group = c.benchmark_group("cluster_pick_1000_hosts");
    group.bench_function("whole_cluster", |b| {
        b.iter(|| {
            let snapshot = cluster.snapshot();
            let group = snapshot.group("")?;
            group.choose(&LbContext::default()).cloned()
        })
    });
    group.bench_function("subset", |b| {
        b.iter(|| {
            let snapshot = cluster.snapshot();
            let group = snapshot.group(black_box(&subset))?;
            group.choose(&LbContext::default()).cloned()
        })
    });
    group.finish();
}

criterion_group!(benches, bench, cluster_pick);
criterion_main!(benches);
