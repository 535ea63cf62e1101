//! Phase progress: an indicatif bar on a terminal, plain lines otherwise.

use indicatif::{ProgressBar, ProgressStyle};
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

pub(crate) struct Progress {
    mode: ProgressMode,
    phase: &'static str,
    bar: ProgressBar,
    started: Instant,
}

impl Progress {
    pub(crate) fn start(mode: ProgressMode, phase: &'static str, total: usize) -> Progress {
        let bar = match mode {
            ProgressMode::Bar => {
                let bar = ProgressBar::new(total as u64).with_prefix(phase);
                if let Ok(style) =
                    ProgressStyle::with_template("{prefix:>13} [{bar:30}] {pos}/{len} {elapsed}")
                {
                    bar.set_style(style.progress_chars("#>-"));
                }
                bar.enable_steady_tick(Duration::from_millis(200));
                bar
            }
            ProgressMode::Lines => {
                eprintln!("phase {phase}: started ({total})");
                ProgressBar::hidden()
            }
            ProgressMode::Quiet => ProgressBar::hidden(),
        };
        Progress {
            mode,
            phase,
            bar,
            started: Instant::now(),
        }
    }

    pub(crate) fn advance(&self, by: usize) {
        self.bar.inc(by as u64);
    }

    /// The bar, for a task that advances it.
    pub(crate) fn handle(&self) -> ProgressBar {
        self.bar.clone()
    }

    pub(crate) fn finish(&self) {
        self.bar.finish();
        if self.mode == ProgressMode::Lines {
            eprintln!(
                "phase {}: done in {:.1?}",
                self.phase,
                self.started.elapsed()
            );
        }
    }
}
