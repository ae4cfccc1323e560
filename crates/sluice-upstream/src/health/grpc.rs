//! The gRPC probe: `grpc.health.v1.Health/Check` over cleartext HTTP/2 (prior knowledge).
//!
//! The request and response messages have one field each, so they are encoded and decoded by
//! hand rather than pulling in a protobuf stack.

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use sluice_config::{Address, GrpcCheck};

use sluice_net::AppProtocol;

use super::probe::{Connector, Probe, ProbeError, ProbeFuture};

const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// The most of a response body read; a `HealthCheckResponse` is a few bytes.
const MAX_RESPONSE: usize = 4 * 1024;

/// `HealthCheckResponse.ServingStatus.SERVING`.
const SERVING: u64 = 1;

pub struct GrpcProbe {
    /// Plain TCP, or the cluster's TLS.
    pub(super) connector: Connector,
    /// `http://{authority}/grpc.health.v1.Health/Check`, or why it could not be made.
    uri: Result<Uri, String>,
    /// The framed `HealthCheckRequest`, built once.
    message: Bytes,
}

impl GrpcProbe {
    /// `cluster_name` is the `:authority` when the check names none.
    pub fn new(check: &GrpcCheck, cluster_name: &str) -> GrpcProbe {
        let authority = check.authority.as_deref().unwrap_or(cluster_name);
        let uri = Uri::builder()
            .scheme("http")
            .authority(authority)
            .path_and_query(CHECK_PATH)
            .build()
            .map_err(|e| format!("cannot use \"{authority}\" as the :authority: {e}"));
        GrpcProbe {
            connector: Connector::default(),
            uri,
            message: request_message(&check.service_name),
        }
    }

    async fn run(&self, address: &Address, hostname: Option<&str>) -> Result<(), ProbeError> {
        let mut uri = self.uri.clone().map_err(ProbeError::Protocol)?;
        if self.connector.tls.is_some() {
            let mut parts = uri.into_parts();
            parts.scheme = Some(http::uri::Scheme::HTTPS);
            uri = Uri::from_parts(parts).map_err(|e| ProbeError::Protocol(e.to_string()))?;
        }
        let io = self
            .connector
            .connect(address, hostname, AppProtocol::Http2)
            .await?;
        let (client, connection) = h2::client::handshake(io).await.map_err(h2_error)?;
        // The connection is driven here, not spawned, so a check that times out (and is
        // dropped) takes its connection with it.
        let mut call = std::pin::pin!(call(client, uri, self.message.clone()));
        let mut connection = std::pin::pin!(connection);
        tokio::select! {
            biased;
            result = &mut call => result,
            ended = &mut connection => match ended {
                Err(e) => Err(h2_error(e)),
                // Closed cleanly: the call's answer (or its error) is already queued.
                Ok(()) => call.await,
            },
        }
    }
}

impl Probe for GrpcProbe {
    fn check<'a>(&'a self, address: &'a Address, hostname: Option<&'a str>) -> ProbeFuture<'a> {
        Box::pin(self.run(address, hostname))
    }
}

/// One unary call: the request, then the response headers, message and trailers.
async fn call(
    client: h2::client::SendRequest<Bytes>,
    uri: Uri,
    message: Bytes,
) -> Result<(), ProbeError> {
    let mut client = client.ready().await.map_err(h2_error)?;
    let request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("user-agent", "sluice-health-check")
        .body(())
        .map_err(|e| ProbeError::Protocol(e.to_string()))?;
    let (response, mut body) = client.send_request(request, false).map_err(h2_error)?;
    body.send_data(message, true).map_err(h2_error)?;
    let response = response.await.map_err(h2_error)?;
    if response.status() != StatusCode::OK {
        return Err(ProbeError::BadStatus(response.status().as_u16()));
    }
    let (head, mut body) = response.into_parts();
    // Trailers-only: the status comes with the headers and there is no message.
    if head.headers.contains_key("grpc-status") {
        grpc_status(&head.headers)?;
        return Err(ProbeError::Protocol(
            "OK status without a response message".into(),
        ));
    }
    let mut data = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(h2_error)?;
        let _ = body.flow_control().release_capacity(chunk.len());
        if data.len() + chunk.len() > MAX_RESPONSE {
            return Err(ProbeError::Protocol(format!(
                "response message over {MAX_RESPONSE} bytes"
            )));
        }
        data.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await.map_err(h2_error)?;
    grpc_status(&trailers.unwrap_or_default())?;
    match serving_status(&data)? {
        SERVING => Ok(()),
        other => Err(ProbeError::NotServing(other)),
    }
}

fn h2_error(e: h2::Error) -> ProbeError {
    ProbeError::Protocol(format!("HTTP/2: {e}"))
}

