//! The example `kv` protocol's test peers: a threaded server with a few behaviours chosen by
//! method, and a blocking client. Ours (kv has no other implementation); Bolt and Dubbo are
//! tested against their real libraries.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use bytes::BytesMut;
use sluice_protocol_kv::{build, Kv};
use sluice_xprotocol::{Frame, FrameKind, Protocol};

/// A kv server. By method: `echo` answers `<tag>:<body>`; `slow` waits the body's
/// milliseconds first; `fail` answers status 1 (application error); `busy` status 3;
/// `gather` holds answers until the body's `N:` count of gather calls arrived on the
/// connection, then answers them all in reverse order; `headers` answers its request's
/// headers as `k=v,...`. One-way requests and heartbeats are counted; heartbeats go
/// unanswered while `mute_heartbeats` is set.
pub struct KvServer {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    /// Connections the peer closed.
    pub closed: Arc<AtomicUsize>,
    pub requests: Arc<AtomicUsize>,
    pub oneways: Arc<AtomicUsize>,
    pub heartbeats: Arc<AtomicUsize>,
    pub mute_heartbeats: Arc<AtomicBool>,
}

impl KvServer {
    pub fn start(tag: &str) -> KvServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = KvServer {
            addr: listener.local_addr().unwrap(),
            connections: Arc::default(),
            closed: Arc::default(),
            requests: Arc::default(),
            oneways: Arc::default(),
            heartbeats: Arc::default(),
            mute_heartbeats: Arc::default(),
        };
        let counters = Counters {
            requests: server.requests.clone(),
            oneways: server.oneways.clone(),
            heartbeats: server.heartbeats.clone(),
            mute_heartbeats: server.mute_heartbeats.clone(),
        };
        let (connections, closed) = (server.connections.clone(), server.closed.clone());
        let tag = tag.to_string();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                connections.fetch_add(1, Ordering::SeqCst);
                let (tag, counters, closed) = (tag.clone(), counters.clone(), closed.clone());
                thread::spawn(move || {
                    serve(conn, &tag, &counters);
                    closed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        server
    }
}

/// What a connection's thread counts and obeys.
#[derive(Clone)]
struct Counters {
    requests: Arc<AtomicUsize>,
    oneways: Arc<AtomicUsize>,
    heartbeats: Arc<AtomicUsize>,
    mute_heartbeats: Arc<AtomicBool>,
}

fn answer(request: &Frame, status: u8, body: &[u8]) -> Vec<u8> {
    let frame = build(1, status, u32::try_from(request.id).unwrap(), &[], body).unwrap();
    frame.raw.to_vec()
}

fn serve(mut conn: TcpStream, tag: &str, counters: &Counters) {
    let Counters {
        requests,
        oneways,
        heartbeats,
        mute_heartbeats,
    } = counters;
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let mut writer = conn.try_clone().unwrap();
    thread::spawn(move || {
        for bytes in rx {
            if writer.write_all(&bytes).is_err() {
                return;
            }
        }
    });
    let mut buf = BytesMut::new();
    let mut gathered: Vec<Frame> = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        while let Ok(Some(frame)) = Kv.decode(&mut buf, 1 << 24) {
            match frame.kind {
                FrameKind::HeartbeatRequest => {
                    heartbeats.fetch_add(1, Ordering::SeqCst);
                    if !mute_heartbeats.load(Ordering::SeqCst) {
                        let _ = tx.send(Kv.heartbeat_reply(&frame).unwrap().raw.to_vec());
                    }
                    continue;
                }
                FrameKind::Oneway => {
                    oneways.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                FrameKind::Request => {}
                _ => continue,
            }
            requests.fetch_add(1, Ordering::SeqCst);
            let body = String::from_utf8_lossy(&frame.body).to_string();
            match frame.method_str() {
                "slow" => {
                    let tx = tx.clone();
                    let reply = answer(&frame, 0, format!("{tag}:slow").as_bytes());
                    let ms = body.parse().unwrap_or(0);
                    thread::spawn(move || {
                        thread::sleep(Duration::from_millis(ms));
                        let _ = tx.send(reply);
                    });
                }
                "fail" => {
                    let _ = tx.send(answer(&frame, 1, b"boom"));
                }
                "busy" => {
                    let _ = tx.send(answer(&frame, 3, b"busy"));
                }
                "gather" => {
                    let want: usize = body.split(':').next().unwrap().parse().unwrap();
                    gathered.push(frame);
                    if gathered.len() == want {
                        for f in gathered.drain(..).rev() {
                            let payload = String::from_utf8_lossy(&f.body).to_string();
                            let payload = payload.split_once(':').unwrap().1.to_string();
                            let _ = tx.send(answer(&f, 0, format!("{tag}:{payload}").as_bytes()));
                        }
                    }
                }
                "headers" => {
                    let pairs: Vec<String> = frame
                        .headers()
                        .iter()
                        .map(|(k, v)| {
                            format!(
                                "{}={}",
                                String::from_utf8_lossy(k),
                                String::from_utf8_lossy(v)
                            )
                        })
                        .collect();
                    let _ = tx.send(answer(&frame, 0, pairs.join(",").as_bytes()));
                }
                _ => {
                    let _ = tx.send(answer(&frame, 0, format!("{tag}:{body}").as_bytes()));
                }
            }
        }
    }
}

/// A blocking kv client connection.
pub struct KvClient {
    conn: TcpStream,
    buf: BytesMut,
}

impl KvClient {
    pub fn connect(addr: SocketAddr) -> KvClient {
        KvClient {
            conn: super::connect(addr),
            buf: BytesMut::new(),
        }
    }

    /// Sends a request (kind byte 0, or 2 for one-way) without waiting.
    pub fn send(&mut self, kind: u8, id: u32, headers: &[(&str, &str)], body: &str) {
        let frame = build(kind, 0, id, headers, body.as_bytes()).unwrap();
        self.conn.write_all(&frame.raw).unwrap();
    }

    /// Closes the connection with a reset (SO_LINGER 0), as a crashed client would.
    pub fn reset(self) {
        let _ = socket2::SockRef::from(&self.conn).set_linger(Some(std::time::Duration::ZERO));
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.conn.write_all(bytes).unwrap();
    }

    /// The next frame, or `None` when the connection closed first.
    pub fn recv(&mut self) -> Option<Frame> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(frame) = Kv.decode(&mut self.buf, 1 << 24).unwrap() {
                return Some(frame);
            }
            match self.conn.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("kv client read: {e}"),
            }
        }
    }

    /// One call to `service`/`method`: the response.
    pub fn call(&mut self, service: &str, method: &str, body: &str) -> Frame {
        self.call_with(service, method, &[], body)
    }

    pub fn call_with(
        &mut self,
        service: &str,
        method: &str,
        extra: &[(&str, &str)],
        body: &str,
    ) -> Frame {
        let mut headers = vec![("service", service), ("method", method)];
        headers.extend_from_slice(extra);
        self.send(0, 1, &headers, body);
        let response = self.recv().expect("connection closed before the response");
        assert_eq!(response.id, 1);
        response
    }
}

/// The text of a frame's body.
pub fn body(frame: &Frame) -> String {
    String::from_utf8_lossy(&frame.body).to_string()
}
