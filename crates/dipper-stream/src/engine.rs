//! The engine: one loop over a [`Transport`] that polls, cuts per-partition micro-batches, scores
//! them (on worker threads or inline), sends every output, and commits on a cadence.
//!
//! Invariants it keeps:
//! - every consumed record yields exactly one output (prediction or dead letter) in the same unit of
//!   work as its position, so `in == out + dead-lettered` over committed units;
//! - a partition's results are applied in offset order (one worker per partition, FIFO queues);
//! - in-flight work is bounded: a partition with `max_in_flight_batches` batches queued and a full
//!   backlog is paused, and resumed once it drains;
//! - after an abort, revoke or rewind, results computed for the old assignment generation are
//!   dropped, because their records will be consumed again from the last committed position.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dipper_monitor::PipelineMetrics;
use tracing::{debug, info, warn};

use crate::error::StreamError;
use crate::score::{now_millis, Batch, Scored, Scorer};
use crate::swap::{PlanCell, SwapEvent};
use crate::transport::{
    AssignmentEvent, Committed, InRecord, OutRecord, TopicPartition, Transport,
};
use crate::workers::WorkerPool;
use crossbeam_channel::Receiver;

/// Engine settings (from the pipeline's `delivery` and `processing` sections).
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub batch_size: usize,
    pub max_in_flight_batches: usize,
    /// 0 scores on the engine thread.
    pub workers: usize,
    pub commit_interval: Duration,
    pub commit_max_records: usize,
    /// How long a graceful shutdown waits for in-flight batches.
    pub drain_timeout: Duration,
    /// Stop (gracefully) once no record has arrived for this long and nothing is in flight:
    /// batch-style runs, scripts and tests.
    pub exit_when_idle: Option<Duration>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            batch_size: 256,
            max_in_flight_batches: 4,
            workers: 1,
            commit_interval: Duration::from_millis(100),
            commit_max_records: 10_000,
            drain_timeout: Duration::from_secs(30),
            exit_when_idle: None,
        }
    }
}

#[derive(Debug, Default)]
struct Flow {
    generation: u64,
    backlog: VecDeque<InRecord>,
    in_flight: usize,
    paused: bool,
}

/// Counts since the engine started (also in the metrics), returned by [`Engine::run`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunSummary {
    pub records_in: u64,
    pub predictions: u64,
    pub dead_lettered: u64,
    pub commits: u64,
    pub aborts: u64,
}

/// A running pipeline over one transport.
pub struct Engine {
    transport: Box<dyn Transport>,
    opts: EngineOptions,
    metrics: Arc<PipelineMetrics>,
    pool: Option<WorkerPool>,
    inline: Option<Scorer>,
    flows: HashMap<TopicPartition, Flow>,
    next_generation: u64,
    uncommitted: usize,
    last_commit: Instant,
    last_lag: Instant,
    /// When records last arrived, a paused partition was resumed or the flows were rewound: until
    /// `exit_when_idle` has passed since then, unread input may remain.
    last_input: Instant,
    ledger: Option<File>,
    summary: RunSummary,
    stop: Arc<AtomicBool>,
    swaps: Option<SwapReports>,
}

/// Where the engine reads the model follower's reports and writes them as alerts.
pub struct SwapReports {
    pub events: Receiver<SwapEvent>,
    /// The alerts topic; `None`: reports are only logged (the follower does) and counted.
    pub alerts_topic: Option<Arc<str>>,
    pub pipeline: String,
}

