//! The chunked transfer coding (RFC 9112 section 7.1), decoding side: what an upstream's
//! `Transfer-Encoding: chunked` response body turns into.
//!
//! Sans-io: bytes in (the connection's read buffer), data frames out, zero-copy (each frame
//! is split off the buffer). Strict where leniency has let messages be read two ways: a
//! chunk size is hex digits only, lines end in CRLF, and extensions and trailers are bounded.

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Longest chunk-size line we read (digits, extensions, whitespace).
const MAX_SIZE_LINE: usize = 4096;
/// Largest trailer section.
const MAX_TRAILERS: usize = 16 * 1024;
const MAX_TRAILER_FIELDS: usize = 64;

/// What the next bytes of a chunked body decode to.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    Data(Bytes),
    Trailers(HeaderMap),
    /// The last chunk and the trailer section have been read.
    End,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("invalid chunk size line")]
    SizeLine,
    #[error("chunk size line longer than {MAX_SIZE_LINE} bytes")]
    SizeLineTooLong,
    #[error("chunk size overflows")]
    SizeOverflow,
    #[error("chunk data not followed by CRLF")]
    DataEnd,
    #[error("invalid trailer section")]
    Trailers,
    #[error("trailer section larger than {MAX_TRAILERS} bytes")]
    TrailersTooLarge,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// Reading the hex digits of a chunk size.
    Size {
        digits: u8,
    },
    /// After the digits: optional whitespace and `;extensions`, up to CR.
    SizeRest,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    Trailers,
    Done,
}

#[derive(Debug)]
pub struct ChunkedDecoder {
    state: State,
    /// The size being read, then what is left of the current chunk.
    size: u64,
    /// Bytes of the current size line seen so far.
    line: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: State::Size { digits: 0 },
            size: 0,
            line: 0,
        }
    }
}

