//! The load test's result: printed for people, one JSON object for
//! machines, and a latency plot as SVG.

use super::Histogram;
use std::fmt::Write;
use std::time::Duration;

/// The bare-transport reference: the same load through a bare quinn
/// datagram relay (no party logic), measured in the same run.
#[derive(Clone, Debug)]
pub struct BareFigures {
    pub delivered: u64,
    pub server_cpu: Duration,
    pub latency_p50: Duration,
    pub latency_p99: Duration,
}

impl BareFigures {
    pub fn cpu_per_datagram(&self) -> Option<Duration> {
        (self.delivered > 0).then(|| self.server_cpu / self.delivered as u32)
    }
}

#[derive(Clone, Debug)]
pub struct Report {
    pub sessions: usize,
    /// Sessions whose handshake failed (refused or timed out).
    pub connect_failures: usize,
    pub parties: usize,
    pub party_size: usize,
    pub rate_hz: f64,
    pub payload: usize,
    pub duration: Duration,
    pub reliable: bool,
    /// One-way sender-to-receiver latency, nanoseconds.
    pub latency: Histogram,
    pub sent: u64,
    pub expected: u64,
    pub received: u64,
    /// (p50, p99)
    pub handshake: (Duration, Duration),
    pub handshakes_per_second: f64,
    pub create: (Duration, Duration),
    pub join: (Duration, Duration),
    pub accept: (Duration, Duration),
    pub server_steady_cpu: Option<Duration>,
    pub server_total_cpu: Option<Duration>,
    pub server_peak_rss: Option<u64>,
    pub server_rss_per_session: Option<u64>,
    pub own_steady_cpu: Option<Duration>,
    pub own_total_cpu: Option<Duration>,
    pub bare: Option<BareFigures>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ns_ms(ns: u64) -> f64 {
    ns as f64 / 1_000_000.0
}

impl Report {
    pub fn delivery_ratio(&self) -> f64 {
        if self.expected == 0 {
            1.0
        } else {
            self.received as f64 / self.expected as f64
        }
    }

    /// Server CPU per delivered message over the steady phase.
    pub fn server_cpu_per_delivered(&self) -> Option<Duration> {
        let cpu = self.server_steady_cpu?;
        (self.received > 0).then(|| cpu.div_f64(self.received as f64))
    }

    /// Server CPU per delivered message relative to the bare relay's CPU per delivered datagram.
    pub fn transport_ratio(&self) -> Option<f64> {
        let ours = self.server_cpu_per_delivered()?;
        let bare = self.bare.as_ref()?.cpu_per_datagram()?;
        (!bare.is_zero()).then(|| ours.as_secs_f64() / bare.as_secs_f64())
    }

    fn latency_ms(&self, q: f64) -> f64 {
        ns_ms(self.latency.quantile(q))
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let secs = self.duration.as_secs_f64();
        let _ = writeln!(
            out,
            "load: {} sessions, {} parties x {}, {} Hz, {} B payload, {:.0} s, {}",
            self.sessions,
            self.parties,
            self.party_size,
            self.rate_hz,
            self.payload,
            secs,
            if self.reliable {
                "reliable"
            } else {
                "datagrams"
            }
        );
        let _ = writeln!(
            out,
            "latency one-way ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            self.latency_ms(0.5),
            self.latency_ms(0.9),
            self.latency_ms(0.99),
            self.latency_ms(0.999),
            ns_ms(self.latency.max())
        );
        let _ = writeln!(
            out,
            "messages: sent {}  expected {}  received {}  delivery {:.4}%",
            self.sent,
            self.expected,
            self.received,
            self.delivery_ratio() * 100.0
        );
        let _ = writeln!(
            out,
            "throughput: {:.0} msg/s in, {:.0} msg/s out",
            self.sent as f64 / secs,
            self.received as f64 / secs
        );
        let pair =
            |(p50, p99): (Duration, Duration)| format!("p50 {:.2} p99 {:.2}", ms(p50), ms(p99));
        let _ = writeln!(
            out,
            "control ms: handshake {}  create {}  join {}  accept {}",
            pair(self.handshake),
            pair(self.create),
            pair(self.join),
            pair(self.accept)
        );
        let _ = writeln!(
            out,
            "handshakes: {:.0}/s during connect, {} failed",
            self.handshakes_per_second, self.connect_failures
        );
        if let Some(cpu) = self.server_steady_cpu {
            let _ = write!(
                out,
                "server: {:.2} CPU s in steady ({:.0}% of a core)",
                cpu.as_secs_f64(),
                cpu.as_secs_f64() / (secs + 1.0) * 100.0
            );
            if let Some(per) = self.server_cpu_per_delivered() {
                let _ = write!(
                    out,
                    ", {:.2} µs per delivered message ({:.1} ms per 1,000)",
                    per.as_secs_f64() * 1e6,
                    per.as_secs_f64() * 1e6
                );
            }
            let _ = writeln!(out);
        }
        if let (Some(peak), Some(per)) = (self.server_peak_rss, self.server_rss_per_session) {
            let _ = writeln!(
                out,
                "server memory: peak RSS {:.1} MiB, {:.1} KiB per connected session",
                peak as f64 / 1048576.0,
                per as f64 / 1024.0
            );
        }
        if let (Some(steady), Some(total)) = (self.own_steady_cpu, self.own_total_cpu) {
            let _ = writeln!(
                out,
                "generator: {:.2} CPU s in steady, {:.2} CPU s in all",
                steady.as_secs_f64(),
                total.as_secs_f64()
            );
        }
        if let Some(bare) = &self.bare {
            let _ = writeln!(
                out,
                "bare quinn relay, same load: {} datagrams delivered, {:.2} µs server CPU each, latency p50 {:.3} ms p99 {:.3} ms",
                bare.delivered,
                bare.cpu_per_datagram().map_or(0.0, |d| d.as_secs_f64() * 1e6),
                ms(bare.latency_p50),
                ms(bare.latency_p99)
            );
            if let Some(ratio) = self.transport_ratio() {
                let _ = writeln!(
                    out,
                    "server CPU per delivered datagram, partyline / bare quinn relay: {ratio:.2}x"
                );
            }
        }
        out
    }

