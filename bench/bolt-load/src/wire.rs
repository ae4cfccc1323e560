//! The echo call on the wire, as sofa-rpc-node 2.10 (hessian2) writes it: a Bolt request whose
//! content is a `SofaRequest` followed by the string argument, and a response whose content is
//! a `SofaResponse` carrying the returned string. The Bolt fixed header, its CRC and the header
//! map are `sluice_xprotocol::bolt`'s; the little Hessian here is what these two bodies need
//! (the dialect is described in `sluice_xprotocol::bolt::hessian`). The unit tests check the
//! bytes against the frames recorded from sofa-rpc-node (`crates/sluice-xprotocol/src/bolt/
//! tests/vectors.rs`).

use bytes::{BufMut, BytesMut};
use sluice_xprotocol::bolt::header::{
    self, FixedHeader, CMD_HEARTBEAT, CMD_RPC_REQUEST, CMD_RPC_RESPONSE, CODEC_HESSIAN2, PROTO_V1,
    PROTO_V2, SWITCH_CRC, TYPE_REQUEST, TYPE_RESPONSE, VER2,
};
use sluice_xprotocol::bolt::header_map;
use sluice_xprotocol::bolt::hessian::{server_exception, RPC_SERVER_EXCEPTION, SOFA_REQUEST};
use sluice_xprotocol::Headers;

pub const SOFA_RESPONSE: &str = "com.alipay.sofa.rpc.core.response.SofaResponse";
/// sofa-bolt's SERVER_EXCEPTION status.
pub const STATUS_SERVER_EXCEPTION: u16 = 0x02;

/// Which Bolt framing requests use: v1, or v2 (version 2) with or without the CRC32 trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2 { crc: bool },
}

/// A request frame's fixed parts, built once: each request only adds its id and argument.
pub struct RequestTemplate {
    fixed: FixedHeader,
    /// Class name, header map and the `SofaRequest` object: everything before the argument.
    tail: Vec<u8>,
    /// The content's length without the argument.
    body_prefix_len: usize,
}

impl RequestTemplate {
    /// `method(arg)` on `service` (`interface:version`), with the header timeout `timeout_ms`.
    pub fn new(service: &str, method: &str, version: Version, timeout_ms: i32) -> RequestTemplate {
        let (proto, ver1, switch) = match version {
            Version::V1 => (PROTO_V1, 0, 0),
            Version::V2 { crc } => (PROTO_V2, 2, if crc { SWITCH_CRC } else { 0 }),
        };
        let mut headers = Headers::new();
        headers.push("service", service.to_owned());
        let mut map = BytesMut::new();
        header_map::encode(&headers, &mut map);

        let mut body = Vec::new();
        put_class_def(
            &mut body,
            SOFA_REQUEST,
            &[
                "methodName",
                "methodArgSigs",
                "targetServiceUniqueName",
                "targetAppName",
                "requestProps",
            ],
        );
        body.push(b'o');
        put_int(&mut body, 0);
        put_string(&mut body, method);
        // methodArgSigs: a typed list with one entry.
        const SIGS: &str = "[java.lang.String";
        body.extend_from_slice(b"Vt");
        body.put_u16(SIGS.len() as u16);
        body.extend_from_slice(SIGS.as_bytes());
        body.extend_from_slice(b"n\x01");
        put_string(&mut body, "java.lang.String");
        body.push(b'z');
        put_string(&mut body, service);
        body.push(b'N');
        body.push(b'M');
        put_string(&mut body, "service");
        put_string(&mut body, service);
        body.push(b'z');

        let mut tail = Vec::new();
        tail.extend_from_slice(SOFA_REQUEST.as_bytes());
        tail.extend_from_slice(&map);
        let body_prefix_len = body.len();
        tail.extend_from_slice(&body);
        RequestTemplate {
            fixed: FixedHeader {
                proto,
                ver1,
                rpc_type: TYPE_REQUEST,
                cmd_code: CMD_RPC_REQUEST,
                ver2: VER2,
                id: 0,
                codec: CODEC_HESSIAN2,
                switch,
                timeout: timeout_ms,
                status: 0,
                class_len: SOFA_REQUEST.len() as u16,
                header_len: map.len() as u16,
                content_len: 0,
            },
            tail,
            body_prefix_len,
        }
    }

