//! A monotonic clock as nanoseconds in a `u64`, so instants fit in atomics. It follows
//! tokio's clock, which tests can pause and advance.

use std::sync::OnceLock;

use std::time::Duration;

use tokio::time::Instant;

/// A year before the first call: every later reading lies after it, even that of a test
/// runtime whose paused clock started before the first call.
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(|| {
        let now = Instant::now();
        now.checked_sub(Duration::from_secs(365 * 24 * 3600))
            .unwrap_or(now)
    })
}

/// Nanoseconds since [`base`]; never 0.
pub fn now_nanos() -> u64 {
    let since = Instant::now().saturating_duration_since(base());
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX).max(1)
}
