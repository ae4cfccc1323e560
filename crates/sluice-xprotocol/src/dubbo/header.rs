//! Dubbo's 16-byte fixed header.
//!
//! ```text
//! 0      2      3        4                   12              16
//! +------+------+--------+-------------------+---------------+------------
//! | dabb | flag | status | request id (u64)  | body len (u32)| body ...
//! +------+------+--------+-------------------+---------------+------------
//! flag: 0x80 request, 0x40 two-way (a response is expected), 0x20 event (heartbeat or
//!       another control message), low 5 bits: the body's serialization (2 = hessian2)
//! status: a response's outcome (see `status.rs`); 0 on requests
//! ```
//! All big-endian.

use bytes::{BufMut, BytesMut};

pub const LEN: usize = 16;
pub const MAGIC: [u8; 2] = [0xda, 0xbb];

pub const FLAG_REQUEST: u8 = 0x80;
pub const FLAG_TWO_WAY: u8 = 0x40;
pub const FLAG_EVENT: u8 = 0x20;
const SERIALIZATION_MASK: u8 = 0x1f;

/// The only serialization whose bodies Sluice reads (Dubbo's id for hessian2).
pub const HESSIAN2: u8 = 2;

/// Where the request id sits, for patching it in place.
pub const ID_RANGE: std::ops::Range<usize> = 4..12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    pub flag: u8,
    pub status: u8,
    pub id: u64,
    pub body_len: u32,
}

impl FixedHeader {
    /// The header at the front of `b`, if 16 bytes are there (the magic is checked apart,
    /// since it can be refused on fewer bytes).
    pub fn parse(b: &[u8]) -> Option<FixedHeader> {
        let h: &[u8; LEN] = b.get(..LEN)?.try_into().ok()?;
        let [_, _, flag, status, i0, i1, i2, i3, i4, i5, i6, i7, l0, l1, l2, l3] = *h;
        Some(FixedHeader {
            flag,
            status,
            id: u64::from_be_bytes([i0, i1, i2, i3, i4, i5, i6, i7]),
            body_len: u32::from_be_bytes([l0, l1, l2, l3]),
        })
    }

    pub fn is_request(&self) -> bool {
        self.flag & FLAG_REQUEST != 0
    }

    pub fn is_two_way(&self) -> bool {
        self.flag & FLAG_TWO_WAY != 0
    }

    pub fn is_event(&self) -> bool {
        self.flag & FLAG_EVENT != 0
    }

    pub fn serialization(&self) -> u8 {
        self.flag & SERIALIZATION_MASK
    }

    /// Whether a reply can answer this frame: a two-way request (heartbeats included).
    pub fn expects_reply(&self) -> bool {
        self.is_request() && self.is_two_way()
    }

    pub fn write(&self, dst: &mut BytesMut) {
        dst.put_slice(&MAGIC);
        dst.put_u8(self.flag);
        dst.put_u8(self.status);
        dst.put_u64(self.id);
        dst.put_u32(self.body_len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_writes_back() {
        let raw = [
            0xda, 0xbb, 0xc2, 0x00, 0x5b, 0x28, 0xf2, 0x10, 0x22, 0xca, 0x3b, 0x1d, 0, 0, 0, 0xd6,
        ];
        let h = FixedHeader::parse(&raw).unwrap();
        assert!(h.is_request() && h.is_two_way() && !h.is_event());
        assert_eq!(h.serialization(), HESSIAN2);
        assert_eq!(h.id, 0x5b28_f210_22ca_3b1d);
        assert_eq!(h.body_len, 0xd6);
        let mut b = BytesMut::new();
        h.write(&mut b);
        assert_eq!(&b[..], &raw);
        assert_eq!(FixedHeader::parse(&raw[..15]), None);
    }
}
