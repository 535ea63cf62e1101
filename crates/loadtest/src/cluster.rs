//! One run against several nodes of a cluster (`--servers A,B`): where
//! each session connects, and what every process given (the nodes, NATS)
//! and the nodes' cluster links did over the measured window.
//!
//! Member j of party p connects to node (p + j) % n: with parties of at
//! least n members every node holds members of every party, and the
//! leaders (so the parties' homes: the node that creates a party homes
//! it) rotate over the nodes.

use crate::procstat::{self, ProcessSample};
use crate::scrape::{self, ServerTransport};
use serde::Serialize;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The node (an index into `--servers`) of member `member` (0: the
/// leader) of party `party`, with parties spread over `nodes` nodes.
pub fn node_of(party: usize, member: usize, nodes: usize) -> usize {
    (party + member) % nodes.max(1)
}

/// The node of session `index` in connect order: sessions
/// `p * party_size .. (p + 1) * party_size` are party p's, leader first;
/// idle sessions (`party_size` 0) go round the nodes in turn.
pub fn node_of_session(index: usize, party_size: usize, nodes: usize) -> usize {
    if party_size == 0 {
        return index % nodes.max(1);
    }
    node_of(index / party_size, index % party_size, nodes)
}

/// A process or endpoint with the name it is reported under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named<T> {
    pub name: String,
    pub value: T,
}

/// Parses `NAME=VALUE` or a bare `VALUE` (named `default_name`).
pub fn parse_named<T: std::str::FromStr>(text: &str, default_name: &str) -> Result<Named<T>, String>
where
    T::Err: std::fmt::Display,
{
    let (name, value) = match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => (name.trim().to_string(), value),
        Some((_, _)) => return Err(format!("an empty name in {text:?}")),
        None => (default_name.to_string(), text),
    };
    let value = value
        .trim()
        .parse::<T>()
        .map_err(|e| format!("{value:?}: {e}"))?;
    Ok(Named { name, value })
}

/// What to watch besides the first server: every process whose CPU counts
/// (the nodes, NATS), each node's metrics endpoint (its cluster and QUIC
/// counters), and NATS's monitoring endpoint (`nats-server -m PORT`).
#[derive(Clone, Debug, Default)]
pub struct ClusterProbe {
    /// Server processes (`--server-pid`, the first is `server` in the
    /// report), then the others (`--extra-pid`).
    pub processes: Vec<Named<u32>>,
    /// How many of `processes` are partyline servers (the rest: extras).
    pub servers: usize,
    pub node_metrics: Vec<Named<SocketAddr>>,
    pub nats_monitor: Option<SocketAddr>,
}

impl ClusterProbe {
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty() && self.node_metrics.is_empty() && self.nats_monitor.is_none()
    }
}

/// A node's cluster counters (`partyline_cluster_*_total`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NodeCounters {
    pub control_messages_out: u64,
    pub control_messages_in: u64,
    pub datagram_messages_out: u64,
    pub datagram_messages_in: u64,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub control_dropped: u64,
    pub datagrams_dropped: u64,
}

impl NodeCounters {
    /// `None` when a series is missing (a node not in a cluster).
    pub fn parse(text: &str) -> Option<NodeCounters> {
        let value = |name: &str| scrape::series(text, &format!("partyline_cluster_{name}_total"));
        Some(NodeCounters {
            control_messages_out: value("control_messages_out")?,
            control_messages_in: value("control_messages_in")?,
            datagram_messages_out: value("datagram_messages_out")?,
            datagram_messages_in: value("datagram_messages_in")?,
            bytes_out: value("bytes_out")?,
            bytes_in: value("bytes_in")?,
            control_dropped: value("control_dropped")?,
            datagrams_dropped: value("datagrams_dropped")?,
        })
    }

    pub fn since(self, earlier: NodeCounters) -> NodeCounters {
        let d = |now: u64, then: u64| now.saturating_sub(then);
        NodeCounters {
            control_messages_out: d(self.control_messages_out, earlier.control_messages_out),
            control_messages_in: d(self.control_messages_in, earlier.control_messages_in),
            datagram_messages_out: d(self.datagram_messages_out, earlier.datagram_messages_out),
            datagram_messages_in: d(self.datagram_messages_in, earlier.datagram_messages_in),
            bytes_out: d(self.bytes_out, earlier.bytes_out),
            bytes_in: d(self.bytes_in, earlier.bytes_in),
            control_dropped: d(self.control_dropped, earlier.control_dropped),
            datagrams_dropped: d(self.datagrams_dropped, earlier.datagrams_dropped),
        }
    }
}

/// NATS's own message and byte counters (`/varz`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NatsCounters {
    /// Messages the server received from publishers.
    pub in_msgs: u64,
    /// Messages it delivered to subscribers.
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
}