    /// Appends request `id` with the string argument `arg` to `dst`.
    pub fn write(&self, id: u32, arg: &str, dst: &mut BytesMut) {
        let mut arg_bytes = Vec::with_capacity(arg.len() + 3);
        put_string(&mut arg_bytes, arg);
        let mut fixed = self.fixed;
        fixed.id = id;
        fixed.content_len = (self.body_prefix_len + arg_bytes.len()) as u32;
        let start = dst.len();
        fixed.write(dst);
        dst.extend_from_slice(&self.tail);
        dst.extend_from_slice(&arg_bytes);
        if fixed.has_crc() {
            header::put_crc(dst, start);
        }
    }
}

/// One whole frame at the front of `buf`: its fixed header and length, `Ok(None)` if more bytes
/// are needed.
pub fn next_frame(buf: &[u8], max_frame: usize) -> Result<Option<(FixedHeader, usize)>, String> {
    let Some(fixed) = FixedHeader::parse(buf).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    if buf.len() < fixed.fixed_len() {
        return Ok(None);
    }
    fixed.validate().map_err(|e| e.to_string())?;
    let len = fixed
        .frame_len()
        .filter(|&n| n <= max_frame)
        .ok_or_else(|| {
            format!(
                "frame of {} content bytes is over the limit",
                fixed.content_len
            )
        })?;
    if buf.len() < len {
        return Ok(None);
    }
    if fixed.has_crc() && !header::crc_matches(&buf[..len]) {
        return Err(format!("frame {} has a bad CRC", fixed.id));
    }
    Ok(Some((fixed, len)))
}

/// The content of a whole frame.
pub fn content<'a>(fixed: &FixedHeader, frame: &'a [u8]) -> &'a [u8] {
    let start = fixed.fixed_len() + usize::from(fixed.class_len) + usize::from(fixed.header_len);
    &frame[start..start + fixed.content_len as usize]
}

/// The fixed header of a response to `request`, with `status` and the given part lengths.
fn response_header(request: &FixedHeader, cmd_code: u16, status: u16) -> FixedHeader {
    FixedHeader {
        rpc_type: TYPE_RESPONSE,
        cmd_code,
        timeout: 0,
        status,
        class_len: 0,
        header_len: 0,
        content_len: 0,
        ..*request
    }
}

/// Appends a frame: `fixed` with its lengths set from the parts, then the parts and the CRC.
fn write_frame(mut fixed: FixedHeader, class: &[u8], content: &[u8], dst: &mut BytesMut) {
    fixed.class_len = class.len() as u16;
    fixed.content_len = content.len() as u32;
    let start = dst.len();
    fixed.write(dst);
    dst.extend_from_slice(class);
    dst.extend_from_slice(content);
    if fixed.has_crc() {
        header::put_crc(dst, start);
    }
}

/// The ack to a heartbeat, in its version, switch and codec.
pub fn write_heartbeat_ack(ping: &FixedHeader, dst: &mut BytesMut) {
    write_frame(response_header(ping, CMD_HEARTBEAT, 0), &[], &[], dst);
}

/// A SUCCESS response to `request` returning the string `value` (given as its parts, joined).
pub fn write_echo_response(request: &FixedHeader, value: &[&[u8]], dst: &mut BytesMut) {
    let mut body = Vec::with_capacity(160 + value.iter().map(|v| v.len()).sum::<usize>());
    put_class_def(
        &mut body,
        SOFA_RESPONSE,
        &["isError", "errorMsg", "appResponse", "responseProps"],
    );
    body.push(b'o');
    put_int(&mut body, 0);
    body.push(b'F');
    body.push(b'N');
    put_string_parts(&mut body, value);
    body.push(b'N');
    write_frame(
        response_header(request, CMD_RPC_RESPONSE, 0),
        SOFA_RESPONSE.as_bytes(),
        &body,
        dst,
    );
}

/// A SERVER_EXCEPTION response carrying `message`, as a sofa-bolt server sends for a failure.
pub fn write_error_response(request: &FixedHeader, message: &str, dst: &mut BytesMut) {
    let body = server_exception(message);
    write_frame(
        response_header(request, CMD_RPC_RESPONSE, STATUS_SERVER_EXCEPTION),
        RPC_SERVER_EXCEPTION.as_bytes(),
        &body,
        dst,
    );
}