impl Engine {
    pub fn new(
        transport: Box<dyn Transport>,
        plan: Arc<PlanCell>,
        opts: EngineOptions,
        metrics: Arc<PipelineMetrics>,
        stop: Arc<AtomicBool>,
    ) -> Result<Self, StreamError> {
        let (pool, inline) = if opts.workers == 0 {
            (None, Some(Scorer::following(plan)))
        } else {
            let pool =
                WorkerPool::new(plan, opts.workers, "dipper").map_err(|e| StreamError::Io {
                    place: "scoring threads".into(),
                    source: e,
                })?;
            (Some(pool), None)
        };
        Ok(Engine {
            transport,
            opts,
            metrics,
            pool,
            inline,
            flows: HashMap::new(),
            next_generation: 1,
            uncommitted: 0,
            last_commit: Instant::now(),
            last_lag: Instant::now(),
            last_input: Instant::now(),
            ledger: None,
            summary: RunSummary::default(),
            stop,
            swaps: None,
        })
    }

    /// Writes the model follower's reports to the alerts topic, in the unit of work open when they
    /// arrive (an aborted unit drops them; they are logged and counted in any case).
    pub fn with_swap_reports(mut self, reports: SwapReports) -> Self {
        self.swaps = Some(reports);
        self
    }

    fn drain_swap_reports(&mut self) -> Result<(), StreamError> {
        let Some(r) = &self.swaps else { return Ok(()) };
        let mut out = Vec::new();
        while let Ok(event) = r.events.try_recv() {
            let Some(topic) = &r.alerts_topic else {
                continue;
            };
            let (kind, model, value) = match &event {
                SwapEvent::Swapped { model, from, to } => (
                    "model_swapped",
                    model,
                    serde_json::json!({"from_version": from, "to_version": to}),
                ),
                SwapEvent::Rejected {
                    model,
                    version,
                    serving,
                    reason,
                } => (
                    "model_rejected",
                    model,
                    serde_json::json!({"version": version, "serving_version": serving, "reason": reason}),
                ),
            };
            let mut alert = serde_json::json!({
                "alert": kind,
                "pipeline": r.pipeline,
                "model": model,
                "time": now_millis(),
            });
            if let (Some(a), Some(v)) = (alert.as_object_mut(), value.as_object()) {
                a.extend(v.clone());
            }
            out.push(OutRecord {
                topic: topic.clone(),
                key: Some(model.as_bytes().to_vec()),
                value: alert.to_string().into_bytes(),
                headers: vec![("dipper.alert".into(), kind.as_bytes().to_vec())],
                timestamp: now_millis(),
                source_partition: 0,
            });
        }
        for rec in out {
            self.transport.send(rec)?;
            self.uncommitted += 1;
        }
        Ok(())
    }

    /// Appends one JSON line per committed transaction to `file` (fsynced after each).
    pub fn with_ledger(mut self, file: File) -> Self {
        self.ledger = Some(file);
        self
    }

    /// Runs until the stop flag is set (then drains, commits and closes) or a fatal error.
    pub fn run(mut self) -> Result<RunSummary, StreamError> {
        let result = self.run_loop().and_then(|()| self.shutdown());
        match result {
            Ok(()) => Ok(self.summary),
            Err(e) => {
                warn!(error = %e, "pipeline failed; aborting the open unit of work");
                let _ = self.transport.abort();
                let _ = self.transport.close();
                Err(e)
            }
        }
    }

    fn in_flight(&self) -> usize {
        self.flows.values().map(|f| f.in_flight).sum()
    }

