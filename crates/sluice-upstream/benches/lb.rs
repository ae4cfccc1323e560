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

criterion_group!(benches, bench);
criterion_main!(benches);
