//! What the xDS client holds, for the admin API: per type the version last accepted, the
//! last rejection, and per resource its version and when it last changed.

use std::collections::BTreeMap;
use std::time::SystemTime;

use parking_lot::Mutex;

use crate::kind::Kind;

#[derive(Debug, Default)]
pub struct Status {
    inner: Mutex<BTreeMap<Kind, TypeStatus>>,
}

#[derive(Debug, Clone, Default)]
pub struct TypeStatus {
    /// `version_info` of the last accepted response (delta: `system_version_info`).
    pub version: String,
    /// The error of the last rejected response, until one is accepted.
    pub last_error: Option<String>,
    pub resources: BTreeMap<String, ResourceStatus>,
}

#[derive(Debug, Clone)]
pub struct ResourceStatus {
    pub version: String,
    pub updated: SystemTime,
}

impl Status {
    pub(crate) fn accepted(
        &self,
        kind: Kind,
        version: &str,
        resources: BTreeMap<String, ResourceStatus>,
    ) {
        let mut inner = self.inner.lock();
        let t = inner.entry(kind).or_default();
        t.version = version.to_string();
        t.last_error = None;
        t.resources = resources;
    }

    pub(crate) fn rejected(&self, kind: Kind, error: &str) {
        self.inner.lock().entry(kind).or_default().last_error = Some(error.to_string());
    }

    /// The version and update time of resource `name` of the type `short` (`lds`, `rds`,
    /// `cds`, `eds`).
    pub fn resource(&self, short: &str, name: &str) -> Option<ResourceStatus> {
        let inner = self.inner.lock();
        let kind = crate::kind::ALL.into_iter().find(|k| k.short() == short)?;
        inner.get(&kind)?.resources.get(name).cloned()
    }

    /// Every type's status, by short name.
    pub fn types(&self) -> Vec<(&'static str, TypeStatus)> {
        self.inner
            .lock()
            .iter()
            .map(|(k, t)| (k.short(), t.clone()))
            .collect()
    }
}
