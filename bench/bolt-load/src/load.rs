//! The load: N connections, each keeping M echo calls in flight (Bolt multiplexes them by
//! request id), a new call sent for each response. Every response is checked: a known id, the
//! SUCCESS status, a `SofaResponse` whose result is exactly `"<tag>:" + the argument sent under
//! that id`. Latency is from the write of a request's batch to the read that completed it.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use hdrhistogram::Histogram;
use sluice_xprotocol::bolt::header::{CMD_RPC_RESPONSE, TYPE_RESPONSE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::wire::{self, RequestTemplate, Version};

pub struct Options {
    pub address: SocketAddr,
    pub connections: usize,
    pub inflight: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// A fixed number of calls (over all connections) instead of a timed run.
    pub requests: Option<u64>,
    pub payload: usize,
    pub service: String,
    pub tag: String,
    pub version: Version,
    pub timeout_ms: i32,
    /// A connection with calls in flight and nothing read for this long gives up.
    pub stall: Duration,
}

#[derive(Default)]
struct Outcome {
    /// Checked responses, in all.
    ok: u64,
    /// Checked responses that finished inside the measured window.
    measured: u64,
    errors: BTreeMap<&'static str, u64>,
    first_errors: Vec<String>,
    hist: Option<Histogram<u64>>,
}

impl Outcome {
    fn error(&mut self, kind: &'static str, n: u64, message: impl FnOnce() -> String) {
        if n == 0 {
            return;
        }
        *self.errors.entry(kind).or_default() += n;
        if self.first_errors.len() < 5 {
            self.first_errors.push(format!("{kind}: {}", message()));
        }
    }
}

fn new_hist() -> Histogram<u64> {
    // Nanoseconds, 1 ns to 60 s, 3 significant figures.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// The argument of call `seq` on connection `conn`: unique, `size` bytes (or longer when the
/// counters need more), ASCII.
fn payload(out: &mut String, conn: usize, seq: u64, size: usize) {
    out.clear();
    let _ = write!(out, "{conn}-{seq}-");
    while out.len() < size {
        out.push('x');
    }
}

pub fn run(opts: Options) -> Result<bool, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let local = tokio::task::LocalSet::new();
    let opts = Rc::new(opts);
    let template = Rc::new(RequestTemplate::new(
        &opts.service,
        "echo",
        opts.version,
        opts.timeout_ms,
    ));
    let (total, elapsed) = local.block_on(&rt, async {
        let start = Instant::now();
        let handles: Vec<_> = (0..opts.connections)
            .map(|i| tokio::task::spawn_local(connection(i, opts.clone(), template.clone(), start)))
            .collect();
        let mut total = Outcome {
            hist: Some(new_hist()),
            ..Outcome::default()
        };
        for h in handles {
            let o = h.await.unwrap_or_else(|e| {
                let mut o = Outcome::default();
                o.error("panic", 1, || e.to_string());
                o
            });
            total.ok += o.ok;
            total.measured += o.measured;
            for (k, v) in o.errors {
                *total.errors.entry(k).or_default() += v;
            }
            for e in o.first_errors {
                if total.first_errors.len() < 5 {
                    total.first_errors.push(e);
                }
            }
            if let (Some(t), Some(h)) = (total.hist.as_mut(), o.hist.as_ref()) {
                let _ = t.add(h);
            }
        }
        (total, start.elapsed())
    });
    let window = match opts.requests {
        Some(_) => elapsed.as_secs_f64(),
        None => opts.duration.as_secs_f64(),
    };
    let errors: u64 = total.errors.values().sum();
    let hist = total.hist.unwrap_or_else(new_hist);
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let rps = total.measured as f64 / window;
    let mut json = String::new();
    let _ = write!(
        json,
        "{{\"ok\":{},\"measured\":{},\"errors\":{},\"window_s\":{:.3},\"rps\":{:.1},\
         \"p50_us\":{:.1},\"p90_us\":{:.1},\"p99_us\":{:.1},\"p999_us\":{:.1},\"max_us\":{:.1},\
         \"mean_us\":{:.1},\"connections\":{},\"inflight\":{},\"payload\":{},\"error_kinds\":{{",
        total.ok,
        total.measured,
        errors,
        window,
        rps,
        us(0.5),
        us(0.9),
        us(0.99),
        us(0.999),
        hist.max() as f64 / 1000.0,
        hist.mean() / 1000.0,
        opts.connections,
        opts.inflight,
        opts.payload,
    );
    for (i, (k, v)) in total.errors.iter().enumerate() {
        let _ = write!(json, "{}\"{k}\":{v}", if i > 0 { "," } else { "" });
    }
    json.push_str("},\"first_errors\":[");
    for (i, e) in total.first_errors.iter().enumerate() {
        let _ = write!(json, "{}\"{}\"", if i > 0 { "," } else { "" }, escape(e));
    }
    json.push_str("]}");
    println!("{json}");
    eprintln!(
        "bolt-load: {} calls checked ({} in the {:.1}s window): {:.0} req/s, p50 {:.0} us, p99 {:.0} us, max {:.0} us, {} errors",
        total.ok,
        total.measured,
        window,
        rps,
        us(0.5),
        us(0.99),
        hist.max() as f64 / 1000.0,
        errors
    );
    for e in &total.first_errors {
        eprintln!("bolt-load: error: {e}");
    }
    Ok(errors == 0 && total.ok > 0)
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

async fn connection(
    index: usize,
    opts: Rc<Options>,
    template: Rc<RequestTemplate>,
    start: Instant,
) -> Outcome {
    let mut out = Outcome {
        hist: Some(new_hist()),
        ..Outcome::default()
    };
    let timed = opts.requests.is_none();
    let measure_from = start + if timed { opts.warmup } else { Duration::ZERO };
    let end = timed.then(|| start + opts.warmup + opts.duration);
    let mut quota = opts.requests.map(|n| {
        let conns = opts.connections as u64;
        n / conns + u64::from((index as u64) < n % conns)
    });
    let mut stream = match tokio::time::timeout(
        Duration::from_secs(5),
        TcpStream::connect(opts.address),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            out.error("connect", 1, || format!("{}: {e}", opts.address));
            return out;
        }
        Err(_) => {
            out.error("connect", 1, || format!("{}: timed out", opts.address));
            return out;
        }
    };
    let _ = stream.set_nodelay(true);
    let hist = out.hist.as_mut().expect("set above");
    let mut pending: HashMap<u32, (Instant, u64)> = HashMap::with_capacity(opts.inflight * 2);
    let mut rbuf = BytesMut::with_capacity(64 * 1024);
    let mut wbuf = BytesMut::with_capacity(64 * 1024);
    let mut arg = String::new();
    let mut expected = Vec::new();
    let mut got = Vec::new();
    let mut next_id: u32 = 1;
    let mut seq: u64 = 0;
    let mut stopping = false;
    let (mut ok, mut measured) = (0u64, 0u64);
    let mut errors: Vec<(&'static str, u64, String)> = Vec::new();
    loop {
        // Top up to `inflight` calls, unless the run is over.
        if !stopping {
            let now = Instant::now();
            while pending.len() < opts.inflight && quota != Some(0) {
                payload(&mut arg, index, seq, opts.payload);
                template.write(next_id, &arg, &mut wbuf);
                pending.insert(next_id, (now, seq));
                next_id = next_id.wrapping_add(1).max(1);
                seq += 1;
                if let Some(q) = quota.as_mut() {
                    *q -= 1;
                }
            }
        }
        if !wbuf.is_empty() {
            if let Err(e) = stream.write_all(&wbuf).await {
                errors.push(("write", pending.len() as u64, e.to_string()));
                break;
            }
            wbuf.clear();
        }
        if pending.is_empty() {
            break;
        }
        if rbuf.capacity() - rbuf.len() < 16 * 1024 {
            rbuf.reserve(64 * 1024);
        }
        let read = tokio::time::timeout(opts.stall, stream.read_buf(&mut rbuf)).await;
        match read {
            Err(_) => {
                errors.push((
                    "stalled",
                    pending.len() as u64,
                    format!("nothing read for {:?} with calls in flight", opts.stall),
                ));
                break;
            }
            Ok(Err(e)) => {
                errors.push(("read", pending.len() as u64, e.to_string()));
                break;
            }
            Ok(Ok(0)) => {
                errors.push((
                    "closed",
                    pending.len() as u64,
                    "the server closed the connection with calls in flight".into(),
                ));
                break;
            }
            Ok(Ok(_)) => {}
        }
        let now = Instant::now();
        let mut broken = false;
        loop {
            let (fixed, len) = match wire::next_frame(&rbuf, 64 << 20) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    errors.push(("decode", 1, e));
                    broken = true;
                    break;
                }
            };
            let frame = &rbuf[..len];
            if fixed.rpc_type != TYPE_RESPONSE || fixed.cmd_code != CMD_RPC_RESPONSE {
                // A heartbeat or a request from the server: not ours to answer here.
                rbuf.advance(len);
                continue;
            }
            let Some((sent, call_seq)) = pending.remove(&fixed.id) else {
                errors.push((
                    "unknown_id",
                    1,
                    format!("a response to id {} that is not in flight", fixed.id),
                ));
                rbuf.advance(len);
                continue;
            };
            if fixed.status != 0 {
                errors.push((
                    "status",
                    1,
                    format!(
                        "id {}: status {:#04x}: {}",
                        fixed.id,
                        fixed.status,
                        String::from_utf8_lossy(wire::content(&fixed, frame))
                    ),
                ));
            } else if let Err(e) = wire::read_response(wire::content(&fixed, frame), &mut got) {
                errors.push(("body", 1, format!("id {}: {e}", fixed.id)));
            } else {
                payload(&mut arg, index, call_seq, opts.payload);
                expected.clear();
                expected.extend_from_slice(opts.tag.as_bytes());
                expected.push(b':');
                expected.extend_from_slice(arg.as_bytes());
                if got != expected {
                    errors.push((
                        "mismatch",
                        1,
                        format!(
                            "id {}: expected {:?}, got {:?}",
                            fixed.id,
                            String::from_utf8_lossy(&expected),
                            String::from_utf8_lossy(&got)
                        ),
                    ));
                } else {
                    ok += 1;
                    if sent >= measure_from && end.is_none_or(|e| now <= e) {
                        measured += 1;
                        let ns = now.duration_since(sent).as_nanos().max(1) as u64;
                        let _ = hist.record(ns.min(60_000_000_000));
                    }
                }
            }
            rbuf.advance(len);
        }
        if broken {
            errors.push((
                "lost",
                pending.len() as u64,
                "in flight on a broken connection".into(),
            ));
            break;
        }
        if end.is_some_and(|e| now >= e) {
            stopping = true;
        }
    }
    out.ok = ok;
    out.measured = measured;
    for (kind, n, message) in errors {
        out.error(kind, n, || message);
    }
    out
}
