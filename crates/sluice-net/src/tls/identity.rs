//! The names in a certificate: the peer identity of an mTLS client, and the server names a
//! configured certificate answers for.

use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// Who a certificate says its holder is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerIdentity {
    /// URI SANs, such as a SPIFFE ID `spiffe://cluster.local/ns/default/sa/web`.
    pub uri_sans: Vec<String>,
    /// DNS SANs.
    pub dns_sans: Vec<String>,
    /// The subject, as an RFC 4514 string (`CN=web,O=example`).
    pub subject: String,
    /// The subject's common name.
    pub common_name: Option<String>,
}

impl PeerIdentity {
    /// Reads the names of a DER certificate; an unparsable one gives an empty identity (the
    /// handshake already verified it, so this does not happen with client certificates).
    pub fn from_der(der: &[u8]) -> PeerIdentity {
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            return PeerIdentity::default();
        };
        let mut id = PeerIdentity {
            subject: cert.subject().to_string(),
            ..PeerIdentity::default()
        };
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::URI(u) => id.uri_sans.push((*u).to_string()),
                    GeneralName::DNSName(d) => id.dns_sans.push((*d).to_string()),
                    _ => {}
                }
            }
        }
        id.common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string);
        id
    }

    /// The SPIFFE ID, if the certificate has one.
    pub fn spiffe_id(&self) -> Option<&str> {
        self.uri_sans
            .iter()
            .map(String::as_str)
            .find(|u| u.starts_with("spiffe://"))
    }

    /// The names a server certificate answers for: its DNS SANs, else (old-style
    /// certificates) its CN.
    pub fn server_names(self) -> Vec<String> {
        if self.dns_sans.is_empty() {
            self.common_name.into_iter().collect()
        } else {
            self.dns_sans
        }
    }
}
