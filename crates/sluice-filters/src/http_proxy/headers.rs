//! Header handling every proxied request and response gets (RFC 9110 section 7.6).

use std::net::IpAddr;

use bytes::Bytes;
use http::header::{
    Entry, HeaderMap, HeaderName, HeaderValue, CONNECTION, PROXY_AUTHENTICATE, TE, TRAILER,
    TRANSFER_ENCODING, UPGRADE,
};

pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The number of this upstream attempt (requests) or of attempts made (responses), when
/// the virtual host asks for it.
pub static X_ENVOY_ATTEMPT_COUNT: HeaderName = HeaderName::from_static("x-envoy-attempt-count");

/// Headers that describe one hop's connection, never forwarded (`connection` first).
static HOP_BY_HOP: [HeaderName; 7] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    PROXY_AUTHENTICATE,
    TRANSFER_ENCODING,
    UPGRADE,
    TRAILER,
];

/// The position of a (lowercase) name in [`HOP_BY_HOP`]; a `match` on the string compiles to
/// a length switch and one comparison, cheaper than comparing `HeaderName`s one by one.
fn hop_by_hop_index(name: &str) -> Option<usize> {
    match name {
        "connection" => Some(0),
        "keep-alive" => Some(1),
        "proxy-connection" => Some(2),
        "proxy-authenticate" => Some(3),
        "transfer-encoding" => Some(4),
        "upgrade" => Some(5),
        "trailer" => Some(6),
        _ => None,
    }
}

/// Removes hop-by-hop headers, including those the `Connection` header names. `te` survives
/// only as `te: trailers` (which gRPC needs end to end).
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none of these, or only `connection: keep-alive`: one pass over the
    // few names present, then lookups only for what was found.
    let mut found = [false; HOP_BY_HOP.len()];
    let mut te = false;
    for name in headers.keys() {
        match name.as_str() {
            "te" => te = true,
            other => {
                if let Some(i) = hop_by_hop_index(other) {
                    found[i] = true;
                }
            }
        }
    }
    if found[0] {
        let named: Vec<HeaderName> = headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            // The usual tokens name no header (`keep-alive` goes anyway, below).
            .filter(|t| !t.eq_ignore_ascii_case("keep-alive") && !t.eq_ignore_ascii_case("close"))
            .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
            .collect();
        for name in named {
            te |= name == TE;
            headers.remove(name);
        }
    }
    for (name, present) in HOP_BY_HOP.iter().zip(found) {
        if present {
            headers.remove(name);
        }
    }
    if te {
        let keep_te = headers
            .get_all(TE)
            .iter()
            .any(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
        headers.remove(TE);
        if keep_te {
            headers.insert(TE, HeaderValue::from_static("trailers"));
        }
    }
}

/// The client address as a header value, made once per connection and shared (cloning it is
/// a reference count, not a copy).
pub fn client_ip_value(client: Option<IpAddr>) -> Option<HeaderValue> {
    let ip = client?.to_string();
    HeaderValue::from_maybe_shared(Bytes::from_owner(ip)).ok()
}

/// Appends the client address to `x-forwarded-for` and sets `x-forwarded-proto`.
pub fn add_forwarded(headers: &mut HeaderMap, client_ip: Option<&HeaderValue>, https: bool) {
    if let Some(ip) = client_ip {
        // One lookup (the entry) instead of a get and an insert: every request goes through.
        match headers.entry(&X_FORWARDED_FOR) {
            Entry::Occupied(mut e) => {
                let existing = e.get().to_str().unwrap_or_default().trim();
                if existing.is_empty() {
                    e.insert(ip.clone());
                } else {
                    let value = format!("{existing}, {}", ip.to_str().unwrap_or_default());
                    if let Ok(v) = HeaderValue::from_str(&value) {
                        e.insert(v);
                    }
                }
            }
            Entry::Vacant(e) => {
                e.insert(ip.clone());
            }
        }
    }
    let proto = if https { "https" } else { "http" };
    headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static(proto));
}

/// The request's `x-request-id`, generated (128 random bits, hex) when the client sent none.
pub fn ensure_request_id(headers: &mut HeaderMap) -> HeaderValue {
    let entry = headers.entry(&X_REQUEST_ID);
    if let Entry::Occupied(e) = &entry {
        if !e.get().is_empty() {
            return e.get().clone();
        }
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [0u8; 32];
    // A byte at a time (two digits), not a 128-bit shift per digit.
    for (pair, byte) in id.chunks_exact_mut(2).zip(fastrand::u128(..).to_be_bytes()) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0xf)];
    }
    // One allocation, shared by the request and the response copy.
    let value = HeaderValue::from_maybe_shared(Bytes::from_owner(id))
        .unwrap_or(HeaderValue::from_static("0"));
    match entry {
        Entry::Occupied(mut e) => {
            e.insert(value.clone());
        }
        Entry::Vacant(e) => {
            e.insert(value.clone());
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("keep-alive, x-drop"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-drop", HeaderValue::from_static("1"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        remove_hop_by_hop(&mut h);
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["x-keep", "te"]);
    }

    #[test]
    fn te_other_than_trailers_is_dropped() {
        let mut h = HeaderMap::new();
        h.insert("te", HeaderValue::from_static("gzip"));
        remove_hop_by_hop(&mut h);
        assert!(h.get("te").is_none());
    }

    #[test]
    fn the_index_matches_the_list() {
        for (i, name) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_by_hop_index(name.as_str()), Some(i));
        }
        assert_eq!(hop_by_hop_index("te"), None);
    }

    #[test]
    fn forwarded_for_appends() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        let ip = client_ip_value(Some("127.0.0.1".parse().unwrap()));
        add_forwarded(&mut h, ip.as_ref(), false);
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        let mut h = HeaderMap::new();
        add_forwarded(&mut h, ip.as_ref(), false);
        assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    }

    #[test]
    fn request_ids_are_kept_or_made() {
        let mut h = HeaderMap::new();
        let id = ensure_request_id(&mut h);
        assert_eq!(id.len(), 32);
        assert!(id.to_str().unwrap().bytes().all(|b| b.is_ascii_hexdigit()));
        let mut h = HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("abc"));
        assert_eq!(ensure_request_id(&mut h), "abc");
    }
}
