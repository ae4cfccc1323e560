//! One RBAC decision: the enforced rules, the shadow rules, their counters and logs. Shared
//! by the network filter and the stream filter.
//!
//! Counters (under the filter's scope): `rbac.allowed` / `rbac.denied` when `rules` are set,
//! `rbac.shadow_allowed` / `rbac.shadow_denied` when `shadow_rules` are. A shadow result is
//! logged at info (naming the policy and the would-be verdict: shadow mode exists to be
//! read); an enforced denial at debug, so a client hammering a denied path cannot flood the
//! log (the counter shows it).

use std::sync::Arc;

use sluice_stats::{Counter, Scope};
use tracing::{debug, info};

use super::config::{Action, RbacConfig};
use super::engine::{Engine, Input};

pub struct Rbac {
    rules: Option<Engine>,
    shadow: Option<Engine>,
    /// Names the filter in logs (its counter prefix).
    name: String,
    allowed: Arc<Counter>,
    denied: Arc<Counter>,
    shadow_allowed: Arc<Counter>,
    shadow_denied: Arc<Counter>,
}

impl Rbac {
    /// `scope` is where the `rbac.*` counters go.
    pub fn build(config: &RbacConfig, scope: &Scope) -> Result<Rbac, String> {
        let compile = |rules: &Option<_>, key: &str| match rules {
            Some(r) => Engine::compile(r)
                .map(Some)
                .map_err(|e| format!("{key}: {e}")),
            None => Ok(None),
        };
        let rbac = scope.scope("rbac");
        Ok(Rbac {
            rules: compile(&config.rules, "rules")?,
            shadow: compile(&config.shadow_rules, "shadow_rules")?,
            name: rbac.prefix().trim_end_matches('.').to_string(),
            allowed: rbac.counter("allowed"),
            denied: rbac.counter("denied"),
            shadow_allowed: rbac.counter("shadow_allowed"),
            shadow_denied: rbac.counter("shadow_denied"),
        })
    }

    /// Whether the connection or request may go on.
    pub fn allows(&self, input: &Input<'_>) -> bool {
        if let Some(shadow) = &self.shadow {
            let d = shadow.evaluate(input);
            if d.allowed {
                self.shadow_allowed.inc();
            } else {
                self.shadow_denied.inc();
            }
            info!(
                rbac = %self.name,
                peer = %input.conn.peer,
                path = input.request.map(|r| r.path()).unwrap_or(""),
                shadow_policy = d.policy.unwrap_or("none"),
                shadow_action = action_name(shadow.action()),
                shadow_verdict = if d.allowed { "allowed" } else { "denied" },
                "rbac shadow rules evaluated"
            );
        }
        let Some(rules) = &self.rules else {
            return true;
        };
        let d = rules.evaluate(input);
        if d.allowed {
            self.allowed.inc();
        } else {
            self.denied.inc();
            debug!(
                rbac = %self.name,
                peer = %input.conn.peer,
                path = input.request.map(|r| r.path()).unwrap_or(""),
                policy = d.policy.unwrap_or("none"),
                action = action_name(rules.action()),
                "rbac denied"
            );
        }
        d.allowed
    }
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::Allow => "ALLOW",
        Action::Deny => "DENY",
    }
}
