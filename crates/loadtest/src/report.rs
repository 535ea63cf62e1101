//! The load test's result: printed for people, one JSON object for
//! machines (serde, no NaN: a figure that cannot be computed is null), and
//! a latency plot as SVG.

use crate::cluster::ClusterFigures;
use crate::scrape::ServerTransport;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::fmt::Write;

/// Milliseconds at the quoted percentiles of a nanosecond histogram.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Quantiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Quantiles {
    /// `None` for an empty histogram.
    pub fn of(histogram: &Histogram<u64>) -> Option<Quantiles> {
        if histogram.is_empty() {
            return None;
        }
        let ms = |q: f64| ns_ms(histogram.value_at_quantile(q));
        Some(Quantiles {
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            p999: ms(0.999),
            max: ns_ms(histogram.max()),
        })
    }
}

fn ns_ms(ns: u64) -> f64 {
    ns as f64 / 1_000_000.0
}

/// The load asked for.
#[derive(Clone, Debug, Serialize)]
pub struct Load {
    pub sessions: usize,
    pub parties: usize,
    pub party_size: usize,
    pub rate_hz: f64,
    pub payload: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub reliable: bool,
}

/// What the senders did in the measured window.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Sends {
    /// Sends due in the window (sessions × rate × duration).
    pub offered: u64,
    /// Sends made.
    pub sent: u64,
    /// Sends the client library refused.
    pub failed: u64,
    /// Sends skipped because the generator fell a whole period behind.
    pub missed: u64,
    pub offered_per_s: f64,
    pub sent_per_s: f64,
    /// How late sends left against their due time.
    pub lateness_ms: Option<Quantiles>,
}

/// What arrived, and where what did not arrive was lost.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Delivery {
    /// Measured sends made × receivers per send.
    pub expected: u64,
    /// Measured messages received, each once.
    pub received: u64,
    /// received / expected; null when nothing was expected.
    pub ratio: Option<f64>,
    /// Same (sender, seq) received again by one receiver.
    pub duplicates: u64,
    /// Received after a later message of the same sender.
    pub reordered: u64,
    /// Dropped inside the client library: its event queue was full (the
    /// generator did not keep up). Whole run, warm-up included.
    pub sdk_event_drops: u64,
    /// Dropped by the client's QUIC stack after arriving (its datagram
    /// receive buffer was full). Whole run, warm-up included.
    pub client_transport_drops: u64,
    /// Datagrams the host's kernel dropped for a full UDP receive buffer,
    /// any socket, over the window.
    pub kernel_udp_drops: Option<u64>,
    /// UDP packets the generator's connections received and sent, whole
    /// run: with `received`, how many messages each packet carried, and how
    /// many packets were acknowledgements and keep-alives.
    pub client_udp_rx: u64,
    pub client_udp_tx: u64,
    /// Packets the clients' QUIC stacks declared lost, and the congestion
    /// events that followed, whole run (client-to-server direction).
    pub client_lost_packets: u64,
    pub client_congestion_events: u64,
}

/// One process over the measured window.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ProcessFigures {
    pub cpu_s: f64,
    /// cpu_s / (window seconds × threads): 1.0 is every thread busy.
    pub utilization: f64,
    pub threads: usize,
    /// Time its threads waited for a CPU while runnable.
    pub run_delay_ms: f64,
}

/// Server-only figures.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ServerFigures {
    /// Server CPU over the window / messages delivered in it.
    pub cpu_per_delivered_us: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
    /// (RSS at the end of the measured window − before connecting) /
    /// sessions connected.
    pub rss_per_session_bytes: Option<u64>,
}

/// Control-plane latencies, milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Control {
    pub handshake: Option<Quantiles>,
    pub handshakes_per_s: f64,
    pub connect_failures: usize,
    /// Sessions whose connection ended before teardown.
    pub sessions_lost: usize,
    pub create: Option<Quantiles>,
    pub join: Option<Quantiles>,
    pub accept: Option<Quantiles>,
    /// A whole party formed: create, then every member joining at once
    /// (and, in a closed party, accepted).
    pub form: Option<Quantiles>,
}

