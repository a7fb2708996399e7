//! Every family of `/metrics`, encoded in the Prometheus text format (version 0.0.4) by
//! `prometheus-client` from a scrape's plain numbers. Every family is written at every scrape
//! (its `# HELP` and `# TYPE` lines, and a zero for every fixed label combination), so a
//! family exists from the first scrape, before any sample; series labelled by peer exist
//! once the node has peers.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{prometheus_text, DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::histogram::{FSYNC_BUCKETS_NS, REQUEST_BUCKETS_NS};
use super::process::ProcessFigures;
use super::{CoreSample, HistogramSample, Outcome, Route};

/// The `Content-Type` of the answer.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// One peer as this node sees it at the scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerFigures {
    /// The member URL: the `peer` label (bounded by the membership's size).
    pub url: String,
    pub up: bool,
    /// Heartbeat round trip; `None` before the first.
    pub rtt_seconds: Option<f64>,
    /// The peer's wall clock minus ours; `None` before the first heartbeat.
    pub clock_offset_seconds: Option<f64>,
    pub hints_pending: u64,
    pub hints_dropped: u64,
}

/// The node-wide figures, read on the scraping core from the layers that keep them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeFigures {
    pub peers: Vec<PeerFigures>,
    /// This node reaches a majority (itself included).
    pub quorum_available: bool,
    pub recovering: bool,
    pub anti_entropy_keys_copied: u64,
    /// Anti-entropy copies that a CAS promise refused.
    pub anti_entropy_copies_refused: u64,
    /// Expired values whose tombstone the expiry sweeper wrote into a majority.
    pub expired_keys_reclaimed: u64,
    /// Client connections open (accepted on the port and not switched to a peer link).
    pub client_connections: u64,
    /// Peer links that peers opened to this node (switched from HTTP).
    pub peer_connections: u64,
}

/// Everything one scrape shows.
#[derive(Debug)]
pub struct Exposition {
    pub cores: CoreSample,
    pub node: NodeFigures,
    pub process: Option<ProcessFigures>,
    pub build: Build,
}

/// What `mostdb_build_info` names: the release and the commit it was built from.
#[derive(Copy, Clone, Debug)]
pub struct Build {
    pub version: &'static str,
    pub revision: &'static str,
}

impl Exposition {
    /// The text of `/metrics`.
    pub fn encode(self) -> Result<String, std::fmt::Error> {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut out = String::with_capacity(64 * 1024);
        prometheus_text::encode(&mut out, &registry)?;
        Ok(out)
    }
}

type Fmt = Result<(), std::fmt::Error>;

impl Collector for Exposition {
    fn encode(&self, mut e: DescriptorEncoder) -> Fmt {
        self.requests(&mut e)?;
        self.peers(&mut e)?;
        self.node_wide(&mut e)?;
        self.process(&mut e)
    }
}

impl Exposition {
    fn requests(&self, e: &mut DescriptorEncoder) -> Fmt {
        let help = "Client requests answered, by route and outcome.";
        let mut m = e.encode_descriptor("mostdb_requests", help, None, MetricType::Counter)?;
        for route in Route::ALL {
            for outcome in Outcome::ALL {
                let n = self.cores.requests[route as usize][outcome as usize];
                let labels = [("route", route.label()), ("outcome", outcome.label())];
                m.encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
            }
        }
        let help = "Time from a request's parsed head to its answer, by route.";
        let name = "mostdb_request_duration_seconds";
        let mut m = e.encode_descriptor(name, help, None, MetricType::Histogram)?;
        for route in Route::ALL {
            let sample = &self.cores.durations[route as usize];
            histogram(
                &mut m,
                &[("route", route.label())],
                sample,
                &REQUEST_BUCKETS_NS,
            )?;
        }
        Ok(())
    }

