//! Sending one encoded batch: OTLP/gRPC (`TraceService/Export` over a tonic channel that
//! reconnects by itself) or OTLP/HTTP (`POST`, `application/x-protobuf`, over one kept-alive
//! HTTP/1.1 connection, redialled after a failure).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use sluice_config::tracing::HttpUrl;
use sluice_config::{Address, OtlpTarget};
use tonic::transport::{Channel, Endpoint, Uri};

use crate::proto::{ExportTraceServiceRequest, ExportTraceServiceResponse};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

pub enum Transport {
    Grpc(tonic::client::Grpc<Channel>),
    Http(HttpClient),
}

impl Transport {
    /// Must run inside the export runtime (the gRPC channel spawns its worker there).
    pub fn new(target: &OtlpTarget) -> Result<Transport, String> {
        match target {
            OtlpTarget::Grpc(address) => {
                Ok(Transport::Grpc(tonic::client::Grpc::new(channel(address)?)))
            }
            OtlpTarget::Http(url) => Ok(Transport::Http(HttpClient {
                url: url.clone(),
                sender: None,
            })),
        }
    }

    pub async fn export(&mut self, request: ExportTraceServiceRequest) -> Result<(), String> {
        match self {
            Transport::Grpc(client) => {
                client
                    .ready()
                    .await
                    .map_err(|e| format!("collector not ready: {}", chain(&e)))?;
                let codec = tonic_prost::ProstCodec::<
                    ExportTraceServiceRequest,
                    ExportTraceServiceResponse,
                >::default();
                let response = client
                    .unary(
                        tonic::Request::new(request),
                        http::uri::PathAndQuery::from_static(EXPORT_PATH),
                        codec,
                    )
                    .await
                    .map_err(|s| format!("export failed: {}: {}", s.code(), s.message()))?;
                partial(response.into_inner())
            }
            Transport::Http(client) => {
                let body = Bytes::from(prost::Message::encode_to_vec(&request));
                client.post(body).await
            }
        }
    }
}

/// A collector that kept some spans says so in `partial_success`; that is a failure too.
fn partial(response: ExportTraceServiceResponse) -> Result<(), String> {
    match response.partial_success {
        Some(p) if p.rejected_spans > 0 => Err(format!(
            "collector rejected {} spans: {}",
            p.rejected_spans, p.error_message
        )),
        _ => Ok(()),
    }
}

fn channel(address: &Address) -> Result<Channel, String> {
    let endpoint = |uri: String| {
        Endpoint::from_shared(uri)
            .map(|e| e.connect_timeout(CONNECT_TIMEOUT))
            .map_err(|e| format!("invalid collector address: {e}"))
    };
    match address {
        Address::Tcp(addr) => Ok(endpoint(format!("http://{addr}"))?.connect_lazy()),
        Address::Unix(path) => {
            let path = path.clone();
            // The URI is a placeholder: the connector dials the socket.
            Ok(
                endpoint("http://localhost".to_string())?.connect_with_connector_lazy(
                    tower::service_fn(move |_: Uri| {
                        let path = path.clone();
                        async move {
                            let stream = tokio::net::UnixStream::connect(path).await?;
                            Ok::<_, std::io::Error>(TokioIo::new(stream))
                        }
                    }),
                ),
            )
        }
    }
}

pub struct HttpClient {
    url: HttpUrl,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl HttpClient {
    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let shown = &self.url;
        let stream = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect((self.url.host.as_str(), self.url.port)),
        )
        .await
        .map_err(|_| format!("cannot connect to {shown}: timed out"))?
        .map_err(|e| format!("cannot connect to {shown}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("cannot talk HTTP to {shown}: {}", chain(&e)))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    async fn post(&mut self, body: Bytes) -> Result<(), String> {
        let mut sender = match self.sender.take().filter(|s| !s.is_closed()) {
            Some(s) => s,
            None => self.connect().await?,
        };
        let host = if self.url.host.contains(':') {
            format!("[{}]:{}", self.url.host, self.url.port)
        } else {
            format!("{}:{}", self.url.host, self.url.port)
        };
        let request = http::Request::post(self.url.path.as_str())
            .header(http::header::HOST, host)
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .body(Full::new(body))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        sender
            .ready()
            .await
            .map_err(|e| format!("{}: {}", self.url, chain(&e)))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("{}: {}", self.url, chain(&e)))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{}: {}", self.url, chain(&e)))?
            .to_bytes();
        self.sender = Some(sender);
        if !status.is_success() {
            return Err(format!("{} answered {status}", self.url));
        }
        match <ExportTraceServiceResponse as prost::Message>::decode(body) {
            Ok(r) => partial(r),
            // An empty or non-protobuf 2xx body still means the spans were taken.
            Err(_) => Ok(()),
        }
    }
}

/// An error with its causes on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}
