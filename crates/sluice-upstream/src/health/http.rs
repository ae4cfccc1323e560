//! The HTTP/1.1 probe: one request on a fresh connection; the response status decides.
//!
//! The request is written by hand and only the response head is parsed (with `httparse`,
//! within [`MAX_HEAD`] bytes): a check needs nothing but the status, so a client stack would
//! add a dependency and a body to drain for no gain, and the read bound stays explicit.

use sluice_config::{Address, HttpCheck, HttpCheckMethod, StatusRange};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use sluice_net::AppProtocol;

use super::probe::{Connector, Probe, ProbeError, ProbeFuture};

/// The most of a response read before its status line must have been found (interim 1xx heads
/// included).
const MAX_HEAD: usize = 16 * 1024;

/// Headers parsed per response head; a final status is accepted even past this many.
const MAX_HEADERS: usize = 64;

pub struct HttpProbe {
    /// Plain TCP, or the cluster's TLS.
    pub(super) connector: Connector,
    /// The whole request, built once.
    request: Vec<u8>,
    expected: Vec<StatusRange>,
}

impl HttpProbe {
    /// `cluster_name` is the `Host` when the check names none.
    pub fn new(check: &HttpCheck, cluster_name: &str) -> HttpProbe {
        let host = check.host.as_deref().unwrap_or(cluster_name);
        // Config validates `path` and `host`; a cluster name may hold anything, and must not
        // be able to end the header early.
        let host: String = host.chars().filter(|c| c.is_ascii_graphic()).collect();
        let body_length = match check.method {
            HttpCheckMethod::Post | HttpCheckMethod::Put | HttpCheckMethod::Patch => {
                "Content-Length: 0\r\n"
            }
            _ => "",
        };
        let request = format!(
            "{} {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sluice-health-check\r\nConnection: close\r\n{body_length}\r\n",
            check.method.as_str(),
            check.path,
        );
        HttpProbe {
            connector: Connector::default(),
            request: request.into_bytes(),
            expected: check.expected_statuses.clone(),
        }
    }

    async fn run(&self, address: &Address, hostname: Option<&str>) -> Result<(), ProbeError> {
        let mut stream = self
            .connector
            .connect(address, hostname, AppProtocol::Http1)
            .await?;
        stream
            .write_all(&self.request)
            .await
            .map_err(ProbeError::Io)?;
        let status = read_status(&mut stream).await?;
        if self.expected.iter().any(|r| r.contains(status)) {
            Ok(())
        } else {
            Err(ProbeError::BadStatus(status))
        }
    }
}

impl Probe for HttpProbe {
    fn check<'a>(&'a self, address: &'a Address, hostname: Option<&'a str>) -> ProbeFuture<'a> {
        Box::pin(self.run(address, hostname))
    }
}

