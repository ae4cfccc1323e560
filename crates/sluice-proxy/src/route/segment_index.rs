//! Which routes of a virtual host can match a path, looked up by the path's first segment, so
//! a large virtual host is not tried route by route.
//!
//! A route whose path match pins the first segment (an exact path, or a prefix that runs past
//! the first segment's closing `/`, such as `/api/`) can only match paths with that segment;
//! every other route (a regex, `/`, a prefix like `/ap`) may match any path. Each segment's
//! list holds its own routes and all the others, merged in config order, so the first match in
//! the list is the first match in the virtual host, as without the index. Keys are lower-cased,
//! which keeps case-insensitive routes findable; a case-sensitive route found that way still
//! runs its own full match.

use std::collections::HashMap;

use sluice_config::route::{PathMatch, Route};

/// Below this many routes a plain scan is as fast as a lookup.
pub(crate) const MIN_ROUTES: usize = 16;

#[derive(Debug, Default)]
pub(crate) struct SegmentIndex {
    by_segment: HashMap<Box<str>, Box<[u32]>>,
    /// Routes that do not pin a first segment, for paths whose segment has no entry.
    others: Box<[u32]>,
}

impl SegmentIndex {
    pub(crate) fn new(routes: &[Route]) -> SegmentIndex {
        let pins: Vec<Option<String>> = routes
            .iter()
            .map(|r| pinned_segment(&r.matcher.path).map(|s| s.to_ascii_lowercase()))
            .collect();
        let others: Box<[u32]> = (0..routes.len())
            .filter(|&i| pins[i].is_none())
            .map(|i| i as u32)
            .collect();
        let mut by_segment: HashMap<Box<str>, Box<[u32]>> = HashMap::new();
        for segment in pins.iter().flatten() {
            if by_segment.contains_key(segment.as_str()) {
                continue;
            }
            let list = (0..routes.len())
                .filter(|&i| pins[i].as_ref().is_none_or(|p| p == segment))
                .map(|i| i as u32)
                .collect();
            by_segment.insert(segment.as_str().into(), list);
        }
        SegmentIndex { by_segment, others }
    }

    /// The routes (indices, in order) that can match `path`.
    pub(crate) fn candidates(&self, path: &str) -> &[u32] {
        let segment = first_segment(path);
        let found = if segment.bytes().any(|b| b.is_ascii_uppercase()) {
            self.by_segment.get(segment.to_ascii_lowercase().as_str())
        } else {
            self.by_segment.get(segment)
        };
        found.map_or(&self.others, |list| list)
    }
}

/// The first segment of `path` (`/api/v1` -> `api`; `/` -> ``).
fn first_segment(path: &str) -> &str {
    let rest = path.strip_prefix('/').unwrap_or(path);
    rest.split('/').next().unwrap_or("")
}

/// The first segment every path this match accepts starts with, if there is one.
fn pinned_segment(m: &PathMatch) -> Option<&str> {
    match m {
        PathMatch::Exact(path) => path.starts_with('/').then(|| first_segment(path)),
        // `/api/...`: the segment is closed by a `/` inside the prefix.
        PathMatch::Prefix(prefix) => {
            let rest = prefix.strip_prefix('/')?;
            let end = rest.find('/')?;
            Some(&rest[..end])
        }
        PathMatch::Regex(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_segments() {
        assert_eq!(
            pinned_segment(&PathMatch::Prefix("/api/".into())),
            Some("api")
        );
        assert_eq!(
            pinned_segment(&PathMatch::Prefix("/api/v1".into())),
            Some("api")
        );
        assert_eq!(pinned_segment(&PathMatch::Prefix("/api".into())), None);
        assert_eq!(pinned_segment(&PathMatch::Prefix("/".into())), None);
        assert_eq!(pinned_segment(&PathMatch::Prefix("".into())), None);
        assert_eq!(pinned_segment(&PathMatch::Exact("/a".into())), Some("a"));
        assert_eq!(pinned_segment(&PathMatch::Exact("/".into())), Some(""));
        assert_eq!(pinned_segment(&PathMatch::Regex("/a/.*".into())), None);
        assert_eq!(first_segment("/a/b"), "a");
        assert_eq!(first_segment("/a"), "a");
        assert_eq!(first_segment("/"), "");
    }
}