/// The same load through the bare quinn relay, measured right after.
#[derive(Clone, Debug, Serialize)]
pub struct BareFigures {
    pub sends: Sends,
    pub delivery: Delivery,
    pub latency_ms: Option<Quantiles>,
    pub server: Option<ProcessFigures>,
    pub cpu_per_delivered_us: Option<f64>,
    pub generator: Option<ProcessFigures>,
    pub generator_bound: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub load: Load,
    /// Arguments passed on to `partyline serve` (e.g. --coalesce-us).
    pub server_args: Vec<String>,
    pub pinned: bool,
    pub window_s: f64,
    pub sends: Sends,
    pub delivery: Delivery,
    pub latency_ms: Option<Quantiles>,
    pub control: Control,
    pub server: Option<ProcessFigures>,
    pub server_figures: ServerFigures,
    pub generator: Option<ProcessFigures>,
    /// Hypervisor steal over the window, summed over CPUs.
    pub host_steal_s: Option<f64>,
    /// Why the generator, not the server, may have bounded this run; empty
    /// when it did not.
    pub generator_bound: Vec<String>,
    pub bare: Option<BareFigures>,
    /// When the late messages (over 10 ms) were sent: (ms into the
    /// measured window, how many), the 20 worst 100 ms slices, in time
    /// order. One slice means one stall; many mean a slow tail throughout.
    pub late_timeline: Vec<(u64, u64)>,
    /// The server's QUIC counters over the window (server-to-client
    /// direction): packets lost, congestion events, datagrams quinn
    /// dropped. `None` without a metrics endpoint.
    pub server_transport: Option<ServerTransport>,
    /// The same, second by second: (ms into the window at the second's
    /// end, the change in that second).
    pub server_transport_timeline: Vec<(u64, ServerTransport)>,
    /// partyline's server CPU per delivered message / the bare relay's.
    pub transport_ratio: Option<f64>,
    /// A run over several nodes or processes (`--servers`, more than one
    /// `--server-pid`, `--extra-pid`, `--node-metrics`, `--nats-monitor`):
    /// every process's CPU, the total per delivered message, and what
    /// crossed NATS. Absent otherwise (`server` and `server_figures` are
    /// the first `--server-pid`'s in either case).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterFigures>,
    #[serde(skip)]
    pub latency: Histogram<u64>,
}

/// The generator-bound rule of docs/PERFORMANCE.md: its CPU at ≥ 90% of its
/// threads, more than 0.1% of ticks missed, or sends leaving more than
/// 1 ms late at p99.
pub fn generator_bound(sends: &Sends, generator: Option<&ProcessFigures>) -> Vec<String> {
    let mut reasons = Vec::new();
    if let Some(generator) = generator {
        if generator.utilization >= 0.9 {
            reasons.push(format!(
                "generator CPU at {:.0}% of its {} thread(s)",
                generator.utilization * 100.0,
                generator.threads
            ));
        }
    }
    if sends.offered > 0 && sends.missed as f64 > sends.offered as f64 * 0.001 {
        reasons.push(format!(
            "{} of {} ticks missed ({:.2}%)",
            sends.missed,
            sends.offered,
            sends.missed as f64 / sends.offered as f64 * 100.0
        ));
    }
    if let Some(lateness) = sends.lateness_ms {
        if lateness.p99 > 1.0 {
            reasons.push(format!("send lateness p99 {:.2} ms > 1 ms", lateness.p99));
        }
    }
    reasons
}

fn opt(value: Option<f64>, digits: usize) -> String {
    value.map_or("n/a".to_string(), |v| format!("{v:.digits$}"))
}

fn quantiles_text(q: Option<Quantiles>) -> String {
    q.map_or("n/a".to_string(), |q| {
        format!(
            "p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            q.p50, q.p90, q.p99, q.p999, q.max
        )
    })
}

fn pair_text(q: Option<Quantiles>) -> String {
    q.map_or("n/a".to_string(), |q| {
        format!("p50 {:.2} p99 {:.2}", q.p50, q.p99)
    })
}

fn process_text(name: &str, p: Option<ProcessFigures>) -> String {
    p.map_or(format!("{name}: n/a\n"), |p| {
        format!(
            "{name}: {:.2} CPU s ({:.0}% of {} thread(s)), waited {:.1} ms for a CPU\n",
            p.cpu_s,
            p.utilization * 100.0,
            p.threads,
            p.run_delay_ms
        )
    })
}

