//! A deadline timer that one task reuses for a sequence of deadlines, touching tokio's timer
//! wheel only when it must.
//!
//! A `tokio::time::timeout` per request registers a timer entry on its first pending poll
//! and removes it when dropped: about 900 instructions of a proxied keep-alive request,
//! nearly 4 % of the whole (measured with `bench/http_instructions.sh`). Requests on one
//! HTTP/1 connection come one after another with deadlines that mostly move forward, so one
//! timer per connection serves them all: while it is armed no later than the deadline asked
//! about, it is left alone; when it fires early it is moved to the deadline now in force; it
//! is moved earlier only when a shorter deadline comes along.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};

/// A timer for deadlines checked by one task (see the module doc). The shortcut that skips
/// polling an armed timer relies on the waker it holds being that task's.
#[derive(Default)]
pub struct LazyTimer {
    /// The timer, and the instant it is armed for.
    sleep: Option<(Pin<Box<Sleep>>, Instant)>,
}

impl LazyTimer {
    /// Whether `deadline` has passed; if not, the calling task is woken no later than at
    /// `deadline` (possibly earlier: a spurious wake-up, answered by polling again).
    pub fn poll_expired(&mut self, deadline: Instant, cx: &mut Context<'_>) -> bool {
        let (sleep, armed) = match &mut self.sleep {
            // Armed no later than `deadline`, with this task's waker from an earlier poll.
            Some((sleep, armed)) if *armed <= deadline && !sleep.is_elapsed() => return false,
            Some((sleep, armed)) => {
                if *armed > deadline {
                    sleep.as_mut().reset(deadline);
                    *armed = deadline;
                }
                (sleep, armed)
            }
            None => {
                let (sleep, armed) = self
                    .sleep
                    .insert((Box::pin(tokio::time::sleep_until(deadline)), deadline));
                (sleep, armed)
            }
        };
        loop {
            if sleep.as_mut().poll(cx).is_pending() {
                return false;
            }
            if Instant::now() >= deadline {
                return true;
            }
            sleep.as_mut().reset(deadline);
            *armed = deadline;
        }
    }

    /// `fut`, unless `deadline` passes first (then `None`). The future is borrowed pinned,
    /// not moved: a request's exchange is kilobytes of state.
    pub async fn within<F: Future>(
        &mut self,
        deadline: Instant,
        mut fut: Pin<&mut F>,
    ) -> Option<F::Output> {
        poll_fn(|cx| {
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(out));
            }
            if self.poll_expired(deadline, cx) {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::time::Duration;

    use super::*;

    /// A request that waits a little: enough to arm the timer.
    async fn brief() -> u8 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        1
    }

    #[tokio::test(start_paused = true)]
    async fn a_shorter_deadline_moves_the_timer_earlier() {
        let mut timer = LazyTimer::default();
        let start = Instant::now();
        assert_eq!(
            timer
                .within(start + Duration::from_secs(15), pin!(brief()))
                .await,
            Some(1)
        );
        let short = start + Duration::from_secs(1);
        let out = timer
            .within(short, pin!(std::future::pending::<()>()))
            .await;
        assert_eq!(out, None);
        assert_eq!(Instant::now(), short);
    }

    #[tokio::test(start_paused = true)]
    async fn an_early_firing_does_not_end_a_later_deadline() {
        let mut timer = LazyTimer::default();
        let start = Instant::now();
        // Armed for 2 s by a request that finished quickly.
        assert_eq!(
            timer
                .within(start + Duration::from_secs(2), pin!(brief()))
                .await,
            Some(1)
        );
        // The next request may run to 10 s and is done at 6 s: the 2 s firing must not end it.
        let done_at = start + Duration::from_secs(6);
        let out = timer
            .within(
                start + Duration::from_secs(10),
                pin!(tokio::time::sleep_until(done_at)),
            )
            .await;
        assert_eq!(out, Some(()));
        assert_eq!(Instant::now(), done_at);
        // And a request that outlives its deadline ends exactly there.
        let deadline = Instant::now() + Duration::from_secs(3);
        let out = timer
            .within(deadline, pin!(std::future::pending::<()>()))
            .await;
        assert_eq!(out, None);
        assert_eq!(Instant::now(), deadline);
    }
}
