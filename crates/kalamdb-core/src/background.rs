//! Background work on threads of its own, below the CPU priority of
//! requests.
//!
//! On two cores, a flush that takes a core for tens of milliseconds puts
//! every request queued behind it that much later: under a mixed load with
//! a small flush policy, the flushes alone took p99 from 18 ms to 60-70 ms.
//! A flush is not latency-bound (its rows are readable where they are), so
//! it runs at a lower priority (nice +10, as the kernel's scheduler
//! weighs it: about a tenth of a request thread's share while both want
//! the CPU, all of an idle core otherwise). The hot-tier budget still
//! bounds what waits for it: past the budget, writes are refused.
//!
//! A thread of its own, not tokio's blocking pool: a thread's priority
//! cannot be raised again without privileges, and the pool's threads go on
//! to serve requests.

use crate::error::{CoreError, Result};

/// How much lower than the server's own priority background work runs.
const NICE: i32 = 10;

/// Runs `work` on a new low-priority thread named `name` and waits for it.
pub async fn run<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            lower_priority();
            let _ = tx.send(work());
        })
        .map_err(|e| CoreError::Internal(format!("cannot start a {name} thread: {e}")))?;
    rx.await.map_err(|_| {
        CoreError::Internal(format!(
            "the {name} thread ended without a result (it panicked)"
        ))
    })?
}

/// Starts `work` on a new thread named `name`, a helper of the background
/// thread calling this (its result is joined). The helper keeps the
/// caller's priority, which Linux threads inherit: lowered again, it ran
/// at the floor (nice 19) behind its own caller, and a one-user flush of a
/// million rows, whose build and encode helpers want about as much CPU as
/// its reading thread, spread from 0.30 to 0.43 s (0.30 to 0.35 s at
/// the caller's priority).
pub fn spawn<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<T>> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(work)
        .map_err(|e| CoreError::Internal(format!("cannot start a {name} thread: {e}")))
}

/// Lowers the calling thread's priority; best effort (a failure leaves it
/// at the server's priority, which is only slower for requests).
fn lower_priority() {
    // On Linux a thread id names one thread: only this one changes.
    let me = Some(rustix::thread::gettid());
    let lowered = rustix::process::getpriority_process(me)
        .and_then(|now| rustix::process::setpriority_process(me, (now + NICE).min(19)));
    if let Err(error) = lowered {
        tracing::debug!(%error, "cannot lower a background thread's priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own_nice() -> i32 {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()
    }

    #[tokio::test]
    async fn work_runs_below_the_callers_priority_and_returns_its_result() {
        let caller = own_nice();
        let (nice, name) = run("kalamdb-test", || {
            Ok((own_nice(), std::thread::current().name().map(String::from)))
        })
        .await
        .unwrap();
        assert_eq!(nice, (caller + NICE).min(19));
        assert_eq!(name.as_deref(), Some("kalamdb-test"));
        assert_eq!(own_nice(), caller, "the caller's thread is unchanged");
        let err = run::<()>("kalamdb-test", || Err(CoreError::Internal("no".into())))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no"), "{err}");
        let err = run::<()>("kalamdb-test", || panic!("boom"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("panicked"), "{err}");
    }
}