fn cluster_text(out: &mut String, c: &ClusterFigures) {
    let servers: Vec<String> = c
        .servers
        .iter()
        .zip(&c.sessions_per_server)
        .zip(&c.parties_led_per_server)
        .map(|((addr, sessions), led)| format!("{addr} ({sessions} sessions, {led} parties led)"))
        .collect();
    let _ = writeln!(out, "cluster: servers {}", servers.join(", "));
    for p in &c.processes {
        let _ = writeln!(
            out,
            "  {} {} (pid {}): {:.2} CPU s ({:.0}% of a core), {} µs per delivered, waited {:.1} ms for a CPU",
            p.role,
            p.name,
            p.pid,
            p.cpu_s,
            p.cores * 100.0,
            opt(p.cpu_per_delivered_us, 2),
            p.run_delay_ms
        );
    }
    let _ = writeln!(
        out,
        "  total CPU per delivered message: {} µs (servers alone {} µs)",
        opt(c.total_cpu_per_delivered_us, 2),
        opt(c.servers_cpu_per_delivered_us, 2)
    );
    if let Some(p) = c.published {
        let _ = writeln!(
            out,
            "  published to NATS by the nodes: {:.0} messages/s ({:.0} party data, {:.0} control), {:.0} bytes/s, {} dropped",
            p.messages_per_s,
            p.datagram_messages_per_s,
            p.control_messages_per_s,
            p.bytes_per_s,
            p.dropped
        );
    }
    if let Some(n) = c.nats {
        let _ = writeln!(
            out,
            "  NATS /varz: in {:.0} msgs/s {:.0} bytes/s, out {:.0} msgs/s {:.0} bytes/s",
            n.in_msgs_per_s, n.in_bytes_per_s, n.out_msgs_per_s, n.out_bytes_per_s
        );
    }
}