impl NatsCounters {
    /// From the JSON of `/varz`; `None` when a counter is missing.
    pub fn parse(json: &str) -> Option<NatsCounters> {
        let value: serde_json::Value = serde_json::from_str(json).ok()?;
        let field = |name: &str| value.get(name)?.as_u64();
        Some(NatsCounters {
            in_msgs: field("in_msgs")?,
            out_msgs: field("out_msgs")?,
            in_bytes: field("in_bytes")?,
            out_bytes: field("out_bytes")?,
        })
    }

    pub fn since(self, earlier: NatsCounters) -> NatsCounters {
        NatsCounters {
            in_msgs: self.in_msgs.saturating_sub(earlier.in_msgs),
            out_msgs: self.out_msgs.saturating_sub(earlier.out_msgs),
            in_bytes: self.in_bytes.saturating_sub(earlier.in_bytes),
            out_bytes: self.out_bytes.saturating_sub(earlier.out_bytes),
        }
    }
}

/// The body of `GET path` over HTTP/1.0 (no chunked encoding, the server
/// closes): one blocking request, `None` on any failure.
fn http_body(addr: SocketAddr, path: &str) -> Option<String> {
    let limit = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr, limit).ok()?;
    stream.set_read_timeout(Some(limit)).ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: loadtest\r\n\r\n").as_bytes())
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_string())
}

/// Everything the probe reads at one edge of the window.
#[derive(Clone, Debug)]
pub struct EdgeSample {
    pub at: Instant,
    pub processes: Vec<Option<ProcessSample>>,
    pub nodes: Vec<(Option<NodeCounters>, Option<ServerTransport>)>,
    pub nats: Option<NatsCounters>,
}

impl EdgeSample {
    /// Blocking (procfs reads and HTTP scrapes): call off the runtime.
    pub fn now(probe: &ClusterProbe) -> EdgeSample {
        EdgeSample {
            at: Instant::now(),
            processes: probe
                .processes
                .iter()
                .map(|p| procstat::sample(p.value))
                .collect(),
            nodes: probe
                .node_metrics
                .iter()
                .map(|node| match scrape::metrics_text(node.value) {
                    Some(text) => (NodeCounters::parse(&text), ServerTransport::parse(&text)),
                    None => (None, None),
                })
                .collect(),
            nats: probe
                .nats_monitor
                .and_then(|addr| http_body(addr, "/varz"))
                .and_then(|body| NatsCounters::parse(&body)),
        }
    }
}

/// Samples `probe` at `start` and at `end` (the measured window's edges).
pub fn sample_window(
    probe: ClusterProbe,
    start: Instant,
    end: Instant,
) -> tokio::task::JoinHandle<Option<(EdgeSample, EdgeSample)>> {
    let probe = std::sync::Arc::new(probe);
    tokio::spawn(async move {
        let sample = |probe: std::sync::Arc<ClusterProbe>| async move {
            tokio::task::spawn_blocking(move || EdgeSample::now(&probe))
                .await
                .ok()
        };
        tokio::time::sleep_until(start.into()).await;
        let first = sample(probe.clone()).await?;
        tokio::time::sleep_until(end.into()).await;
        let last = sample(probe).await?;
        Some((first, last))
    })
}

/// One process over the measured window.
#[derive(Clone, Debug, Serialize)]
pub struct NamedProcess {
    pub name: String,
    pub pid: u32,
    /// "server" (`--server-pid`) or "extra" (`--extra-pid`).
    pub role: &'static str,
    pub cpu_s: f64,
    /// cpu_s / window seconds: the share of one core.
    pub cores: f64,
    /// Time its threads waited for a CPU while runnable.
    pub run_delay_ms: f64,
    pub rss_bytes: u64,
    /// cpu_s / messages delivered in the window, µs.
    pub cpu_per_delivered_us: Option<f64>,
}

/// One node's cluster link over the window.
#[derive(Clone, Debug, Serialize)]
pub struct NodeFigures {
    pub name: String,
    pub metrics: SocketAddr,
    pub cluster: Option<NodeCounters>,
    /// Its QUIC counters (server-to-client direction).
    pub transport: Option<ServerTransport>,
}

/// What the nodes published to NATS over the window, summed over them.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Published {
    /// Control and party data messages, per second.
    pub messages_per_s: f64,
    pub datagram_messages_per_s: f64,
    pub control_messages_per_s: f64,
    /// Bytes of both kinds (payloads, without NATS's framing).
    pub bytes_per_s: f64,
    /// Messages dropped for a full publish queue, over the window.
    pub dropped: u64,
}

