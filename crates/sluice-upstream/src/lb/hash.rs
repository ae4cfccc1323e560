//! The hash every Sluice process computes the same way (placeholder until the hash balancers
//! land: FNV-1a).

/// A stable 64-bit hash of `bytes`.
pub fn hash_key(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
