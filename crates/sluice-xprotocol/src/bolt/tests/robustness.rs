//! No input makes the codec panic, and whatever decodes re-encodes to the same frame: the fuzz
//! target's property (fuzz/fuzz_targets/bolt_decode.rs), here on a fixed, cheap sample.

use bytes::BytesMut;

use super::vectors::*;
use super::*;

/// Decodes every frame `input` holds, re-encoding each and decoding that again.
fn check(input: &[u8]) {
    let mut buf = BytesMut::from(input);
    while let Ok(Some(frame)) = Bolt.decode(&mut buf, 1 << 16) {
        let mut out = BytesMut::new();
        Bolt.encode(&frame, &mut out)
            .expect("a decoded frame encodes");
        let again = decode_one(&out);
        assert_eq!(again.kind, frame.kind);
        assert_eq!(again.id, frame.id);
        assert_eq!(again.headers(), frame.headers());
        assert_eq!(again.body, frame.body);
        assert_eq!(
            (&again.service, &again.method),
            (&frame.service, &frame.method)
        );
        let _ = Bolt.heartbeat_reply(&frame);
        let _ = Bolt.classify(&frame);
        let _ = Bolt.local_reply(&frame, crate::protocol::LocalError::NoRoute, "x");
    }
}

#[test]
fn every_single_byte_change_of_every_vector() {
    for (_, vector) in ALL {
        let bytes = hex(vector);
        for i in 0..bytes.len() {
            for v in [0x00, 0x01, 0x7f, 0x80, 0xff, bytes[i] ^ 0x01] {
                let mut mutated = bytes.clone();
                mutated[i] = v;
                check(&mutated);
                let _ = Bolt.detect(&mutated);
            }
        }
    }
}

#[test]
fn pseudo_random_inputs() {
    // xorshift: deterministic, no dependency.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let len = (next() % 96) as usize;
        let mut input: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Mostly plausible starts, so the fuzzing reaches past the magic.
        if let Some(first) = input.first_mut() {
            *first = 1 + (*first & 1);
        }
        check(&input);
    }
}
