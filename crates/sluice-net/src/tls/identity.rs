//! The names in a certificate: the peer identity of an mTLS client, and the server names a
//! configured certificate answers for.

use x509_parser::objects::{oid2abbrev, oid_registry};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate, X509Name};

/// Who a certificate says its holder is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerIdentity {
    /// URI SANs, such as a SPIFFE ID `spiffe://cluster.local/ns/default/sa/web`.
    pub uri_sans: Vec<String>,
    /// DNS SANs.
    pub dns_sans: Vec<String>,
    /// The subject, as an RFC 4514 string, last RDN first (`CN=web,O=example`), as Envoy
    /// shows it.
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
            subject: rfc4514(cert.subject()),
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

/// A name as RFC 4514 writes it (and as Envoy shows subjects): the last RDN first, RDNs
/// joined by `,`, multi-valued RDNs by `+`, special characters escaped with `\`.
fn rfc4514(name: &X509Name<'_>) -> String {
    let mut rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            let parts: Vec<String> = rdn
                .iter()
                .map(|attr| {
                    let oid = attr.attr_type();
                    let key = oid2abbrev(oid, oid_registry())
                        .map_or_else(|_| oid.to_id_string(), str::to_string);
                    let value = attr.as_str().map_or_else(
                        |_| {
                            let hex: String =
                                attr.as_slice().iter().map(|b| format!("{b:02x}")).collect();
                            format!("#{hex}")
                        },
                        escape_value,
                    );
                    format!("{key}={value}")
                })
                .collect();
            parts.join("+")
        })
        .collect();
    rdns.reverse();
    rdns.join(",")
}

/// RFC 4514 section 2.4 escaping of an attribute value.
fn escape_value(value: &str) -> String {
    let last = value.chars().count().saturating_sub(1);
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
            || (i == 0 && matches!(c, ' ' | '#'))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        assert_eq!(escape_value("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_value(" #x "), "\\ #x\\ ");
        assert_eq!(escape_value("plain"), "plain");
    }
}
