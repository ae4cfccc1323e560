//! Response-code counters: `<prefix>_2xx` (tag `envoy.response_code_class=2`) and
//! `<prefix>_200` (tag `envoy.response_code=200`), as Envoy counts upstream and downstream
//! responses. Per-code counters are made on first use, so only codes that happened show.

use std::sync::{Arc, OnceLock};

use crate::name::tag;
use crate::{store, Counter, Scope};

/// `<prefix>_1xx` .. `<prefix>_5xx`, made up front.
#[derive(Debug)]
pub struct CodeClasses([Arc<Counter>; 5]);

impl CodeClasses {
    pub fn new(scope: &Scope, prefix: &str) -> CodeClasses {
        CodeClasses(std::array::from_fn(|i| {
            let class = (i + 1).to_string();
            store().counter_named(scope.name_tagged(
                &format!("{prefix}_{class}xx"),
                &format!("{prefix}_xx"),
                tag::RESPONSE_CODE_CLASS,
                &class,
            ))
        }))
    }

    /// Counts `status` in its class; statuses outside 100..=599 are not counted.
    #[inline]
    pub fn record(&self, status: u16) {
        if let Some(c) = (status / 100)
            .checked_sub(1)
            .and_then(|i| self.0.get(usize::from(i)))
        {
            c.inc();
        }
    }
}

/// The classes and each code: Envoy's `upstream_rq_2xx` and `upstream_rq_200`.
pub struct ResponseCodes {
    scope: Scope,
    prefix: Box<str>,
    classes: CodeClasses,
    codes: Box<[OnceLock<Arc<Counter>>]>,
}

impl std::fmt::Debug for ResponseCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCodes")
            .field("scope", &self.scope.prefix())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl ResponseCodes {
    pub fn new(scope: &Scope, prefix: &str) -> ResponseCodes {
        ResponseCodes {
            scope: scope.clone(),
            prefix: prefix.into(),
            classes: CodeClasses::new(scope, prefix),
            codes: (100..600).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Counts `status` in its class and as itself (the code's counter is made the first
    /// time; after that this allocates nothing).
    #[inline]
    pub fn record(&self, status: u16) {
        self.classes.record(status);
        let Some(slot) = usize::from(status)
            .checked_sub(100)
            .and_then(|i| self.codes.get(i))
        else {
            return;
        };
        slot.get_or_init(|| {
            let code = status.to_string();
            store().counter_named(self.scope.name_tagged(
                &format!("{}_{code}", self.prefix),
                &self.prefix,
                tag::RESPONSE_CODE,
                &code,
            ))
        })
        .inc();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn codes_count_in_their_class_and_alone() {
        let codes = ResponseCodes::new(&Scope::cluster("codes_test"), "upstream_rq");
        codes.record(200);
        codes.record(204);
        codes.record(503);
        codes.record(42);
        codes.record(700);
        let v = |n: &str| store().value(&format!("cluster.codes_test.{n}"));
        assert_eq!(v("upstream_rq_2xx"), Some(2));
        assert_eq!(v("upstream_rq_5xx"), Some(1));
        assert_eq!(v("upstream_rq_1xx"), Some(0));
        assert_eq!(v("upstream_rq_200"), Some(1));
        assert_eq!(v("upstream_rq_503"), Some(1));
        assert_eq!(v("upstream_rq_404"), None);
        let snap = store().snapshot();
        let (name, _) = snap
            .counters
            .iter()
            .find(|(n, _)| &*n.flat == "cluster.codes_test.upstream_rq_200")
            .unwrap();
        assert_eq!(&*name.extracted, "cluster.upstream_rq");
        assert_eq!(name.tags[0].name, "envoy.response_code");
        assert_eq!(&*name.tags[0].value, "200");
    }
}