    fn run_loop(&mut self) -> Result<(), StreamError> {
        let poll_max = self.opts.batch_size * 4;
        self.last_input = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            if let Some(idle) = self.opts.exit_when_idle {
                let backlog = self.flows.values().any(|f| !f.backlog.is_empty());
                if self.last_input.elapsed() >= idle && self.in_flight() == 0 && !backlog {
                    info!(
                        idle_ms = idle.as_millis() as u64,
                        "no new records: stopping"
                    );
                    break;
                }
            }
            let busy = self.in_flight() > 0;
            let timeout = if busy {
                Duration::ZERO
            } else {
                Duration::from_millis(50).min(self.opts.commit_interval)
            };
            let polled = match self.transport.poll(poll_max, timeout) {
                Ok(p) => p,
                Err(e) if e.is_retriable() => {
                    warn!(error = %e, "poll failed; rewinding to the last commit");
                    self.abort()?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            for event in polled.events {
                self.on_assignment(event);
            }
            if !polled.records.is_empty() {
                self.last_input = Instant::now();
            }
            for rec in polled.records {
                if let Some(flow) = self.flows.get_mut(&rec.tp) {
                    flow.backlog.push_back(rec);
                }
            }
            if let Err(e) = self.dispatch_and_collect(busy) {
                if !e.is_retriable() {
                    return Err(e);
                }
                warn!(error = %e, "send failed; rewinding to the last commit");
                self.abort()?;
            }
            if let Err(e) = self.drain_swap_reports() {
                if !e.is_retriable() {
                    return Err(e);
                }
                warn!(error = %e, "alert send failed; rewinding to the last commit");
                self.abort()?;
            }
            self.maybe_commit(false)?;
            if self.last_lag.elapsed() >= Duration::from_secs(1) {
                self.last_lag = Instant::now();
                for (tp, lag) in self.transport.lag() {
                    self.metrics.set_lag(&tp.topic, tp.partition, lag);
                }
            }
        }
        Ok(())
    }

    fn on_assignment(&mut self, event: AssignmentEvent) {
        self.metrics.rebalances.inc();
        match event {
            AssignmentEvent::Assigned(tps) => {
                info!(partitions = tps.len(), "partitions assigned");
                // Idleness counts from having something to read, not from the process start.
                self.last_input = Instant::now();
                for tp in tps {
                    let generation = self.next_generation;
                    self.next_generation += 1;
                    self.flows.insert(
                        tp,
                        Flow {
                            generation,
                            ..Flow::default()
                        },
                    );
                }
            }
            AssignmentEvent::Revoked(tps) => {
                info!(partitions = tps.len(), "partitions revoked");
                for tp in tps {
                    self.flows.remove(&tp);
                    self.metrics.remove_partition(&tp.topic, tp.partition);
                }
            }
            AssignmentEvent::CommittedInRebalance(c) => {
                self.uncommitted = 0;
                self.last_commit = Instant::now();
                if let Err(e) = self.record_commit(&c) {
                    warn!(error = %e, "cannot write the commit ledger");
                }
                return;
            }
            AssignmentEvent::Rewound => {
                warn!("transport rewound all partitions to their last commit");
                self.metrics.transactions_aborted.inc();
                self.summary.aborts += 1;
                self.reset_flows();
            }
        }
        self.metrics
            .assigned_partitions
            .set(self.flows.len() as f64);
    }

    /// Forgets all uncommitted progress: new generations, empty backlogs.
    fn reset_flows(&mut self) {
        for flow in self.flows.values_mut() {
            flow.generation = self.next_generation;
            self.next_generation += 1;
            flow.backlog.clear();
            flow.in_flight = 0;
        }
        self.uncommitted = 0;
        // The rewound records are unread again.
        self.last_input = Instant::now();
    }

    fn abort(&mut self) -> Result<(), StreamError> {
        self.metrics.transactions_aborted.inc();
        self.summary.aborts += 1;
        self.reset_flows();
        self.transport.abort()
    }

    /// Cuts batches from backlogs, scores or queues them, applies finished results, and pauses or
    /// resumes partitions.
    fn dispatch_and_collect(&mut self, was_busy: bool) -> Result<(), StreamError> {
        let batch_size = self.opts.batch_size;
        let max_in_flight = self.opts.max_in_flight_batches;
        let mut inline_results = Vec::new();
        for (tp, flow) in self.flows.iter_mut() {
            while flow.in_flight < max_in_flight && !flow.backlog.is_empty() {
                let n = flow.backlog.len().min(batch_size);
                let batch = Batch {
                    tp: tp.clone(),
                    generation: flow.generation,
                    records: flow.backlog.drain(..n).collect(),
                    polled_at: Instant::now(),
                };
                match (&self.pool, &mut self.inline) {
                    (Some(pool), _) => match pool.try_submit(batch) {
                        Ok(()) => flow.in_flight += 1,
                        Err(back) => {
                            for r in back.records.into_iter().rev() {
                                flow.backlog.push_front(r);
                            }
                            break;
                        }
                    },
                    (None, Some(scorer)) => {
                        flow.in_flight += 1;
                        inline_results.push(scorer.score(batch));
                    }
                    (None, None) => unreachable!("engine has a pool or an inline scorer"),
                }
            }
        }
        for scored in inline_results {
            self.apply(scored)?;
        }
        if let Some(pool) = &self.pool {
            // Wait a little for results only when there was work out and nothing new came in.
            let mut wait = if was_busy {
                Duration::from_millis(1)
            } else {
                Duration::ZERO
            };
            let mut results = Vec::new();
            while let Some(scored) = pool.recv(wait) {
                results.push(scored);
                wait = Duration::ZERO;
                if results.len() >= 1024 {
                    break;
                }
            }
            for scored in results {
                self.apply(scored.map_err(worker_failed)?)?;
            }
        }
        self.update_pauses()
    }

    fn update_pauses(&mut self) -> Result<(), StreamError> {
        // Pause only when a partition holds more than twice what its in-flight batches can take, and
        // resume once it is down to a quarter: pausing makes librdkafka drop what it prefetched, so
        // flapping around one threshold would refetch the same records over and over.
        let limit = 2 * self.opts.batch_size * self.opts.max_in_flight_batches;
        let mut paused = 0;
        let mut in_flight_records = 0;
        for (tp, flow) in self.flows.iter_mut() {
            let load = flow.backlog.len();
            in_flight_records += load + flow.in_flight * self.opts.batch_size;
            if !flow.paused && load >= limit {
                debug!(partition = %tp, "pausing: scoring is behind");
                self.transport.pause(tp)?;
                flow.paused = true;
            } else if flow.paused
                && load <= limit / 4
                && flow.in_flight < self.opts.max_in_flight_batches
            {
                debug!(partition = %tp, "resuming");
                self.transport.resume(tp)?;
                flow.paused = false;
                // Polls skipped it while paused: its unread records are not idleness.
                self.last_input = Instant::now();
            }
            paused += usize::from(flow.paused);
        }
        self.metrics.paused_partitions.set(paused as f64);
        self.metrics.in_flight_records.set(in_flight_records as f64);
        Ok(())
    }

    /// Sends one batch's outputs and records its position.
    fn apply(&mut self, scored: Scored) -> Result<(), StreamError> {
        let Some(flow) = self.flows.get_mut(&scored.tp) else {
            return Ok(()); // revoked meanwhile: the new owner redoes it
        };
        if flow.generation != scored.generation {
            return Ok(()); // rewound meanwhile
        }
        flow.in_flight = flow.in_flight.saturating_sub(1);
        let m = &self.metrics;
        let n_dead = scored.dead_letters.len();
        let n_pred = scored.outputs.len() - n_dead;
        let mut bytes_out = 0;
        for out in scored.outputs {
            bytes_out += out.value.len();
            self.transport.send(out)?;
        }
        let n_shadow = scored.shadow.len();
        for out in scored.shadow {
            bytes_out += out.value.len();
            self.transport.send(out)?;
        }
        m.shadow_records_out.add(n_shadow as u64);
        m.shadow_records_skipped.add(scored.shadow_skipped as u64);
        self.transport.consumed(&scored.tp, scored.next_offset);
        m.records_in.add(scored.records_in as u64);
        m.bytes_in.add(scored.bytes_in as u64);
        m.records_out.add(n_pred as u64);
        m.bytes_out.add(bytes_out as u64);
        m.batches.inc();
        for reason in &scored.dead_letters {
            m.dead_letter(*reason);
        }
        m.batch_latency.observe(scored.batch_seconds);
        let latency = scored.polled_at.elapsed().as_secs_f64();
        let now = now_millis();
        for t in &scored.event_times {
            m.scoring_latency.observe(latency);
            m.end_to_end_latency
                .observe((now - *t).max(0) as f64 / 1000.0);
        }
        self.summary.records_in += scored.records_in as u64;
        self.summary.predictions += n_pred as u64;
        self.summary.dead_lettered += n_dead as u64;
        self.uncommitted += scored.records_in;
        Ok(())
    }

    fn maybe_commit(&mut self, force: bool) -> Result<(), StreamError> {
        let due = self.uncommitted >= self.opts.commit_max_records
            || (self.uncommitted > 0 && self.last_commit.elapsed() >= self.opts.commit_interval);
        if !(force || due) {
            return Ok(());
        }
        let started = Instant::now();
        match self.transport.commit() {
            Ok(Some(c)) => {
                self.metrics.commit_latency.observe_since(started);
                self.record_commit(&c)?;
            }
            Ok(None) => {}
            Err(e) if e.is_retriable() => {
                warn!(error = %e, "commit failed; aborting and rewinding to the last commit");
                self.metrics.commit_failures.inc();
                self.abort()?;
            }
            Err(e) => return Err(e),
        }
        self.uncommitted = 0;
        self.last_commit = Instant::now();
        Ok(())
    }

    fn record_commit(&mut self, c: &Committed) -> Result<(), StreamError> {
        self.metrics.transactions_committed.inc();
        self.summary.commits += 1;
        if let Some(ledger) = &mut self.ledger {
            let line = format!(
                "{{\"txn\":{},\"seq\":{},\"records\":{}}}\n",
                serde_json::to_string(&c.txn).expect("strings serialise"),
                c.seq,
                c.records_out
            );
            ledger
                .write_all(line.as_bytes())
                .and_then(|()| ledger.sync_data())
                .map_err(|e| StreamError::Io {
                    place: "delivery.commit_ledger".into(),
                    source: e,
                })?;
        }
        Ok(())
    }

    /// Graceful stop: finish in-flight batches (no new ones), commit, leave.
    fn shutdown(&mut self) -> Result<(), StreamError> {
        info!("stopping: finishing in-flight batches");
        for flow in self.flows.values_mut() {
            flow.backlog.clear();
        }
        let deadline = Instant::now() + self.opts.drain_timeout;
        while self.in_flight() > 0 && Instant::now() < deadline {
            let Some(pool) = &self.pool else { break };
            if let Some(scored) = pool.recv(Duration::from_millis(10)) {
                self.apply(scored.map_err(worker_failed)?)?;
            }
        }
        if self.in_flight() > 0 {
            warn!("in-flight batches did not finish in time; they will be scored again on restart");
        }
        // Stopping, so a failed final commit is not retried: its unit is aborted (by `run`) and redone
        // on restart, and the run must not report it as done.
        let started = Instant::now();
        match self.transport.commit() {
            Ok(Some(c)) => {
                self.metrics.commit_latency.observe_since(started);
                self.record_commit(&c)?;
            }
            Ok(None) => {}
            Err(e) => {
                self.metrics.commit_failures.inc();
                return Err(e);
            }
        }
        self.transport.close()?;
        info!(
            records_in = self.summary.records_in,
            predictions = self.summary.predictions,
            dead_lettered = self.summary.dead_lettered,
            "stopped"
        );
        Ok(())
    }
}

/// A scoring thread panicked: a bug, never bad input. Stop rather than wait for its batch forever;
/// the open unit is aborted and a restart redoes it.
fn worker_failed(message: String) -> StreamError {
    StreamError::Transport {
        transport: "scoring thread",
        message: format!("panicked: {message}"),
        recovery: crate::error::Recovery::Fatal,
    }
}
