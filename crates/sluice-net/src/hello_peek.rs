//! Reading a TLS ClientHello without consuming it, for chains that pass TLS through
//! untouched (`tcp_proxy` to a backend that terminates TLS itself, chosen by SNI).
//!
//! The bytes are peeked (`MSG_PEEK`) and fed to a fresh rustls `Acceptor` until it has the
//! whole ClientHello; the socket still holds every byte for the chain's filters. Between
//! peeks the socket's readiness is cleared so the next wait is for new bytes, not a spin.

use std::io;

use rustls::server::Acceptor;
use tokio::io::Interest;

use crate::stream::Stream;

/// The most ClientHello Sluice peeks at (Envoy's inspector has the same limit).
pub const MAX_CLIENT_HELLO: usize = 64 * 1024;

/// What the ClientHello asks for.
#[derive(Debug, Default)]
pub struct Hello {
    /// Lower case.
    pub sni: Option<String>,
    pub alpn: Vec<Vec<u8>>,
}

/// Peeks until the ClientHello is complete. `UnexpectedEof` when the client closed first;
/// `InvalidData` for bytes that are not a ClientHello, or one over [`MAX_CLIENT_HELLO`].
pub async fn peek_client_hello(stream: &Stream) -> io::Result<Hello> {
    let mut buf = vec![0u8; 4096];
    let mut seen = 0;
    loop {
        let n = peek(stream, &mut buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if let Some(hello) = parse(&buf[..n])? {
            return Ok(hello);
        }
        if n == buf.len() {
            if buf.len() >= MAX_CLIENT_HELLO {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the ClientHello is larger than 64 KiB",
                ));
            }
            buf.resize((buf.len() * 2).min(MAX_CLIENT_HELLO), 0);
        } else if n == seen {
            // Nothing new since the last look: wait for more bytes to arrive.
            wait_for_more(stream).await?;
        }
        seen = n;
    }
}

/// `Some` once `bytes` hold a whole ClientHello.
fn parse(bytes: &[u8]) -> io::Result<Option<Hello>> {
    let mut acceptor = Acceptor::default();
    let mut rest = bytes;
    while !rest.is_empty() {
        acceptor.read_tls(&mut rest)?;
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                let hello = accepted.client_hello();
                return Ok(Some(Hello {
                    sni: hello.server_name().map(str::to_ascii_lowercase),
                    alpn: hello
                        .alpn()
                        .map(|p| p.map(<[u8]>::to_vec).collect())
                        .unwrap_or_default(),
                }));
            }
            Ok(None) => {}
            Err((e, _alert)) => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
            }
        }
    }
    Ok(None)
}

/// Reads what the socket holds without consuming it (`MSG_PEEK`), waiting for bytes if none.
pub(crate) async fn peek(stream: &Stream, buf: &mut [u8]) -> io::Result<usize> {
    match stream {
        Stream::Tcp(s) => s.peek(buf).await,
        Stream::Unix(s) => loop {
            s.readable().await?;
            match s.try_io(Interest::READABLE, || {
                rustix::net::recv(s, &mut *buf, rustix::net::RecvFlags::PEEK)
                    .map(|(n, _)| n)
                    .map_err(io::Error::from)
            }) {
                Ok(n) => break Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => break Err(e),
            }
        },
        Stream::Tls(_) | Stream::TlsClient(_) => Err(io::ErrorKind::Unsupported.into()),
    }
}

/// Clears the socket's read readiness (peeking leaves it set), then waits for it again:
/// returns when new bytes (or the peer's close) arrived.
async fn wait_for_more(stream: &Stream) -> io::Result<()> {
    let would_block = || Err::<(), _>(io::Error::from(io::ErrorKind::WouldBlock));
    match stream {
        Stream::Tcp(s) => {
            let _ = s.try_io(Interest::READABLE, would_block);
            s.readable().await
        }
        Stream::Unix(s) => {
            let _ = s.try_io(Interest::READABLE, would_block);
            s.readable().await
        }
        Stream::Tls(_) | Stream::TlsClient(_) => Err(io::ErrorKind::Unsupported.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;

    /// A real ClientHello, as rustls' client writes it.
    fn client_hello(sni: &str, alpn: &[&[u8]]) -> Vec<u8> {
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let name = rustls_pki_types::ServerName::try_from(sni.to_string()).unwrap();
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut out = Vec::new();
        conn.write_tls(&mut out).unwrap();
        out
    }

    #[test]
    fn a_hello_is_read_only_once_whole() {
        let bytes = client_hello("Backend.Example.com", &[b"h2", b"http/1.1"]);
        for cut in [1, 5, 9, bytes.len() - 1] {
            assert!(parse(&bytes[..cut]).unwrap().is_none(), "cut at {cut}");
        }
        let hello = parse(&bytes).unwrap().unwrap();
        assert_eq!(hello.sni.as_deref(), Some("backend.example.com"));
        assert_eq!(hello.alpn, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    }

    #[test]
    fn other_bytes_are_refused() {
        let err = parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
