//! `x-forwarded-client-cert` (XFCC): what the upstream learns of the client's certificate,
//! in Envoy's format and with Envoy's keys.
//!
//! `forward_client_cert_details` says what happens to the header a request arrives with:
//! `sanitize` (the default) removes it; `forward_only` keeps it on mTLS connections only;
//! `always_forward_only` keeps it always; `append_forward` appends this hop's element on mTLS
//! connections; `sanitize_set` replaces it with this hop's element on mTLS connections. On a
//! connection without a verified client certificate, every mode but `always_forward_only`
//! removes the header, so a client cannot forge one.
//!
//! This hop's element is made once per connection: `By=<our URI SAN>` (when our certificate
//! has one), `Hash=<hex SHA-256 of the client certificate's DER>`, then what
//! `set_current_client_cert_details` asks for, in this order: `Cert="<URL-encoded PEM>"`,
//! `Chain="<URL-encoded PEM chain>"`, `Subject="<subject>"`, `URI=<first URI SAN>` (present,
//! possibly empty, when asked for), one `DNS=<name>` per DNS SAN. Pairs are joined by `;`;
//! elements of several hops by `,`.

use base64::Engine as _;
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sluice_config::decode::{join, keyword, Cx, Fields};
use sluice_net::TlsInfo;

pub static XFCC: HeaderName = HeaderName::from_static("x-forwarded-client-cert");

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ForwardMode {
    #[default]
    Sanitize,
    ForwardOnly,
    AppendForward,
    SanitizeSet,
    AlwaysForwardOnly,
}

impl ForwardMode {
    const NAMES: [&'static str; 5] = [
        "sanitize",
        "forward_only",
        "append_forward",
        "sanitize_set",
        "always_forward_only",
    ];

    fn from_name(name: &str) -> Option<ForwardMode> {
        Some(match name.to_ascii_lowercase().as_str() {
            "sanitize" => ForwardMode::Sanitize,
            "forward_only" => ForwardMode::ForwardOnly,
            "append_forward" => ForwardMode::AppendForward,
            "sanitize_set" => ForwardMode::SanitizeSet,
            "always_forward_only" => ForwardMode::AlwaysForwardOnly,
            _ => return None,
        })
    }
}

/// Which details of the client certificate this hop's element carries (`By` and `Hash`
/// always).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Details {
    pub subject: bool,
    pub uri: bool,
    pub dns: bool,
    pub cert: bool,
    pub chain: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XfccConfig {
    pub mode: ForwardMode,
    pub details: Details,
}

/// Reads `forward_client_cert_details` and `set_current_client_cert_details` from the
/// `http_proxy` body.
pub fn decode(f: &mut Fields<'_>, cx: &mut Cx) -> Option<XfccConfig> {
    let path = f.path().to_string();
    let mode = match f.node("forward_client_cert_details") {
        Some(n) => keyword(
            n,
            &join(&path, "forward_client_cert_details"),
            cx,
            "forward_client_cert_details mode",
            &ForwardMode::NAMES,
            ForwardMode::from_name,
        ),
        None => Some(ForwardMode::Sanitize),
    };
    let details = match f.node("set_current_client_cert_details") {
        None => Some(Details::default()),
        Some(n) => {
            let dpath = join(&path, "set_current_client_cert_details");
            let mut d = Fields::new(n, &dpath, cx)?;
            let subject = d.or("subject", false, cx);
            let uri = d.or("uri", false, cx);
            let dns = d.or("dns", false, cx);
            let cert = d.or("cert", false, cx);
            let chain = d.or("chain", false, cx);
            d.finish(cx);
            Some(Details {
                subject: subject?,
                uri: uri?,
                dns: dns?,
                cert: cert?,
                chain: chain?,
            })
        }
    };
    Some(XfccConfig {
        mode: mode?,
        details: details?,
    })
}

/// What one connection does to each request's XFCC header.
#[derive(Debug, Clone, Default)]
pub struct ConnectionXfcc {
    mode: ForwardMode,
    /// The client presented a verified certificate.
    mtls: bool,
    /// This hop's element, for `append_forward` and `sanitize_set` on mTLS connections.
    element: Option<HeaderValue>,
}

impl ConnectionXfcc {
    pub fn new(config: &XfccConfig, tls: Option<&TlsInfo>) -> ConnectionXfcc {
        let tls = tls.filter(|t| t.peer.is_some() && !t.peer_chain.is_empty());
        let element = match (config.mode, tls) {
            (ForwardMode::AppendForward | ForwardMode::SanitizeSet, Some(tls)) => {
                HeaderValue::from_bytes(element(tls, &config.details).as_bytes()).ok()
            }
            _ => None,
        };
        ConnectionXfcc {
            mode: config.mode,
            mtls: tls.is_some(),
            element,
        }
    }

