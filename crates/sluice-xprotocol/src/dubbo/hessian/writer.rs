//! The few Hessian values Sluice writes: strings, null, small ints and string maps.

use bytes::{BufMut, BytesMut};

use super::string::{char_shape, push_surrogate_pair, supplementary};
use super::Error;

/// Opens an untyped map (a Java `HashMap` on the other side); close it with [`MAP_END`].
pub const UNTYPED_MAP: u8 = b'H';
pub const MAP_END: u8 = b'Z';

/// The most UTF-16 units one chunk carries (Java's writer uses the same).
const CHUNK_UNITS: usize = 0x8000;

pub fn write_null(dst: &mut BytesMut) {
    dst.put_u8(b'N');
}

/// An int in its shortest encoding.
pub fn write_int(dst: &mut BytesMut, v: i32) {
    match v {
        -0x10..=0x2f => dst.put_u8((0x90 + v) as u8),
        -0x800..=0x7ff => dst.put_slice(&[(0xc8 + (v >> 8)) as u8, v as u8]),
        -0x4_0000..=0x3_ffff => dst.put_slice(&[(0xd4 + (v >> 16)) as u8, (v >> 8) as u8, v as u8]),
        _ => {
            dst.put_u8(b'I');
            dst.put_i32(v);
        }
    }
}

/// Writes `s` (UTF-8) as a Hessian string: characters outside the BMP become surrogate pairs,
/// and strings over [`CHUNK_UNITS`] go out in chunks that never split a pair. Bytes that are
/// not characters by the reader's rule ([`char_shape`]) are an error, so whatever is written
/// reads back as the same bytes.
pub fn write_string(dst: &mut BytesMut, s: &[u8]) -> Result<(), Error> {
    let converted;
    let cesu: &[u8] = if s.iter().any(|&b| b >= 0xf0) {
        converted = to_cesu(s)?;
        &converted
    } else {
        s
    };
    // Every character is now 1 to 3 bytes and one unit; find the chunk boundaries.
    let mut start = 0;
    let mut units = 0;
    let mut i = 0;
    while let Some(&lead) = cesu.get(i) {
        let (len, _) = char_shape(lead)?;
        if i + len > cesu.len() {
            return Err(Error::Malformed("truncated UTF-8 character"));
        }
        let high_surrogate = lead == 0xed && cesu.get(i + 1).is_some_and(|b| b & 0xf0 == 0xa0);
        // A chunk is full, or would end between the two halves of a pair: close it here.
        if units == CHUNK_UNITS || (units == CHUNK_UNITS - 1 && high_surrogate) {
            put_chunk(dst, b'R', units, cesu.get(start..i).unwrap_or_default());
            start = i;
            units = 0;
        }
        units += 1;
        i += len;
    }
    let last = cesu.get(start..).unwrap_or_default();
    match units {
        0..=0x1f => dst.put_u8(units as u8),
        0x20..=0x3ff => dst.put_slice(&[0x30 + (units >> 8) as u8, units as u8]),
        _ => {
            dst.put_u8(b'S');
            dst.put_u16(units as u16);
        }
    }
    dst.put_slice(last);
    Ok(())
}

fn put_chunk(dst: &mut BytesMut, tag: u8, units: usize, bytes: &[u8]) {
    dst.put_u8(tag);
    dst.put_u16(units as u16);
    dst.put_slice(bytes);
}

/// `s` with each 4-byte character replaced by its surrogate pair.
fn to_cesu(s: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(s.len() + s.len() / 2);
    let mut i = 0;
    while let Some(&lead) = s.get(i) {
        let (len, _) = char_shape(lead)?;
        let ch = s
            .get(i..i + len)
            .ok_or(Error::Malformed("truncated UTF-8 character"))?;
        if len == 4 {
            let cp = supplementary(ch).ok_or(Error::Malformed("bad 4-byte UTF-8 character"))?;
            push_surrogate_pair(&mut out, cp);
        } else {
            out.extend_from_slice(ch);
        }
        i += len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::{Reader, Value};
    use super::*;

    fn roundtrip(s: &[u8]) -> Bytes {
        let mut b = BytesMut::new();
        write_string(&mut b, s).unwrap();
        let b = b.freeze();
        let mut r = Reader::new(&b);
        let Value::Str(got) = r.read_value(0).unwrap() else {
            panic!("not a string")
        };
        assert!(r.is_at_end());
        got
    }

    #[test]
    fn strings_round_trip_in_every_size() {
        for s in [
            String::new(),
            "a".into(),
            "x".repeat(31),
            "x".repeat(32),
            "é".repeat(1023),
            "y".repeat(1024),
            "z".repeat(0x8000),
            "w".repeat(0x8001),
            "héllo-世界-😀".into(),
            // A pair that would straddle the first chunk's end.
            format!("{}😀tail", "a".repeat(0x7fff)),
            "😀".repeat(40_000),
        ] {
            assert_eq!(roundtrip(s.as_bytes()), s.as_bytes(), "len {}", s.len());
        }
    }

    #[test]
    fn short_forms_match_java() {
        let mut b = BytesMut::new();
        write_string(&mut b, b"hi").unwrap();
        assert_eq!(&b[..], b"\x02hi");
        b.clear();
        write_string(&mut b, "😀".as_bytes()).unwrap();
        assert_eq!(&b[..], &[0x02, 0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]);
        b.clear();
        write_string(&mut b, &[b'x'; 40]).unwrap();
        assert_eq!(&b[..2], &[0x30, 40]);
        b.clear();
        for (v, want) in [
            (0, &[0x90][..]),
            (-16, &[0x80]),
            (47, &[0xbf]),
            (48, &[0xc8, 0x30]),
            (-2048, &[0xc0, 0x00]),
            (2048, &[0xd4, 0x08, 0x00]),
            (i32::MAX, &[b'I', 0x7f, 0xff, 0xff, 0xff]),
        ] {
            b.clear();
            write_int(&mut b, v);
            assert_eq!(&b[..], want, "{v}");
        }
    }

    #[test]
    fn non_utf8_is_refused() {
        let mut b = BytesMut::new();
        assert!(write_string(&mut b, b"\xff").is_err());
        assert!(write_string(&mut b, b"\xc3").is_err());
        assert!(write_string(&mut b, b"\xf0\x80\x80\x80").is_err());
    }
}
