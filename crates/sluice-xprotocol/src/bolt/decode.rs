//! Bytes to frames: one whole Bolt frame off the front of the buffer, or nothing until it is
//! all there.

use bytes::{Bytes, BytesMut};

use super::header::{crc_matches, FixedHeader, CODEC_HESSIAN2};
use super::{header_map, hessian};
use crate::frame::Frame;
use crate::headers::Headers;
use crate::protocol::{DecodeError, DecodeErrorKind};

/// The header naming the called service (`interface:version[:uniqueId]`), which every SOFARPC
/// client sends.
pub const SERVICE: &str = "service";
/// The same, as sofa-rpc (Java) also sends it; used when `service` is missing.
pub const TARGET_SERVICE: &str = "sofa_head_target_service";
/// The called method, as sofa-rpc (Java) and sofa-rpc-node's protobuf requests send it.
pub const METHOD_NAME: &str = "sofa_head_method_name";

/// See [`crate::Protocol::decode`]. Errors found once the fixed header is read carry the
/// request id when the sender waits for an answer, so the proxy can reply before closing.
pub fn decode(buf: &mut BytesMut, max_frame_size: usize) -> Result<Option<Frame>, DecodeError> {
    let Some(fixed) = FixedHeader::parse(buf)? else {
        return Ok(None);
    };
    fixed.validate()?;
    let blame = |e: DecodeError| {
        if fixed.expects_response() {
            e.with_request_id(u64::from(fixed.id))
        } else {
            e
        }
    };
    let Some(len) = fixed.frame_len() else {
        return Err(blame(DecodeError::malformed("Bolt frame length overflows")));
    };
    if len > max_frame_size {
        // The header is sound (`validate` passed): the stream can resume after the frame.
        return Err(blame(DecodeError::new(
            DecodeErrorKind::TooLarge,
            format!("Bolt frame of {len} bytes is over the limit of {max_frame_size}"),
        ))
        .with_skip(u64::from(fixed.id), len));
    }
    if buf.len() < len {
        return Ok(None);
    }
    let raw = buf.split_to(len).freeze();
    if fixed.has_crc() && !crc_matches(&raw) {
        return Err(blame(DecodeError::malformed("Bolt CRC32 does not match")));
    }
    let Some(kind) = fixed.kind() else {
        // `validate` rejected every other pair.
        return Err(blame(DecodeError::malformed("unknown Bolt command")));
    };
    // Within `len` by construction: it is the sum of these parts.
    let class_start = fixed.fixed_len();
    let header_start = class_start + usize::from(fixed.class_len);
    let body_start = header_start + usize::from(fixed.header_len);
    let body_end = body_start + fixed.content_len as usize;
    let headers = header_map::decode(&raw.slice(header_start..body_start))
        .map_err(|_| blame(DecodeError::malformed("truncated Bolt header map")))?;
    let body = raw.slice(body_start..body_end);
    let class = raw.slice(class_start..header_start);

    let mut frame = Frame::new(kind, u64::from(fixed.id), headers, body, raw);
    frame.status = u32::from(fixed.status);
    if kind.is_request() {
        frame.service = first_of(frame.headers(), &[SERVICE, TARGET_SERVICE]);
        frame.method = first_of(frame.headers(), &[METHOD_NAME]);
        if frame.method.is_empty()
            && fixed.codec == CODEC_HESSIAN2
            && class == hessian::SOFA_REQUEST.as_bytes()
        {
            frame.method = hessian::method_name(&frame.body).unwrap_or_default();
        }
    }
    Ok(Some(frame))
}

/// The first non-empty value under one of `names`, in that order of preference.
fn first_of(headers: &Headers, names: &[&str]) -> Bytes {
    names
        .iter()
        .filter_map(|name| headers.get(name))
        .find(|v| !v.is_empty())
        .cloned()
        .unwrap_or_default()
}
