//! Which routes of a large virtual host can match a path, found by walking the path once
//! through a byte trie of the routes' literal prefixes, instead of trying every route.
//!
//! Each route has a literal every path it accepts starts with: its prefix, its exact path, or
//! nothing (a regex), then it is a candidate for every path. Walking a path through the trie of
//! literals collects the routes whose literal the path starts with; merged with the literal-less
//! routes in config order, they are tried in turn, so the first match is the first match in the
//! virtual host, as a scan would find. Literals and paths are compared lower-cased, which keeps
//! case-insensitive routes findable; a case-sensitive route found that way still runs its own
//! full match.

use sluice_config::route::{PathMatch, Route};

/// Below this many routes a plain scan is as fast as the walk.
pub(crate) const MIN_ROUTES: usize = 16;

/// Candidates held on the stack before spilling to the heap.
const INLINE: usize = 32;

#[derive(Debug)]
pub(crate) struct PrefixIndex {
    /// `nodes[0]` is the root (the empty literal).
    nodes: Vec<Node>,
    /// Routes with no literal, in order.
    anywhere: Box<[u32]>,
}

#[derive(Debug, Default)]
struct Node {
    /// Sorted by byte.
    children: Vec<(u8, u32)>,
    /// Routes whose literal ends here, in order.
    routes: Vec<u32>,
}

impl PrefixIndex {
    pub(crate) fn new(routes: &[Route]) -> PrefixIndex {
        let mut index = PrefixIndex {
            nodes: vec![Node::default()],
            anywhere: Box::default(),
        };
        let mut anywhere = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            let i = i as u32;
            match literal(&route.matcher.path) {
                Some(lit) if !lit.is_empty() => index.insert(lit, i),
                _ => anywhere.push(i),
            }
        }
        index.anywhere = anywhere.into();
        index
    }

    fn insert(&mut self, literal: &str, route: u32) {
        let mut at = 0usize;
        for b in literal.bytes().map(|b| b.to_ascii_lowercase()) {
            let children = &self.nodes[at].children;
            at = match children.binary_search_by_key(&b, |c| c.0) {
                Ok(k) => children[k].1 as usize,
                Err(k) => {
                    let next = self.nodes.len();
                    self.nodes.push(Node::default());
                    self.nodes[at].children.insert(k, (b, next as u32));
                    next
                }
            };
        }
        self.nodes[at].routes.push(route);
    }

    /// Calls `visit` with the indices of the routes that can match `path`, in config order,
    /// until it returns `Some`.
    pub(crate) fn find<T>(&self, path: &str, mut visit: impl FnMut(u32) -> Option<T>) -> Option<T> {
        let mut inline = [0u32; INLINE];
        let mut len = 0;
        let mut spilled: Vec<u32> = Vec::new();
        let mut at = 0usize;
        for b in path.bytes().map(|b| b.to_ascii_lowercase()) {
            let children = &self.nodes[at].children;
            match children.binary_search_by_key(&b, |c| c.0) {
                Ok(k) => at = children[k].1 as usize,
                Err(_) => break,
            }
            for &r in &self.nodes[at].routes {
                if len < INLINE {
                    inline[len] = r;
                    len += 1;
                } else {
                    spilled.push(r);
                }
            }
        }
        let found: &mut [u32] = if spilled.is_empty() {
            &mut inline[..len]
        } else {
            spilled.extend_from_slice(&inline[..len]);
            &mut spilled
        };
        found.sort_unstable();
        // Merge the two ordered lists.
        let (mut a, mut b) = (found.iter().peekable(), self.anywhere.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&x), Some(&&y)) if x < y => a.next(),
                (Some(_), Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => return None,
            };
            if let Some(hit) = next.and_then(|&r| visit(r)) {
                return Some(hit);
            }
        }
    }
}

/// What every path this match accepts starts with, if anything useful.
fn literal(m: &PathMatch) -> Option<&str> {
    match m {
        PathMatch::Prefix(prefix) => Some(prefix),
        PathMatch::Exact(path) => Some(path),
        PathMatch::Regex(_) => None,
    }
}
