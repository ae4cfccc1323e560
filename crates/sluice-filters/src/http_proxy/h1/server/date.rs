//! The `Date` header every response carries (RFC 9110 section 6.6.1), formatted once a second
//! per worker thread rather than once per response.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};

/// `Sun, 06 Nov 1994 08:49:37 GMT`
const LEN: usize = 29;

struct Cached {
    second: u64,
    text: [u8; LEN],
}

thread_local! {
    static CACHE: RefCell<Cached> = const { RefCell::new(Cached { second: u64::MAX, text: [b' '; LEN] }) };
}

/// Appends the current date in IMF-fixdate form.
pub fn put(out: &mut BytesMut) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.second != second {
            let text = httpdate::fmt_http_date(now);
            if text.len() == LEN {
                cache.text.copy_from_slice(text.as_bytes());
                cache.second = second;
            }
        }
        out.put_slice(&cache.text);
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_now() {
        let mut out = bytes::BytesMut::new();
        super::put(&mut out);
        let text = std::str::from_utf8(&out).unwrap();
        assert_eq!(text.len(), super::LEN);
        assert!(httpdate::parse_http_date(text).is_ok(), "{text}");
    }
}
