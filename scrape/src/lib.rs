//! Sextant's scrape side: `prometheus.yml`, relabeling and target labels.
//!
//! - [`Config`] reads a `prometheus.yml` the way Prometheus does: [`GlobalConfig`],
//!   [`ScrapeConfig`] (with [`HttpClientConfig`], [`TargetGroup`] static targets and the
//!   [`FileSdConfig`], [`HttpSdConfig`], [`DockerSdConfig`] discovery blocks),
//!   [`AlertingConfig`], [`RemoteWriteConfig`], [`RemoteReadConfig`]; Prometheus' defaults,
//!   inheritance from `global`, `${VAR}` in external labels, unknown fields rejected, and
//!   [`Error::Config`] naming file, line, column and field. [`Config::to_yaml`] renders it
//!   back with every [`Secret`] as `<secret>`; [`Config::all_scrape_configs`] adds the jobs
//!   of `scrape_config_files`.
//! - [`RelabelConfig`] and [`relabel`]: every relabel action with Prometheus' defaults and
//!   anchoring, for target, metric, alert and write relabeling alike.
//! - [`populate_labels`] / [`targets_from_group`]: from a discovered target to its final
//!   labels (`instance` defaulting, `__meta_*` removal) or a drop, as a [`Target`].
//! - [`Duration`] and [`ByteSize`] in Prometheus' formats (`1h30m`, `10MB`).
//! - [`Discoverer`]: service discovery behind one trait ([`StaticDiscoverer`],
//!   [`FileDiscoverer`], [`HttpDiscoverer`], [`DockerDiscoverer`]); [`discoverers`] builds a
//!   job's.
//! - [`ScrapeLoop`]: one target's loop (HTTP(S) with the job's auth, gzip, `Accept`
//!   negotiation, streamed body limit, sample and label limits, `honor_labels`,
//!   `honor_timestamps`, the synthetic series, staleness markers), writing through the
//!   `Appendable` seam; its [`TargetHandle`] shows [`TargetState`] and [`Metadata`].
//! - [`ScrapeManager`]: discovery → relabeling → targets → loops for a whole [`Config`], with
//!   reloads.
//! - [`RemoteWriteStorage`]: the agent's storage: an `Appendable` writing to a WAL, and one
//!   queue per `remote_write` endpoint that shards (the number of shards follows the observed
//!   rates, as Prometheus' queue manager does), batches, retries and persists its send
//!   position, so an agent restart during an outage loses nothing ([`BufferOptions`] bound
//!   the buffer and choose per-commit fsync). Remote write 1.0, or 2.0 with
//!   `protobuf_message: io.prometheus.write.v2.Request` (falling back to 1.0 on a 415);
//!   [`RemoteWriteStorage::apply_config`] applies a reloaded configuration, keeping the
//!   buffer and the send positions.
//! - HTTP clients (scrapes, discovery, remote write) authenticate with `basic_auth`,
//!   `authorization` or [`OAuth2`] client credentials (token cached until it expires).
//!
//! ```
//! use sextant_model::Labels;
//! use sextant_scrape::{populate_labels, Config};
//!
//! let yaml = r#"
//! global: {scrape_interval: 15s}
//! scrape_configs:
//! - job_name: node
//!   static_configs: [{targets: ['localhost:9100'], labels: {env: prod}}]
//!   relabel_configs:
//!   - {source_labels: [env], regex: prod, target_label: tier, replacement: gold}
//! "#;
//! let config = Config::load_str(yaml)?;
//! let job = &config.scrape_configs[0];
//! assert_eq!(job.scrape_interval.to_string(), "15s");
//! let group = &job.static_configs[0];
//! let target = group.target_labels().next().unwrap();
//! let labels = populate_labels(job, &target, &group.group_labels())?.expect("kept");
//! assert_eq!(labels.get("instance"), Some("localhost:9100"));
//! assert_eq!(labels.get("tier"), Some("gold"));
//!
//! let err = Config::load_str("scrape_configs:\n- job_name: x\n  scrape_interval: 1 minute\n").unwrap_err();
//! assert_eq!(err.to_string(), "3:20: scrape_configs[0].scrape_interval: unknown unit \" minute\" in duration \"1 minute\"");
//! # Ok::<(), sextant_scrape::Error>(())
//! ```
//!
//! Scraping into memory:
//!
//! ```no_run
//! # async fn demo() -> Result<(), sextant_scrape::Error> {
//! use std::sync::Arc;
//! use sextant_model::{MemStorage, SystemClock};
//! use sextant_scrape::{Config, ScrapeManager};
//!
//! let config = Config::load_str("scrape_configs:\n- job_name: node\n  static_configs: [{targets: ['127.0.0.1:9100']}]\n")?;
//! let mut manager = ScrapeManager::new(Arc::new(MemStorage::new()), Arc::new(SystemClock));
//! manager.apply_config(&config).await?;
//! // ... later
//! manager.stop().await;
//! # Ok(())
//! # }
//! ```

mod cache;
mod client;
mod config;
mod discovery;
mod error;
mod http;
mod locate;
mod manager;
mod relabel;
mod remote_write;
mod scrape;
mod sd;
mod target;
mod units;
mod wal;

pub use client::HttpClient;
pub use config::{
    AlertingConfig, AlertmanagerConfig, ChunkEncodingConfig, Config, ExemplarsConfig, GlobalConfig, MetadataConfig,
    OtlpConfig, QueueConfig, RemoteReadConfig, RemoteWriteConfig, RetentionConfig, RuntimeConfig, ScrapeConfig,
    ScrapeProtocol, StorageConfig, TracingConfig, TsdbConfig,
};
pub use discovery::{DockerFilter, DockerSdConfig, FileSdConfig, HttpSdConfig, TargetGroup, ADDRESS_LABEL};
pub use error::Error;
pub use http::{
    Authorization, BasicAuth, HttpClientConfig, HttpHeader, OAuth2, ProxyConfig, Secret, TlsConfig, TlsVersion,
};
pub use manager::ScrapeManager;
pub use relabel::{relabel, relabel_builder, Action, RelabelConfig, RelabelRegex};
pub use remote_write::{BufferOptions, RemoteWriteStorage};
pub use scrape::{
    Metadata, ScrapeCounters, ScrapeLoop, ScrapeReport, StopMode, TargetHandle, TargetHealth, TargetState,
    DEFAULT_BODY_SIZE_LIMIT,
};
pub use sd::{
    alertmanager_discoverers, discoverers, Discoverer, DockerDiscoverer, FileDiscoverer, HttpDiscoverer,
    StaticDiscoverer,
};
pub use target::{
    discovered_labels, populate_labels, targets_from_group, Target, INSTANCE_LABEL, JOB_LABEL, META_LABEL_PREFIX,
    METRICS_PATH_LABEL, PARAM_LABEL_PREFIX, RESERVED_LABEL_PREFIX, SCHEME_LABEL, SCRAPE_INTERVAL_LABEL,
    SCRAPE_TIMEOUT_LABEL,
};
pub use units::{ByteSize, Duration};
