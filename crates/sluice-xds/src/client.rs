//! The xDS client: listeners, route configs, clusters and endpoints from a control plane,
//! over one aggregated stream (ADS) or one stream per type, in the state-of-the-world or
//! the delta protocol.
//!
//! One task holds all the state; the streams (`stream.rs`) are pipes. Each response is
//! handled whole: every resource is translated (any failure NACKs the response, naming
//! the resource and field), the dynamic config the accepted resources would make is
//! composed and offered to the binary, which validates it as a config file and applies it
//! live; only then is the response ACKed, else NACKed with the binary's error, and the
//! previous resources stay. A stream that ends is opened again after a bounded
//! exponential backoff, telling the server the versions held.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use envoy_types::pb::envoy::config::core::v3::Node as ProtoNode;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::google::protobuf::Any;
use envoy_types::pb::google::rpc::Status as RpcStatus;
use sluice_config::{NodeConfig, XdsConfig};
use sluice_stats::{Counter, Gauge};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::kind::{self, Kind};
use crate::resource::{self, Dynamic, Entry, Warming};
use crate::status::{ResourceStatus, Status};
use crate::stream::{self, Event, Request, INVALID_ARGUMENT};

const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// A dynamic config for the binary to put in force; it answers whether it did.
pub struct Update {
    /// Shared with the client, which keeps it as the config in force once it is applied.
    pub dynamic: Arc<Dynamic>,
    pub reply: oneshot::Sender<Result<(), String>>,
}

/// The binary's side of a running client.
pub struct Handle {
    pub updates: mpsc::Receiver<Update>,
    /// Becomes true once the first listeners and clusters (and what they wait for) are in
    /// force, or `initial_fetch_timeout` passed: the proxy may report ready.
    pub initialized: watch::Receiver<bool>,
    pub status: Arc<Status>,
}

/// Starts the client on the current runtime.
pub fn start(config: &XdsConfig, node: &NodeConfig) -> Handle {
    let (updates_tx, updates) = mpsc::channel(1);
    let (events_tx, events) = mpsc::channel(64);
    let (init_tx, initialized) = watch::channel(false);
    let status = Arc::new(Status::default());
    let kinds: Vec<Kind> = kind::ALL
        .into_iter()
        .filter(|k| match k {
            Kind::Listener | Kind::Route => config.lds,
            Kind::Cluster | Kind::Endpoint => config.cds,
        })
        .collect();
    let groups = if config.ads {
        vec![Group::new(kinds.clone())]
    } else {
        kinds.iter().map(|k| Group::new(vec![*k])).collect()
    };
    let client = Client {
        config: config.clone(),
        node: crate::node::node(node),
        updates: updates_tx,
        events_tx,
        events,
        groups,
        next_stream: 1,
        types: kinds.iter().map(|k| (*k, TypeState::new(*k))).collect(),
        resources: BTreeMap::new(),
        warming: Warming::default(),
        warm_deadline: None,
        applied: None,
        initialized: init_tx,
        started: Instant::now(),
        status: status.clone(),
    };
    tokio::spawn(client.run());
    Handle {
        updates,
        initialized,
        status,
    }
}

/// The types one stream carries, and its reconnect state.
struct Group {
    kinds: Vec<Kind>,
    stream: Option<(u64, mpsc::Sender<Request>)>,
    backoff: Backoff,
    reopen_at: Option<Instant>,
}

impl Group {
    fn new(kinds: Vec<Kind>) -> Group {
        Group {
            kinds,
            stream: None,
            backoff: Backoff::new(BACKOFF_FIRST, BACKOFF_MAX),
            reopen_at: Some(Instant::now()),
        }
    }
}

/// Per type: the protocol state on the current stream, and its stats.
struct TypeState {
    /// The last version accepted (state of the world).
    version: String,
    /// The nonce of the last response on the current stream.
    nonce: String,
    /// The names last asked for on the current stream (route configs, endpoints); `None`
    /// before the first request.
    requested: Option<BTreeSet<String>>,
    /// A first response arrived (since the start).
    received: bool,
    stats: Stats,
}

impl TypeState {
    fn new(kind: Kind) -> TypeState {
        TypeState {
            version: String::new(),
            nonce: String::new(),
            requested: None,
            received: false,
            stats: Stats::new(kind),
        }
    }
}

