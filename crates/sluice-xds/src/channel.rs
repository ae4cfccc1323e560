//! A gRPC channel to a control plane, over TCP (`host:port`, plaintext HTTP/2) or a Unix
//! socket (`unix:/path`); a DNS name (`name:port`) is resolved at each connection.

use std::time::Duration;

use hyper_util::rt::TokioIo;
use sluice_config::{Address, ServerAddress};
use tonic::transport::{Channel, Endpoint, Uri};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP/2 pings on a quiet stream, so a control plane that vanished without closing the
/// connection is noticed and the client reconnects.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn connect(address: &ServerAddress) -> Result<Channel, String> {
    let address = match address {
        // Resolved by the connector at each (re)connection.
        ServerAddress::Host { name, port } => {
            return endpoint(&format!("http://{name}:{port}"))?
                .connect()
                .await
                .map_err(|e| format!("cannot connect to {name}:{port}: {}", chain(&e)))
        }
        ServerAddress::Addr(a) => a,
    };
    match address {
        Address::Tcp(addr) => endpoint(&format!("http://{addr}"))?
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {addr}: {}", chain(&e))),
        Address::Unix(path) => {
            let path = path.clone();
            let shown = path.display().to_string();
            // The URI is a placeholder: the connector ignores it and dials the socket.
            endpoint("http://localhost")?
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        let stream = tokio::net::UnixStream::connect(path).await?;
                        Ok::<_, std::io::Error>(TokioIo::new(stream))
                    }
                }))
                .await
                .map_err(|e| format!("cannot connect to unix:{shown}: {}", chain(&e)))
        }
    }
}

fn endpoint(uri: &str) -> Result<Endpoint, String> {
    Ok(Endpoint::from_shared(uri.to_string())
        .map_err(|e| format!("invalid control plane address {uri}: {e}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true))
}

/// An error with its causes, as one line (tonic's transport error alone says little).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}
