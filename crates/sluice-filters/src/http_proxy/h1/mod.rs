//! HTTP/1.1 on the wire (RFC 9112), the pieces both directions share: how a body is framed,
//! the chunked coding, and the sending half of a message. The upstream client lives in
//! `pool/h1`, the downstream server in [`server`].

pub mod chunked;
pub mod fuzz;
pub mod outgoing;
pub mod server;

/// How a message body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// `Content-Length`.
    Length(u64),
    Chunked,
    /// Responses only: the body runs until the sender closes the connection.
    UntilClose,
}

/// The decimal digits of `n`, written into `buf`.
pub fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}
