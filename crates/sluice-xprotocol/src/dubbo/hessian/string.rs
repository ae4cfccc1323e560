//! Hessian's string encoding: lengths in UTF-16 units, characters as (CESU-8 flavoured) UTF-8.
//!
//! One rule decides where a character starts and how many units it counts, and both the reader
//! and the writer use it, so whatever the reader accepts the writer writes back unchanged:
//! a lead byte below 0x80 is a 1-byte character, 0xc0-0xdf starts 2 bytes, 0xe0-0xef 3 bytes
//! (continuation bytes are not checked, as Java's reader does not check them), and 0xf0-0xf7
//! starts a 4-byte character outside the BMP, which counts two units and must be well formed.

use super::Error;

/// Bytes and UTF-16 units of the character starting with `lead`.
pub fn char_shape(lead: u8) -> Result<(usize, usize), Error> {
    match lead {
        0x00..=0x7f => Ok((1, 1)),
        0xc0..=0xdf => Ok((2, 1)),
        0xe0..=0xef => Ok((3, 1)),
        0xf0..=0xf7 => Ok((4, 2)),
        _ => Err(Error::Malformed("bad UTF-8 lead byte in a string")),
    }
}

/// The code point of a 4-byte sequence, if it is well formed and outside the BMP.
pub fn supplementary(b: &[u8]) -> Option<u32> {
    let [b0, b1, b2, b3] = *b else {
        return None;
    };
    if [b1, b2, b3].iter().any(|&c| c & 0xc0 != 0x80) {
        return None;
    }
    let cp = (u32::from(b0 & 0x07) << 18)
        | (u32::from(b1 & 0x3f) << 12)
        | (u32::from(b2 & 0x3f) << 6)
        | u32::from(b3 & 0x3f);
    (0x1_0000..=0x10_ffff).contains(&cp).then_some(cp)
}

/// The UTF-16 unit a well-formed 3-byte sequence encodes, if it is a surrogate.
fn surrogate(b: &[u8]) -> Option<u32> {
    let [0xed, b1, b2] = *b else {
        return None;
    };
    if b1 & 0xe0 != 0xa0 || b2 & 0xc0 != 0x80 {
        return None;
    }
    Some(0xd000 | (u32::from(b1 & 0x3f) << 6) | u32::from(b2 & 0x3f))
}

/// `b` with every surrogate pair (two 3-byte characters, as Java writes a character outside
/// the BMP) replaced by the 4-byte UTF-8 of its code point; `None` when there is none, so the
/// common case borrows instead of copying. `b` must be whole characters (as the reader yields).
pub fn cesu_to_utf8(b: &[u8]) -> Option<Vec<u8>> {
    if !b.contains(&0xed) {
        return None;
    }
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    while let Some(&lead) = b.get(i) {
        let len = char_shape(lead).map_or(1, |(len, _)| len);
        let pair = (len == 3)
            .then(|| {
                let hi = surrogate(b.get(i..i + 3)?)?;
                let lo = surrogate(b.get(i + 3..i + 6)?)?;
                ((0xd800..0xdc00).contains(&hi) && (0xdc00..0xe000).contains(&lo))
                    .then(|| 0x1_0000 + ((hi - 0xd800) << 10) + (lo - 0xdc00))
            })
            .flatten();
        match pair {
            Some(cp) => {
                let out = out.get_or_insert_with(|| {
                    let mut v = Vec::with_capacity(b.len());
                    v.extend_from_slice(b.get(..i).unwrap_or_default());
                    v
                });
                push_utf8_4(out, cp);
                i += 6;
            }
            None => {
                let end = (i + len).min(b.len());
                if let Some(out) = out.as_mut() {
                    out.extend_from_slice(b.get(i..end).unwrap_or_default());
                }
                i = end;
            }
        }
    }
    out
}

fn push_utf8_4(out: &mut Vec<u8>, cp: u32) {
    out.extend_from_slice(&[
        0xf0 | (cp >> 18) as u8,
        0x80 | ((cp >> 12) & 0x3f) as u8,
        0x80 | ((cp >> 6) & 0x3f) as u8,
        0x80 | (cp & 0x3f) as u8,
    ]);
}

/// Appends `cp` (outside the BMP) as two 3-byte surrogates, the way Java's Hessian expects it.
pub fn push_surrogate_pair(out: &mut Vec<u8>, cp: u32) {
    let v = cp - 0x1_0000;
    for unit in [0xd800 | (v >> 10), 0xdc00 | (v & 0x3ff)] {
        out.extend_from_slice(&[
            0xe0 | (unit >> 12) as u8,
            0x80 | ((unit >> 6) & 0x3f) as u8,
            0x80 | (unit & 0x3f) as u8,
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_become_utf8_and_back() {
        let emoji = "😀".as_bytes();
        let mut cesu = b"a".to_vec();
        push_surrogate_pair(&mut cesu, '😀' as u32);
        cesu.push(b'b');
        assert_eq!(
            cesu,
            [b"a".as_slice(), &[0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80], b"b"].concat()
        );
        assert_eq!(cesu_to_utf8(&cesu).unwrap(), [b"a", emoji, b"b"].concat());
        assert_eq!(cesu_to_utf8("héllo".as_bytes()), None);
        // A lone surrogate stays as it is.
        assert_eq!(cesu_to_utf8(&[0xed, 0xa0, 0xbd, b'x']), None);
        assert_eq!(supplementary(emoji), Some('😀' as u32));
        assert_eq!(supplementary(&[0xf0, 0x80, 0x80, 0x80]), None);
    }
}
