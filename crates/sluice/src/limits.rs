//! Process limits a proxy needs raised, and the control thread's place behind the workers.

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

/// The nice value of the control thread (config updates, xDS, SDS, signals, the drain).
pub const CONTROL_NICE: i32 = 10;

/// Lowers the calling thread's scheduling priority to [`CONTROL_NICE`]. Called on the main
/// thread once the workers run (threads made later by it inherit the value): when a config
/// update (a big xDS push) and a worker want the same core, as in a one-core sidecar, the
/// worker gets about nine tenths of it, so the update takes longer instead of the requests.
pub fn lower_control_priority() {
    let tid = rustix::thread::gettid();
    match rustix::process::setpriority_process(Some(tid), CONTROL_NICE) {
        Ok(()) => debug!(
            nice = CONTROL_NICE,
            "control thread runs behind the workers"
        ),
        Err(e) => warn!(error = %e, "could not lower the control thread's priority"),
    }
}
