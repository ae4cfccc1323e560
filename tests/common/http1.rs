//! Minimal HTTP/1.1 message reading, shared by the black-box suites' upstreams and clients.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::spawn_server;

/// Header fields in order, names lowercased.
pub type Headers = Vec<(String, String)>;

/// Reads a start line and headers (names lowercased). `Ok(None)` on a clean EOF before the
/// first byte of a message.
pub fn read_head(r: &mut impl BufRead) -> std::io::Result<Option<(String, Headers)>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let start = line.trim_end().to_string();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            return Ok(Some((start, headers)));
        }
        let (n, v) = l
            .split_once(':')
            .ok_or_else(|| std::io::Error::other(format!("bad header line {l:?}")))?;
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
}

pub fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Reads a body framed by `content-length` or chunked transfer coding (none: empty).
pub fn read_body(r: &mut impl BufRead, headers: &[(String, String)]) -> std::io::Result<Vec<u8>> {
    let chunked = get(headers, "transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut line = String::new();
            r.read_line(&mut line)?;
            let size = line.trim().split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| std::io::Error::other(format!("bad chunk size {line:?}")))?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    line.clear();
                    if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        return Ok(body);
                    }
                }
            }
            let at = body.len();
            body.resize(at + size, 0);
            r.read_exact(&mut body[at..])?;
            line.clear();
            r.read_line(&mut line)?;
        }
    }
    if let Some(len) = get(headers, "content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| std::io::Error::other("bad content-length"))?;
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    }
    Ok(body)
}

/// An upstream that answers each request with the bytes `script` gives for its request line
/// (`None`: close the connection without answering). Counts the connections it accepts.
pub fn scripted<F>(script: F) -> (SocketAddr, Arc<AtomicUsize>)
where
    F: Fn(&str, &Headers, &[u8]) -> Option<Vec<u8>> + Send + Sync + 'static,
{
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let addr = spawn_server(move |conn| {
        count.fetch_add(1, Ordering::SeqCst);
        let mut r = BufReader::new(conn);
        while let Ok(Some((line, headers))) = read_head(&mut r) {
            let Ok(body) = read_body(&mut r, &headers) else {
                return;
            };
            let Some(answer) = script(&line, &headers, &body) else {
                return;
            };
            if r.get_mut().write_all(&answer).is_err() {
                return;
            }
        }
    });
    (addr, accepted)
}
