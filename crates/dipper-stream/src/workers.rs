//! Scoring threads. Each partition is pinned to one worker, so its batches are scored and returned
//! in order; every queue is bounded and the engine never blocks on a full one (it keeps the batch in
//! the partition's backlog and pauses the partition instead), so a slow model turns into paused
//! partitions, not into memory growth or a missed `max.poll.interval`.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};

use crate::score::{Batch, Scored, Scorer};
use crate::swap::PlanCell;
use crate::transport::TopicPartition;

/// Batches queued per worker before the engine holds further ones back.
const QUEUE_PER_WORKER: usize = 64;

/// A fixed set of scoring threads.
pub struct WorkerPool {
    jobs: Vec<Sender<Batch>>,
    results: Receiver<Result<Scored, String>>,
    threads: Vec<JoinHandle<()>>,
}

impl WorkerPool {
    pub fn new(plan: Arc<PlanCell>, workers: usize, name: &str) -> std::io::Result<Self> {
        let workers = workers.max(1);
        let (result_tx, results) = bounded(QUEUE_PER_WORKER * workers);
        let mut jobs = Vec::with_capacity(workers);
        let mut threads = Vec::with_capacity(workers);
        for i in 0..workers {
            let (tx, rx) = bounded::<Batch>(QUEUE_PER_WORKER);
            let result_tx = result_tx.clone();
            let mut scorer = Scorer::following(plan.clone());
            let handle = std::thread::Builder::new()
                .name(format!("{name}-score-{i}"))
                .spawn(move || {
                    for batch in rx {
                        // Scoring never panics on input; a panic is a bug. Report it so the engine
                        // stops with an error instead of waiting forever for this batch.
                        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            scorer.score(batch)
                        }))
                        .map_err(|p| panic_message(&*p));
                        let failed = result.is_err();
                        if result_tx.send(result).is_err() || failed {
                            break;
                        }
                    }
                })?;
            jobs.push(tx);
            threads.push(handle);
        }
        Ok(WorkerPool {
            jobs,
            results,
            threads,
        })
    }

    fn worker_of(&self, tp: &TopicPartition) -> usize {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        tp.hash(&mut h);
        (h.finish() % self.jobs.len() as u64) as usize
    }

    /// Queues a batch; gives it back when the worker's queue is full.
    pub fn try_submit(&self, batch: Batch) -> Result<(), Batch> {
        let w = self.worker_of(&batch.tp);
        match self.jobs[w].try_send(batch) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(b)) | Err(TrySendError::Disconnected(b)) => Err(b),
        }
    }

    /// A finished batch (or the panic message of a worker that failed), waiting at most `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Result<Scored, String>> {
        if timeout.is_zero() {
            return self.results.try_recv().ok();
        }
        match self.results.recv_timeout(timeout) {
            Ok(s) => Some(s),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.jobs.clear();
        // Unblock workers waiting to hand in results, then join them.
        while self.results.try_recv().is_ok() {}
        for t in self.threads.drain(..) {
            while !t.is_finished() {
                while self.results.try_recv().is_ok() {}
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = t.join();
        }
    }
}
