//! Bolt's fixed headers: the only part of a frame whose layout depends on the protocol version
//! and on the command type.
//!
//! Every field is big-endian. `v1` (proto byte 1) is the original layout; `v2` (proto byte 2)
//! inserts a protocol version (`ver1`) after the proto byte and a `switch` byte after the codec,
//! and when `ver1` is 2 and the switch's bit 0 is set, the frame ends with a CRC32 of all the
//! bytes before it. Requests carry a timeout (i32, milliseconds) where responses carry a status
//! (u16). Then come the lengths of the three variable parts: the class name (i16), the header
//! map (i16) and the content (i32), and the parts themselves, in that order.
//!
//! ```text
//! v1 request  (22) proto type cmd:2 ver2 id:4 codec timeout:4 class:2 header:2 content:4
//! v1 response (20) proto type cmd:2 ver2 id:4 codec status:2  class:2 header:2 content:4
//! v2 request  (24) proto ver1 type cmd:2 ver2 id:4 codec switch timeout:4 class:2 header:2 content:4
//! v2 response (22) proto ver1 type cmd:2 ver2 id:4 codec switch status:2  class:2 header:2 content:4
//! ```
//! (Checked against sofa-bolt's RpcCommandDecoder/DecoderV2 and the bytes sofa-rpc-node writes.)

use bytes::{BufMut, BytesMut};

use super::cursor::Cursor;
use crate::frame::FrameKind;
use crate::protocol::{DecodeError, DecodeErrorKind};

pub const PROTO_V1: u8 = 1;
pub const PROTO_V2: u8 = 2;

/// The `type` byte.
pub const TYPE_RESPONSE: u8 = 0;
pub const TYPE_REQUEST: u8 = 1;
pub const TYPE_ONEWAY: u8 = 2;

/// The command codes.
pub const CMD_HEARTBEAT: u16 = 0;
pub const CMD_RPC_REQUEST: u16 = 1;
pub const CMD_RPC_RESPONSE: u16 = 2;

/// The `codec` byte of Hessian2, the serialization SOFARPC uses by default (protobuf is 11).
pub const CODEC_HESSIAN2: u8 = 1;

/// The command version (`ver2`) every known implementation writes.
pub const VER2: u8 = 1;

/// Bit 0 of v2's switch byte: the frame carries a CRC32 trailer (only when `ver1` is 2).
pub const SWITCH_CRC: u8 = 0x01;

/// The class and header lengths are Java shorts on the wire: longer parts cannot be encoded.
pub const MAX_SHORT_LEN: u16 = i16::MAX as u16;

/// The fixed header of one frame, as decoded (or as a frame the proxy builds will carry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    /// 1 or 2 (`PROTO_V1`, `PROTO_V2`).
    pub proto: u8,
    /// v2's protocol version (1 or 2); 0 on v1.
    pub ver1: u8,
    pub rpc_type: u8,
    pub cmd_code: u16,
    pub ver2: u8,
    pub id: u32,
    /// The serialization of the content (`CODEC_HESSIAN2`, 11 for protobuf).
    pub codec: u8,
    /// v2's switch byte; 0 on v1.
    pub switch: u8,
    /// The request's timeout in milliseconds (requests only).
    pub timeout: i32,
    /// The response status (responses only; see `status`).
    pub status: u16,
    pub class_len: u16,
    pub header_len: u16,
    pub content_len: u32,
}

/// Where the type byte is, per proto byte: v2 puts `ver1` before it.
fn type_offset(proto: u8) -> usize {
    if proto == PROTO_V2 {
        2
    } else {
        1
    }
}

/// The fixed header's length for a proto byte and a type byte.
pub fn fixed_len(proto: u8, rpc_type: u8) -> usize {
    let response = rpc_type == TYPE_RESPONSE;
    match (proto == PROTO_V2, response) {
        (false, true) => 20,
        (false, false) => 22,
        (true, true) => 22,
        (true, false) => 24,
    }
}

/// Where the request id sits in a frame of this proto byte.
pub fn id_offset(proto: u8) -> usize {
    if proto == PROTO_V2 {
        6
    } else {
        5
    }
}

impl FixedHeader {
    /// Parses the fixed header at the front of `buf`: `Ok(None)` if `buf` is too short to hold
    /// it, an error if it cannot start a Bolt frame. Lengths and the command are checked by
    /// [`FixedHeader::validate`], once the request id is known.
    pub fn parse(buf: &[u8]) -> Result<Option<FixedHeader>, DecodeError> {
        let Some(&proto) = buf.first() else {
            return Ok(None);
        };
        if proto != PROTO_V1 && proto != PROTO_V2 {
            return Err(DecodeError::new(
                DecodeErrorKind::BadMagic,
                format!("not a Bolt frame: protocol byte {proto:#04x}"),
            ));
        }
        let Some(&rpc_type) = buf.get(type_offset(proto)) else {
            return Ok(None);
        };
        if !matches!(rpc_type, TYPE_RESPONSE | TYPE_REQUEST | TYPE_ONEWAY) {
            return Err(DecodeError::malformed(format!(
                "unknown Bolt command type {rpc_type}"
            )));
        }
        if buf.len() < fixed_len(proto, rpc_type) {
            return Ok(None);
        }
        Ok(Self::read(&mut Cursor::new(buf)))
    }