/// The NATS server over the window.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct NatsFigures {
    pub counters: NatsCounters,
    pub in_msgs_per_s: f64,
    pub out_msgs_per_s: f64,
    pub in_bytes_per_s: f64,
    pub out_bytes_per_s: f64,
}

/// The cluster part of a report: present when the run was given several
/// servers, several processes, node metrics or a NATS monitor.
#[derive(Clone, Debug, Serialize)]
pub struct ClusterFigures {
    /// The servers the sessions connected to, in `--servers` order.
    pub servers: Vec<SocketAddr>,
    /// Sessions placed on each (member j of party p on (p + j) % n).
    pub sessions_per_server: Vec<usize>,
    /// Parties whose leader (and so home) connected to each.
    pub parties_led_per_server: Vec<usize>,
    pub window_s: f64,
    pub processes: Vec<NamedProcess>,
    /// The processes' CPU added up (every one sampled at both edges).
    pub total_cpu_s: Option<f64>,
    /// total_cpu_s / messages delivered in the window, µs.
    pub total_cpu_per_delivered_us: Option<f64>,
    /// The same for the servers (`--server-pid`) alone.
    pub servers_cpu_per_delivered_us: Option<f64>,
    pub nodes: Vec<NodeFigures>,
    /// Cluster messages the nodes published, summed over the nodes;
    /// `None` unless every node's counters were read at both edges.
    pub published: Option<Published>,
    pub nats: Option<NatsFigures>,
}

