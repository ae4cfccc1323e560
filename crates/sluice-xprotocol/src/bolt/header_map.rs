//! Bolt's header map: the "header" part of a frame, a flat run of key/value pairs, each a
//! big-endian i32 length followed by that many UTF-8 bytes (SOFARPC's SimpleMapSerializer).
//!
//! A negative length stands for a null string. SOFARPC's Java decoder drops every pair with a
//! null key or value, so this one does too: such pairs never reach [`Headers`], and vanish
//! from the wire only if a filter changes the headers (an unchanged frame is forwarded as it
//! came). Keys and values are slices of the frame, not copies.

use bytes::{BufMut, Bytes, BytesMut};

use super::cursor::Cursor;
use crate::headers::Headers;

/// Why a header map does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// A length runs past the end of the map.
    Truncated,
}

/// Decodes the header map `raw` (a slice of the frame) into pairs that share its memory.
pub fn decode(raw: &Bytes) -> Result<Headers, MapError> {
    let mut headers = Headers::with_capacity(8);
    let mut c = Cursor::new(raw);
    while c.remaining() > 0 {
        let key = read_string(&mut c, raw)?;
        let value = read_string(&mut c, raw)?;
        if let (Some(key), Some(value)) = (key, value) {
            headers.push(key, value);
        }
    }
    Ok(headers)
}

/// One length-prefixed string; `None` for a null one (negative length).
fn read_string(c: &mut Cursor<'_>, raw: &Bytes) -> Result<Option<Bytes>, MapError> {
    let len = c.u32().ok_or(MapError::Truncated)? as i32;
    let Ok(len) = usize::try_from(len) else {
        return Ok(None);
    };
    let start = c.position();
    c.take(len).ok_or(MapError::Truncated)?;
    Ok(Some(raw.slice(start..start + len)))
}

/// The encoded length of `headers`; `None` past `usize` (never, in practice).
pub fn encoded_len(headers: &Headers) -> Option<usize> {
    headers.iter().try_fold(0usize, |n, (k, v)| {
        n.checked_add(8)?.checked_add(k.len())?.checked_add(v.len())
    })
}

/// Appends `headers` to `dst`. Callers check `encoded_len` first: each string's length must
/// fit an i32, which any map within the i16 header length does.
pub fn encode(headers: &Headers, dst: &mut BytesMut) {
    for (k, v) in headers.iter() {
        dst.put_u32(k.len() as u32);
        dst.put_slice(k);
        dst.put_u32(v.len() as u32);
        dst.put_slice(v);
    }
}