/// What a request's content asks: the method and its first argument if that is a string.
pub struct Call {
    pub method: Vec<u8>,
    pub arg: Option<Vec<u8>>,
}

/// Reads a `SofaRequest` content (the object, then the arguments).
pub fn read_request(content: &[u8]) -> Result<Call, String> {
    let mut c = Cursor::new(content);
    let fields = read_class_def(&mut c, SOFA_REQUEST)?;
    let mut method = None;
    for field in &fields {
        if field == b"methodName" {
            let mut m = Vec::new();
            read_string(&mut c, &mut m)?.ok_or("null methodName")?;
            method = Some(m);
        } else {
            skip_value(&mut c, 0).ok_or("a SofaRequest field cannot be read")?;
        }
    }
    let method = method.ok_or("no methodName field")?;
    let mut arg = Vec::new();
    let arg = if c.remaining() > 0 {
        match read_string(&mut c, &mut arg) {
            Ok(Some(())) => Some(arg),
            _ => None,
        }
    } else {
        None
    };
    Ok(Call { method, arg })
}

/// Reads a `SofaResponse` content: `Ok` with the returned string copied into `out`, or why the
/// response is not a successful string result.
pub fn read_response(content: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    out.clear();
    let mut c = Cursor::new(content);
    let fields = read_class_def(&mut c, SOFA_RESPONSE)?;
    let mut got = false;
    for field in &fields {
        match field.as_slice() {
            b"isError" => match c.u8() {
                Some(b'F') => {}
                Some(b'T') => return Err("isError is true".into()),
                _ => return Err("isError is not a boolean".into()),
            },
            b"appResponse" => {
                read_string(&mut c, out)?.ok_or("appResponse is null")?;
                got = true;
            }
            _ => {
                skip_value(&mut c, 0).ok_or("a SofaResponse field cannot be read")?;
            }
        }
    }
    if got {
        Ok(())
    } else {
        Err("no appResponse field".into())
    }
}

// --- Hessian (the draft 2 dialect SOFARPC speaks) ------------------------------------------

pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }
    fn u8(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn u16(&mut self) -> Option<u16> {
        let s = self.take(2)?;
        Some(u16::from_be_bytes([s[0], s[1]]))
    }
}

fn put_int(out: &mut Vec<u8>, v: i32) {
    match v {
        -0x10..=0x2f => out.push((0x90 + v) as u8),
        -0x800..=0x7ff => {
            out.push((0xc8 + (v >> 8)) as u8);
            out.push(v as u8);
        }
        -0x40000..=0x3ffff => {
            out.push((0xd4 + (v >> 16)) as u8);
            out.put_u16(v as u16);
        }
        _ => {
            out.push(b'I');
            out.put_i32(v);
        }
    }
}

