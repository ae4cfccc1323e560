//! The heartbeat probe: an RPC protocol's own keepalive (Bolt's heartbeat command, Dubbo's
//! heartbeat event) sent on a fresh connection. Unlike a TCP check it proves that the RPC
//! server behind the port reads frames and answers them.

use std::sync::Arc;

use bytes::BytesMut;
use sluice_config::{Address, HeartbeatCheck};
use sluice_xprotocol::{FrameKind, Protocol, ResponseClass};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use sluice_net::AppProtocol;

use super::probe::{Connector, Probe, ProbeError, ProbeFuture};

/// The request id of the probe's heartbeat; the connection carries nothing else.
const PING_ID: u64 = 1;

/// The largest reply frame accepted; a heartbeat answer is a few dozen bytes.
const MAX_REPLY_FRAME: usize = 64 * 1024;

/// How many other frames (the server's own heartbeats, say) may come before the answer.
const MAX_OTHER_FRAMES: usize = 16;

pub struct HeartbeatProbe {
    /// Plain TCP, or the cluster's TLS.
    pub(super) connector: Connector,
    /// The protocol, or why the check cannot run (it was unregistered after the config
    /// was checked, or has no heartbeat).
    protocol: Result<Arc<dyn Protocol>, String>,
}

impl HeartbeatProbe {
    pub fn new(check: &HeartbeatCheck) -> HeartbeatProbe {
        let protocol = match sluice_xprotocol::protocols().get(&check.protocol) {
            Some(p) if p.heartbeat(PING_ID).is_some() => Ok(p.clone()),
            Some(_) => Err(format!("protocol \"{}\" has no heartbeat", check.protocol)),
            None => Err(format!("unknown protocol \"{}\"", check.protocol)),
        };
        HeartbeatProbe {
            connector: Connector::default(),
            protocol,
        }
    }

    async fn run(&self, address: &Address, hostname: Option<&str>) -> Result<(), ProbeError> {
        let protocol = self
            .protocol
            .as_ref()
            .map_err(|e| ProbeError::Protocol(e.clone()))?;
        let ping = protocol
            .heartbeat(PING_ID)
            .ok_or_else(|| ProbeError::Protocol("the protocol has no heartbeat".into()))?;
        let mut out = BytesMut::new();
        protocol
            .encode(&ping, &mut out)
            .map_err(|e| ProbeError::Protocol(format!("cannot encode the heartbeat: {e}")))?;
        let mut stream = self
            .connector
            .connect(address, hostname, AppProtocol::Opaque)
            .await?;
        stream.write_all(&out).await.map_err(ProbeError::Io)?;

        let mut buf = BytesMut::with_capacity(256);
        let mut others = 0;
        loop {
            match protocol.decode(&mut buf, MAX_REPLY_FRAME) {
                Ok(Some(frame)) if frame.id == PING_ID && answers(frame.kind) => {
                    return match protocol.classify(&frame) {
                        ResponseClass::Success => Ok(()),
                        class => Err(ProbeError::Protocol(format!(
                            "the heartbeat was answered with status {} ({class:?})",
                            frame.status
                        ))),
                    };
                }
                Ok(Some(_)) => {
                    others += 1;
                    if others > MAX_OTHER_FRAMES {
                        return Err(ProbeError::Protocol(format!(
                            "{others} frames came, none answering the heartbeat"
                        )));
                    }
                }
                Ok(None) => {
                    let n = stream.read_buf(&mut buf).await.map_err(ProbeError::Io)?;
                    if n == 0 {
                        return Err(ProbeError::Protocol(
                            "the connection closed before the heartbeat was answered".into(),
                        ));
                    }
                }
                Err(e) => {
                    return Err(ProbeError::Protocol(format!(
                        "the reply does not decode: {e}"
                    )))
                }
            }
        }
    }
}

/// A server may answer a heartbeat with its heartbeat response or a plain response.
fn answers(kind: FrameKind) -> bool {
    matches!(kind, FrameKind::HeartbeatResponse | FrameKind::Response)
}

impl Probe for HeartbeatProbe {
    fn check<'a>(&'a self, address: &'a Address, hostname: Option<&'a str>) -> ProbeFuture<'a> {
        Box::pin(self.run(address, hostname))
    }
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    /// How the test server treats the one connection it accepts.
    #[derive(Clone, Copy)]
    enum Server {
        /// Answers the heartbeat as the protocol says, after one frame of its own.
        Answers,
        /// Reads the heartbeat, then closes.
        Closes,
        /// Answers with bytes that are not the protocol's.
        Garbage,
    }

    async fn serve(protocol: Arc<dyn Protocol>, behaviour: Server) -> Address {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = Address::Tcp(listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = BytesMut::new();
            let ping = loop {
                if let Some(frame) = protocol.decode(&mut buf, 1 << 16).unwrap() {
                    break frame;
                }
                assert_ne!(socket.read_buf(&mut buf).await.unwrap(), 0);
            };
            assert_eq!(ping.kind, FrameKind::HeartbeatRequest);
            let mut out = BytesMut::new();
            match behaviour {
                Server::Answers => {
                    // The server's own heartbeat first: the probe must skip it.
                    let own = protocol.heartbeat(77).unwrap();
                    protocol.encode(&own, &mut out).unwrap();
                    let pong = protocol.heartbeat_reply(&ping).unwrap();
                    protocol.encode(&pong, &mut out).unwrap();
                }
                Server::Closes => return,
                Server::Garbage => out.extend_from_slice(&[0xff; 32]),
            }
            socket.write_all(&out).await.unwrap();
            // Hold the connection until the probe is done with it.
            let _ = socket.read_buf(&mut buf).await;
        });
        address
    }

    fn probe(name: &str) -> (HeartbeatProbe, Arc<dyn Protocol>) {
        let probe = HeartbeatProbe::new(&HeartbeatCheck {
            protocol: name.into(),
        });
        let protocol = probe.protocol.clone().unwrap();
        (probe, protocol)
    }

    #[tokio::test]
    async fn an_answered_heartbeat_passes() {
        for name in ["bolt", "dubbo"] {
            let (probe, protocol) = probe(name);
            let address = serve(protocol, Server::Answers).await;
            probe.check(&address, None).await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_close_before_the_answer_fails() {
        let (probe, protocol) = probe("bolt");
        let address = serve(protocol, Server::Closes).await;
        let err = probe.check(&address, None).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "protocol error: the connection closed before the heartbeat was answered"
        );
    }

    #[tokio::test]
    async fn a_reply_in_another_protocol_fails() {
        let (probe, protocol) = probe("dubbo");
        let address = serve(protocol, Server::Garbage).await;
        let err = probe.check(&address, None).await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("protocol error: the reply does not decode"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_unknown_protocol_fails_every_check() {
        let probe = HeartbeatProbe::new(&HeartbeatCheck {
            protocol: "nope".into(),
        });
        let address = Address::parse("127.0.0.1:1").unwrap();
        let err = probe.check(&address, None).await.unwrap_err();
        assert_eq!(err.to_string(), "protocol error: unknown protocol \"nope\"");
    }
}
