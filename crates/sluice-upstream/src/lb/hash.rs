//! The hash that request keys and hash-balancer placement share.
//!
//! Several proxies in front of the same cluster must send the same key to the same host, so
//! the function has to be fixed across processes, builds and platforms: xxHash64 with seed 0,
//! not `std`'s `DefaultHasher` (randomly keyed per process and free to change between
//! releases).

use xxhash_rust::xxh64::xxh64;

/// The stable 64-bit hash of `bytes`: what routes put in [`super::LbContext::hash`] and what
/// `ring_hash` and `maglev` place hosts with.
pub fn hash_key(bytes: &[u8]) -> u64 {
    xxh64(bytes, 0)
}

/// The hash of a client address (its octets), for `source_ip` hash policies: HTTP routes and
/// `tcp_proxy` must agree, so a client lands on the same host through either.
pub fn hash_ip(ip: std::net::IpAddr) -> u64 {
    match ip {
        std::net::IpAddr::V4(v4) => hash_key(&v4.octets()),
        std::net::IpAddr::V6(v6) => hash_key(&v6.octets()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_xxh64_vectors() {
        // The reference values of XXH64 with seed 0: any change here moves every key.
        assert_eq!(hash_key(b""), 0xEF46_DB37_51D8_E999);
        assert_eq!(hash_key(b"a"), 0xD24E_C4F1_A98C_6E5B);
        assert_eq!(hash_key(b"abc"), 0x44BC_2CF5_AD77_0999);
    }
}
