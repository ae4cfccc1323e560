//! `protocol: auto`: which protocol a connection speaks, from its first bytes.
//!
//! HTTP requests start with an upper-case method token (and HTTP/2's preface with `PRI`), and
//! no binary RPC protocol starts with a capital letter: Bolt opens with its protocol byte (1 or
//! 2), Dubbo with 0xda. Otherwise each registered protocol is asked in turn; a protocol that
//! needs more bytes to say keeps the read going, under the detection deadline.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use sluice_net::Stream;
use sluice_xprotocol::{Detect, Protocol, ProtocolRegistry};
use tokio::io::AsyncReadExt;

/// Enough for any built-in protocol to decide; a protocol still unsure after this many bytes
/// is taken as not matching.
const MAX_DETECT_BYTES: usize = 64;

pub enum Detected {
    Http,
    Rpc(Arc<dyn Protocol>),
}

#[derive(Debug)]
pub enum Undetected {
    /// The client closed (or the read failed) before the protocol was known.
    Closed,
    /// Nothing decisive arrived in time.
    Timeout,
    /// The bytes match no protocol.
    Unknown,
}

/// Reads until the protocol is known; the bytes read are left in `buf`.
pub async fn detect(
    stream: &mut Stream,
    buf: &mut BytesMut,
    protocols: &ProtocolRegistry,
    deadline: Duration,
) -> Result<Detected, Undetected> {
    let read = async {
        loop {
            if let Some(found) = decide(buf, protocols)? {
                return Ok(found);
            }
            match stream.read_buf(buf).await {
                Ok(0) | Err(_) => return Err(Undetected::Closed),
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(deadline, read)
        .await
        .map_err(|_| Undetected::Timeout)?
}

/// `Ok(None)`: more bytes needed.
fn decide(head: &[u8], protocols: &ProtocolRegistry) -> Result<Option<Detected>, Undetected> {
    let Some(&first) = head.first() else {
        return Ok(None);
    };
    if first.is_ascii_uppercase() {
        return Ok(Some(Detected::Http));
    }
    let mut unsure = false;
    for protocol in protocols.all() {
        match protocol.detect(head) {
            Detect::Yes => return Ok(Some(Detected::Rpc(protocol.clone()))),
            Detect::NeedMore => unsure = true,
            Detect::No => {}
        }
    }
    if unsure && head.len() < MAX_DETECT_BYTES {
        Ok(None)
    } else {
        Err(Undetected::Unknown)
    }
}