    /// Applies the mode to a request's headers.
    pub fn apply(&self, headers: &mut HeaderMap) {
        match self.mode {
            ForwardMode::AlwaysForwardOnly => {}
            ForwardMode::ForwardOnly if self.mtls => {}
            ForwardMode::AppendForward if self.mtls => {
                let Some(ours) = &self.element else { return };
                let mut joined: Vec<u8> = Vec::new();
                for v in headers.get_all(&XFCC) {
                    joined.extend_from_slice(v.as_bytes());
                    joined.push(b',');
                }
                if joined.is_empty() {
                    headers.insert(XFCC.clone(), ours.clone());
                    return;
                }
                joined.extend_from_slice(ours.as_bytes());
                if let Ok(v) = HeaderValue::from_bytes(&joined) {
                    headers.insert(XFCC.clone(), v);
                }
            }
            ForwardMode::SanitizeSet if self.mtls => match &self.element {
                Some(ours) => {
                    headers.insert(XFCC.clone(), ours.clone());
                }
                None => {
                    headers.remove(&XFCC);
                }
            },
            _ => {
                headers.remove(&XFCC);
            }
        }
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters.
const URL_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// This hop's XFCC element for a client with a verified certificate.
fn element(tls: &TlsInfo, details: &Details) -> String {
    let mut pairs: Vec<String> = Vec::new();
    if let Some(by) = &tls.local_uri_san {
        pairs.push(format!("By={}", escape(by)));
    }
    let Some(leaf) = tls.peer_chain.first() else {
        return String::new();
    };
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf.as_ref());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    pairs.push(format!("Hash={hex}"));
    if details.cert {
        pairs.push(format!("Cert=\"{}\"", url_pem(&[leaf.as_ref()])));
    }
    if details.chain {
        let chain: Vec<&[u8]> = tls.peer_chain.iter().map(|c| c.as_ref()).collect();
        pairs.push(format!("Chain=\"{}\"", url_pem(&chain)));
    }
    let Some(peer) = &tls.peer else {
        return pairs.join(";");
    };
    if details.subject {
        pairs.push(format!("Subject=\"{}\"", quote_inner(&peer.subject)));
    }
    if details.uri {
        let uri = peer.uri_sans.first().map(String::as_str).unwrap_or("");
        pairs.push(format!("URI={}", escape(uri)));
    }
    if details.dns {
        for dns in &peer.dns_sans {
            pairs.push(format!("DNS={}", escape(dns)));
        }
    }
    pairs.join(";")
}

/// PEM blocks of the certificates, URL-encoded.
fn url_pem(certs: &[&[u8]]) -> String {
    let mut pem = String::new();
    for der in certs {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    utf8_percent_encode(&pem, URL_ENCODE).to_string()
}

/// A value that holds a separator (`,` `;` `=`) or a quote is quoted, as Envoy's format
/// requires.
fn escape(value: &str) -> String {
    if value.contains([',', ';', '=', '"']) {
        format!("\"{}\"", quote_inner(value))
    } else {
        value.to_string()
    }
}

fn quote_inner(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn conn(mode: ForwardMode, mtls: bool) -> ConnectionXfcc {
        ConnectionXfcc {
            mode,
            mtls,
            element: mtls.then(|| HeaderValue::from_static("Hash=ab;URI=spiffe://x")),
        }
    }

    fn apply(c: &ConnectionXfcc, incoming: Option<&'static str>) -> Option<String> {
        let mut h = HeaderMap::new();
        if let Some(v) = incoming {
            h.insert(XFCC.clone(), HeaderValue::from_static(v));
        }
        c.apply(&mut h);
        h.get(&XFCC).map(|v| v.to_str().unwrap().to_string())
    }

    #[test]
    fn modes() {
        use ForwardMode::*;
        let forged = Some("By=evil");
        for mtls in [false, true] {
            assert_eq!(apply(&conn(Sanitize, mtls), forged), None);
            assert_eq!(
                apply(&conn(AlwaysForwardOnly, mtls), forged).as_deref(),
                forged
            );
        }
        assert_eq!(apply(&conn(ForwardOnly, false), forged), None);
        assert_eq!(apply(&conn(ForwardOnly, true), forged).as_deref(), forged);
        assert_eq!(apply(&conn(AppendForward, false), forged), None);
        assert_eq!(
            apply(&conn(AppendForward, true), forged).as_deref(),
            Some("By=evil,Hash=ab;URI=spiffe://x")
        );
        assert_eq!(
            apply(&conn(AppendForward, true), None).as_deref(),
            Some("Hash=ab;URI=spiffe://x")
        );
        assert_eq!(apply(&conn(SanitizeSet, false), forged), None);
        assert_eq!(
            apply(&conn(SanitizeSet, true), forged).as_deref(),
            Some("Hash=ab;URI=spiffe://x")
        );
    }

    #[test]
    fn values_with_separators_are_quoted() {
        assert_eq!(escape("spiffe://a/b"), "spiffe://a/b");
        assert_eq!(escape("a;b"), "\"a;b\"");
        assert_eq!(escape("a\"b"), "\"a\\\"b\"");
    }

    #[test]
    fn pem_is_url_encoded() {
        let pem = url_pem(&[b"\x00\x01"]);
        assert!(
            pem.starts_with("-----BEGIN%20CERTIFICATE-----%0AAAE%3D%0A"),
            "{pem}"
        );
        assert!(pem.ends_with("-----END%20CERTIFICATE-----%0A"), "{pem}");
    }
}
