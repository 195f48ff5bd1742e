//! Sextant's exporters: collectors of metrics from the host and other systems, served on
//! `/metrics` in Prometheus text format 0.0.4 or OpenMetrics 1.0.
//!
//! The framework:
//! - [`Collector`]: an async source of [`MetricFamily`] values (the model crate's type, encoded
//!   by its one exposition encoder); [`blocking`] turns a plain
//!   function that reads files into one (run on tokio's blocking pool).
//! - [`Registry`]: runs its collectors concurrently, each under a timeout
//!   ([`RegistryConfig`]), and adds `<namespace>_scrape_collector_success` and
//!   `<namespace>_scrape_collector_duration_seconds` per collector, as the Go exporters do. A
//!   failing or slow collector reports failure; the scrape itself always succeeds. A
//!   `prometheus_client` registry ([`Registry::register_prometheus_client`]) and, with the
//!   `prometheus` feature, a `prometheus` crate registry (`Registry::register_prometheus`) can
//!   be served next to the collectors.
//! - [`router`] and [`serve`]: the `/metrics` endpoint (axum), choosing the [`Format`] from the
//!   `Accept` header and gzip-compressing when the client accepts it; [`serve`] goes through
//!   `sextant-web`, so a [`WebConfig`] (Prometheus' `--web.config.file`) adds TLS and basic auth.
//!
//! Exporters, one Cargo feature each:
//! - `node` (default): [`NodeConfig`], the Linux collectors of node_exporter 1.5.0 with the
//!   same metric names, labels and flags (`--path.procfs`, `--collector.<name>`, ...).
//! - `container`: `ContainerConfig`, cAdvisor's `container_*` families from cgroup v2/v1,
//!   named by the Docker Engine API.
//! - `log`: `LogConfig`, Logporter's `docker_*` families from the Docker Engine API and log
//!   line counters (per stream and per pattern) for containers and log files.
//! - `redis` (default): [`RedisExporter`] from [`RedisConfig`], redis_exporter 1.45's metrics
//!   (`INFO ALL`, keyspace, config, slowlog, latency) and flags, with `/scrape?target=`, ACL
//!   users and `rediss://` (TLS).
//! - `postgres` (default): [`PostgresExporter`] from [`PostgresConfig`], postgres_exporter
//!   0.11.1's default metrics and user queries from a `queries.yaml` (`DATA_SOURCE_NAME`, TLS
//!   with lib/pq's `sslmode`).
//! - `mysql` (default): [`MysqlExporter`] from [`MysqlConfig`], mysqld_exporter 0.14's
//!   default collectors (`DATA_SOURCE_NAME` or `--config.my-cnf`).
//! - `blackbox` (default): [`BlackboxExporter`] from [`BlackboxConfig`], blackbox_exporter's
//!   `/probe?module=&target=` with modules from a `blackbox.yml` (http/https, tcp with optional
//!   TLS, dns, icmp; IPv4/IPv6 choice).
//!
//! ```
//! use sextant_exporters::{blocking, Format, MetricFamily, MetricType, Registry, RegistryConfig};
//!
//! let mut registry = Registry::new(RegistryConfig { namespace: "demo".into(), process_metrics: false, ..Default::default() });
//! registry.register(blocking("answer", || {
//!     Ok(vec![MetricFamily::single("demo_answer", "The answer.", MetricType::Gauge, 42.0)])
//! }));
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! let text = runtime.block_on(registry.encode(Format::Text));
//! assert!(text.contains("demo_answer 42\n"));
//! assert!(text.contains("demo_scrape_collector_success{collector=\"answer\"} 1\n"));
//! ```
//!
//! The node exporter from its command-line flags (here: only the load average):
//!
//! ```
//! # #[cfg(feature = "node")] {
//! use sextant_exporters::{Format, NodeConfig};
//!
//! let config = NodeConfig::from_args(["--collector.disable-defaults", "--collector.loadavg"]).unwrap();
//! let registry = config.registry().unwrap();
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! let text = runtime.block_on(registry.encode(Format::OpenMetrics));
//! assert!(text.contains("# TYPE node_load1 gauge\n"));
//! assert!(text.ends_with("# EOF\n"));
//! # }
//! ```

#[cfg(feature = "blackbox")]
mod blackbox;
#[cfg(any(feature = "redis", feature = "postgres", feature = "mysql", feature = "blackbox"))]
mod builder;
#[cfg(feature = "container")]
mod container;
#[cfg(any(feature = "container", feature = "log"))]
mod docker;
mod error;
#[cfg(any(feature = "redis", feature = "postgres", feature = "mysql", feature = "blackbox"))]
mod flags;
#[cfg(feature = "log")]
mod log;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "node")]
mod node;
#[cfg(feature = "postgres")]
mod postgres;
mod process;
#[cfg(feature = "redis")]
mod redis;
mod registry;
mod server;
#[cfg(any(feature = "blackbox", feature = "redis", feature = "postgres"))]
mod tls;

#[cfg(feature = "blackbox")]
pub use blackbox::{BlackboxConfig, BlackboxExporter};
#[cfg(feature = "container")]
pub use container::ContainerConfig;
pub use error::Error;
#[cfg(feature = "log")]
pub use log::LogConfig;
#[cfg(feature = "mysql")]
pub use mysql::{MysqlConfig, MysqlExporter};
#[cfg(feature = "node")]
pub use node::NodeConfig;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresConfig, PostgresExporter};
#[cfg(feature = "redis")]
pub use redis::{RedisConfig, RedisExporter};
pub use registry::{blocking, BlockingCollector, Collector, Registry, RegistryConfig};
pub use server::{router, serve};
pub use sextant_model::exposition::{FamilySample, Format, MetricFamily, MetricType};
pub use sextant_web::WebConfig;