/// Turns the two edge samples into report figures.
pub fn figures(
    probe: &ClusterProbe,
    servers: &[SocketAddr],
    party_size: usize,
    parties: usize,
    sessions: usize,
    delivered: u64,
    edges: Option<&(EdgeSample, EdgeSample)>,
) -> ClusterFigures {
    let n = servers.len().max(1);
    let mut sessions_per_server = vec![0; n];
    for index in 0..sessions {
        sessions_per_server[node_of_session(index, party_size, n)] += 1;
    }
    let mut parties_led_per_server = vec![0; n];
    for party in 0..parties {
        parties_led_per_server[node_of(party, 0, n)] += 1;
    }
    let window_s = edges.map_or(0.0, |(a, b)| b.at.duration_since(a.at).as_secs_f64());
    let per_s = |count: u64| count as f64 / window_s.max(f64::MIN_POSITIVE);
    let per_delivered = |cpu_s: f64| (delivered > 0).then(|| cpu_s / delivered as f64 * 1e6);
    let mut processes = Vec::new();
    let mut complete = true;
    for (i, process) in probe.processes.iter().enumerate() {
        let pair = edges.map(|(a, b)| (a.processes.get(i).copied(), b.processes.get(i).copied()));
        let Some((Some(Some(start)), Some(Some(end)))) = pair else {
            complete = false;
            continue;
        };
        let cpu_s = end.cpu.saturating_sub(start.cpu).as_secs_f64();
        processes.push(NamedProcess {
            name: process.name.clone(),
            pid: process.value,
            role: if i < probe.servers { "server" } else { "extra" },
            cpu_s,
            cores: cpu_s / window_s.max(f64::MIN_POSITIVE),
            run_delay_ms: end.run_delay.saturating_sub(start.run_delay).as_secs_f64() * 1000.0,
            rss_bytes: end.rss_bytes,
            cpu_per_delivered_us: per_delivered(cpu_s),
        });
    }
    let total: f64 = processes.iter().map(|p| p.cpu_s).sum();
    let servers_total: f64 = processes
        .iter()
        .filter(|p| p.role == "server")
        .map(|p| p.cpu_s)
        .sum();
    let complete = complete && !processes.is_empty();
    let nodes: Vec<NodeFigures> = probe
        .node_metrics
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let pair = edges.and_then(|(a, b)| Some((*a.nodes.get(i)?, *b.nodes.get(i)?)));
            let (cluster, transport) = match pair {
                Some(((c0, t0), (c1, t1))) => (
                    c0.zip(c1).map(|(c0, c1)| c1.since(c0)),
                    t0.zip(t1).map(|(t0, t1)| t1.since(t0)),
                ),
                None => (None, None),
            };
            NodeFigures {
                name: node.name.clone(),
                metrics: node.value,
                cluster,
                transport,
            }
        })
        .collect();
    let counted: Vec<NodeCounters> = nodes.iter().filter_map(|n| n.cluster).collect();
    let all_counted = !nodes.is_empty() && counted.len() == nodes.len();
    let published = all_counted.then(|| {
        let sum = |f: fn(&NodeCounters) -> u64| counted.iter().map(f).sum::<u64>();
        let datagrams = sum(|c| c.datagram_messages_out);
        let control = sum(|c| c.control_messages_out);
        Published {
            messages_per_s: per_s(datagrams + control),
            datagram_messages_per_s: per_s(datagrams),
            control_messages_per_s: per_s(control),
            bytes_per_s: per_s(sum(|c| c.bytes_out)),
            dropped: sum(|c| c.control_dropped + c.datagrams_dropped),
        }
    });
    let nats = edges
        .and_then(|(a, b)| b.nats.zip(a.nats))
        .map(|(end, start)| {
            let counters = end.since(start);
            NatsFigures {
                counters,
                in_msgs_per_s: per_s(counters.in_msgs),
                out_msgs_per_s: per_s(counters.out_msgs),
                in_bytes_per_s: per_s(counters.in_bytes),
                out_bytes_per_s: per_s(counters.out_bytes),
            }
        });
    ClusterFigures {
        servers: servers.to_vec(),
        sessions_per_server,
        parties_led_per_server,
        window_s,
        processes,
        total_cpu_s: complete.then_some(total),
        total_cpu_per_delivered_us: if complete { per_delivered(total) } else { None },
        servers_cpu_per_delivered_us: if complete {
            per_delivered(servers_total)
        } else {
            None
        },
        nodes,
        published,
        nats,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_of_a_party_alternate_over_two_nodes_and_homes_rotate() {
        // Parties of 4 over 2 nodes: two members of every party on each
        // node, and the leaders (homes) alternate.
        let placed: Vec<Vec<usize>> = (0..3)
            .map(|party| (0..4).map(|member| node_of(party, member, 2)).collect())
            .collect();
        assert_eq!(placed, [[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1]]);
        // One node: everyone on it.
        assert!((0..40).all(|index| node_of_session(index, 4, 1) == 0));
        // Sessions in connect order: party 1's leader is session 4.
        assert_eq!(node_of_session(4, 4, 2), 1);
        assert_eq!(node_of_session(5, 4, 2), 0);
        // Idle sessions go round; zero nodes is taken as one.
        assert_eq!(
            (0..5).map(|i| node_of_session(i, 0, 3)).collect::<Vec<_>>(),
            [0, 1, 2, 0, 1]
        );
        assert_eq!(node_of(7, 3, 0), 0);
    }

    #[test]
    fn three_nodes_share_each_party_of_four_and_lead_a_third_each() {
        let mut led = [0; 3];
        for party in 0..300 {
            led[node_of(party, 0, 3)] += 1;
            let mut held = [0; 3];
            for member in 0..4 {
                held[node_of(party, member, 3)] += 1;
            }
            assert!(held.iter().all(|&h| h >= 1), "{held:?}");
        }
        assert_eq!(led, [100, 100, 100]);
    }

    #[test]
    fn names_are_optional_and_values_checked() {
        let named: Named<u32> = parse_named("nats=42", "extra0").expect("named");
        assert_eq!((named.name.as_str(), named.value), ("nats", 42));
        let bare: Named<u32> = parse_named(" 7 ", "server1").expect("bare");
        assert_eq!((bare.name.as_str(), bare.value), ("server1", 7));
        assert!(parse_named::<u32>("=7", "x").is_err());
        assert!(parse_named::<u32>("a=seven", "x").is_err());
        let addr: Named<SocketAddr> = parse_named("a=127.0.0.1:9100", "x").expect("addr");
        assert_eq!(addr.value.port(), 9100);
    }

    #[test]
    fn counters_parse_and_subtract() {
        let text = "\
partyline_cluster_control_messages_out_total 10
partyline_cluster_control_messages_in_total 11
partyline_cluster_datagram_messages_out_total 100
partyline_cluster_datagram_messages_in_total 90
partyline_cluster_bytes_out_total 5000
partyline_cluster_bytes_in_total 4000
partyline_cluster_control_dropped_total 0
partyline_cluster_datagrams_dropped_total 1
";
        let before = NodeCounters::parse(text).expect("every series");
        assert_eq!(before.datagram_messages_out, 100);
        let after = NodeCounters {
            datagram_messages_out: 160,
            bytes_out: 9000,
            ..before
        };
        let delta = after.since(before);
        assert_eq!((delta.datagram_messages_out, delta.bytes_out), (60, 4000));
        assert_eq!(NodeCounters::parse("partyline_sessions 1\n"), None);
        let varz = r#"{"server_id":"x","in_msgs":5,"out_msgs":9,"in_bytes":100,"out_bytes":180,"cpu":1.5}"#;
        let nats = NatsCounters::parse(varz).expect("varz");
        assert_eq!(nats.since(NatsCounters { in_msgs: 1, ..nats }).in_msgs, 4);
        assert_eq!(NatsCounters::parse("{}"), None);
        assert_eq!(NatsCounters::parse("not json"), None);
    }
}
