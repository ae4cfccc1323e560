//! Frames to bytes: forwarding a decoded frame (its bytes with the id patched), re-encoding one
//! whose headers changed, and building the frames the proxy sends itself.

use bytes::{BufMut, Bytes, BytesMut};

use super::header::{id_offset, put_crc, FixedHeader, MAX_SHORT_LEN};
use super::header_map;
use crate::frame::{Frame, FrameKind};
use crate::headers::Headers;
use crate::protocol::EncodeError;

/// See [`crate::Protocol::encode`].
pub fn encode(frame: &Frame, dst: &mut BytesMut) -> Result<(), EncodeError> {
    let id = u32::try_from(frame.id)
        .map_err(|_| EncodeError(format!("request id {} is over Bolt's 32 bits", frame.id)))?;
    let fixed = match FixedHeader::parse(&frame.raw) {
        Ok(Some(fixed)) if fixed.frame_len() == Some(frame.raw.len()) => fixed,
        _ => return Err(EncodeError("frame.raw is not one whole Bolt frame".into())),
    };
    if frame.headers_modified() {
        let class = frame
            .raw
            .get(fixed.fixed_len()..fixed.fixed_len() + usize::from(fixed.class_len))
            .unwrap_or_default();
        return write(fixed, id, class, frame.headers(), &frame.body, dst);
    }
    let start = dst.len();
    dst.extend_from_slice(&frame.raw);
    let at = start + id_offset(fixed.proto);
    if let Some(slot) = dst.get_mut(at..at + 4) {
        slot.copy_from_slice(&id.to_be_bytes());
    }
    if fixed.has_crc() {
        // The CRC covers the id: compute it again over the patched bytes.
        dst.truncate(dst.len() - 4);
        put_crc(dst, start);
    }
    Ok(())
}

/// Appends a whole frame: `fixed` (with `id` and the parts' lengths set here), the class name,
/// the header map, the content, and the CRC if `fixed` asks for one.
fn write(
    mut fixed: FixedHeader,
    id: u32,
    class: &[u8],
    headers: &Headers,
    body: &[u8],
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    let header_len = header_map::encoded_len(headers)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|&n| n <= MAX_SHORT_LEN)
        .ok_or_else(|| EncodeError("Bolt header map over 32767 bytes".into()))?;
    let class_len = u16::try_from(class.len())
        .ok()
        .filter(|&n| n <= MAX_SHORT_LEN)
        .ok_or_else(|| EncodeError("Bolt class name over 32767 bytes".into()))?;
    let content_len = u32::try_from(body.len())
        .ok()
        .filter(|&n| n <= i32::MAX as u32)
        .ok_or_else(|| EncodeError("Bolt content over 2 GiB".into()))?;
    fixed.id = id;
    fixed.class_len = class_len;
    fixed.header_len = header_len;
    fixed.content_len = content_len;
    let start = dst.len();
    dst.reserve(fixed.frame_len().unwrap_or(0));
    fixed.write(dst);
    dst.put_slice(class);
    header_map::encode(headers, dst);
    dst.put_slice(body);
    if fixed.has_crc() {
        put_crc(dst, start);
    }
    Ok(())
}

/// A frame the proxy makes (heartbeats and replies): no headers, `class` and `body` as given.
pub fn build(kind: FrameKind, fixed: FixedHeader, class: &[u8], body: &[u8]) -> Option<Frame> {
    let mut dst = BytesMut::new();
    write(fixed, fixed.id, class, &Headers::new(), body, &mut dst).ok()?;
    let raw = dst.freeze();
    let body_start = fixed.fixed_len() + class.len();
    let body: Bytes = raw.slice(body_start..body_start + body.len());
    let mut frame = Frame::new(kind, u64::from(fixed.id), Headers::new(), body, raw);
    frame.status = u32::from(fixed.status);
    Some(frame)
}
