//! HTTP/1.1 protocol upgrades (WebSocket and the like; our HTTP/1 server tells an upgrade request
//! while parsing its head): the `Upgrade` request goes upstream
//! with its hop-by-hop headers restored, and once the upstream answers 101 both connections are
//! handed over (by our HTTP/1 server downstream, by our client upstream) and spliced into one byte tunnel.

use http::header::{HeaderMap, HeaderValue, CONNECTION, UPGRADE};
use tokio::io::AsyncWriteExt;
use tracing::debug;

use super::h1::server::OnUpgrade;
use super::pool::Upgraded;

/// The `Upgrade` header value, read before hop-by-hop headers are stripped.
pub fn protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    headers.get(UPGRADE).cloned()
}

/// Puts back the two hop-by-hop headers an upgrade needs on the next hop (the request going
/// upstream, and the 101 going back).
pub fn restore_request_headers(headers: &mut HeaderMap, protocol: Option<HeaderValue>) {
    if let Some(p) = protocol {
        headers.insert(UPGRADE, p);
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Once both sides have switched, copies bytes both ways until either side closes. Bytes
/// either side sent right after the 101 (read along with the heads) go across first.
pub fn splice(downstream: OnUpgrade, upstream: Upgraded, cluster: String) {
    tokio::spawn(async move {
        let Some((mut up, early)) = upstream.take() else {
            return;
        };
        let Some((mut down, from_client)) = downstream.wait().await else {
            debug!(%cluster, "upgrade did not complete: the 101 did not reach the client");
            return;
        };
        if !from_client.is_empty() {
            if let Err(e) = up.write_all(&from_client).await {
                debug!(%cluster, error = %e, "upgraded connection failed");
                return;
            }
        }
        if !early.is_empty() {
            if let Err(e) = down.write_all(&early).await {
                debug!(%cluster, error = %e, "upgraded connection failed");
                return;
            }
        }
        match tokio::io::copy_bidirectional(&mut down, &mut up).await {
            Ok((sent, received)) => debug!(%cluster, sent, received, "upgraded connection closed"),
            Err(e) => debug!(%cluster, error = %e, "upgraded connection failed"),
        }
    });
}
