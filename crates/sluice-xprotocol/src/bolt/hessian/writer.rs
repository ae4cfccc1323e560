//! Writes the error object a local reply carries, in SOFARPC's Hessian dialect (see the
//! parent module).

use bytes::{BufMut, Bytes, BytesMut};

use super::RPC_SERVER_EXCEPTION;

/// Messages longer than this (in UTF-16 units, as Hessian counts) are cut: a local reply's
/// message is one line, and the cap keeps every string in the one-chunk forms.
const MAX_MESSAGE: usize = 1024;

/// The body of a proxy-made error response: an `RpcServerException` whose `detailMessage` is
/// `message`, with an empty `stackTrace` and a null `cause`, the fields (and order) sofa-bolt's
/// own error responses have. sofa-rpc-node shows it as
/// `Error("com.alipay.remoting.rpc.exception.RpcServerException: <message>")`; a Java client
/// gets it as the cause of its invocation exception.
pub fn server_exception(message: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(128 + message.len());
    // The class definition, then the one instance of it (reference 0).
    out.put_u8(b'O');
    put_int(&mut out, RPC_SERVER_EXCEPTION.len() as i32);
    out.put_slice(RPC_SERVER_EXCEPTION.as_bytes());
    put_int(&mut out, 3);
    for field in ["detailMessage", "stackTrace", "cause"] {
        put_string(&mut out, field);
    }
    out.put_u8(b'o');
    put_int(&mut out, 0);
    put_string(&mut out, message);
    // An empty StackTraceElement[]: Java's Throwable must not get a null stackTrace.
    const STACK: &str = "[java.lang.StackTraceElement";
    out.put_u8(b'V');
    out.put_u8(b't');
    out.put_u16(STACK.len() as u16);
    out.put_slice(STACK.as_bytes());
    out.put_u8(b'n');
    out.put_u8(0);
    out.put_u8(b'z');
    out.put_u8(b'N');
    out.freeze()
}

/// An int in the shortest of Hessian's forms.
fn put_int(out: &mut BytesMut, v: i32) {
    match v {
        -0x10..=0x2f => out.put_u8((0x90 + v) as u8),
        -0x800..=0x7ff => {
            out.put_u8((0xc8 + (v >> 8)) as u8);
            out.put_u8(v as u8);
        }
        -0x40000..=0x3ffff => {
            out.put_u8((0xd4 + (v >> 16)) as u8);
            out.put_u16(v as u16);
        }
        _ => {
            out.put_u8(b'I');
            out.put_i32(v);
        }
    }
}

/// A string of at most `MAX_MESSAGE` characters: its length counts UTF-16 units, so characters
/// outside the BMP (two units, and a surrogate encoding in Java's UTF-8) become `?`.
fn put_string(out: &mut BytesMut, s: &str) {
    let text: String = s
        .chars()
        .map(|c| if c.len_utf16() == 1 { c } else { '?' })
        .take(MAX_MESSAGE)
        .collect();
    let units = text.chars().count();
    if units <= 0x1f {
        out.put_u8(units as u8);
    } else {
        out.put_u8(b'S');
        out.put_u16(units as u16);
    }
    out.put_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_take_the_compact_forms() {
        let enc = |v| {
            let mut b = BytesMut::new();
            put_int(&mut b, v);
            b.to_vec()
        };
        assert_eq!(enc(0), [0x90]);
        assert_eq!(enc(52), [0xc8, 0x34]);
        assert_eq!(enc(-1), [0x8f]);
        assert_eq!(enc(0x1000), [0xd4, 0x10, 0x00]);
        assert_eq!(enc(1 << 20), [b'I', 0, 0x10, 0, 0]);
    }

    #[test]
    fn strings_count_utf16_units_and_are_capped() {
        let mut b = BytesMut::new();
        put_string(&mut b, "héllo🙂");
        assert_eq!(&b[..], b"\x06h\xc3\xa9llo?");
        let mut b = BytesMut::new();
        put_string(&mut b, &"x".repeat(5000));
        assert_eq!(&b[..3], &[b'S', 0x04, 0x00]);
        assert_eq!(b.len(), 3 + MAX_MESSAGE);
    }
}
