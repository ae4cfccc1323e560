//! Reads a SOFARPC request's method name from its Hessian body, for clients that do not put it
//! in the header map (sofa-rpc-node's hessian2 requests carry only `service` there).
//!
//! Best effort and bounded: it reads the `SofaRequest` class definition, then the instance's
//! fields up to `methodName`, skipping the simple values (null, booleans, numbers, strings,
//! lists and maps of them) that may come before it, and gives up (`None`) on anything else.
//! It never allocates per value and never recurses deeper than `MAX_DEPTH`.

use bytes::Bytes;

use super::SOFA_REQUEST;
use crate::bolt::cursor::Cursor;

/// How deeply lists and maps may nest before a value is skipped: far past anything a request
/// header field holds, and a bound on the recursion for hostile bodies.
const MAX_DEPTH: usize = 8;
/// More fields than a `SofaRequest` has: a larger count is not one.
const MAX_FIELDS: i32 = 64;

/// The `methodName` field of the `SofaRequest` at the front of `body`, as a slice of it.
pub fn method_name(body: &Bytes) -> Option<Bytes> {
    let mut c = Cursor::new(body);
    if c.u8()? != b'O' {
        return None;
    }
    let type_len = usize::try_from(read_int(&mut c)?).ok()?;
    if c.take(type_len)? != SOFA_REQUEST.as_bytes() {
        return None;
    }
    let fields = read_int(&mut c)?;
    if !(0..=MAX_FIELDS).contains(&fields) {
        return None;
    }
    let mut position = None;
    for i in 0..fields {
        let (start, end) = read_string(&mut c)??;
        if body.get(start..end)? == b"methodName" && position.is_none() {
            position = Some(i);
        }
    }
    let position = position?;
    if c.u8()? != b'o' || read_int(&mut c)? != 0 {
        return None;
    }
    for _ in 0..position {
        skip_value(&mut c, 0)?;
    }
    let (start, end) = read_string(&mut c)??;
    Some(body.slice(start..end))
}

/// An int in any of its forms (the leading byte says which).
fn read_int(c: &mut Cursor<'_>) -> Option<i32> {
    let b = c.u8()?;
    Some(match b {
        0x80..=0xbf => i32::from(b) - 0x90,
        0xc0..=0xcf => ((i32::from(b) - 0xc8) << 8) | i32::from(c.u8()?),
        0xd0..=0xd7 => ((i32::from(b) - 0xd4) << 16) | i32::from(c.u16()?),
        b'I' => c.u32()? as i32,
        _ => return None,
    })
}

/// A one-chunk string's byte span: `Some(None)` for null, `None` for anything else (including
/// chunked strings, which a method name never is).
fn read_string(c: &mut Cursor<'_>) -> Option<Option<(usize, usize)>> {
    let units = match c.u8()? {
        b'N' => return Some(None),
        b @ 0x00..=0x1f => usize::from(b),
        b'S' => usize::from(c.u16()?),
        _ => return None,
    };
    let start = c.position();
    skip_chars(c, units)?;
    Some(Some((start, c.position())))
}

/// Skips `units` UTF-16 units of Hessian's UTF-8 (a 4-byte sequence is two units).
fn skip_chars(c: &mut Cursor<'_>, units: usize) -> Option<()> {
    let mut left = units;
    while left > 0 {
        let (width, counts) = match c.peek()? {
            0x00..=0x7f => (1, 1),
            0xc0..=0xdf => (2, 1),
            0xe0..=0xef => (3, 1),
            0xf0..=0xf7 => (4, 2),
            _ => return None,
        };
        c.take(width)?;
        left = left.checked_sub(counts)?;
    }
    Some(())
}

/// Skips one value of the kinds a request's leading fields hold; `None` for any other kind.
fn skip_value(c: &mut Cursor<'_>, depth: usize) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    let b = c.peek()?;
    let extra = match b {
        b'N' | b'T' | b'F' => 0,
        // ints
        0x80..=0xbf => 0,
        0xc0..=0xcf => 1,
        0xd0..=0xd7 => 2,
        b'I' => 4,
        // longs
        0xd8..=0xef => 0,
        0xf0..=0xff => 1,
        0x38..=0x3f => 2,
        0x77 => 4,
        b'L' => 8,
        // doubles and dates
        0x67 | 0x68 => 0,
        0x69 => 1,
        0x6a => 2,
        0x6b => 4,
        b'D' | b'd' => 8,
        // strings and binary, possibly chunked
        0x00..=0x1f | b'S' | b's' => return skip_string(c),
        0x20..=0x2f => usize::from(b - 0x20),
        b'B' | b'b' => return skip_binary(c),
        // references to earlier values
        0x4a => 1,
        0x4b => 2,
        b'R' => 4,
        b'V' => return skip_list(c, depth),
        b'M' => return skip_map(c, depth),
        _ => return None,
    };
    c.take(1 + extra)?;
    Some(())
}

