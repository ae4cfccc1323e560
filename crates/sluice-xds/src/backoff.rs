//! Bounded exponential backoff with jitter, for reconnecting to a control plane without
//! hammering it when it is down.

use std::time::Duration;

#[derive(Debug)]
pub(crate) struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// The wait before the next try: the current step plus up to half of it at random
    /// (so many proxies do not reconnect in step), then the step doubles up to `max`.
    pub(crate) fn next_wait(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(self.max);
        step + step.mul_f64(fastrand::f64() / 2.0)
    }

    /// Back to the first step, after a stream that worked.
    pub(crate) fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_bound_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let waits: Vec<Duration> = (0..5).map(|_| b.next_wait()).collect();
        let bounds = [100, 200, 400, 400, 400];
        for (w, lo) in waits.iter().zip(bounds) {
            let lo = Duration::from_millis(lo);
            assert!(*w >= lo && *w <= lo + lo / 2, "{w:?} not in [{lo:?}, 1.5x]");
        }
        b.reset();
        assert!(b.next_wait() < Duration::from_millis(151));
    }
}