    pub fn to_json(&self) -> String {
        let opt_secs = |d: Option<Duration>| {
            d.map_or("null".to_string(), |d| format!("{:.6}", d.as_secs_f64()))
        };
        let opt_u64 = |v: Option<u64>| v.map_or("null".to_string(), |v| v.to_string());
        let pair = |(p50, p99): (Duration, Duration)| {
            format!("{{\"p50_ms\":{:.4},\"p99_ms\":{:.4}}}", ms(p50), ms(p99))
        };
        let bare = match &self.bare {
            None => "null".to_string(),
            Some(e) => format!(
                "{{\"datagrams\":{},\"server_cpu_s\":{:.6},\"cpu_per_datagram_us\":{},\"latency_p50_ms\":{:.4},\"latency_p99_ms\":{:.4}}}",
                e.delivered,
                e.server_cpu.as_secs_f64(),
                e.cpu_per_datagram().map_or("null".to_string(), |d| format!("{:.3}", d.as_secs_f64() * 1e6)),
                ms(e.latency_p50),
                ms(e.latency_p99)
            ),
        };
        format!(
            concat!(
                "{{\"sessions\":{},\"connect_failures\":{},\"parties\":{},\"party_size\":{},\"rate_hz\":{},\"payload\":{},",
                "\"duration_s\":{},\"reliable\":{},",
                "\"latency_ms\":{{\"p50\":{:.4},\"p90\":{:.4},\"p99\":{:.4},\"p999\":{:.4},\"max\":{:.4}}},",
                "\"sent\":{},\"expected\":{},\"received\":{},\"delivery_ratio\":{:.6},",
                "\"msgs_per_s_in\":{:.1},\"msgs_per_s_out\":{:.1},",
                "\"handshake\":{},\"handshakes_per_s\":{:.1},\"create\":{},\"join\":{},\"accept\":{},",
                "\"server_steady_cpu_s\":{},\"server_total_cpu_s\":{},\"server_cpu_per_delivered_us\":{},",
                "\"server_peak_rss_bytes\":{},\"server_rss_per_session_bytes\":{},",
                "\"generator_steady_cpu_s\":{},\"generator_total_cpu_s\":{},",
                "\"bare_reference\":{},\"transport_ratio\":{}}}"
            ),
            self.sessions,
            self.connect_failures,
            self.parties,
            self.party_size,
            self.rate_hz,
            self.payload,
            self.duration.as_secs_f64(),
            self.reliable,
            self.latency_ms(0.5),
            self.latency_ms(0.9),
            self.latency_ms(0.99),
            self.latency_ms(0.999),
            ns_ms(self.latency.max()),
            self.sent,
            self.expected,
            self.received,
            self.delivery_ratio(),
            self.sent as f64 / self.duration.as_secs_f64(),
            self.received as f64 / self.duration.as_secs_f64(),
            pair(self.handshake),
            self.handshakes_per_second,
            pair(self.create),
            pair(self.join),
            pair(self.accept),
            opt_secs(self.server_steady_cpu),
            opt_secs(self.server_total_cpu),
            self.server_cpu_per_delivered()
                .map_or("null".to_string(), |d| format!("{:.3}", d.as_secs_f64() * 1e6)),
            opt_u64(self.server_peak_rss),
            opt_u64(self.server_rss_per_session),
            opt_secs(self.own_steady_cpu),
            opt_secs(self.own_total_cpu),
            bare,
            self.transport_ratio().map_or("null".to_string(), |r| format!("{r:.3}")),
        )
    }

    /// The latency distribution as a cumulative plot (log-scale time axis).
    pub fn to_svg(&self) -> String {
        let (width, height, left, bottom, top, right) = (720.0, 440.0, 70.0, 50.0, 64.0, 44.0);
        let plot_w = width - left - right;
        let plot_h = height - top - bottom;
        let points = self.latency.cdf();
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
            self.parties,
            self.party_size,
            self.rate_hz,
            self.payload,
            self.latency_ms(0.5),
            self.latency_ms(0.99),
            self.delivery_ratio() * 100.0
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
            let px = x(self.latency.quantile(q));
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