fn skip_string(c: &mut Cursor<'_>) -> Option<()> {
    loop {
        let (units, last) = match c.u8()? {
            b @ 0x00..=0x1f => (usize::from(b), true),
            b'S' => (usize::from(c.u16()?), true),
            b's' => (usize::from(c.u16()?), false),
            _ => return None,
        };
        skip_chars(c, units)?;
        if last {
            return Some(());
        }
    }
}

fn skip_binary(c: &mut Cursor<'_>) -> Option<()> {
    loop {
        let b = c.u8()?;
        if !matches!(b, b'B' | b'b') {
            return None;
        }
        let len = c.u16()?;
        c.take(usize::from(len))?;
        if b == b'B' {
            return Some(());
        }
    }
}

/// The optional `'t'` type of a list or map.
fn skip_type(c: &mut Cursor<'_>) -> Option<()> {
    if c.peek()? == b't' {
        c.u8()?;
        let len = c.u16()?;
        c.take(usize::from(len))?;
    }
    Some(())
}

fn skip_list(c: &mut Cursor<'_>, depth: usize) -> Option<()> {
    c.u8()?; // 'V'
    skip_type(c)?;
    match c.peek()? {
        b'n' => {
            c.take(2)?;
        }
        b'l' => {
            c.take(5)?;
        }
        _ => {}
    }
    while c.peek()? != b'z' {
        skip_value(c, depth + 1)?;
    }
    c.u8()?;
    Some(())
}

fn skip_map(c: &mut Cursor<'_>, depth: usize) -> Option<()> {
    c.u8()?; // 'M'
    skip_type(c)?;
    while c.peek()? != b'z' {
        skip_value(c, depth + 1)?;
        skip_value(c, depth + 1)?;
    }
    c.u8()?;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body sofa-rpc-node wrote for `echo("hi-0")` (see the codec's test vectors), with
    /// `methodName` first.
    const NODE_BODY: &[u8] = b"O\xbccom.alipay.sofa.rpc.core.request.SofaRequest\x95\nmethodName\rmethodArgSigs\x17targetServiceUniqueName\rtargetAppName\x0crequestPropso\x90\x04echoVt\x00\x11[java.lang.Stringn\x01\x10java.lang.Stringz\x14com.example.Echo:1.0NM\x07service\x14com.example.Echo:1.0z\x04hi-0";

    #[test]
    fn reads_the_method_of_a_sofa_rpc_node_request() {
        let body = Bytes::from_static(NODE_BODY);
        assert_eq!(method_name(&body).as_deref(), Some(&b"echo"[..]));
    }

    #[test]
    fn skips_simple_fields_before_the_method() {
        // Field order as a Java writer might choose: the service, the argument types, a map.
        let mut body = b"O\xbccom.alipay.sofa.rpc.core.request.SofaRequest\x94\x17targetServiceUniqueName\rmethodArgSigs\x0crequestProps\nmethodNameo\x90".to_vec();
        body.extend_from_slice(b"\x14com.example.Echo:1.0");
        body.extend_from_slice(b"Vt\x00\x11[java.lang.Stringn\x01\x10java.lang.Stringz");
        body.extend_from_slice(b"M\x01a\xc8\x34\x01bT\x01c\x01\x02z");
        body.extend_from_slice(b"S\x00\x05slow\xc3\xa9");
        let body = Bytes::from(body);
        assert_eq!(method_name(&body).as_deref(), Some("slowé".as_bytes()));
    }

    #[test]
    fn gives_up_on_anything_else() {
        for bad in [
            &b""[..],
            b"O",
            b"O\x93abc\x91\nmethodNameo\x90\x04echo",
            b"O\xbccom.alipay.sofa.rpc.core.request.SofaRequest\x91\x05othero\x90\x04echo",
            b"O\xbccom.alipay.sofa.rpc.core.request.SofaRequest\x92\x01a\nmethodNameo\x90o\x90\x04echo",
            b"O\xbccom.alipay.sofa.rpc.core.request.SofaRequest\x91\nmethodNameo\x90\x09echo",
            b"O\xbccom.alipay.sofa.rpc.core.request.SofaRequest\xd7\xff\xff",
        ] {
            assert_eq!(method_name(&Bytes::copy_from_slice(bad)), None, "{bad:?}");
        }
        // Deeply nested lists stop at the depth bound instead of recursing on.
        let mut deep =
            b"O\xbccom.alipay.sofa.rpc.core.request.SofaRequest\x92\x01a\nmethodNameo\x90".to_vec();
        deep.extend(std::iter::repeat_n(b'V', 10_000));
        assert_eq!(method_name(&Bytes::from(deep)), None);
    }
}