fn put_class_def(out: &mut Vec<u8>, class: &str, fields: &[&str]) {
    out.push(b'O');
    put_int(out, class.len() as i32);
    out.extend_from_slice(class.as_bytes());
    put_int(out, fields.len() as i32);
    for f in fields {
        put_string(out, f);
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    put_string_parts(out, &[s.as_bytes()]);
}

/// A string given as UTF-8 parts (joined), in one-chunk forms while it fits 65535 UTF-16 units,
/// else in `'s'` chunks and a final `'S'`.
fn put_string_parts(out: &mut Vec<u8>, parts: &[&[u8]]) {
    const CHUNK: usize = 0x8000;
    let units: usize = parts.iter().map(|p| utf16_units(p)).sum();
    if units <= 0x1f {
        out.push(units as u8);
        parts.iter().for_each(|p| out.extend_from_slice(p));
        return;
    }
    if units <= 0xffff {
        out.push(b'S');
        out.put_u16(units as u16);
        parts.iter().for_each(|p| out.extend_from_slice(p));
        return;
    }
    // Chunked: split on character boundaries every CHUNK units or so.
    let joined: Vec<u8> = parts.concat();
    let mut rest: &[u8] = &joined;
    while !rest.is_empty() {
        let mut end = 0;
        let mut n = 0;
        while end < rest.len() && n < CHUNK {
            let (w, u) = char_width(rest[end]);
            end = (end + w).min(rest.len());
            n += u;
        }
        let last = end == rest.len();
        out.push(if last { b'S' } else { b's' });
        out.put_u16(n as u16);
        out.extend_from_slice(&rest[..end]);
        rest = &rest[end..];
    }
}

/// A UTF-8 sequence's width from its first byte, and the UTF-16 units it stands for.
fn char_width(b: u8) -> (usize, usize) {
    match b {
        0xf0..=0xf7 => (4, 2),
        0xe0..=0xef => (3, 1),
        0xc0..=0xdf => (2, 1),
        _ => (1, 1),
    }
}

fn utf16_units(s: &[u8]) -> usize {
    if s.is_ascii() {
        return s.len();
    }
    let mut i = 0;
    let mut n = 0;
    while i < s.len() {
        let (w, u) = char_width(s[i]);
        i += w;
        n += u;
    }
    n
}

fn read_int(c: &mut Cursor<'_>) -> Option<i32> {
    let b = c.u8()?;
    Some(match b {
        0x80..=0xbf => i32::from(b) - 0x90,
        0xc0..=0xcf => ((i32::from(b) - 0xc8) << 8) | i32::from(c.u8()?),
        0xd0..=0xd7 => ((i32::from(b) - 0xd4) << 16) | i32::from(c.u16()?),
        b'I' => i32::from_be_bytes(c.take(4)?.try_into().ok()?),
        _ => return None,
    })
}

/// A class definition of `class` and the instance marker after it; the field names.
fn read_class_def(c: &mut Cursor<'_>, class: &str) -> Result<Vec<Vec<u8>>, String> {
    if c.u8() != Some(b'O') {
        return Err(format!("content is not a {class} definition"));
    }
    let len = read_int(c)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or("bad class length")?;
    let name = c.take(len).ok_or("truncated class name")?;
    if name != class.as_bytes() {
        return Err(format!(
            "content is a {}, not a {class}",
            String::from_utf8_lossy(name)
        ));
    }
    let n = read_int(c)
        .filter(|n| (0..64).contains(n))
        .ok_or("bad field count")?;
    let mut fields = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let mut f = Vec::new();
        read_string(c, &mut f)?.ok_or("null field name")?;
        fields.push(f);
    }
    if c.u8() != Some(b'o') || read_int(c) != Some(0) {
        return Err(format!("no {class} instance after its definition"));
    }
    Ok(fields)
}

/// A string appended to `out`: `Ok(None)` for null.
fn read_string(c: &mut Cursor<'_>, out: &mut Vec<u8>) -> Result<Option<()>, String> {
    loop {
        let (units, last) = match c.u8() {
            Some(b'N') => return Ok(None),
            Some(b @ 0x00..=0x1f) => (usize::from(b), true),
            Some(b @ 0x30..=0x33) => {
                let lo = c.u8().ok_or("truncated string")?;
                ((usize::from(b - 0x30) << 8) | usize::from(lo), true)
            }
            Some(b'S') => (usize::from(c.u16().ok_or("truncated string")?), true),
            Some(b's') => (usize::from(c.u16().ok_or("truncated string")?), false),
            Some(b) => return Err(format!("expected a string, got a value starting {b:#04x}")),
            None => return Err("truncated content".into()),
        };
        let start = c.pos;
        skip_units(c, units).ok_or("truncated string")?;
        out.extend_from_slice(&c.buf[start..c.pos]);
        if last {
            return Ok(Some(()));
        }
    }
}

fn skip_units(c: &mut Cursor<'_>, units: usize) -> Option<()> {
    let mut left = units;
    while left > 0 {
        let (w, u) = char_width(c.peek()?);
        c.take(w)?;
        left = left.checked_sub(u)?;
    }
    Some(())
}

