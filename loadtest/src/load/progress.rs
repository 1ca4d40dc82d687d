//! Live progress on a terminal: elapsed/total, achieved rate, errors, degraded answers and
//! the last second's p99. Hidden when stderr is not a terminal, so logs and CI output stay clean.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::stats::Recorder;

/// A running progress display; call [`Progress::finish`] when the run ends.
pub struct Progress {
    bar: ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Starts updating a bar four times a second. `total` is the planned duration, if known.
    pub fn start(recorder: Arc<Recorder>, total: Option<Duration>, quiet: bool) -> Self {
        let bar = if quiet || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::new(total.map_or(0, |t| t.as_millis() as u64));
            let template = if total.is_some() {
                "{bar:20.cyan/blue} {prefix} {msg}"
            } else {
                "{spinner} {prefix} {msg}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar
        };
        let handle = bar.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                let Some(start) = recorder.started_at() else {
                    continue;
                };
                let elapsed = start.elapsed();
                let counters = recorder.counters();
                let last = recorder.last_second();
                let (rps, p99) = last.map_or((0, 0.0), |s| (s.completed, s.corrected.p99));
                handle.set_position(elapsed.as_millis() as u64);
                handle.set_prefix(match total {
                    Some(t) => format!("{:.0}s/{:.0}s", elapsed.as_secs_f64(), t.as_secs_f64()),
                    None => format!("{:.0}s", elapsed.as_secs_f64()),
                });
                handle.set_message(format!(
                    "{rps} rps | p99 {p99:.1} ms (last s) | errors {} | degraded {} | dropped {}",
                    counters.errors, counters.degraded, counters.dropped
                ));
            }
        });
        Progress { bar, task }
    }

    /// Stops updating and clears the bar.
    pub fn finish(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}
