//! A byte trie answering one question: of the stored keys that are a *proper* prefix of this
//! input, which is the longest?
//!
//! Wildcard domains need exactly that. `*.example.com` is stored reversed (`moc.elpmaxe.`)
//! and a host is walked from its last byte, so the deepest stored key met is the longest
//! matching suffix; `example.*` is stored as is and walked forward. "Proper" because Envoy's
//! `*` must stand for at least one character: `*.example.com` does not match `.example.com`.
//!
//! A lookup is one pass over the host's bytes, whatever the number of virtual hosts, and it
//! consumes an iterator so the caller can lower-case on the fly instead of allocating. Keys
//! can start anywhere (`*-bar.example.com` is legal), which is why this is per byte rather
//! than per label.

#[derive(Debug)]
pub(crate) struct LongestPrefixTrie {
    /// `nodes[0]` is the root (the empty key). Children refer to nodes by index, which keeps
    /// the whole trie in one allocation-friendly vector without reference cycles.
    nodes: Vec<Node>,
}

#[derive(Debug, Default)]
struct Node {
    /// Sorted by byte so a step is a binary search. Domain tries are sparse (a few children
    /// per node), so a sorted vector is smaller than a 256-slot table and as fast.
    children: Vec<(u8, usize)>,
    value: Option<usize>,
}

impl Default for LongestPrefixTrie {
    fn default() -> Self {
        LongestPrefixTrie {
            nodes: vec![Node::default()],
        }
    }
}

impl LongestPrefixTrie {
    /// Stores `value` under `key`. If the key is already stored, keeps the old value and
    /// returns it as the error so the caller can report both owners.
    pub(crate) fn insert(
        &mut self,
        key: impl IntoIterator<Item = u8>,
        value: usize,
    ) -> Result<(), usize> {
        let mut node = 0;
        for byte in key {
            node = self.child_or_insert(node, byte);
        }
        match self.nodes.get_mut(node) {
            Some(Node {
                value: Some(existing),
                ..
            }) => Err(*existing),
            Some(n) => {
                n.value = Some(value);
                Ok(())
            }
            // Unreachable: `node` is the root or was just pushed.
            None => Ok(()),
        }
    }

    fn child_or_insert(&mut self, node: usize, byte: u8) -> usize {
        let next_index = self.nodes.len();
        let Some(n) = self.nodes.get_mut(node) else {
            return node;
        };
        match n.children.binary_search_by_key(&byte, |&(b, _)| b) {
            Ok(i) => n.children.get(i).map_or(node, |&(_, child)| child),
            Err(i) => {
                n.children.insert(i, (byte, next_index));
                self.nodes.push(Node::default());
                next_index
            }
        }
    }

    /// The value of the longest stored key that is a proper prefix of `input` (at least one
    /// byte of the input left after it).
    pub(crate) fn longest_proper_prefix(
        &self,
        input: impl IntoIterator<Item = u8>,
    ) -> Option<usize> {
        let mut best = None;
        let mut node = 0;
        for byte in input {
            let Some(n) = self.nodes.get(node) else {
                return best;
            };
            // `byte` is still unconsumed here, so the key ending at `node` is proper.
            if n.value.is_some() {
                best = n.value;
            }
            match n.children.binary_search_by_key(&byte, |&(b, _)| b) {
                Ok(i) => match n.children.get(i) {
                    Some(&(_, child)) => node = child,
                    None => return best,
                },
                Err(_) => return best,
            }
        }
        best
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.nodes.len() == 1 && self.nodes.first().is_some_and(|root| root.value.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trie(keys: &[&str]) -> LongestPrefixTrie {
        let mut t = LongestPrefixTrie::default();
        for (i, k) in keys.iter().enumerate() {
            t.insert(k.bytes(), i).unwrap();
        }
        t
    }

    #[test]
    fn longest_proper_prefix_wins() {
        let t = trie(&["ab", "abcd", "x"]);
        assert_eq!(t.longest_proper_prefix("abcde".bytes()), Some(1));
        assert_eq!(t.longest_proper_prefix("abc".bytes()), Some(0));
        assert_eq!(t.longest_proper_prefix("abzzz".bytes()), Some(0));
        assert_eq!(t.longest_proper_prefix("xy".bytes()), Some(2));
    }

    #[test]
    fn key_equal_to_input_is_not_proper() {
        let t = trie(&["ab", "abcd"]);
        assert_eq!(t.longest_proper_prefix("abcd".bytes()), Some(0));
        assert_eq!(t.longest_proper_prefix("ab".bytes()), None);
        assert_eq!(t.longest_proper_prefix("".bytes()), None);
    }

    #[test]
    fn no_match() {
        let t = trie(&["ab"]);
        assert_eq!(t.longest_proper_prefix("a".bytes()), None);
        assert_eq!(t.longest_proper_prefix("ba".bytes()), None);
        assert_eq!(
            LongestPrefixTrie::default().longest_proper_prefix("a".bytes()),
            None
        );
    }

    #[test]
    fn duplicate_key_reports_first_owner() {
        let mut t = trie(&["ab", "cd"]);
        assert_eq!(t.insert("cd".bytes(), 9), Err(1));
        assert_eq!(t.longest_proper_prefix("cde".bytes()), Some(1));
    }

    #[test]
    fn emptiness() {
        assert!(LongestPrefixTrie::default().is_empty());
        assert!(!trie(&["a"]).is_empty());
    }
}