/// `xds.<type>.*` (and Envoy's `listener_manager.lds.*`, `cluster_manager.cds.*`).
struct Stats {
    attempt: Vec<Arc<Counter>>,
    success: Vec<Arc<Counter>>,
    rejected: Vec<Arc<Counter>>,
    failure: Vec<Arc<Counter>>,
    version: Vec<Arc<Gauge>>,
}

impl Stats {
    fn new(kind: Kind) -> Stats {
        let store = sluice_stats::store();
        let mut prefixes = vec![format!("xds.{}", kind.short())];
        match kind {
            Kind::Listener => prefixes.push("listener_manager.lds".into()),
            Kind::Cluster => prefixes.push("cluster_manager.cds".into()),
            _ => {}
        }
        let counters = |name: &str| {
            prefixes
                .iter()
                .map(|p| store.counter(&format!("{p}.{name}")))
                .collect()
        };
        Stats {
            attempt: counters("update_attempt"),
            success: counters("update_success"),
            rejected: counters("update_rejected"),
            failure: counters("update_failure"),
            version: prefixes
                .iter()
                .map(|p| store.gauge_named(sluice_stats::Name::plain(&format!("{p}.version"))))
                .collect(),
        }
    }

    fn inc(counters: &[Arc<Counter>]) {
        for c in counters {
            c.inc();
        }
    }
}

struct Client {
    config: XdsConfig,
    node: ProtoNode,
    updates: mpsc::Sender<Update>,
    events_tx: mpsc::Sender<Event>,
    events: mpsc::Receiver<Event>,
    groups: Vec<Group>,
    next_stream: u64,
    types: BTreeMap<Kind, TypeState>,
    /// The accepted resources of each type.
    resources: BTreeMap<Kind, BTreeMap<String, Entry>>,
    warming: Warming,
    warm_deadline: Option<Instant>,
    /// The dynamic config last put in force.
    applied: Option<Arc<Dynamic>>,
    initialized: watch::Sender<bool>,
    started: Instant,
    status: Arc<Status>,
}

/// A response of either protocol, reduced to what handling it needs.
struct Response {
    kind: Kind,
    stream: u64,
    version: String,
    nonce: String,
    /// (name as the server gave it, version, resource); state of the world has no names or
    /// versions per resource.
    resources: Vec<(String, String, Any)>,
    removed: Vec<String>,
    /// State of the world for listeners and clusters: what is not in the response is gone.
    full_state: bool,
    delta: bool,
}

