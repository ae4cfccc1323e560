//! A value made afresh whenever the secret material it was made with changes: session caches
//! and ticket keys that must not outlive the CA bundle or certificate they were made under.
//!
//! Material is compared by allocation (a rotation publishes a new `Arc`); the generation holds
//! the material it was made with, so a new one can never reuse its address.

use std::sync::Arc;

use arc_swap::ArcSwap;

/// What a value is bound to: one secret's current material, or a tuple of them.
pub(crate) trait Material {
    fn same(&self, other: &Self) -> bool;
}

impl<T> Material for Option<Arc<T>> {
    fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl<A: Material, B: Material> Material for (A, B) {
    fn same(&self, other: &Self) -> bool {
        self.0.same(&other.0) && self.1.same(&other.1)
    }
}

#[derive(Debug)]
pub(crate) struct Bound<K, V> {
    current: ArcSwap<(K, V)>,
}

impl<K: Material, V: Clone> Bound<K, V> {
    pub(crate) fn new(material: K, value: V) -> Self {
        Bound {
            current: ArcSwap::from_pointee((material, value)),
        }
    }

    /// The value of the last generation, whatever the material is now.
    pub(crate) fn last(&self) -> V {
        self.current.load().1.clone()
    }

    /// The value made with `now`; when the material changed, a new one from `make` (`None`
    /// when it cannot be made: the old one is not kept either).
    pub(crate) fn get(&self, now: K, make: impl FnOnce() -> Option<V>) -> Option<V> {
        let generation = self.current.load();
        if generation.0.same(&now) {
            return Some(generation.1.clone());
        }
        let value = make()?;
        self.current.store(Arc::new((now, value.clone())));
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_value_only_when_the_material_changes() {
        let a = Some(Arc::new(1));
        let bound = Bound::new(a.clone(), 10);
        assert_eq!(bound.get(a.clone(), || Some(11)), Some(10));
        // Equal content, new allocation: a rotation.
        let b = Some(Arc::new(1));
        assert_eq!(bound.get(b.clone(), || Some(12)), Some(12));
        assert_eq!(bound.get(b.clone(), || Some(13)), Some(12));
        assert_eq!(bound.get(None, || None), None);
        assert_eq!(bound.get(b, || Some(14)), Some(12));
    }
}
