//! Workers: claim → run → record loops that drain queues kept in the database.

pub mod email;
pub mod scheduler;
pub mod webhooks;

use std::future::Future;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// What wakes a worker early, and how often it may: writes that wake a worker come in streams,
/// and each pass that finds nothing costs the database queries of its own.
pub(crate) struct Wake<'a> {
    pub notify: &'a Notify,
    /// The least time from the start of a pass that found nothing to a pass a wake starts.
    pub at_most_every: Duration,
}

/// Runs `pass` until `shutdown` resolves; a pass in flight finishes first. After a pass that
/// found work (`Ok(true)`) the next one starts at once; otherwise the loop waits for the poll
/// interval, or for `wake`.
pub(crate) async fn run_passes<F, Fut>(
    worker: &'static str,
    shutdown: impl Future<Output = ()>,
    poll_interval: Duration,
    wake: Option<Wake<'_>>,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    tokio::pin!(shutdown);
    loop {
        // Looked at before every pass, also while busy, so a stop is never starved.
        tokio::select! {
            biased;
            () = &mut shutdown => return,
            () = std::future::ready(()) => {}
        }
        let started = Instant::now();
        let busy = pass().await.unwrap_or_else(|err| {
            tracing::error!(error = %err, worker, "worker pass failed; retrying shortly");
            false
        });
        if busy {
            continue;
        }
        let woken = async {
            match &wake {
                Some(wake) => {
                    wake.notify.notified().await;
                    tokio::time::sleep_until(started + wake.at_most_every).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = &mut shutdown => return,
            () = woken => {}
            () = tokio::time::sleep(poll_interval) => {}
        }
    }
}
