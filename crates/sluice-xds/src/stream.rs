//! One discovery stream to the control plane, as a pipe: requests go in through a channel,
//! responses come out as events for the client (`client.rs`), which holds all the state.
//!
//! The same code opens any of the ten discovery methods (ADS or one type's service, state
//! of the world or delta): they differ only in the gRPC path and the message types.

use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use sluice_config::ServerAddress;
use tokio::sync::mpsc;
use tonic::codegen::http::uri::PathAndQuery;

use crate::channel::connect;

/// gRPC's INVALID_ARGUMENT, the code of a NACK's `error_detail`.
pub(crate) const INVALID_ARGUMENT: i32 = 3;

/// A request for either protocol variant.
#[derive(Debug)]
pub(crate) enum Request {
    Sotw(DiscoveryRequest),
    Delta(DeltaDiscoveryRequest),
}

/// What a stream reports to the client.
#[derive(Debug)]
pub(crate) enum Event {
    Sotw(u64, DiscoveryResponse),
    Delta(u64, DeltaDiscoveryResponse),
    /// The stream ended (the server closed it, or it failed); `answered` if any response
    /// came first.
    Closed {
        stream: u64,
        error: String,
        answered: bool,
    },
}

/// Opens stream `id` on `path` and runs it until it ends, forwarding responses to `events`.
/// The first requests must already be queued in `requests`.
pub(crate) async fn run(
    id: u64,
    address: ServerAddress,
    path: &'static str,
    delta: bool,
    requests: mpsc::Receiver<Request>,
    events: mpsc::Sender<Event>,
) {
    let mut answered = false;
    let error = if delta {
        pipe::<DeltaDiscoveryRequest, DeltaDiscoveryResponse>(
            &address,
            path,
            requests,
            |r| match r {
                Request::Delta(r) => Some(r),
                Request::Sotw(_) => None,
            },
            |resp| Event::Delta(id, resp),
            &events,
            &mut answered,
        )
        .await
    } else {
        pipe::<DiscoveryRequest, DiscoveryResponse>(
            &address,
            path,
            requests,
            |r| match r {
                Request::Sotw(r) => Some(r),
                Request::Delta(_) => None,
            },
            |resp| Event::Sotw(id, resp),
            &events,
            &mut answered,
        )
        .await
    };
    let _ = events
        .send(Event::Closed {
            stream: id,
            error,
            answered,
        })
        .await;
}

#[allow(clippy::too_many_arguments)]
async fn pipe<Req, Resp>(
    address: &ServerAddress,
    path: &'static str,
    requests: mpsc::Receiver<Request>,
    pick: fn(Request) -> Option<Req>,
    wrap: impl Fn(Resp) -> Event,
    events: &mpsc::Sender<Event>,
    answered: &mut bool,
) -> String
where
    Req: prost::Message + Send + 'static,
    Resp: prost::Message + Default + Send + 'static,
{
    let channel = match connect(address).await {
        Ok(c) => c,
        Err(e) => return e,
    };
    let mut grpc = tonic::client::Grpc::new(channel);
    if let Err(e) = grpc.ready().await {
        return format!("not ready: {e}");
    }
    use tokio_stream::StreamExt as _;
    let outgoing = tokio_stream::wrappers::ReceiverStream::new(requests).filter_map(pick);
    let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
    let response = grpc
        .streaming(
            tonic::Request::new(outgoing),
            PathAndQuery::from_static(path),
            codec,
        )
        .await;
    let mut incoming = match response {
        Ok(r) => r.into_inner(),
        Err(status) => return status_text(&status),
    };
    loop {
        match incoming.message().await {
            Ok(Some(resp)) => {
                *answered = true;
                if events.send(wrap(resp)).await.is_err() {
                    return "the client stopped".to_string();
                }
            }
            Ok(None) => return "closed by the server".to_string(),
            Err(status) => return status_text(&status),
        }
    }
}

pub(crate) fn status_text(s: &tonic::Status) -> String {
    let mut text = format!("{:?}: {}", s.code(), s.message());
    if let Some(source) = std::error::Error::source(s) {
        text.push_str(": ");
        text.push_str(&crate::channel::chain(source));
    }
    text
}
