//! The SDS client: one `StreamSecrets` stream (state of the world) to the server of the
//! top-level `sds:` block, subscribed to every secret name the listeners use.
//!
//! Each response is applied secret by secret: a valid secret replaces the old one at once
//! (new handshakes use it); an invalid one (unparsable PEM, a key that does not match its
//! certificate, the wrong kind for where it is used) leaves the old one in place. The response
//! is then ACKed (its `version_info` and nonce), or NACKed with `error_detail` naming every
//! rejected secret and the version last accepted. A stream that fails is opened again after a
//! bounded exponential backoff, sending the last accepted version so the server can resume.

use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::secret::Type as SecretType;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_client::SecretDiscoveryServiceClient;
use envoy_types::pb::google::rpc::Status;
use prost::Message;
use sluice_config::{NodeConfig, SdsConfig};
use sluice_net::Secrets;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::channel::connect;
use crate::data_source;
use crate::stream::{status_text, INVALID_ARGUMENT};

pub const SECRET_TYPE_URL: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

const BACKOFF_FIRST: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(15);

/// The client's state across streams.
struct Client {
    config: SdsConfig,
    node: envoy_types::pb::envoy::config::core::v3::Node,
    names: Vec<String>,
    secrets: Arc<Secrets>,
    /// The last version accepted, sent when a stream (re)opens.
    version: String,
}

/// Starts the SDS client on the current runtime for every SDS secret registered in
/// `secrets`. Does nothing if there is none.
pub fn start(node: &NodeConfig, config: &SdsConfig, secrets: Arc<Secrets>) {
    let names = secrets.sds_names();
    if names.is_empty() {
        return;
    }
    let client = Client {
        config: config.clone(),
        node: crate::node::node(node),
        names,
        secrets,
        version: String::new(),
    };
    tokio::spawn(client.run());
}

impl Client {
    async fn run(mut self) {
        let mut backoff = Backoff::new(BACKOFF_FIRST, BACKOFF_MAX);
        loop {
            let mut answered = false;
            match self.stream(&mut answered).await {
                Ok(()) => warn!(server = %self.config.address, "SDS stream closed by the server"),
                Err(e) => warn!(server = %self.config.address, error = %e, "SDS stream failed"),
            }
            if answered {
                backoff.reset();
            }
            let wait = backoff.next_wait();
            debug!(?wait, "SDS: reconnecting after a pause");
            tokio::time::sleep(wait).await;
        }
    }

    /// One stream, until it ends. `answered` is set once the server sent a response.
    async fn stream(&mut self, answered: &mut bool) -> Result<(), String> {
        let channel = connect(&self.config.address).await?;
        let mut grpc = SecretDiscoveryServiceClient::new(channel);
        let (tx, rx) = mpsc::channel(4);
        let first = self.request(String::new(), None);
        tx.send(first)
            .await
            .map_err(|_| "the request stream closed".to_string())?;
        let mut responses = grpc
            .stream_secrets(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .map_err(|e| format!("StreamSecrets: {}", status_text(&e)))?
            .into_inner();
        info!(server = %self.config.address, secrets = ?self.names, "SDS stream open");
        // A server that sends a version we rejected again at once would have us NACK in a
        // tight loop: the same rejected version is answered after a growing pause.
        let mut rejected_version: Option<String> = None;
        let mut repeat_pause = Backoff::new(BACKOFF_FIRST, BACKOFF_MAX);
        loop {
            let response = match responses.message().await {
                Ok(Some(r)) => r,
                Ok(None) => return Ok(()),
                Err(e) => return Err(status_text(&e)),
            };
            *answered = true;
            let rejected = self.apply(&response);
            let reply = if rejected.is_empty() {
                self.version = response.version_info.clone();
                debug!(version = %response.version_info, "SDS: ACK");
                self.request(response.nonce, None)
            } else {
                let message = rejected.join("; ");
                warn!(version = %response.version_info, error = %message, "SDS: NACK");
                if rejected_version.as_deref() == Some(response.version_info.as_str()) {
                    tokio::time::sleep(repeat_pause.next_wait()).await;
                } else {
                    repeat_pause.reset();
                    rejected_version = Some(response.version_info.clone());
                }
                self.request(
                    response.nonce,
                    Some(Status {
                        code: INVALID_ARGUMENT,
                        message,
                        details: Vec::new(),
                    }),
                )
            };
            tx.send(reply)
                .await
                .map_err(|_| "the request stream closed".to_string())?;
        }
    }

    fn request(&self, nonce: String, error: Option<Status>) -> DiscoveryRequest {
        DiscoveryRequest {
            version_info: self.version.clone(),
            node: Some(self.node.clone()),
            resource_names: self.names.clone(),
            type_url: SECRET_TYPE_URL.to_string(),
            response_nonce: nonce,
            error_detail: error,
            ..DiscoveryRequest::default()
        }
    }

    /// Applies every secret of a response; returns one message per rejected resource.
    fn apply(&self, response: &DiscoveryResponse) -> Vec<String> {
        let mut rejected = Vec::new();
        for (i, any) in response.resources.iter().enumerate() {
            if any.type_url != SECRET_TYPE_URL {
                rejected.push(format!(
                    "resource {i}: type {} is not {SECRET_TYPE_URL}",
                    any.type_url
                ));
                continue;
            }
            let secret = match Secret::decode(any.value.as_slice()) {
                Ok(s) => s,
                Err(e) => {
                    rejected.push(format!("resource {i}: cannot decode a Secret: {e}"));
                    continue;
                }
            };
            if let Err(e) = self.apply_secret(&secret, &response.version_info) {
                rejected.push(format!("secret \"{}\": {e}", secret.name));
            }
        }
        rejected
    }

    fn apply_secret(&self, secret: &Secret, version: &str) -> Result<(), String> {
        let name = &secret.name;
        let (cert_slot, ca_slot) = self.secrets.sds_named(name);
        if cert_slot.is_none() && ca_slot.is_none() {
            debug!(secret = %name, "SDS: a secret nobody asked for; ignored");
            return Ok(());
        }
        match &secret.r#type {
            Some(SecretType::TlsCertificate(tls)) => {
                let Some(slot) = cert_slot else {
                    return Err("is a tls_certificate, but is used as a CA bundle".into());
                };
                let chain_pem =
                    data_source::read(tls.certificate_chain.as_ref(), "certificate_chain")?;
                let key_pem = data_source::read(tls.private_key.as_ref(), "private_key")?;
                let chain = sluice_config::parse_certs(&chain_pem, "certificate_chain")?;
                let key = sluice_config::parse_key(&key_pem, "private_key")?;
                let ocsp = match &tls.ocsp_staple {
                    Some(source) => Some(data_source::read(Some(source), "ocsp_staple")?),
                    None => None,
                };
                let m = slot.update(chain, &key.der(), ocsp)?;
                info!(secret = %name, %version, serial = %m.serial, not_after = %m.not_after, "SDS certificate updated");
                Ok(())
            }
            Some(SecretType::ValidationContext(vc)) => {
                let Some(slot) = ca_slot else {
                    return Err("is a validation_context, but is used as a certificate".into());
                };
                let pem = data_source::read(vc.trusted_ca.as_ref(), "trusted_ca")?;
                let certs = sluice_config::parse_certs(&pem, "trusted_ca")?;
                let n = slot.update(&certs)?;
                info!(secret = %name, %version, certificates = n, "SDS CA bundle updated");
                Ok(())
            }
            Some(_) => {
                Err("only tls_certificate and validation_context secrets are supported".into())
            }
            None => Err("the secret has no content".into()),
        }
    }
}
