//! The Bolt codec's tests: real frames recorded from sofa-rpc-node ([`vectors`]) and frames
//! built field by field ([`Spec`]) for the cases no well-behaved peer sends.

mod decode;
mod detect;
mod encode;
mod replies;
mod robustness;
mod vectors;

use bytes::{BufMut, BytesMut};

use super::header::FixedHeader;
use super::Bolt;
use crate::frame::Frame;
use crate::protocol::{DecodeError, Protocol};

/// A limit no test frame reaches.
const MAX: usize = 1 << 20;

pub fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Decodes exactly one frame from `bytes`, which must hold nothing else.
pub fn decode_one(bytes: &[u8]) -> Frame {
    let mut buf = BytesMut::from(bytes);
    let frame = Bolt
        .decode(&mut buf, MAX)
        .expect("decodes")
        .expect("complete");
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    frame
}

pub fn decode_err(bytes: &[u8]) -> DecodeError {
    Bolt.decode(&mut BytesMut::from(bytes), MAX)
        .expect_err("must not decode")
}

pub fn encode(frame: &Frame) -> Vec<u8> {
    let mut dst = BytesMut::new();
    Bolt.encode(frame, &mut dst).expect("encodes");
    dst.to_vec()
}

/// A frame assembled from a fixed header and raw parts, lengths as given in `fixed` (so a
/// test can make them lie); the CRC is appended when `fixed` asks for one.
pub struct Spec {
    pub fixed: FixedHeader,
    pub class: Vec<u8>,
    pub header: Vec<u8>,
    pub body: Vec<u8>,
}

impl Spec {
    /// A v1 rpc request with id 7, the given header map bytes and body, lengths filled in.
    pub fn request(header: Vec<u8>, body: &[u8]) -> Spec {
        let class = b"com.alipay.sofa.rpc.core.request.SofaRequest".to_vec();
        let fixed = FixedHeader {
            proto: 1,
            ver1: 0,
            rpc_type: 1,
            cmd_code: 1,
            ver2: 1,
            id: 7,
            codec: 1,
            switch: 0,
            timeout: 3000,
            status: 0,
            class_len: class.len() as u16,
            header_len: header.len() as u16,
            content_len: body.len() as u32,
        };
        Spec {
            fixed,
            class,
            header,
            body: body.to_vec(),
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut out = BytesMut::new();
        self.fixed.write(&mut out);
        out.put_slice(&self.class);
        out.put_slice(&self.header);
        out.put_slice(&self.body);
        if self.fixed.has_crc() {
            super::header::put_crc(&mut out, 0);
        }
        out.to_vec()
    }
}

/// A header map's bytes from pairs; `None` writes a null (length -1).
pub fn map(pairs: &[(Option<&str>, Option<&str>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in pairs.iter().flat_map(|(k, v)| [k, v]) {
        match s {
            Some(s) => {
                out.extend_from_slice(&(s.len() as u32).to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    out
}
