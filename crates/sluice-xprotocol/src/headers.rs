//! A frame's header map: the protocol's own key/value pairs, in wire order.
//!
//! RPC headers are few (a dozen) and looked up by a handful of names, so a vector beats a hash
//! map; keys and values are slices of the received frame (`Bytes`), not copies.

use bytes::Bytes;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(Bytes, Bytes)>,
}

impl Headers {
    pub fn new() -> Self {
        Headers::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Headers {
            entries: Vec::with_capacity(n),
        }
    }

    /// The first value under `name` (exact, case-sensitive: RPC header keys are).
    pub fn get(&self, name: &str) -> Option<&Bytes> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_ref() == name.as_bytes())
            .map(|(_, v)| v)
    }

    /// `get` as text, if the value is UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Appends a pair (a key may repeat on the wire; `get` sees the first).
    pub fn push(&mut self, name: impl Into<Bytes>, value: impl Into<Bytes>) {
        self.entries.push((name.into(), value.into()));
    }

    /// Replaces every value under `name` with one, or appends it.
    pub fn set(&mut self, name: &str, value: impl Into<Bytes>) {
        let value = value.into();
        let mut seen = false;
        self.entries.retain_mut(|(k, v)| {
            if k.as_ref() != name.as_bytes() {
                return true;
            }
            if seen {
                return false;
            }
            seen = true;
            *v = value.clone();
            true
        });
        if !seen {
            self.entries
                .push((Bytes::copy_from_slice(name.as_bytes()), value));
        }
    }

    /// Removes every value under `name`; whether there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|(k, _)| k.as_ref() != name.as_bytes());
        before != self.entries.len()
    }

    /// Removes every value whose name equals `name` ignoring ASCII case; whether there was
    /// one. (Route config names headers in lower case, as HTTP does.)
    pub fn remove_ignore_case(&mut self, name: &str) -> bool {
        let before = self.entries.len();
        self.entries
            .retain(|(k, _)| !k.eq_ignore_ascii_case(name.as_bytes()));
        before != self.entries.len()
    }

    /// Whether a value is there under `name`, ignoring ASCII case.
    pub fn contains_ignore_case(&self, name: &str) -> bool {
        self.entries
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_the_first_and_drops_repeats() {
        let mut h = Headers::new();
        h.push("a", "1");
        h.push("b", "2");
        h.push("a", "3");
        h.set("a", "x");
        assert_eq!(h.get_str("a"), Some("x"));
        assert_eq!(h.len(), 2);
        h.set("c", "y");
        assert_eq!(h.get_str("c"), Some("y"));
        assert!(h.remove("b"));
        assert!(!h.remove("b"));
        assert_eq!(h.get("b"), None);
        h.push("traceId", "1");
        assert!(h.contains_ignore_case("TRACEID") && !h.contains_ignore_case("trace"));
        assert!(h.remove_ignore_case("traceid"));
        assert!(!h.contains_ignore_case("traceId"));
    }
}
