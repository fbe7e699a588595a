//! State one download shares with its readers (blocking threads) and its async
//! waiters (`get_or_fetch`, `preload`).

use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use crate::error::CacheError;

/// Where a download stands, for async waiters.
#[derive(Debug, Clone)]
pub(crate) enum Phase {
    /// No response accepted yet.
    Starting,
    /// Bytes are arriving (or the partial already holds some): readers may read.
    Streaming,
    /// Finished: the verified file's final path, or why it failed.
    Done(Result<PathBuf, CacheError>),
}

/// What readers need to know, guarded by one mutex.
#[derive(Debug)]
pub(crate) struct State {
    /// Where the bytes are now: the partial file, then the final file.
    pub path: PathBuf,
    /// Bytes at the start of `path` that are written and readable.
    pub valid_len: u64,
    /// The expected total length, once known.
    pub total: Option<u64>,
    /// Bumped whenever bytes already readable were found to differ (the server's
    /// content changed under a resumed download).
    pub generation: u64,
    /// Offset from which the bytes of the latest generation differ.
    pub diverged_at: u64,
    /// Set once, at the end.
    pub outcome: Option<Result<PathBuf, CacheError>>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub id: String,
    state: Mutex<State>,
    cond: Condvar,
    phase: watch::Sender<Phase>,
    bytes: watch::Sender<u64>,
    /// Readers attached (a preload does not cancel a download someone listens to).
    pub readers: AtomicUsize,
    /// Preloads waiting on this download.
    pub preloaders: AtomicUsize,
}

impl Shared {
    pub fn new(id: &str, partial_path: PathBuf, total: Option<u64>) -> Self {
        Shared {
            id: id.to_owned(),
            state: Mutex::new(State {
                path: partial_path,
                valid_len: 0,
                total,
                generation: 0,
                diverged_at: 0,
                outcome: None,
            }),
            cond: Condvar::new(),
            phase: watch::Sender::new(Phase::Starting),
            bytes: watch::Sender::new(0),
            readers: AtomicUsize::new(0),
            preloaders: AtomicUsize::new(0),
        }
    }

    /// Locks the state. A poisoned lock (a panic elsewhere while holding it) still
    /// holds consistent numbers: every update is a plain assignment.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits on the condition variable for at most `timeout`.
    pub fn wait<'a>(
        &self,
        guard: MutexGuard<'a, State>,
        timeout: std::time::Duration,
    ) -> MutexGuard<'a, State> {
        match self.cond.wait_timeout(guard, timeout) {
            Ok((g, _)) => g,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }

    /// Publishes a change of the state to blocked readers and async waiters.
    pub fn notify(&self, valid_len: u64) {
        self.cond.notify_all();
        self.bytes.send_replace(valid_len);
    }

    pub fn set_streaming(&self) {
        self.phase.send_if_modified(|p| {
            if matches!(p, Phase::Starting) {
                *p = Phase::Streaming;
                true
            } else {
                false
            }
        });
    }

    pub fn set_total(&self, total: Option<u64>) {
        if total.is_some() {
            self.lock().total = total;
            self.cond.notify_all();
        }
    }

    /// Records the outcome, wakes everyone.
    pub fn finish(&self, outcome: Result<PathBuf, CacheError>) {
        {
            let mut st = self.lock();
            if let Ok(path) = &outcome {
                st.path = path.clone();
            }
            st.outcome = Some(outcome.clone());
        }
        self.cond.notify_all();
        self.phase.send_replace(Phase::Done(outcome));
    }

    pub fn phase(&self) -> watch::Receiver<Phase> {
        self.phase.subscribe()
    }

    pub fn bytes(&self) -> watch::Receiver<u64> {
        self.bytes.subscribe()
    }
}

/// Waits until the download has left `Starting`; returns its error if it failed
/// before any byte became readable.
pub(crate) async fn wait_started(shared: &Shared) -> Result<(), CacheError> {
    let mut rx = shared.phase();
    let phase = rx
        .wait_for(|p| !matches!(p, Phase::Starting))
        .await
        .map(|p| p.clone());
    match phase {
        Ok(Phase::Done(Err(e))) => Err(e),
        Ok(_) => Ok(()),
        // The sender lives in `shared`, which we hold: cannot be closed.
        Err(_) => Err(CacheError::Cancelled {
            id: shared.id.clone(),
        }),
    }
}

/// Waits until the download is done.
pub(crate) async fn wait_done(shared: &Shared) -> Result<PathBuf, CacheError> {
    let mut rx = shared.phase();
    let phase = rx
        .wait_for(|p| matches!(p, Phase::Done(_)))
        .await
        .map(|p| p.clone());
    match phase {
        Ok(Phase::Done(r)) => r,
        _ => Err(CacheError::Cancelled {
            id: shared.id.clone(),
        }),
    }
}
