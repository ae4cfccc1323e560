//! Process limits a proxy needs raised.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use tracing::{debug, warn};

/// Raises the soft open-file limit to the hard limit. Each proxied connection takes two file
/// descriptors, and the common default soft limit (1024) would cap a proxy at ~500
/// connections while the hard limit allows far more (Go programs, MOSN among them, do this
/// at start for the same reason).
pub fn raise_nofile() {
    let current = getrlimit(Resource::Nofile);
    let Some(hard) = current.maximum else {
        // Unlimited hard limit: leave the soft one; setting "infinity" is refused for NOFILE.
        return;
    };
    if current.current.is_some_and(|soft| soft >= hard) {
        return;
    }
    match setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        },
    ) {
        Ok(()) => debug!(limit = hard, "raised the open-file limit"),
        Err(e) => warn!(error = %e, limit = hard, "could not raise the open-file limit"),
    }
}