impl Client {
    async fn run(mut self) {
        info!(server = %self.config.address, ads = self.config.ads, delta = self.config.delta, "xDS client starting");
        loop {
            let wake = self.next_wake();
            tokio::select! {
                event = self.events.recv() => match event {
                    Some(Event::Sotw(id, r)) => self.on_sotw(id, r).await,
                    Some(Event::Delta(id, r)) => self.on_delta(id, r).await,
                    Some(Event::Closed { stream, error, answered }) => self.on_closed(stream, &error, answered),
                    None => return,
                },
                () = sleep_until(wake) => self.on_timer().await,
            }
            self.check_initialized();
            if self.updates.is_closed() {
                return;
            }
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        let reopen = self.groups.iter().filter_map(|g| g.reopen_at);
        let init =
            (!*self.initialized.borrow()).then(|| self.started + self.config.initial_fetch_timeout);
        reopen.chain(self.warm_deadline).chain(init).min()
    }

    async fn on_timer(&mut self) {
        let now = Instant::now();
        for i in 0..self.groups.len() {
            if self.groups[i].reopen_at.is_some_and(|t| t <= now) {
                self.open(i);
            }
        }
        if self.warm_deadline.is_some_and(|t| t <= now) {
            self.warm_deadline = None;
            debug!("xDS: a warming resource timed out; applying without what it waits for");
            if let Err(e) = self.offer(None).await {
                warn!(error = %e, "xDS: the config after a warming timeout was not applied");
            }
        }
    }

    fn check_initialized(&self) {
        if *self.initialized.borrow() {
            return;
        }
        let timed_out = self.started.elapsed() >= self.config.initial_fetch_timeout;
        let done = self
            .types
            .iter()
            .filter(|(k, _)| k.wildcard())
            .all(|(_, t)| t.received)
            && self.warming.since.is_empty();
        if done || timed_out {
            if timed_out && !done {
                warn!("xDS: initial_fetch_timeout passed before every resource arrived; starting with what there is");
            } else {
                info!("xDS: initial resources in force");
            }
            let _ = self.initialized.send(true);
        }
    }

    /// Opens group `i`'s stream and sends each of its types' first request.
    fn open(&mut self, i: usize) {
        let id = self.next_stream;
        self.next_stream += 1;
        let (tx, rx) = mpsc::channel(64);
        let delta = self.config.delta;
        let kinds = self.groups[i].kinds.clone();
        let path = if self.config.ads {
            if delta {
                kind::ADS_DELTA
            } else {
                kind::ADS_SOTW
            }
        } else {
            kinds.first().map_or(kind::ADS_SOTW, |k| k.path(delta))
        };
        self.groups[i].stream = Some((id, tx));
        self.groups[i].reopen_at = None;
        for k in &kinds {
            if let Some(t) = self.types.get_mut(k) {
                t.nonce.clear();
                t.requested = None;
            }
            self.subscribe(*k, true);
        }
        debug!(stream = id, ?kinds, path, "xDS: opening stream");
        tokio::spawn(stream::run(
            id,
            self.config.address.clone(),
            path,
            delta,
            rx,
            self.events_tx.clone(),
        ));
    }

    fn sender(&self, kind: Kind) -> Option<&mpsc::Sender<Request>> {
        self.groups
            .iter()
            .find(|g| g.kinds.contains(&kind))
            .and_then(|g| g.stream.as_ref().map(|(_, tx)| tx))
    }

    fn stream_of(&self, kind: Kind) -> Option<u64> {
        self.groups
            .iter()
            .find(|g| g.kinds.contains(&kind))
            .and_then(|g| g.stream.as_ref().map(|(id, _)| *id))
    }

    fn send(&self, kind: Kind, request: Request) {
        if let Some(tx) = self.sender(kind) {
            if tx.try_send(request).is_err() {
                warn!(%kind, "xDS: request queue full or stream gone; it is re-sent when the stream reopens");
            }
        }
    }

    /// Asks for `kind`'s resources: the first request of a stream (`first`), or a change of
    /// the names wanted (route configs, endpoints) since the last request.
    fn subscribe(&mut self, kind: Kind, first: bool) {
        let wanted = if kind.wildcard() {
            BTreeSet::new()
        } else {
            resource::wanted(&self.resources, kind)
        };
        let Some(t) = self.types.get(&kind) else {
            return;
        };
        if !kind.wildcard() {
            let same = t.requested.as_ref() == Some(&wanted);
            // An empty list would ask for every resource (a wildcard) in state of the world:
            // nothing is asked until some name is needed.
            if same || (wanted.is_empty() && (t.requested.is_none() || !self.config.delta)) {
                return;
            }
        } else if !first {
            return;
        }
        let request = if self.config.delta {
            let previous = t.requested.clone().unwrap_or_default();
            let mut r = DeltaDiscoveryRequest {
                type_url: kind.type_url().to_string(),
                ..DeltaDiscoveryRequest::default()
            };
            if first {
                r.node = Some(self.node.clone());
                r.initial_resource_versions = self
                    .resources
                    .get(&kind)
                    .map(|m| {
                        m.iter()
                            .map(|(n, e)| (n.clone(), e.version.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                r.resource_names_subscribe = wanted.iter().cloned().collect();
            } else {
                r.resource_names_subscribe = wanted.difference(&previous).cloned().collect();
                r.resource_names_unsubscribe = previous.difference(&wanted).cloned().collect();
            }
            Request::Delta(r)
        } else {
            Request::Sotw(DiscoveryRequest {
                version_info: t.version.clone(),
                node: Some(self.node.clone()),
                resource_names: wanted.iter().cloned().collect(),
                type_url: kind.type_url().to_string(),
                response_nonce: t.nonce.clone(),
                ..DiscoveryRequest::default()
            })
        };
        if self.config.delta && !first && !kind.wildcard() {
            // Names no longer wanted are dropped here: the server sends nothing more about them.
            if let Some(m) = self.resources.get_mut(&kind) {
                m.retain(|n, _| wanted.contains(n));
            }
        }
        debug!(%kind, names = wanted.len(), "xDS: subscribing");
        self.send(kind, request);
        if let Some(t) = self.types.get_mut(&kind) {
            t.requested = Some(wanted);
        }
    }

    fn on_closed(&mut self, stream: u64, error: &str, answered: bool) {
        let Some(g) = self
            .groups
            .iter_mut()
            .find(|g| g.stream.as_ref().is_some_and(|(id, _)| *id == stream))
        else {
            return;
        };
        g.stream = None;
        if answered {
            g.backoff.reset();
        }
        let wait = g.backoff.next_wait();
        g.reopen_at = Some(Instant::now() + wait);
        warn!(server = %self.config.address, kinds = ?g.kinds, error, ?wait, "xDS stream ended; reconnecting");
        for k in g.kinds.clone() {
            if let Some(t) = self.types.get(&k) {
                Stats::inc(&t.stats.failure);
            }
        }
    }

    async fn on_sotw(&mut self, stream: u64, r: DiscoveryResponse) {
        let Some(kind) = Kind::from_type_url(&r.type_url) else {
            warn!(type_url = %r.type_url, "xDS: a response of a type not asked for; ignored");
            return;
        };
        let response = Response {
            kind,
            stream,
            version: r.version_info,
            nonce: r.nonce,
            resources: r
                .resources
                .into_iter()
                .map(|a| (String::new(), String::new(), a))
                .collect(),
            removed: Vec::new(),
            full_state: kind.wildcard(),
            delta: false,
        };
        self.on_response(response).await;
    }

    async fn on_delta(&mut self, stream: u64, r: DeltaDiscoveryResponse) {
        let Some(kind) = Kind::from_type_url(&r.type_url) else {
            warn!(type_url = %r.type_url, "xDS: a response of a type not asked for; ignored");
            return;
        };
        let mut resources = Vec::with_capacity(r.resources.len());
        let mut removed = r.removed_resources;
        for res in r.resources {
            match res.resource {
                Some(any) => resources.push((res.name, res.version, any)),
                // A resource without a body is one the server no longer has.
                None => removed.push(res.name),
            }
        }
        let response = Response {
            kind,
            stream,
            version: r.system_version_info,
            nonce: r.nonce,
            resources,
            removed,
            full_state: false,
            delta: true,
        };
        self.on_response(response).await;
    }

    async fn on_response(&mut self, r: Response) {
        let kind = r.kind;
        if self.stream_of(kind) != Some(r.stream) {
            debug!(%kind, "xDS: a response from a stream already replaced; ignored");
            return;
        }
        let Some(t) = self.types.get_mut(&kind) else {
            warn!(%kind, "xDS: a response of a type not subscribed to; ignored");
            return;
        };
        t.nonce = r.nonce.clone();
        t.received = true;
        Stats::inc(&t.stats.attempt);

        let result = self.accept(&r).await;
        let Some(t) = self.types.get_mut(&kind) else {
            return;
        };
        let error = match result {
            Ok(changed) => {
                if !r.delta {
                    t.version = r.version.clone();
                }
                Stats::inc(&t.stats.success);
                for g in &t.stats.version {
                    g.set(version_hash(&r.version));
                }
                info!(%kind, version = %r.version, resources = self.resources.get(&kind).map_or(0, BTreeMap::len), changed, "xDS: ACK");
                None
            }
            Err(e) => {
                Stats::inc(&t.stats.rejected);
                warn!(%kind, version = %r.version, error = %e, "xDS: NACK");
                self.status.rejected(kind, &e);
                Some(RpcStatus {
                    code: INVALID_ARGUMENT,
                    message: e,
                    details: Vec::new(),
                })
            }
        };
        let Some(t) = self.types.get(&kind) else {
            return;
        };
        let reply = if r.delta {
            Request::Delta(DeltaDiscoveryRequest {
                type_url: kind.type_url().to_string(),
                response_nonce: r.nonce.clone(),
                error_detail: error,
                ..DeltaDiscoveryRequest::default()
            })
        } else {
            Request::Sotw(DiscoveryRequest {
                version_info: t.version.clone(),
                node: Some(self.node.clone()),
                resource_names: t
                    .requested
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
                type_url: kind.type_url().to_string(),
                response_nonce: r.nonce.clone(),
                error_detail: error,
                ..DiscoveryRequest::default()
            })
        };
        self.send(kind, reply);
        // What the accepted resources name may have changed: route configs after listeners,
        // endpoints after clusters.
        match kind {
            Kind::Listener => self.subscribe(Kind::Route, false),
            Kind::Cluster => self.subscribe(Kind::Endpoint, false),
            _ => {}
        }
    }

    /// Translates a response's resources and offers the config they make; on success they
    /// are the type's resources now. Returns how many resources changed.
    async fn accept(&mut self, r: &Response) -> Result<usize, String> {
        let kind = r.kind;
        let old = self.resources.get(&kind);
        let mut next: BTreeMap<String, Entry> = if r.full_state {
            BTreeMap::new()
        } else {
            old.cloned().unwrap_or_default()
        };
        // State of the world names no resource outside its bytes: the held ones are found by
        // the digest of their bytes (indexed once, not searched per resource).
        let by_digest: HashMap<u64, &Entry> = old
            .filter(|_| !r.delta)
            .map(|m| m.values().map(|e| (e.digest, e)).collect())
            .unwrap_or_default();
        let mut errors = Vec::new();
        let mut changed = 0;
        let now = SystemTime::now();
        for (given_name, version, any) in &r.resources {
            let digest = digest(any);
            let version = if r.delta {
                version.clone()
            } else {
                r.version.clone()
            };
            // An unchanged resource (same bytes) keeps its translation and update time.
            let held = if given_name.is_empty() {
                by_digest.get(&digest).copied()
            } else {
                old.and_then(|m| m.get(given_name))
                    .filter(|e| e.digest == digest)
            };
            if let Some(e) = held {
                let name = e.name.clone();
                next.insert(
                    name,
                    Entry {
                        version,
                        ..e.clone()
                    },
                );
                continue;
            }
            match resource::translate(kind, any) {
                Ok((name, value)) => {
                    if !given_name.is_empty() && *given_name != name {
                        errors.push(format!(
                            "{} \"{given_name}\": the resource is named \"{name}\"",
                            kind.noun()
                        ));
                        continue;
                    }
                    changed += 1;
                    next.insert(
                        name.clone(),
                        Entry {
                            name,
                            version,
                            updated: now,
                            digest,
                            value: Arc::new(value),
                        },
                    );
                }
                Err(e) => errors.push(e),
            }
        }
        for name in &r.removed {
            if next.remove(name).is_some() {
                changed += 1;
            }
        }
        if r.full_state {
            changed += old.map_or(0, |m| m.keys().filter(|n| !next.contains_key(*n)).count());
        }
        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
        let previous = self.resources.insert(kind, next);
        let warming = self.warming.since.clone();
        match self.offer(Some(kind)).await {
            Ok(()) => {
                let statuses = self
                    .resources
                    .get(&kind)
                    .map(|m| {
                        m.iter()
                            .map(|(n, e)| {
                                (
                                    n.clone(),
                                    ResourceStatus {
                                        version: e.version.clone(),
                                        updated: e.updated,
                                    },
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                self.status.accepted(kind, &r.version, statuses);
                Ok(changed)
            }
            Err(e) => {
                match previous {
                    Some(p) => self.resources.insert(kind, p),
                    None => self.resources.remove(&kind),
                };
                self.warming.since = warming;
                Err(e)
            }
        }
    }

    /// Composes the dynamic config from the resources held and has the binary apply it
    /// (unless it is what is in force already).
    async fn offer(&mut self, why: Option<Kind>) -> Result<(), String> {
        let (dynamic, deadline) = resource::compose(
            &self.resources,
            &mut self.warming,
            self.config.initial_fetch_timeout,
            Instant::now(),
        );
        self.warm_deadline = deadline;
        if self.applied.as_deref() == Some(&dynamic) {
            return Ok(());
        }
        let dynamic = Arc::new(dynamic);
        let (reply, answer) = oneshot::channel();
        self.updates
            .send(Update {
                dynamic: dynamic.clone(),
                reply,
            })
            .await
            .map_err(|_| "the proxy is stopping".to_string())?;
        let result = answer
            .await
            .unwrap_or_else(|_| Err("the proxy is stopping".to_string()));
        if result.is_ok() {
            debug!(
                ?why,
                listeners = dynamic.listeners.len(),
                clusters = dynamic.clusters.len(),
                route_configs = dynamic.route_configs.len(),
                "xDS: config in force"
            );
            self.applied = Some(dynamic);
        }
        result
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

fn digest(any: &Any) -> u64 {
    let mut h = DefaultHasher::new();
    any.type_url.hash(&mut h);
    any.value.hash(&mut h);
    h.finish()
}

/// Envoy's `version` gauge: a hash of the version text, as a non-negative number.
fn version_hash(version: &str) -> i64 {
    let mut h = DefaultHasher::new();
    version.hash(&mut h);
    i64::try_from(h.finish() >> 12).unwrap_or(0)
}