/// Skips one value of the simple kinds request and response fields hold.
fn skip_value(c: &mut Cursor<'_>, depth: usize) -> Option<()> {
    if depth > 8 {
        return None;
    }
    let b = c.peek()?;
    let extra = match b {
        b'N' | b'T' | b'F' | 0x80..=0xbf | 0xd8..=0xef | 0x67 | 0x68 => 0,
        0xc0..=0xcf | 0xf0..=0xff | 0x69 | 0x4a => 1,
        0xd0..=0xd7 | 0x38..=0x3f | 0x6a | 0x4b => 2,
        b'I' | 0x77 | 0x6b | b'R' => 4,
        b'L' | b'D' | b'd' => 8,
        0x20..=0x2f => usize::from(b - 0x20),
        0x00..=0x1f | 0x30..=0x33 | b'S' | b's' => {
            let mut sink = Vec::new();
            return read_string(c, &mut sink).ok().map(|_| ());
        }
        b'B' | b'b' => loop {
            let tag = c.u8()?;
            if !matches!(tag, b'B' | b'b') {
                return None;
            }
            let len = c.u16()?;
            c.take(usize::from(len))?;
            if tag == b'B' {
                return Some(());
            }
        },
        b'V' | b'M' => {
            c.u8()?;
            if c.peek()? == b't' {
                c.u8()?;
                let len = c.u16()?;
                c.take(usize::from(len))?;
            }
            if b == b'V' {
                match c.peek()? {
                    b'n' => {
                        c.take(2)?;
                    }
                    b'l' => {
                        c.take(5)?;
                    }
                    _ => {}
                }
            }
            while c.peek()? != b'z' {
                skip_value(c, depth + 1)?;
                if b == b'M' {
                    skip_value(c, depth + 1)?;
                }
            }
            c.u8()?;
            return Some(());
        }
        _ => return None,
    };
    c.take(1 + extra)?;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Recorded from sofa-rpc-node 2.10.0 by tests/bolt/capture.js (the codec's test vectors).
    const V1_ECHO_REQUEST: &str = concat!(
        "0101000101000000010100000bb8002c0023000000e5636f6d2e616c697061792e736f66612e7270",
        "632e636f72652e726571756573742e536f6661526571756573740000000773657276696365000000",
        "14636f6d2e6578616d706c652e4563686f3a312e304fbc636f6d2e616c697061792e736f66612e72",
        "70632e636f72652e726571756573742e536f666152657175657374950a6d6574686f644e616d650d",
        "6d6574686f64417267536967731774617267657453657276696365556e697175654e616d650d7461",
        "726765744170704e616d650c7265717565737450726f70736f90046563686f567400115b6a617661",
        "2e6c616e672e537472696e676e01106a6176612e6c616e672e537472696e677a14636f6d2e657861",
        "6d706c652e4563686f3a312e304e4d077365727669636514636f6d2e6578616d706c652e4563686f",
        "3a312e307a0468692d30",
    );
    const V1_ECHO_RESPONSE: &str = concat!(
        "010000020100000001010000002e00000000006a636f6d2e616c697061792e736f66612e7270632e",
        "636f72652e726573706f6e73652e536f6661526573706f6e73654fbe636f6d2e616c697061792e73",
        "6f66612e7270632e636f72652e726573706f6e73652e536f6661526573706f6e7365940769734572",
        "726f72086572726f724d73670b617070526573706f6e73650d726573706f6e736550726f70736f90",
        "464e086361703a68692d304e",
    );
    const V2_CRC_ECHO_REQUEST: &str = concat!(
        "02020100010100000001010100000bb8002c0023000000e5636f6d2e616c697061792e736f66612e",
        "7270632e636f72652e726571756573742e536f666152657175657374000000077365727669636500",
        "000014636f6d2e6578616d706c652e4563686f3a312e304fbc636f6d2e616c697061792e736f6661",
        "2e7270632e636f72652e726571756573742e536f666152657175657374950a6d6574686f644e616d",
        "650d6d6574686f64417267536967731774617267657453657276696365556e697175654e616d650d",
        "7461726765744170704e616d650c7265717565737450726f70736f90046563686f567400115b6a61",
        "76612e6c616e672e537472696e676e01106a6176612e6c616e672e537472696e677a14636f6d2e65",
        "78616d706c652e4563686f3a312e304e4d077365727669636514636f6d2e6578616d706c652e4563",
        "686f3a312e307a0468692d308a7fc5d4",
    );
    const V2_CRC_ECHO_RESPONSE: &str = concat!(
        "0202000002010000000101010000002e00000000006a636f6d2e616c697061792e736f66612e7270",
        "632e636f72652e726573706f6e73652e536f6661526573706f6e73654fbe636f6d2e616c69706179",
        "2e736f66612e7270632e636f72652e726573706f6e73652e536f6661526573706f6e736594076973",
        "4572726f72086572726f724d73670b617070526573706f6e73650d726573706f6e736550726f7073",
        "6f90464e086361703a68692d304e5551a7b2",
    );
    const V1_HEARTBEAT: &str = "0101000001000010920100000bb80000000000000000";
    const V1_HEARTBEAT_ACK: &str = "0100000001000010920100000000000000000000";
    const V2_CRC_HEARTBEAT: &str = "02020100000100001092010100000bb8000000000000000058277024";
    const V2_CRC_HEARTBEAT_ACK: &str = "02020000000100001092010100000000000000000000adb32b1b";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn request(version: Version) -> Vec<u8> {
        let t = RequestTemplate::new("com.example.Echo:1.0", "echo", version, 3000);
        let mut dst = BytesMut::new();
        t.write(1, "hi-0", &mut dst);
        dst.to_vec()
    }

    /// What the echo server answers to `request`.
    fn answer(request: &[u8], tag: &str) -> Vec<u8> {
        let (fixed, len) = next_frame(request, 1 << 20).unwrap().unwrap();
        assert_eq!(len, request.len());
        let mut dst = BytesMut::new();
        if fixed.cmd_code == CMD_HEARTBEAT {
            write_heartbeat_ack(&fixed, &mut dst);
        } else {
            let call = read_request(content(&fixed, request)).unwrap();
            assert_eq!(call.method, b"echo");
            let arg = call.arg.unwrap();
            write_echo_response(&fixed, &[tag.as_bytes(), b":", &arg], &mut dst);
        }
        dst.to_vec()
    }

    #[test]
    fn requests_are_the_bytes_sofa_rpc_node_sends() {
        assert_eq!(request(Version::V1), hex(V1_ECHO_REQUEST));
        assert_eq!(request(Version::V2 { crc: true }), hex(V2_CRC_ECHO_REQUEST));
    }

    #[test]
    fn the_server_answers_as_sofa_rpc_node_does() {
        assert_eq!(answer(&hex(V1_ECHO_REQUEST), "cap"), hex(V1_ECHO_RESPONSE));
        assert_eq!(
            answer(&hex(V2_CRC_ECHO_REQUEST), "cap"),
            hex(V2_CRC_ECHO_RESPONSE)
        );
        assert_eq!(answer(&hex(V1_HEARTBEAT), "cap"), hex(V1_HEARTBEAT_ACK));
        assert_eq!(
            answer(&hex(V2_CRC_HEARTBEAT), "cap"),
            hex(V2_CRC_HEARTBEAT_ACK)
        );
    }

    #[test]
    fn responses_are_read_back() {
        let raw = hex(V1_ECHO_RESPONSE);
        let (fixed, _) = next_frame(&raw, 1 << 20).unwrap().unwrap();
        let mut out = Vec::new();
        read_response(content(&fixed, &raw), &mut out).unwrap();
        assert_eq!(out, b"cap:hi-0");
    }

    #[test]
    fn long_and_non_ascii_strings_round_trip() {
        for arg in [
            "x".repeat(31),
            "y".repeat(32),
            "é".repeat(1000),
            "z".repeat(70_000),
        ] {
            let t = RequestTemplate::new("s:1.0", "echo", Version::V1, 3000);
            let mut req = BytesMut::new();
            t.write(7, &arg, &mut req);
            let resp = answer(&req, "t");
            let (fixed, _) = next_frame(&resp, 1 << 20).unwrap().unwrap();
            assert_eq!(fixed.id, 7);
            let mut out = Vec::new();
            read_response(content(&fixed, &resp), &mut out).unwrap();
            assert_eq!(out, format!("t:{arg}").as_bytes());
        }
    }

    #[test]
    fn a_crc_mismatch_is_an_error() {
        let mut raw = hex(V2_CRC_ECHO_RESPONSE);
        let n = raw.len();
        raw[n - 1] ^= 1;
        assert!(next_frame(&raw, 1 << 20).is_err());
    }
}