    /// Reads every field; only `None` if the bytes run out (which `parse` rules out).
    fn read(c: &mut Cursor<'_>) -> Option<FixedHeader> {
        let proto = c.u8()?;
        let ver1 = if proto == PROTO_V2 { c.u8()? } else { 0 };
        let rpc_type = c.u8()?;
        let cmd_code = c.u16()?;
        let ver2 = c.u8()?;
        let id = c.u32()?;
        let codec = c.u8()?;
        let switch = if proto == PROTO_V2 { c.u8()? } else { 0 };
        let (timeout, status) = if rpc_type == TYPE_RESPONSE {
            (0, c.u16()?)
        } else {
            (c.u32()? as i32, 0)
        };
        Some(FixedHeader {
            proto,
            ver1,
            rpc_type,
            cmd_code,
            ver2,
            id,
            codec,
            switch,
            timeout,
            status,
            class_len: c.u16()?,
            header_len: c.u16()?,
            content_len: c.u32()?,
        })
    }

    /// The frame kind its type and command code make; `None` for a pair Bolt does not define.
    pub fn kind(&self) -> Option<FrameKind> {
        match (self.rpc_type, self.cmd_code) {
            (TYPE_REQUEST, CMD_RPC_REQUEST) => Some(FrameKind::Request),
            (TYPE_ONEWAY, CMD_RPC_REQUEST) => Some(FrameKind::Oneway),
            (TYPE_RESPONSE, CMD_RPC_RESPONSE) => Some(FrameKind::Response),
            (TYPE_REQUEST, CMD_HEARTBEAT) => Some(FrameKind::HeartbeatRequest),
            (TYPE_RESPONSE, CMD_HEARTBEAT) => Some(FrameKind::HeartbeatResponse),
            _ => None,
        }
    }

    /// Whether the peer waits for an rpc response to this frame's id: the frames a decode
    /// error can still be answered for. A two-way request with a command this codec does not
    /// know counts (its sender waits all the same); a heartbeat does not (its answer would
    /// be a heartbeat ack, and a failed heartbeat is for the sender to notice).
    pub fn expects_response(&self) -> bool {
        self.rpc_type == TYPE_REQUEST && self.cmd_code != CMD_HEARTBEAT
    }

    /// Whether the frame ends with a CRC32 (sofa-bolt writes and checks one only when both the
    /// v2 version and the switch ask for it).
    pub fn has_crc(&self) -> bool {
        self.proto == PROTO_V2 && self.ver1 == 2 && self.switch & SWITCH_CRC != 0
    }

    pub fn fixed_len(&self) -> usize {
        fixed_len(self.proto, self.rpc_type)
    }

    /// The whole frame's length; `None` if it does not fit a `usize`.
    pub fn frame_len(&self) -> Option<usize> {
        let content = usize::try_from(self.content_len).ok()?;
        self.fixed_len()
            .checked_add(usize::from(self.class_len))?
            .checked_add(usize::from(self.header_len))?
            .checked_add(content)?
            .checked_add(if self.has_crc() { 4 } else { 0 })
    }

    /// Rejects what sofa-bolt cannot read: an unknown command, a v2 version other than 1 or 2,
    /// and lengths that are negative as the Java shorts and ints they are.
    pub fn validate(&self) -> Result<(), DecodeError> {
        let error = |message: String| {
            let e = DecodeError::malformed(message);
            if self.expects_response() {
                e.with_request_id(u64::from(self.id))
            } else {
                e
            }
        };
        if self.kind().is_none() {
            return Err(error(format!(
                "unknown Bolt command code {} for type {}",
                self.cmd_code, self.rpc_type
            )));
        }
        if self.proto == PROTO_V2 && !matches!(self.ver1, 1 | 2) {
            return Err(error(format!("unknown Bolt v2 version {}", self.ver1)));
        }
        if self.class_len > MAX_SHORT_LEN
            || self.header_len > MAX_SHORT_LEN
            || self.content_len > i32::MAX as u32
        {
            return Err(error(format!(
                "negative Bolt length (class {}, header {}, content {})",
                self.class_len as i16, self.header_len as i16, self.content_len as i32
            )));
        }
        Ok(())
    }

    /// Appends the fixed header to `dst`, as parsed (lengths included: callers set them).
    pub fn write(&self, dst: &mut BytesMut) {
        dst.put_u8(self.proto);
        if self.proto == PROTO_V2 {
            dst.put_u8(self.ver1);
        }
        dst.put_u8(self.rpc_type);
        dst.put_u16(self.cmd_code);
        dst.put_u8(self.ver2);
        dst.put_u32(self.id);
        dst.put_u8(self.codec);
        if self.proto == PROTO_V2 {
            dst.put_u8(self.switch);
        }
        if self.rpc_type == TYPE_RESPONSE {
            dst.put_u16(self.status);
        } else {
            dst.put_i32(self.timeout);
        }
        dst.put_u16(self.class_len);
        dst.put_u16(self.header_len);
        dst.put_u32(self.content_len);
    }
}

/// Appends the CRC32 of `dst[start..]` (the frame written so far) to `dst`.
pub fn put_crc(dst: &mut BytesMut, start: usize) {
    let crc = crc32fast::hash(dst.get(start..).unwrap_or_default());
    dst.put_u32(crc);
}

/// Whether `frame`'s last four bytes are the CRC32 of the rest.
pub fn crc_matches(frame: &[u8]) -> bool {
    let Some(split) = frame.len().checked_sub(4) else {
        return false;
    };
    let (body, trailer) = frame.split_at(split);
    let mut c = Cursor::new(trailer);
    c.u32() == Some(crc32fast::hash(body))
}
