//! Dialing an upstream address.

use std::io;

use sluice_config::Address;
use tokio::net::{TcpStream, UnixStream};

use crate::stream::Stream;

/// Connects to `addr`. TCP connections get `TCP_NODELAY`: a proxy forwards what it has at once,
/// and Nagle's delay would only add latency on top of the client's own choice.
pub async fn connect(addr: &Address) -> io::Result<Stream> {
    match addr {
        Address::Tcp(a) => {
            let s = TcpStream::connect(a).await?;
            s.set_nodelay(true)?;
            Ok(Stream::Tcp(s))
        }
        Address::Unix(path) => Ok(Stream::Unix(UnixStream::connect(path).await?)),
    }
}

/// Turns on TCP keepalive probes on a TCP stream (Unix sockets have none; nothing to do):
/// the first after `time` idle, then every `interval`, giving up after `probes` unanswered.
/// Finds peers that vanished without a FIN (a host powered off, a NAT that forgot us).
pub fn set_keepalive(
    stream: &Stream,
    time: std::time::Duration,
    interval: std::time::Duration,
    probes: u32,
) -> io::Result<()> {
    let Stream::Tcp(tcp) = stream else {
        return Ok(());
    };
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(time)
        .with_interval(interval)
        .with_retries(probes);
    socket2::SockRef::from(tcp).set_tcp_keepalive(&keepalive)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn keepalive_settings_reach_the_socket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = Address::Tcp(listener.local_addr().unwrap());
        let stream = connect(&addr).await.unwrap();
        set_keepalive(&stream, Duration::from_secs(30), Duration::from_secs(5), 4).unwrap();
        let Stream::Tcp(tcp) = &stream else {
            panic!("tcp expected")
        };
        let sock = socket2::SockRef::from(tcp);
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(30));
        assert_eq!(
            sock.tcp_keepalive_interval().unwrap(),
            Duration::from_secs(5)
        );
        assert_eq!(sock.tcp_keepalive_retries().unwrap(), 4);
    }
}
