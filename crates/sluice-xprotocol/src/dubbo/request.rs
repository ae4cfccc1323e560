//! A request body (hessian2): what Sluice reads from it, and how it rebuilds it with new
//! headers.
//!
//! ```text
//! dubbo version   string   "2.0.2"
//! service path    string   the interface, "com.example.Echo"
//! service version string   "1.0" (or null)
//! method name     string   "echo"
//! parameter types string   JVM descriptors, "Ljava/lang/String;I"
//! arguments       one value per descriptor entry (stepped over, never built)
//! attachments     map      string -> string (Dubbo 3 allows other values too)
//! ```
//!
//! Headers are the attachments that are a string key with a string, int, long or boolean
//! value (non-strings shown as text), in wire order; then, unless an attachment already has
//! the name, `path` and `interface` (the body's service path), `version` (the body's service
//! version, if any) and `method` (the body's method). Other attachments (null values,
//! objects, lists, non-string keys) are not headers: a rebuild copies them as they were.

use std::collections::HashMap;
use std::ops::Range;

use bytes::{Bytes, BytesMut};

use super::hessian::{self, Reader, Value};
use crate::headers::Headers;

/// The header names that come from the body's fixed fields when no attachment has them.
pub const PATH: &str = "path";
pub const INTERFACE: &str = "interface";
pub const VERSION: &str = "version";
pub const METHOD: &str = "method";

/// Where a request body's parts sit, and the fixed fields' values.
#[derive(Debug)]
pub struct Prefix {
    pub path: Option<Bytes>,
    pub version: Option<Bytes>,
    pub method: Option<Bytes>,
    /// The byte range of each of the dubbo version, path, version and method strings.
    spans: [Range<usize>; 4],
    /// From the parameter types to the end of the arguments: copied as is on a rebuild.
    types_and_args: Range<usize>,
    /// The attachments map's opening (`'H'`, or `'M'` and its type), empty for a null map.
    /// A rebuild keeps it: a type name there takes a slot in Hessian's type references.
    map_open: Range<usize>,
    /// Where the attachments map ends (anything after it is kept too).
    map_end: usize,
}

/// One attachments-map entry.
#[derive(Debug)]
pub struct Attachment {
    /// The key, when it is a string.
    pub key: Option<Bytes>,
    /// The value as header text, when it has one.
    pub text: Option<Bytes>,
    /// The byte ranges of the key and of the value.
    pub key_span: Range<usize>,
    pub value_span: Range<usize>,
}

impl Attachment {
    /// The entry as a header, if it can be one.
    pub fn header(&self) -> Option<(&Bytes, &Bytes)> {
        self.key.as_ref().zip(self.text.as_ref())
    }
}

/// Reads a request body, handing each attachment to `on_attachment`.
pub fn parse(
    body: &Bytes,
    mut on_attachment: impl FnMut(Attachment),
) -> Result<Prefix, hessian::Error> {
    let mut r = Reader::new(body);
    let mut spans: [Range<usize>; 4] = Default::default();
    let mut fields: [Option<Bytes>; 4] = Default::default();
    for (span, field) in spans.iter_mut().zip(fields.iter_mut()) {
        let start = r.position();
        *field = r.read_string()?;
        *span = start..r.position();
    }
    let [_, path, version, method] = fields;
    let types_start = r.position();
    let types = r.read_string()?.unwrap_or_default();
    for _ in 0..count_parameters(&types)? {
        r.skip_value()?;
    }
    let types_and_args = types_start..r.position();
    let map_start = r.position();
    let is_map = r.map_begin()?;
    let map_open = if is_map {
        map_start..r.position()
    } else {
        map_start..map_start
    };
    if is_map {
        while !r.at_map_end()? {
            let key_start = r.position();
            let key = r.read_value(1)?;
            let value_start = r.position();
            let value = r.read_value(1)?;
            on_attachment(Attachment {
                key: match key {
                    Value::Str(k) => Some(k),
                    _ => None,
                },
                text: match value {
                    Value::Str(v) => Some(v),
                    Value::Int(i) => Some(Bytes::from(i.to_string())),
                    Value::Bool(b) => Some(Bytes::from_static(if b { b"true" } else { b"false" })),
                    Value::Null | Value::Other => None,
                },
                key_span: key_start..value_start,
                value_span: value_start..r.position(),
            });
        }
    }
    Ok(Prefix {
        path,
        version,
        method,
        spans,
        types_and_args,
        map_open,
        map_end: r.position(),
    })
}

/// How many arguments a JVM parameter descriptor ("Ljava/lang/String;[IJ") lists.
fn count_parameters(desc: &[u8]) -> Result<usize, hessian::Error> {
    const BAD: hessian::Error = hessian::Error::Malformed("bad parameter types descriptor");
    let mut n = 0;
    let mut i = 0;
    while i < desc.len() {
        while desc.get(i) == Some(&b'[') {
            i += 1;
        }
        match desc.get(i) {
            Some(b'L') => {
                let semi = desc
                    .get(i..)
                    .and_then(|d| d.iter().position(|&b| b == b';'));
                i += semi.ok_or(BAD)? + 1;
            }
            Some(b'Z' | b'B' | b'C' | b'D' | b'F' | b'I' | b'J' | b'S') => i += 1,
            _ => return Err(BAD),
        }
        n += 1;
    }
    Ok(n)
}

