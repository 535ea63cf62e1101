//! The measured window of a run: the senders' timetable driven to its end,
//! with the server, the generator and the host sampled at the window's
//! edges (after the warm-up, and at the last send's due time).

use crate::measure::Clock;
use crate::procstat::{self, HostSample, ProcessSample};
use crate::schedule::{drive, SendFigures, Timetable};
use std::time::{Duration, Instant};

/// Everything sampled at one edge of the window.
#[derive(Clone, Copy, Debug)]
pub struct Samples {
    pub at: Instant,
    pub server: Option<ProcessSample>,
    pub own: Option<ProcessSample>,
    pub host: Option<HostSample>,
}

impl Samples {
    pub fn now(server_pid: Option<u32>) -> Samples {
        Samples {
            at: Instant::now(),
            server: server_pid.and_then(procstat::sample),
            own: procstat::own(),
            host: procstat::host(),
        }
    }
}

pub struct WindowFigures {
    pub sends: SendFigures,
    pub start: Samples,
    pub end: Samples,
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
    server_pid: Option<u32>,
    send: F,
) -> WindowFigures
where
    F: FnMut(usize, &[u8]) -> bool,
{
    let (warm_end, end) = (clock.at(table.warm_end_ns), clock.at(table.end_ns));
    let sampler = tokio::spawn(async move {
        tokio::time::sleep_until(warm_end.into()).await;
        let first = Samples::now(server_pid);
        tokio::time::sleep_until(end.into()).await;
        (first, Samples::now(server_pid))
    });
    let sends = drive(table, clock, payload, send).await;
    let (start, end) = match sampler.await {
        Ok(samples) => samples,
        // The sampler cannot panic; if it did, an empty window reads as such.
        Err(_) => {
            let now = Samples::now(server_pid);
            (now, now)
        }
    };
    WindowFigures { sends, start, end }
}