/// The first final status (interim 1xx responses skipped), reading at most [`MAX_HEAD`] bytes.
async fn read_status(io: &mut (impl AsyncRead + Unpin)) -> Result<u16, ProbeError> {
    let mut buf = Vec::with_capacity(1024);
    // Where the response head being parsed starts, past any interim ones.
    let mut start = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let parsed = response.parse(&buf[start..]);
        // httparse fills in the code as soon as the status line is complete, before headers.
        let code = response.code;
        match (parsed, code) {
            (Ok(httparse::Status::Complete(len)), Some(code)) if is_interim(code) => {
                start += len;
                continue;
            }
            (Ok(_) | Err(httparse::Error::TooManyHeaders), Some(code)) if !is_interim(code) => {
                return Ok(code);
            }
            (Ok(_), _) => {}
            (Err(e), _) => return Err(ProbeError::Protocol(format!("malformed response: {e}"))),
        }
        if buf.len() >= MAX_HEAD {
            return Err(ProbeError::Protocol(format!(
                "no response status in the first {MAX_HEAD} bytes"
            )));
        }
        let mut chunk = [0u8; 2048];
        let room = (MAX_HEAD - buf.len()).min(chunk.len());
        let n = io.read(&mut chunk[..room]).await.map_err(ProbeError::Io)?;
        if n == 0 {
            return Err(ProbeError::Protocol(
                "connection closed before a response status".into(),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// 1xx but not 101: another head follows. (A 101 to a request that asked for no upgrade is a
/// final, unexpected status.)
fn is_interim(code: u16) -> bool {
    (100..200).contains(&code) && code != 101
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;
    use tokio::sync::oneshot;

    fn check(yaml_statuses: Option<Vec<StatusRange>>) -> HttpCheck {
        HttpCheck {
            path: "/healthz".into(),
            host: None,
            method: HttpCheckMethod::Get,
            expected_statuses: yaml_statuses.unwrap_or(vec![StatusRange::SUCCESS]),
        }
    }

    /// Serves one connection: reads the request head, answers `response`, closes. The request
    /// head comes back on the channel.
    async fn server(response: &'static [u8]) -> (Address, oneshot::Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = Address::Tcp(listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
                if socket.read(&mut byte).await.unwrap() == 0 {
                    break;
                }
                head.push(byte[0]);
            }
            let _ = tx.send(String::from_utf8(head).unwrap());
            socket.write_all(response).await.unwrap();
        });
        (address, rx)
    }

    #[tokio::test]
    async fn a_2xx_passes_and_the_request_is_well_formed() {
        let (address, request) = server(b"HTTP/1.1 204 No Content\r\n\r\n").await;
        let probe = HttpProbe::new(&check(None), "api");
        probe.check(&address, None).await.unwrap();
        assert_eq!(
            request.await.unwrap(),
            "GET /healthz HTTP/1.1\r\nHost: api\r\nUser-Agent: sluice-health-check\r\nConnection: close\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn a_configured_host_and_method_are_sent() {
        let (address, request) = server(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
        let mut check = check(None);
        check.host = Some("health.local".into());
        check.method = HttpCheckMethod::Post;
        HttpProbe::new(&check, "api")
            .check(&address, None)
            .await
            .unwrap();
        let request = request.await.unwrap();
        assert!(request.starts_with("POST /healthz HTTP/1.1\r\nHost: health.local\r\n"));
        assert!(request.ends_with("Content-Length: 0\r\n\r\n"));
    }

    #[tokio::test]
    async fn a_status_outside_the_ranges_fails() {
        let (address, _) = server(b"HTTP/1.1 503 Service Unavailable\r\n\r\n").await;
        let err = HttpProbe::new(&check(None), "api")
            .check(&address, None)
            .await
            .unwrap_err();
        assert!(matches!(err, ProbeError::BadStatus(503)), "{err}");

        let (address, _) = server(b"HTTP/1.1 204 No Content\r\n\r\n").await;
        let only_200 = check(Some(vec![StatusRange {
            start: 200,
            end: 201,
        }]));
        let err = HttpProbe::new(&only_200, "api")
            .check(&address, None)
            .await
            .unwrap_err();
        assert!(matches!(err, ProbeError::BadStatus(204)), "{err}");
    }

    #[tokio::test]
    async fn interim_responses_are_skipped() {
        let (address, _) =
            server(b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n\r\n").await;
        HttpProbe::new(&check(None), "api")
            .check(&address, None)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn garbage_and_silence_are_protocol_errors() {
        let (address, _) = server(b"SSH-2.0-OpenSSH\r\n\r\n").await;
        let err = HttpProbe::new(&check(None), "api")
            .check(&address, None)
            .await
            .unwrap_err();
        assert!(matches!(err, ProbeError::Protocol(_)), "{err}");

        let (address, _) = server(b"").await;
        let err = HttpProbe::new(&check(None), "api")
            .check(&address, None)
            .await
            .unwrap_err();
        assert!(matches!(err, ProbeError::Protocol(_)), "{err}");
    }

    #[tokio::test]
    async fn an_endless_head_stops_at_the_limit() {
        let mut long = b"HTTP/1.1 100 Continue\r\nx-filler: ".to_vec();
        long.resize(3 * MAX_HEAD, b'a');
        let mut io = std::io::Cursor::new(long);
        let err = read_status(&mut io).await.unwrap_err();
        assert!(err.to_string().contains("16384"), "{err}");
        assert!(io.position() as usize <= MAX_HEAD);
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = Address::Tcp(listener.local_addr().unwrap());
        drop(listener);
        let err = HttpProbe::new(&check(None), "api")
            .check(&address, None)
            .await
            .unwrap_err();
        assert!(matches!(err, ProbeError::Connect(_)), "{err}");
    }

    #[test]
    fn a_cluster_name_cannot_break_the_request() {
        let probe = HttpProbe::new(&check(None), "bad\r\nx: y");
        let request = String::from_utf8(probe.request).unwrap();
        assert!(request.contains("Host: badx:y\r\n"));
    }
}