/// The headers of a request: its attachments, then the body's fields no attachment names.
pub fn headers(body: &Bytes) -> Result<(Prefix, Headers), hessian::Error> {
    let mut headers = Headers::with_capacity(12);
    let prefix = parse(body, |a| {
        if let Some((k, v)) = a.header() {
            headers.push(k.clone(), v.clone());
        }
    })?;
    for (name, value) in prefix.defaults() {
        if let Some(v) = value {
            if headers.get(name).is_none() {
                headers.push(name, v.clone());
            }
        }
    }
    Ok((prefix, headers))
}

impl Prefix {
    /// The header each body field shows as when no attachment has the name.
    fn defaults(&self) -> [(&'static str, Option<&Bytes>); 4] {
        let version = self.version.as_ref().filter(|v| !v.is_empty());
        [
            (PATH, self.path.as_ref()),
            (INTERFACE, self.path.as_ref()),
            (VERSION, version),
            (METHOD, self.method.as_ref()),
        ]
    }
}

/// Rebuilds a request body for `headers`, from the `body` it was decoded from.
///
/// - A changed `path`, `version` or `method` header rewrites that field of the body too (a
///   provider finds the service by the attachments and calls the body's method).
/// - The parameter types and arguments are copied as they are.
/// - The new attachments map holds the attachments that are not headers (as they were, in
///   their order, so Hessian's back-references among them still hold), then every header in
///   its order: an unchanged one keeps its original bytes (and so its type), others are
///   written as strings. A header that only mirrors a body field (see the module doc) is left
///   out, and `method` never goes into the map.
pub fn rebuild(body: &Bytes, headers: &Headers, dst: &mut BytesMut) -> Result<(), hessian::Error> {
    let mut originals = Vec::new();
    let prefix = parse(body, |a| originals.push(a))?;
    let slice = |r: Range<usize>| body.get(r).unwrap_or_default();

    // What each field showed as when decoded: an attachment of that name, or the field.
    let shown = |name: &str| -> Option<&Bytes> {
        originals
            .iter()
            .find_map(|a| a.header().filter(|(k, _)| k.as_ref() == name.as_bytes()))
            .map(|(_, v)| v)
            .or_else(|| prefix.defaults().iter().find(|(n, _)| *n == name)?.1)
    };
    let [dubbo_version, path_span, version_span, method_span] = prefix.spans.clone();
    dst.extend_from_slice(slice(dubbo_version));
    for (name, span) in [
        (PATH, path_span),
        (VERSION, version_span),
        (METHOD, method_span),
    ] {
        match headers.get(name) {
            Some(new) if Some(new) != shown(name) => hessian::write_string(dst, new)?,
            _ => dst.extend_from_slice(slice(span)),
        }
    }
    dst.extend_from_slice(slice(prefix.types_and_args.clone()));

    match slice(prefix.map_open.clone()) {
        [] => dst.extend_from_slice(&[hessian::UNTYPED_MAP]),
        open => dst.extend_from_slice(open),
    }
    for a in originals.iter().filter(|a| a.header().is_none()) {
        dst.extend_from_slice(slice(a.key_span.start..a.value_span.end));
    }
    // Unchanged headers, by (key, value), to the original entries they came from (in reverse,
    // so `pop` takes the first): a linear pass, whatever the number of attachments.
    let mut unchanged: HashMap<(&[u8], &[u8]), Vec<&Attachment>> = HashMap::new();
    for a in originals.iter().rev() {
        if let Some((k, v)) = a.header() {
            unchanged.entry((k, v)).or_default().push(a);
        }
    }
    // A body field shows as a header only where no attachment header has its name.
    let is_attachment = |name: &str| {
        originals.iter().any(|a| {
            a.header()
                .is_some_and(|(k, _)| k.as_ref() == name.as_bytes())
        })
    };
    let mirrors: Vec<(&str, Option<&Bytes>)> = prefix
        .defaults()
        .into_iter()
        .filter(|(name, _)| !is_attachment(name))
        .collect();
    for (k, v) in headers.iter() {
        let mirror = mirrors.iter().find(|(n, _)| n.as_bytes() == k.as_ref());
        if let Some((name, field)) = mirror {
            if *name == METHOD || *field == Some(v) {
                continue;
            }
        }
        match unchanged
            .get_mut(&(k.as_ref(), v.as_ref()))
            .and_then(Vec::pop)
        {
            Some(a) => dst.extend_from_slice(slice(a.key_span.start..a.value_span.end)),
            None => {
                hessian::write_string(dst, k)?;
                hessian::write_string(dst, v)?;
            }
        }
    }
    dst.extend_from_slice(&[hessian::MAP_END]);
    dst.extend_from_slice(slice(prefix.map_end..body.len()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_count_parameters() {
        for (desc, n) in [
            ("", 0),
            ("Ljava/lang/String;", 1),
            ("I", 1),
            ("IJLjava/lang/String;[I[[Ljava/lang/Object;Z", 6),
        ] {
            assert_eq!(count_parameters(desc.as_bytes()), Ok(n), "{desc}");
        }
        for bad in ["Ljava/lang/String", "V", "[", "X"] {
            assert!(count_parameters(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
