//! The server's background reconciler: settles pending top-ups at start and then every
//! `reconcile_interval_s`, on its own thread (the work is blocking: SQLite and HTTP).

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::Topups;

/// Stops the reconciler when dropped (without waiting for a pass in progress).
pub struct Reconciler {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Reconciler {
    /// Stops and waits for the thread (at most one pass in progress).
    pub fn stop(mut self) {
        self.signal();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Lets the reconciler run for the rest of the process's life.
    pub fn detach(mut self) {
        self.thread.take();
        std::mem::forget(self);
    }

    fn signal(&self) {
        let (lock, cv) = &*self.stop;
        if let Ok(mut s) = lock.lock() {
            *s = true;
        }
        cv.notify_all();
    }
}

impl Drop for Reconciler {
    fn drop(&mut self) {
        self.signal();
    }
}

/// Starts the reconciler thread; the first pass runs at once.
pub fn spawn(topups: Arc<Topups>, interval: Duration) -> std::io::Result<Reconciler> {
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("topup-reconciler".into())
        .spawn(move || {
            let (lock, cv) = &*flag;
            loop {
                let report = topups.reconcile();
                if report.still_pending > 0 || report.unreadable > 0 {
                    tracing::warn!(%report, "top-ups still pending after reconciliation");
                }
                let Ok(guard) = lock.lock() else { return };
                let Ok((guard, _)) = cv.wait_timeout_while(guard, interval, |stopped| !*stopped)
                else {
                    return;
                };
                if *guard {
                    return;
                }
            }
        })?;
    Ok(Reconciler {
        stop,
        thread: Some(thread),
    })
}