impl ChunkedDecoder {
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from the front of `buf`, consuming what it uses. `Ok(None)`: more bytes are
    /// needed (everything usable in `buf` has been consumed).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, ChunkError> {
        loop {
            match self.state {
                State::Done => return Ok(Some(Decoded::End)),
                State::Data => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = usize::try_from(self.size)
                        .unwrap_or(usize::MAX)
                        .min(buf.len());
                    self.size -= n as u64;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                    return Ok(Some(Decoded::Data(buf.split_to(n).freeze())));
                }
                State::Trailers => return self.trailers(buf),
                _ => {}
            }
            let Some(&byte) = buf.first() else {
                return Ok(None);
            };
            buf.advance(1);
            self.step(byte)?;
        }
    }

    /// One byte of framing (size lines and the CRLF after data).
    fn step(&mut self, byte: u8) -> Result<(), ChunkError> {
        match self.state {
            State::Size { digits } => {
                self.count_line()?;
                if let Some(d) = char::from(byte).to_digit(16) {
                    if digits >= 16 {
                        return Err(ChunkError::SizeOverflow);
                    }
                    self.size = (self.size << 4) | u64::from(d);
                    self.state = State::Size { digits: digits + 1 };
                } else if digits == 0 {
                    return Err(ChunkError::SizeLine);
                } else {
                    self.state = State::SizeRest;
                    return self.step(byte);
                }
            }
            State::SizeRest => {
                self.count_line()?;
                match byte {
                    b'\r' => self.state = State::SizeLf,
                    // Extensions are skipped (none is defined that a proxy must act on); they
                    // may not contain a bare CR or LF.
                    b'\n' => return Err(ChunkError::SizeLine),
                    _ => {}
                }
            }
            State::SizeLf => {
                if byte != b'\n' {
                    return Err(ChunkError::SizeLine);
                }
                self.line = 0;
                self.state = if self.size == 0 {
                    State::Trailers
                } else {
                    State::Data
                };
            }
            State::DataCr if byte == b'\r' => self.state = State::DataLf,
            State::DataLf if byte == b'\n' => {
                self.state = State::Size { digits: 0 };
                self.size = 0;
            }
            State::DataCr | State::DataLf => return Err(ChunkError::DataEnd),
            State::Data | State::Trailers | State::Done => {}
        }
        Ok(())
    }

    fn count_line(&mut self) -> Result<(), ChunkError> {
        self.line += 1;
        if self.line > MAX_SIZE_LINE {
            return Err(ChunkError::SizeLineTooLong);
        }
        Ok(())
    }

    /// The trailer section: header fields up to an empty line.
    fn trailers(&mut self, buf: &mut BytesMut) -> Result<Option<Decoded>, ChunkError> {
        if buf.starts_with(b"\r\n") {
            buf.advance(2);
            self.state = State::Done;
            return Ok(Some(Decoded::End));
        }
        let mut fields = [httparse::EMPTY_HEADER; MAX_TRAILER_FIELDS];
        let (used, map) = match httparse::parse_headers(buf, &mut fields) {
            Ok(httparse::Status::Complete((used, fields))) => {
                let mut map = HeaderMap::with_capacity(fields.len());
                for f in fields.iter() {
                    let name = HeaderName::from_bytes(f.name.as_bytes())
                        .map_err(|_| ChunkError::Trailers)?;
                    let value =
                        HeaderValue::from_bytes(f.value).map_err(|_| ChunkError::Trailers)?;
                    map.append(name, value);
                }
                (used, map)
            }
            Ok(httparse::Status::Partial) if buf.len() <= MAX_TRAILERS => return Ok(None),
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                return Err(ChunkError::TrailersTooLarge)
            }
            Err(_) => return Err(ChunkError::Trailers),
        };
        if used > MAX_TRAILERS {
            return Err(ChunkError::TrailersTooLarge);
        }
        buf.advance(used);
        self.state = State::Done;
        Ok(Some(if map.is_empty() {
            Decoded::End
        } else {
            Decoded::Trailers(map)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Decodes `input` fed in pieces of `step` bytes: the data, the trailers, and whether the
    /// end was reached.
    fn decode_all(
        input: &[u8],
        step: usize,
    ) -> Result<(Vec<u8>, Option<HeaderMap>, bool, usize), ChunkError> {
        let mut dec = ChunkedDecoder::default();
        let mut buf = BytesMut::new();
        let mut data = Vec::new();
        let mut trailers = None;
        let mut fed = 0;
        loop {
            match dec.decode(&mut buf)? {
                Some(Decoded::Data(d)) => data.extend_from_slice(&d),
                Some(Decoded::Trailers(t)) => trailers = Some(t),
                Some(Decoded::End) => return Ok((data, trailers, true, buf.len())),
                None if fed < input.len() => {
                    let end = (fed + step.max(1)).min(input.len());
                    buf.extend_from_slice(&input[fed..end]);
                    fed = end;
                }
                None => return Ok((data, trailers, false, buf.len())),
            }
        }
    }

    #[test]
    fn chunks_extensions_and_trailers() {
        let input =
            b"5\r\nhello\r\n6;name=value\r\n world\r\n0\r\ngrpc-status: 0\r\nx-a: b\r\n\r\nNEXT";
        let (data, trailers, end, left) = decode_all(input, 1000).unwrap();
        assert_eq!(data, b"hello world");
        let t = trailers.unwrap();
        assert_eq!(t["grpc-status"], "0");
        assert_eq!(t["x-a"], "b");
        assert!(end);
        // What follows the body is left for the next message.
        assert_eq!(left, 4);
    }

    #[test]
    fn hex_sizes_either_case_and_whitespace_before_extensions() {
        let input = b"A \r\n0123456789\r\nb\t;x\r\nabcdefghijk\r\n0\r\n\r\n";
        let (data, trailers, end, _) = decode_all(input, 3).unwrap();
        assert_eq!(data.len(), 21);
        assert!(trailers.is_none() && end);
    }

    #[test]
    fn malformed_framing_is_an_error() {
        for bad in [
            &b"x\r\nab\r\n0\r\n\r\n"[..], // not hex
            b"\r\n",                      // no digits
            b"-1\r\n",                    // sign
            b"0x5\r\nhello\r\n",          // prefix
            b"2\nab\r\n0\r\n\r\n",        // bare LF after the size
            b"2\r\nabX\r\n0\r\n\r\n",     // data longer than declared
            b"2\r\nab\n0\r\n\r\n",        // bare LF after data
            b"2;ext\nab\r\n",             // bare LF in extensions
            b"0\r\nbad header\r\n\r\n",   // trailer without colon
            b"11111111111111111\r\n",     // 17 digits
        ] {
            assert!(
                decode_all(bad, 1).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
            assert!(
                decode_all(bad, 64).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn bounded_size_line_and_trailers() {
        let mut long = b"1;".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_SIZE_LINE));
        assert_eq!(
            decode_all(&long, 100).unwrap_err(),
            ChunkError::SizeLineTooLong
        );
        let mut trailers = b"0\r\n".to_vec();
        for i in 0..2000 {
            trailers.extend_from_slice(format!("x-{i}: yyyyyyyy\r\n").as_bytes());
        }
        assert!(decode_all(&trailers, 512).is_err());
    }

    #[test]
    fn truncated_body_asks_for_more() {
        let (data, _, end, _) = decode_all(b"5\r\nhel", 2).unwrap();
        assert_eq!(data, b"hel");
        assert!(!end);
    }

    proptest! {
        /// Any body, chunked any way and fed in any piece size, decodes to itself.
        #[test]
        fn round_trip(body in proptest::collection::vec(any::<u8>(), 0..2000),
                      sizes in proptest::collection::vec(1usize..300, 1..20),
                      step in 1usize..97) {
            let mut wire = Vec::new();
            let mut rest = &body[..];
            let mut i = 0;
            while !rest.is_empty() {
                let n = sizes[i % sizes.len()].min(rest.len());
                wire.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                wire.extend_from_slice(&rest[..n]);
                wire.extend_from_slice(b"\r\n");
                rest = &rest[n..];
                i += 1;
            }
            wire.extend_from_slice(b"0\r\n\r\n");
            let (data, trailers, end, left) = decode_all(&wire, step).unwrap();
            prop_assert_eq!(data, body);
            prop_assert!(trailers.is_none() && end && left == 0);
        }

        /// Arbitrary bytes never panic.
        #[test]
        fn arbitrary_input(input in proptest::collection::vec(any::<u8>(), 0..512), step in 1usize..64) {
            let _ = decode_all(&input, step);
        }
    }
}
