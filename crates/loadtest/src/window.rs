//! The measured window of a run: the senders' timetable driven to its end,
//! with the server, the generator and the host sampled at the window's
//! edges (after the warm-up, and at the last send's due time).

use crate::measure::Clock;
use crate::procstat::{self, HostSample, ProcessSample};
use crate::schedule::{drive, SendFigures, Timetable};
use crate::scrape::{self, ServerTransport};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How to observe the server under load.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerProbe {
    /// Its process, for CPU, run delay and memory.
    pub pid: Option<u32>,
    /// Its Prometheus endpoint, for QUIC's counters.
    pub metrics: Option<SocketAddr>,
    /// How often to read those counters inside the window (each read costs
    /// the server one pass over its connections); zero reads them only at
    /// the window's edges.
    pub metrics_interval: Duration,
}

/// Everything sampled at one edge of the window.
#[derive(Clone, Copy, Debug)]
pub struct Samples {
    pub at: Instant,
    pub server: Option<ProcessSample>,
    pub own: Option<ProcessSample>,
    pub host: Option<HostSample>,
    pub server_transport: Option<ServerTransport>,
}

impl Samples {
    /// Blocking (procfs reads and an HTTP scrape): call off the runtime.
    pub fn now(server: ServerProbe) -> Samples {
        Samples {
            at: Instant::now(),
            server: server.pid.and_then(procstat::sample),
            own: procstat::own(),
            host: procstat::host(),
            server_transport: server.metrics.and_then(scrape::server_transport),
        }
    }
}

pub struct WindowFigures {
    pub sends: SendFigures,
    pub start: Samples,
    pub end: Samples,
    /// The server's transport counters second by second: (ms into the
    /// window at the second's end, the change over that second).
    pub transport_timeline: Vec<(u64, ServerTransport)>,
}

impl WindowFigures {
    pub fn seconds(&self) -> f64 {
        self.end.at.duration_since(self.start.at).as_secs_f64()
    }
}

/// Change of a sampled figure over the window.
pub fn delta<T: Copy, R>(
    start: Option<T>,
    end: Option<T>,
    figure: impl Fn(T) -> R,
    minus: impl Fn(R, R) -> R,
) -> Option<R> {
    Some(minus(figure(end?), figure(start?)))
}

pub fn duration_delta(
    start: Option<ProcessSample>,
    end: Option<ProcessSample>,
    figure: impl Fn(ProcessSample) -> Duration,
) -> Option<Duration> {
    delta(start, end, figure, |b, a| b.saturating_sub(a))
}

pub async fn run<F>(
    table: Timetable,
    clock: Clock,
    payload: usize,
    server: ServerProbe,
    send: F,
) -> WindowFigures
where
    F: FnMut(usize, &[u8]) -> bool,
{
    let (warm_end, end) = (clock.at(table.warm_end_ns), clock.at(table.end_ns));
    let sample = move || async move {
        let taken = tokio::task::spawn_blocking(move || Samples::now(server)).await;
        taken.unwrap_or_else(|_| Samples::now(ServerProbe::default()))
    };
    let sampler = tokio::spawn(async move {
        tokio::time::sleep_until(warm_end.into()).await;
        let first = sample().await;
        let mut timeline = Vec::new();
        let every = server.metrics_interval;
        if let (Some(addr), Some(mut last), false) =
            (server.metrics, first.server_transport, every.is_zero())
        {
            let mut tick = warm_end + every;
            while tick < end {
                tokio::time::sleep_until(tick.into()).await;
                let read = tokio::task::spawn_blocking(move || scrape::server_transport(addr));
                if let Ok(Some(now)) = read.await {
                    let ms = tick.duration_since(warm_end).as_millis() as u64;
                    timeline.push((ms, now.since(last)));
                    last = now;
                }
                tick += every;
            }
        }
        tokio::time::sleep_until(end.into()).await;
        (first, sample().await, timeline)
    });
    let sends = drive(table, clock, payload, send).await;
    let (start, end, transport_timeline) = match sampler.await {
        Ok(samples) => samples,
        // The sampler cannot panic; if it did, an empty window reads as such.
        Err(_) => {
            let now = Samples::now(ServerProbe::default());
            (now, now, Vec::new())
        }
    };
    WindowFigures {
        sends,
        start,
        end,
        transport_timeline,
    }
}