impl Report {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let load = &self.load;
        let _ = writeln!(
            out,
            "load: {} sessions, {} parties x {}, {} Hz, {} B payload, {:.0} s warm-up + {:.0} s measured, {}{}{}",
            load.sessions,
            load.parties,
            load.party_size,
            load.rate_hz,
            load.payload,
            load.warmup_s,
            load.duration_s,
            if load.reliable { "reliable" } else { "datagrams" },
            if self.pinned { ", pinned" } else { "" },
            if self.server_args.is_empty() {
                String::new()
            } else {
                format!(", serve {}", self.server_args.join(" "))
            }
        );
        let s = &self.sends;
        let _ = writeln!(
            out,
            "sends: offered {} ({:.0}/s), sent {} ({:.0}/s), missed {}, refused {}; lateness ms {}",
            s.offered,
            s.offered_per_s,
            s.sent,
            s.sent_per_s,
            s.missed,
            s.failed,
            pair_text(s.lateness_ms)
        );
        let _ = writeln!(
            out,
            "latency one-way ms: {}",
            quantiles_text(self.latency_ms)
        );
        let d = &self.delivery;
        let _ = writeln!(
            out,
            "delivery: expected {}  received {}  {}%  (duplicates {}, reordered {}, dropped in the SDK {}, in the client's QUIC {}, kernel UDP drops {})",
            d.expected,
            d.received,
            opt(d.ratio.map(|r| r * 100.0), 4),
            d.duplicates,
            d.reordered,
            d.sdk_event_drops,
            d.client_transport_drops,
            d.kernel_udp_drops.map_or("n/a".to_string(), |n| n.to_string())
        );
        let _ = writeln!(
            out,
            "client UDP packets: {} received, {} sent, {} declared lost, {} congestion events (whole run)",
            d.client_udp_rx, d.client_udp_tx, d.client_lost_packets, d.client_congestion_events
        );
        if let Some(t) = self.server_transport {
            let _ = writeln!(
                out,
                "server QUIC over the window: {} packets sent, {} declared lost, {} congestion events, {} datagrams handed to quinn and not sent (queued at the edges, or dropped)",
                t.packets_sent,
                t.packets_lost,
                t.congestion_events,
                t.datagrams_handed.saturating_sub(t.datagram_frames_sent)
            );
        }
        let troubled: Vec<&(u64, ServerTransport)> = self
            .server_transport_timeline
            .iter()
            .filter(|(_, t)| t.packets_lost > 0 || t.congestion_events > 0)
            .collect();
        if !troubled.is_empty() {
            let seconds: Vec<String> = troubled
                .iter()
                .map(|(ms, t)| {
                    format!(
                        "{ms} ms: lost {} cong {} quinn-dropped {}",
                        t.packets_lost,
                        t.congestion_events,
                        t.datagrams_handed.saturating_sub(t.datagram_frames_sent)
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "server QUIC, seconds with losses (ms into the window at each second's end): {}",
                seconds.join(", ")
            );
        }
        let c = &self.control;
        let _ = writeln!(
            out,
            "control ms: handshake {}  create {}  join {}  accept {}  whole party {}",
            pair_text(c.handshake),
            pair_text(c.create),
            pair_text(c.join),
            pair_text(c.accept),
            pair_text(c.form)
        );
        let _ = writeln!(
            out,
            "handshakes: {:.0}/s during connect, {} failed, {} lost before teardown",
            c.handshakes_per_s, c.connect_failures, c.sessions_lost
        );
        out.push_str(&process_text("server", self.server));
        if let Some(per) = self.server_figures.cpu_per_delivered_us {
            let _ = writeln!(out, "server CPU per delivered message: {per:.2} µs");
        }
        if let (Some(peak), Some(per)) = (
            self.server_figures.peak_rss_bytes,
            self.server_figures.rss_per_session_bytes,
        ) {
            let _ = writeln!(
                out,
                "server memory: peak RSS {:.1} MiB, {:.1} KiB per connected session",
                peak as f64 / 1048576.0,
                per as f64 / 1024.0
            );
        }
        out.push_str(&process_text("generator", self.generator));
        if let Some(cluster) = &self.cluster {
            cluster_text(&mut out, cluster);
        }
        let _ = writeln!(
            out,
            "host: {} s stolen by the hypervisor over the {:.1} s window",
            opt(self.host_steal_s, 2),
            self.window_s
        );
        if let Some(bare) = &self.bare {
            let _ = writeln!(
                out,
                "bare quinn relay, same load: sent {}, delivery {}%, {} µs server CPU per delivered, latency ms {}",
                bare.sends.sent,
                opt(bare.delivery.ratio.map(|r| r * 100.0), 4),
                opt(bare.cpu_per_delivered_us, 2),
                pair_text(bare.latency_ms)
            );
            if !bare.generator_bound.is_empty() {
                let _ = writeln!(
                    out,
                    "GENERATOR-BOUND (bare run): {}",
                    bare.generator_bound.join("; ")
                );
            }
            if let Some(ratio) = self.transport_ratio {
                let _ = writeln!(
                    out,
                    "server CPU per delivered datagram, partyline / bare quinn relay: {ratio:.2}x"
                );
            }
        }
        if !self.late_timeline.is_empty() {
            let slices: Vec<String> = self
                .late_timeline
                .iter()
                .map(|(ms, count)| format!("{ms} ms: {count}"))
                .collect();
            let _ = writeln!(
                out,
                "messages over 10 ms late, by 100 ms of send time into the window: {}",
                slices.join(", ")
            );
        }
        if !self.generator_bound.is_empty() {
            let _ = writeln!(
                out,
                "GENERATOR-BOUND: {} (these figures measure the generator as much as the server)",
                self.generator_bound.join("; ")
            );
        }
        out
    }

    fn latency_ms(&self, q: f64) -> f64 {
        ns_ms(self.latency.value_at_quantile(q))
    }

    fn delivery_percent(&self) -> f64 {
        self.delivery.ratio.unwrap_or(1.0) * 100.0
    }

    /// (value, cumulative fraction) points of the latency distribution.
    fn cdf(&self) -> Vec<(u64, f64)> {
        self.latency
            .iter_quantiles(1)
            .map(|step| (step.value_iterated_to(), step.quantile_iterated_to()))
            .collect()
    }

    /// The latency distribution as a cumulative plot (log-scale time axis).
    pub fn to_svg(&self) -> String {
        let (width, height, left, bottom, top, right) = (720.0, 440.0, 70.0, 50.0, 64.0, 44.0);
        let plot_w = width - left - right;
        let plot_h = height - top - bottom;
        let points = self.cdf();
        let low = 10_000f64.log10(); // 10 µs
        let high = (self.latency.max().max(1_000_000) as f64).log10().ceil();
        let x = |ns: u64| {
            left + ((ns.max(1) as f64).log10().clamp(low, high) - low) / (high - low) * plot_w
        };
        let y = |fraction: f64| top + (1.0 - fraction) * plot_h;
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        );
        let _ = writeln!(
            svg,
            "<text x=\"{left}\" y=\"22\" font-size=\"15\">partyline one-way latency, sender to each receiver</text>\n<text x=\"{left}\" y=\"42\">{} parties x {} @ {} Hz, {} B payload: p50 {:.3} ms, p99 {:.3} ms, delivery {:.3}%</text>",
            self.load.parties,
            self.load.party_size,
            self.load.rate_hz,
            self.load.payload,
            self.latency_ms(0.5),
            self.latency_ms(0.99),
            self.delivery_percent()
        );
        let mut decade = low;
        while decade <= high {
            let ns = 10f64.powf(decade);
            let px = left + (decade - low) / (high - low) * plot_w;
            let label = if ns >= 1e6 {
                format!("{} ms", ns / 1e6)
            } else {
                format!("{} µs", ns / 1e3)
            };
            let _ = writeln!(
                svg,
                "<line x1=\"{px:.1}\" y1=\"{top}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/><text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
                top + plot_h,
                top + plot_h + 18.0
            );
            decade += 1.0;
        }
        for fraction in [0.0, 0.5, 0.9, 1.0] {
            let py = y(fraction);
            let _ = writeln!(
                svg,
                "<line x1=\"{left}\" y1=\"{py:.1}\" x2=\"{:.1}\" y2=\"{py:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}%</text>",
                left + plot_w,
                left - 6.0,
                py + 4.0,
                fraction * 100.0
            );
        }
        // The quoted percentiles as labelled markers on the curve.
        for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
            let px = x(self.latency.value_at_quantile(q));
            let _ = writeln!(
                svg,
                "<line x1=\"{px:.1}\" y1=\"{:.1}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"#d62728\" stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#d62728\">{name}</text>",
                y(q),
                top + plot_h,
                px + 4.0,
                y(q) + 14.0
            );
        }
        let path: Vec<String> = points
            .iter()
            .map(|(ns, f)| format!("{:.1},{:.1}", x(*ns), y(*f)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">latency (log scale)</text>\n<text x=\"16\" y=\"{:.1}\" transform=\"rotate(-90 16 {:.1})\" text-anchor=\"middle\">messages delivered within</text>\n</svg>",
            left + plot_w / 2.0,
            height - 8.0,
            top + plot_h / 2.0,
            top + plot_h / 2.0
        );
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator(utilization: f64) -> ProcessFigures {
        ProcessFigures {
            cpu_s: utilization * 20.0,
            utilization,
            threads: 1,
            run_delay_ms: 0.0,
        }
    }

    fn sends(missed: u64, lateness_p99: f64) -> Sends {
        Sends {
            offered: 100_000,
            sent: 100_000 - missed,
            missed,
            lateness_ms: Some(Quantiles {
                p50: 0.01,
                p90: 0.05,
                p99: lateness_p99,
                p999: lateness_p99,
                max: lateness_p99,
            }),
            ..Sends::default()
        }
    }

    #[test]
    fn a_run_within_every_limit_is_not_generator_bound() {
        assert!(generator_bound(&sends(100, 1.0), Some(&generator(0.89))).is_empty());
    }

    #[test]
    fn each_limit_alone_flags_a_run_and_says_why() {
        let busy = generator_bound(&sends(0, 0.1), Some(&generator(0.9)));
        assert_eq!(busy.len(), 1);
        assert!(busy[0].contains("90%"), "{busy:?}");
        let missing = generator_bound(&sends(101, 0.1), Some(&generator(0.5)));
        assert_eq!(missing.len(), 1);
        assert!(
            missing[0].contains("101 of 100000 ticks missed"),
            "{missing:?}"
        );
        let late = generator_bound(&sends(0, 1.01), None);
        assert_eq!(late.len(), 1);
        assert!(late[0].contains("lateness"), "{late:?}");
        assert_eq!(
            generator_bound(&sends(500, 3.0), Some(&generator(1.0))).len(),
            3
        );
    }
}