    fn peers(&self, e: &mut DescriptorEncoder) -> Fmt {
        type Pick = fn(&PeerFigures) -> Option<f64>;
        let gauges: [(&str, &str, Pick); 4] = [
            (
                "mostdb_peer_up",
                "1 while this node's link to the peer is up.",
                |p| Some(f64::from(u8::from(p.up))),
            ),
            (
                "mostdb_peer_rtt_seconds",
                "Round trip of the last heartbeat to the peer.",
                |p| p.rtt_seconds,
            ),
            (
                "mostdb_peer_clock_offset_seconds",
                "The peer's wall clock minus this node's, measured on heartbeats.",
                |p| p.clock_offset_seconds,
            ),
            (
                "mostdb_hints_pending",
                "Writes queued for the peer (hinted handoff), not yet replayed.",
                |p| Some(p.hints_pending as f64),
            ),
        ];
        for (name, help, pick) in gauges {
            let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for peer in &self.node.peers {
                if let Some(v) = pick(peer) {
                    m.encode_family(&[("peer", peer.url.as_str())])?
                        .encode_gauge(&v)?;
                }
            }
        }
        let help = "Hints for the peer dropped (queue full, disk low, or too old).";
        let mut m = e.encode_descriptor("mostdb_hints_dropped", help, None, MetricType::Counter)?;
        for peer in &self.node.peers {
            m.encode_family(&[("peer", peer.url.as_str())])?
                .encode_counter::<NoLabelSet, _, u64>(&peer.hints_dropped, None)?;
        }
        Ok(())
    }

    fn node_wide(&self, e: &mut DescriptorEncoder) -> Fmt {
        let n = &self.node;
        let s = &self.cores.storage;
        let flag = |b: bool| u64::from(b);
        gauge(
            e,
            "mostdb_quorum_available",
            "1 while this node reaches a majority of the members.",
            flag(n.quorum_available),
        )?;
        gauge(
            e,
            "mostdb_recovering",
            "1 while this node recovers and does not vote.",
            flag(n.recovering),
        )?;
        self.convergence(e)?;
        gauge(
            e,
            "mostdb_storage_disk_bytes",
            "Bytes of the shards' tables on disk (journals not included).",
            s.disk_bytes,
        )?;
        counter(
            e,
            "mostdb_storage_write_stalls",
            "Writes that waited for the store's flush backlog.",
            s.write_stalls,
        )?;
        let help = "Time of one group-commit fsync (MOSTDB_SYNC=always).";
        let mut m = e.encode_descriptor(
            "mostdb_fsync_duration_seconds",
            help,
            None,
            MetricType::Histogram,
        )?;
        let none: [(&str, &str); 0] = [];
        histogram(&mut m, &none, &s.fsync, &FSYNC_BUCKETS_NS)?;
        let help = "Connections open: client (HTTP) or peer (links peers opened to this node).";
        let mut m = e.encode_descriptor("mostdb_connections", help, None, MetricType::Gauge)?;
        for (kind, open) in [
            ("client", n.client_connections),
            ("peer", n.peer_connections),
        ] {
            m.encode_family(&[("kind", kind)])?.encode_gauge(&open)?;
        }
        let help = "Always 1; the labels name the build.";
        let mut m = e.encode_descriptor("mostdb_build_info", help, None, MetricType::Gauge)?;
        let labels = [
            ("version", self.build.version),
            ("revision", self.build.revision),
        ];
        m.encode_family(&labels)?.encode_gauge(&1u64)
    }

    /// Anti-entropy's and the expiry sweeper's counters.
    fn convergence(&self, e: &mut DescriptorEncoder) -> Fmt {
        let n = &self.node;
        let convergence = [
            (
                "mostdb_anti_entropy_keys_copied",
                "Records anti-entropy took from peers that held them newer.",
                n.anti_entropy_keys_copied,
            ),
            (
                "mostdb_anti_entropy_copies_refused",
                "Anti-entropy copies refused by a compare-and-set promise above their version.",
                n.anti_entropy_copies_refused,
            ),
            (
                "mostdb_expired_keys_reclaimed",
                "Expired values the expiry sweeper replaced with their tombstone in a majority.",
                n.expired_keys_reclaimed,
            ),
        ];
        for (name, help, value) in convergence {
            counter(e, name, help, value)?;
        }
        Ok(())
    }

    fn process(&self, e: &mut DescriptorEncoder) -> Fmt {
        type Pick = fn(&ProcessFigures) -> f64;
        let families: [(&str, &str, MetricType, Pick); 6] = [
            (
                "process_cpu_seconds",
                "User and system CPU time spent, in seconds.",
                MetricType::Counter,
                |p| p.cpu_seconds,
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                MetricType::Gauge,
                |p| p.resident_memory_bytes as f64,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                MetricType::Gauge,
                |p| p.virtual_memory_bytes as f64,
            ),
            (
                "process_open_fds",
                "Open file descriptors.",
                MetricType::Gauge,
                |p| p.open_fds as f64,
            ),
            (
                "process_max_fds",
                "The limit of open file descriptors.",
                MetricType::Gauge,
                |p| p.max_fds as f64,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch, in seconds.",
                MetricType::Gauge,
                |p| p.start_time_seconds,
            ),
        ];
        for (name, help, kind, pick) in families {
            let mut m = e.encode_descriptor(name, help, None, kind)?;
            let Some(p) = &self.process else { continue };
            match kind {
                MetricType::Counter => m.encode_counter::<NoLabelSet, _, u64>(&pick(p), None)?,
                _ => m.encode_gauge(&pick(p))?,
            }
        }
        Ok(())
    }
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> Fmt {
    e.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&v)
}

