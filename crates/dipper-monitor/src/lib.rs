//! dipper-monitor: typed telemetry for dipper's stream runtime.
//!
//! - [`metric`]: lock-free [`Counter`], [`Gauge`] and [`Histogram`]
//!   (fine log-linear buckets for quantiles, exact coarse Prometheus
//!   buckets, interval deltas).
//! - [`pipeline`]: [`PipelineMetrics`], everything one running pipeline
//!   records, and the [`Registry`] that exposes all pipelines of a process.
//! - [`exposition`]: Prometheus text format 0.0.4 writing helpers.
//! - [`http`]: a tiny std-only HTTP endpoint ([`HttpServer`]) serving
//!   `/metrics`.
//!
//! ```
//! use std::sync::Arc;
//! use dipper_monitor::{metrics_handler, DeadLetterReason, HttpServer, Registry};
//!
//! let registry = Arc::new(Registry::new());
//! let metrics = registry.create("fraud-scorer").unwrap();
//! metrics.records_in.inc();
//! metrics.scoring_latency.observe(0.0012);
//! metrics.dead_letter(DeadLetterReason::Decode);
//! metrics.set_lag("payments", 0, 17);
//! assert!(registry.render().contains("dipper_records_in_total{pipeline=\"fraud-scorer\"} 1\n"));
//!
//! let server = HttpServer::start("127.0.0.1:0".parse().unwrap(), metrics_handler(registry))?;
//! println!("scrape http://{}/metrics", server.local_addr());
//! server.shutdown();
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod exposition;
pub mod http;
pub mod metric;
pub mod pipeline;
#[cfg(test)]
mod testutil;

pub use exposition::{MetricType, PROMETHEUS_CONTENT_TYPE};
pub use http::{metrics_handler, Handler, HttpServer, Response};
pub use metric::{Counter, Gauge, Histogram, HistogramSnapshot, PROMETHEUS_BOUNDS};
pub use pipeline::{
    render_all, DeadLetterReason, ModelInfo, PipelineMetrics, Registry, RegistryError,
};
