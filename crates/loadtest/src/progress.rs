//! Phase progress: a redrawn bar on a terminal, plain lines otherwise.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar redrawn in place (stderr is a terminal).
    Bar,
    /// One line when a phase starts and one when it ends.
    Lines,
    /// Nothing (tests, --json without a terminal).
    Quiet,
}

pub(super) struct Progress {
    mode: ProgressMode,
    phase: &'static str,
    total: usize,
    done: Arc<AtomicUsize>,
    finished: Arc<AtomicBool>,
    started: Instant,
}

fn bar(phase: &str, done: usize, total: usize) -> String {
    const WIDTH: usize = 30;
    let filled = (done * WIDTH)
        .checked_div(total)
        .unwrap_or(WIDTH)
        .min(WIDTH);
    format!(
        "\r{phase:>13} [{}{}] {done}/{total}",
        "#".repeat(filled),
        " ".repeat(WIDTH - filled)
    )
}

impl Progress {
    pub(super) fn start(mode: ProgressMode, phase: &'static str, total: usize) -> Progress {
        let progress = Progress {
            mode,
            phase,
            total,
            done: Arc::default(),
            finished: Arc::default(),
            started: Instant::now(),
        };
        match mode {
            ProgressMode::Lines => eprintln!("phase {phase}: started ({total})"),
            ProgressMode::Bar => {
                let (done, finished) = (progress.done.clone(), progress.finished.clone());
                tokio::spawn(async move {
                    while !finished.load(Ordering::Relaxed) {
                        eprint!("{}", bar(phase, done.load(Ordering::Relaxed), total));
                        let _ = std::io::stderr().flush();
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                });
            }
            ProgressMode::Quiet => {}
        }
        progress
    }

    pub(super) fn advance(&self, by: usize) {
        self.done.fetch_add(by, Ordering::Relaxed);
    }

    pub(super) fn finish(&self) {
        self.finished.store(true, Ordering::Relaxed);
        let took = self.started.elapsed();
        match self.mode {
            ProgressMode::Lines => eprintln!("phase {}: done in {took:.1?}", self.phase),
            ProgressMode::Bar => {
                eprintln!("{} {took:.1?}", bar(self.phase, self.total, self.total))
            }
            ProgressMode::Quiet => {}
        }
    }
}
