//! `stat_prefix`: the name a proxy's metrics go under (`http.<stat_prefix>.`, Envoy's key),
//! the listener's name when unset, so two listeners never mix their counts by default.

use sluice_config::decode::{join, Cx, Fields};

/// Reads `stat_prefix`: `Some(None)` when absent, `None` (reported) when empty or not a
/// string.
pub fn decode(f: &mut Fields<'_>, path: &str, cx: &mut Cx) -> Option<Option<String>> {
    let line = f.line_of("stat_prefix");
    let prefix = f.optional::<String>("stat_prefix", cx).ok()?;
    if prefix
        .as_deref()
        .is_some_and(|p| p.is_empty() || p.contains('.'))
    {
        cx.error(
            line,
            &join(path, "stat_prefix"),
            "must be a non-empty name without dots (it becomes one part of metric names)",
        );
        return None;
    }
    Some(prefix)
}

/// The prefix in force: the configured one, or the listener's name.
pub fn or_listener<'a>(prefix: &'a Option<String>, listener: &'a str) -> &'a str {
    prefix.as_deref().unwrap_or(listener)
}
