//! The TCP probe: the connection opens; optionally a payload is sent and the reply must hold
//! each expected block, in order (not necessarily adjacent), within [`MAX_REPLY`] bytes.

use sluice_config::{Address, TcpCheck};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use sluice_net::AppProtocol;

use super::probe::{Connector, Probe, ProbeError, ProbeFuture};

/// The most of a reply read while looking for the expected blocks.
const MAX_REPLY: usize = 16 * 1024;

pub struct TcpProbe {
    /// Plain TCP, or the cluster's TLS.
    pub(super) connector: Connector,
    send: Vec<u8>,
    receive: Vec<Vec<u8>>,
}

impl TcpProbe {
    pub fn new(check: &TcpCheck) -> TcpProbe {
        TcpProbe {
            connector: Connector::default(),
            send: check.send.clone(),
            receive: check.receive.clone(),
        }
    }

    async fn run(&self, address: &Address, hostname: Option<&str>) -> Result<(), ProbeError> {
        let mut stream = self
            .connector
            .connect(address, hostname, AppProtocol::Opaque)
            .await?;
        if !self.send.is_empty() {
            stream.write_all(&self.send).await.map_err(ProbeError::Io)?;
        }
        if self.receive.is_empty() {
            return Ok(());
        }
        read_until_found(&mut stream, &self.receive).await
    }
}

impl Probe for TcpProbe {
    fn check<'a>(&'a self, address: &'a Address, hostname: Option<&'a str>) -> ProbeFuture<'a> {
        Box::pin(self.run(address, hostname))
    }
}

/// Reads until every block of `expected` has been seen in order, the peer stops sending, or
/// [`MAX_REPLY`] bytes have come.
async fn read_until_found(
    io: &mut (impl AsyncRead + Unpin),
    expected: &[Vec<u8>],
) -> Result<(), ProbeError> {
    let mut reply = Vec::with_capacity(256);
    let mut chunk = [0u8; 2048];
    while reply.len() < MAX_REPLY {
        let room = (MAX_REPLY - reply.len()).min(chunk.len());
        let n = io.read(&mut chunk[..room]).await.map_err(ProbeError::Io)?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&chunk[..n]);
        if found_in_order(&reply, expected) {
            return Ok(());
        }
    }
    Err(ProbeError::PayloadNotFound { read: reply.len() })
}

/// Each block occurs in `haystack` after the end of the one before it.
fn found_in_order(haystack: &[u8], blocks: &[Vec<u8>]) -> bool {
    let mut from = 0;
    for block in blocks.iter().filter(|b| !b.is_empty()) {
        let rest = haystack.get(from..).unwrap_or_default();
        match rest
            .windows(block.len())
            .position(|w| w == block.as_slice())
        {
            Some(at) => from += at + block.len(),
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// Serves one connection: reads `expect` bytes, then writes each of `replies` and closes.
    async fn server(expect: usize, replies: &'static [&'static [u8]]) -> Address {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = Address::Tcp(listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; expect];
            socket.read_exact(&mut request).await.unwrap();
            for reply in replies {
                socket.write_all(reply).await.unwrap();
                socket.flush().await.unwrap();
            }
        });
        address
    }

    fn ping(receive: &[&[u8]]) -> TcpProbe {
        TcpProbe::new(&TcpCheck {
            send: b"PING\r\n".to_vec(),
            receive: receive.iter().map(|r| r.to_vec()).collect(),
        })
    }

    #[tokio::test]
    async fn connect_only() {
        let address = server(0, &[]).await;
        TcpProbe::new(&TcpCheck::default())
            .check(&address, None)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_expected_blocks_are_found_across_reads() {
        let address = server(6, &[b"+PO", b"NG\r\n"]).await;
        ping(&[b"+PONG"]).check(&address, None).await.unwrap();
        let address = server(6, &[b"+PONG", b"\r\n"]).await;
        ping(&[b"+", b"\r\n"]).check(&address, None).await.unwrap();
    }

    #[tokio::test]
    async fn a_wrong_reply_is_payload_not_found() {
        let address = server(6, &[b"-ERR unknown\r\n"]).await;
        let err = ping(&[b"+PONG"]).check(&address, None).await.unwrap_err();
        assert!(
            matches!(err, ProbeError::PayloadNotFound { read: 14 }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn blocks_out_of_order_are_not_found() {
        let address = server(6, &[b"NG+PO"]).await;
        let err = ping(&[b"+PO", b"NG"])
            .check(&address, None)
            .await
            .unwrap_err();
        assert!(matches!(err, ProbeError::PayloadNotFound { .. }), "{err}");
    }

    #[tokio::test]
    async fn an_endless_reply_stops_at_the_limit() {
        let mut io = tokio::io::repeat(b'x');
        let err = read_until_found(&mut io, &[b"PONG".to_vec()])
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProbeError::PayloadNotFound { read: MAX_REPLY }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = Address::Tcp(listener.local_addr().unwrap());
        drop(listener);
        let err = ping(&[]).check(&address, None).await.unwrap_err();
        assert!(matches!(err, ProbeError::Connect(_)), "{err}");
    }

    #[tokio::test]
    async fn unix_sockets_are_checked_too() {
        let path = std::env::temp_dir().join(format!("sluice-hc-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            socket.write_all(b"ready\n").await.unwrap();
        });
        let probe = TcpProbe::new(&TcpCheck {
            send: Vec::new(),
            receive: vec![b"ready".to_vec()],
        });
        let result = probe.check(&Address::Unix(path.clone()), None).await;
        let _ = std::fs::remove_file(&path);
        result.unwrap();
    }

    #[test]
    fn in_order_matching() {
        let blocks = |b: &[&[u8]]| b.iter().map(|x| x.to_vec()).collect::<Vec<_>>();
        assert!(found_in_order(b"abcdef", &blocks(&[b"ab", b"ef"])));
        assert!(!found_in_order(b"abcdef", &blocks(&[b"ef", b"ab"])));
        assert!(!found_in_order(b"abc", &blocks(&[b"abc", b"c"])));
        assert!(found_in_order(b"abcc", &blocks(&[b"abc", b"c"])));
    }
}