/// `name` is written with `_total` appended.
fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> Fmt {
    e.encode_descriptor(name, help, None, MetricType::Counter)?
        .encode_counter::<NoLabelSet, _, u64>(&v, None)
}

fn histogram<const N: usize>(
    m: &mut prometheus_client::encoding::MetricEncoder,
    labels: &impl EncodeLabelSet,
    sample: &HistogramSample<N>,
    bounds_ns: &[u64; N],
) -> Fmt {
    m.encode_family(labels)?.encode_histogram::<NoLabelSet>(
        sample.sum_seconds(),
        sample.count,
        &sample.buckets_seconds(bounds_ns),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{CoreMetrics, StorageSample};
    use prometheus_parse::{LineInfo, Scrape, Value};

    fn exposition(node: NodeFigures) -> String {
        let core = CoreMetrics::default();
        core.record(Route::Set, Outcome::Ok, core.start());
        core.set_storage(Box::new(|| StorageSample {
            disk_bytes: 4096,
            ..StorageSample::default()
        }));
        Exposition {
            cores: core.sample(),
            node,
            process: crate::metrics::process::read(),
            build: Build {
                version: "1.2.3",
                revision: "0123456789ab",
            },
        }
        .encode()
        .unwrap()
    }

    #[test]
    fn every_line_parses_and_every_family_is_there() {
        let peer = PeerFigures {
            url: "http://10.0.0.2:5380".to_string(),
            up: true,
            rtt_seconds: Some(0.000_25),
            clock_offset_seconds: Some(-0.003),
            hints_pending: 2,
            hints_dropped: 1,
        };
        let text = exposition(NodeFigures {
            peers: vec![peer],
            quorum_available: true,
            ..NodeFigures::default()
        });
        for line in text.lines() {
            assert_ne!(LineInfo::parse(line), LineInfo::Ignored, "{line}");
        }
        let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
        for family in FAMILIES {
            assert!(scrape.docs.contains_key(*family), "{family} missing");
        }
        let value = |name: &str, label: (&str, &str)| {
            scrape
                .samples
                .iter()
                .find(|s| s.metric == name && s.labels.get(label.0) == Some(label.1))
                .map(|s| s.value.clone())
        };
        assert_eq!(
            value("mostdb_hints_pending", ("peer", "http://10.0.0.2:5380")),
            Some(Value::Gauge(2.0))
        );
        assert_eq!(
            value(
                "mostdb_peer_clock_offset_seconds",
                ("peer", "http://10.0.0.2:5380")
            ),
            Some(Value::Gauge(-0.003))
        );
        assert_eq!(
            value("mostdb_build_info", ("revision", "0123456789ab")),
            Some(Value::Gauge(1.0))
        );
        #[cfg(not(feature = "no-request-metrics"))]
        assert!(text.contains("mostdb_requests_total{route=\"set\",outcome=\"ok\"} 1\n"));
        assert!(text.contains("mostdb_requests_total{route=\"get\",outcome=\"not_most\"} 0\n"));
        assert!(text.contains("mostdb_storage_disk_bytes 4096\n"));
        assert!(text.contains("mostdb_fsync_duration_seconds_bucket{le=\"8.192\"} 0\n"));
    }

    /// Every family's name as its `# HELP` line has it.
    pub(crate) const FAMILIES: &[&str] = &[
        "mostdb_requests_total",
        "mostdb_request_duration_seconds",
        "mostdb_peer_up",
        "mostdb_peer_rtt_seconds",
        "mostdb_peer_clock_offset_seconds",
        "mostdb_quorum_available",
        "mostdb_hints_pending",
        "mostdb_hints_dropped_total",
        "mostdb_anti_entropy_keys_copied_total",
        "mostdb_anti_entropy_copies_refused_total",
        "mostdb_expired_keys_reclaimed_total",
        "mostdb_storage_disk_bytes",
        "mostdb_storage_write_stalls_total",
        "mostdb_fsync_duration_seconds",
        "mostdb_connections",
        "mostdb_recovering",
        "mostdb_build_info",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ];
}