/// `Ok` when `grpc-status` is 0.
fn grpc_status(headers: &HeaderMap) -> Result<(), ProbeError> {
    let Some(value) = headers.get("grpc-status") else {
        return Err(ProbeError::Protocol(
            "no grpc-status in the response".into(),
        ));
    };
    let code = value
        .to_str()
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| ProbeError::Protocol("grpc-status is not a number".into()))?;
    if code == 0 {
        return Ok(());
    }
    let message = headers
        .get("grpc-message")
        .map(|m| {
            String::from_utf8_lossy(m.as_bytes())
                .chars()
                .take(200)
                .collect()
        })
        .unwrap_or_default();
    Err(ProbeError::GrpcStatus { code, message })
}

/// A gRPC frame (uncompressed flag, 4-byte big-endian length) around
/// `HealthCheckRequest { string service = 1; }`; an empty service is the empty message.
fn request_message(service: &str) -> Bytes {
    let mut body = Vec::with_capacity(service.len() + 6);
    if !service.is_empty() {
        body.push(0x0a); // field 1, length-delimited
        put_varint(&mut body, service.len() as u64);
        body.extend_from_slice(service.as_bytes());
    }
    let mut framed = Vec::with_capacity(5 + body.len());
    framed.push(0);
    framed.extend_from_slice(&(body.len() as u32).to_be_bytes());
    framed.extend_from_slice(&body);
    Bytes::from(framed)
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The `status` (field 1) of the framed `HealthCheckResponse` in `data`; absent means 0
/// (UNKNOWN), as in proto3. Unknown fields are skipped.
fn serving_status(data: &[u8]) -> Result<u64, ProbeError> {
    let bad = |why: &str| ProbeError::Protocol(format!("bad HealthCheckResponse: {why}"));
    let (header, rest) = data
        .split_first_chunk::<5>()
        .ok_or_else(|| bad("no message"))?;
    if header[0] != 0 {
        return Err(bad("compressed, but no compression was offered"));
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    let mut fields = rest.get(..len).ok_or_else(|| bad("truncated"))?;
    let mut status = 0;
    while !fields.is_empty() {
        let key = take_varint(&mut fields).ok_or_else(|| bad("truncated field"))?;
        let skip = match key & 7 {
            0 => {
                let value = take_varint(&mut fields).ok_or_else(|| bad("truncated varint"))?;
                if key >> 3 == 1 {
                    status = value;
                }
                0
            }
            1 => 8,
            2 => take_varint(&mut fields).ok_or_else(|| bad("truncated length"))? as usize,
            5 => 4,
            _ => return Err(bad("unknown wire type")),
        };
        fields = fields.get(skip..).ok_or_else(|| bad("truncated field"))?;
    }
    Ok(status)
}

/// A protobuf varint from the front of `input` (at most 10 bytes), advancing past it.
fn take_varint(input: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, byte) in input.iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *input = &input[i + 1..];
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderValue, Response};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    /// How the test server answers.
    #[derive(Clone, Copy)]
    enum Answer {
        /// A message with this serving status, then `grpc-status: 0`.
        Status(u64),
        /// Trailers-only, with this `grpc-status`.
        Error(u32),
        /// An HTTP status with no gRPC at all.
        Http(u16),
    }

    /// An h2 server answering every call with `answer`; each request's service name (decoded
    /// from its body) and headers come back on the channel.
    async fn server(answer: Answer) -> (Address, mpsc::UnboundedReceiver<(String, HeaderMap)>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = Address::Tcp(listener.local_addr().unwrap());
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut connection = h2::server::handshake(socket).await.unwrap();
                    while let Some(next) = connection.accept().await {
                        let (request, respond) = next.unwrap();
                        tokio::spawn(respond_to(request, respond, answer, tx.clone()));
                    }
                });
            }
        });
        (address, rx)
    }

    async fn respond_to(
        request: Request<h2::RecvStream>,
        mut respond: h2::server::SendResponse<Bytes>,
        answer: Answer,
        seen: mpsc::UnboundedSender<(String, HeaderMap)>,
    ) {
        let (head, mut body) = request.into_parts();
        assert_eq!(head.method, Method::POST);
        assert_eq!(head.uri.path(), CHECK_PATH);
        let mut data = Vec::new();
        while let Some(chunk) = body.data().await {
            data.extend_from_slice(&chunk.unwrap());
        }
        // The request message: frame header, then at most field 1.
        let service = if data.len() > 5 {
            let mut fields = &data[6..];
            let len = take_varint(&mut fields).unwrap() as usize;
            String::from_utf8(fields[..len].to_vec()).unwrap()
        } else {
            assert_eq!(data, [0, 0, 0, 0, 0]);
            String::new()
        };
        let mut headers = head.headers;
        headers.insert(
            "x-authority",
            HeaderValue::from_str(head.uri.authority().unwrap().as_str()).unwrap(),
        );
        seen.send((service, headers)).unwrap();
        let grpc = || {
            Response::builder()
                .status(200)
                .header("content-type", "application/grpc")
        };
        match answer {
            Answer::Status(status) => {
                let mut send = respond
                    .send_response(grpc().body(()).unwrap(), false)
                    .unwrap();
                let message = [0, 0, 0, 0, 2, 0x08, status as u8];
                send.send_data(Bytes::copy_from_slice(&message), false)
                    .unwrap();
                let mut trailers = HeaderMap::new();
                trailers.insert("grpc-status", HeaderValue::from_static("0"));
                send.send_trailers(trailers).unwrap();
            }
            Answer::Error(code) => {
                let response = grpc()
                    .header("grpc-status", code.to_string())
                    .header("grpc-message", "no such method")
                    .body(())
                    .unwrap();
                respond.send_response(response, true).unwrap();
            }
            Answer::Http(status) => {
                let response = Response::builder().status(status).body(()).unwrap();
                respond.send_response(response, true).unwrap();
            }
        }
    }

    fn probe(service: &str, authority: Option<&str>) -> GrpcProbe {
        let check = GrpcCheck {
            service_name: service.into(),
            authority: authority.map(String::from),
        };
        GrpcProbe::new(&check, "api")
    }

    #[tokio::test]
    async fn serving_passes() {
        let (address, mut seen) = server(Answer::Status(SERVING)).await;
        probe("", None).check(&address, None).await.unwrap();
        let (service, headers) = seen.recv().await.unwrap();
        assert_eq!(service, "");
        assert_eq!(headers["content-type"], "application/grpc");
        assert_eq!(headers["te"], "trailers");
        assert_eq!(headers["x-authority"], "api");

        probe("pkg.Orders", Some("orders.local"))
            .check(&address, None)
            .await
            .unwrap();
        let (service, headers) = seen.recv().await.unwrap();
        assert_eq!(service, "pkg.Orders");
        assert_eq!(headers["x-authority"], "orders.local");
    }

    #[tokio::test]
    async fn not_serving_fails() {
        let (address, _seen) = server(Answer::Status(2)).await;
        let err = probe("", None).check(&address, None).await.unwrap_err();
        assert!(matches!(err, ProbeError::NotServing(2)), "{err}");
        assert_eq!(
            err.to_string(),
            "service status is NOT_SERVING (2), not SERVING"
        );
    }

    #[tokio::test]
    async fn a_trailers_only_error_fails_with_its_status() {
        let (address, _seen) = server(Answer::Error(12)).await;
        let err = probe("", None).check(&address, None).await.unwrap_err();
        assert!(
            matches!(&err, ProbeError::GrpcStatus { code: 12, message } if message == "no such method"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_non_200_fails_with_its_status() {
        let (address, _seen) = server(Answer::Http(404)).await;
        let err = probe("", None).check(&address, None).await.unwrap_err();
        assert!(matches!(err, ProbeError::BadStatus(404)), "{err}");
    }

    #[tokio::test]
    async fn an_http1_server_is_a_protocol_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = Address::Tcp(listener.local_addr().unwrap());
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let (mut socket, _) = listener.accept().await.unwrap();
            let _ = socket
                .write_all(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n")
                .await;
        });
        let err = probe("", None).check(&address, None).await.unwrap_err();
        assert!(matches!(err, ProbeError::Protocol(_)), "{err}");
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = Address::Tcp(listener.local_addr().unwrap());
        drop(listener);
        let err = probe("", None).check(&address, None).await.unwrap_err();
        assert!(matches!(err, ProbeError::Connect(_)), "{err}");
    }

    #[test]
    fn messages() {
        assert_eq!(&request_message("")[..], [0, 0, 0, 0, 0]);
        assert_eq!(
            &request_message("ab")[..],
            [0, 0, 0, 0, 4, 0x0a, 2, b'a', b'b']
        );
        // status 1 after an unknown length-delimited field 2 and a fixed64 field 3.
        let response = [
            0, 0, 0, 0, 15, 0x12, 2, b'x', b'y', 0x19, 1, 2, 3, 4, 5, 6, 7, 8, 0x08, 1,
        ];
        assert_eq!(serving_status(&response[..]).unwrap(), 1);
        assert_eq!(serving_status(&[0, 0, 0, 0, 0]).unwrap(), 0);
        assert!(serving_status(&[0, 0, 0, 0, 3, 0x08]).is_err());
        assert!(serving_status(&[1, 0, 0, 0, 0]).is_err());
        assert!(serving_status(&[0, 0, 0, 0, 2, 0x08, 0x80]).is_err());
        let mut long = [0x80u8; 11].as_slice();
        assert_eq!(take_varint(&mut long), None);
    }

    #[test]
    fn a_bad_authority_fails_every_check_with_the_reason() {
        let p = probe("", Some("a b"));
        assert!(p.uri.is_err());
    }
}
