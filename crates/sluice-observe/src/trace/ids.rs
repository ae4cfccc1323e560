//! Trace and span ids: random ones for new spans, and the lowercase hex every header format
//! writes them in.

/// A new span id: random and never all zeros (an all-zero id is invalid in every format).
pub fn new_span_id() -> [u8; 8] {
    loop {
        let v = fastrand::u64(..);
        if v != 0 {
            return v.to_be_bytes();
        }
    }
}

/// A new 128-bit trace id, random and never all zeros.
pub fn new_trace_id() -> [u8; 16] {
    loop {
        let v = fastrand::u128(..);
        if v != 0 {
            return v.to_be_bytes();
        }
    }
}

/// `N` bytes from exactly `2N` lowercase hex digits; `None` for anything else. Uppercase is
/// refused, as W3C Trace Context and B3 both write lowercase only.
pub fn parse_hex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `bytes` as lowercase hex.
pub fn push_hex(bytes: &[u8], out: &mut Vec<u8>) {
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0xf)]);
    }
}

/// `bytes` as a lowercase hex string.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    push_hex(bytes, &mut out);
    // Hex digits are ASCII.
    String::from_utf8(out).unwrap_or_default()
}

/// A 64-bit B3 trace id (16 digits) widened to 128 bits the way B3 and W3C agree on: the
/// high half is zero.
pub fn widen(id: [u8; 8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[8..].copy_from_slice(&id);
    out
}

/// Whether a trace id fits in 64 bits (its high half is zero), so B3 writes it in 16 digits
/// as it came.
pub fn is_64_bit(id: &[u8; 16]) -> bool {
    id[..8].iter().all(|b| *b == 0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_bad_digits() {
        let id: [u8; 8] = parse_hex(b"00f067aa0ba902b7").unwrap();
        assert_eq!(hex(&id), "00f067aa0ba902b7");
        assert!(parse_hex::<8>(b"00F067AA0BA902B7").is_none());
        assert!(parse_hex::<8>(b"00f067aa0ba902b").is_none());
        assert!(parse_hex::<8>(b"00f067aa0ba902bz").is_none());
        assert!(parse_hex::<8>("00f067aa0ba902é".as_bytes()).is_none());
    }

    #[test]
    fn new_ids_are_never_zero() {
        for _ in 0..100 {
            assert_ne!(new_span_id(), [0; 8]);
            assert_ne!(new_trace_id(), [0; 16]);
        }
        assert!(is_64_bit(&widen([1; 8])));
        assert!(!is_64_bit(&[1; 16]));
    }
}
