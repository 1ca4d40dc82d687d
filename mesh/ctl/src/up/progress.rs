//! Startup progress: one line per component that gets a tick when it is ready. On a
//! terminal these are live spinners; otherwise (CI, pipes) each line is printed once
//! the component is ready or failed.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The progress display.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    multi: Option<MultiProgress>,
}

/// One component's line.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    bar: Option<ProgressBar>,
    name: String,
}

impl Progress {
    /// Spinners on a terminal (stdout), plain lines otherwise, and with `verbose` (the
    /// children's interleaved output would tear the spinners apart).
    pub(crate) fn new(verbose: bool) -> Self {
        let multi = (std::io::stdout().is_terminal() && !verbose)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        Self { multi }
    }

    /// A line for `name` saying `what` until it finishes.
    pub(crate) fn line(&self, name: &str, what: &str) -> Line {
        let bar = self.multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new_spinner());
            if let Ok(style) = ProgressStyle::with_template("  {spinner} {msg}") {
                bar.set_style(style.tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏✔"));
            }
            bar.set_message(format!("{name:<22} {what}"));
            bar.enable_steady_tick(Duration::from_millis(80));
            bar
        });
        Line {
            bar,
            name: name.to_owned(),
        }
    }

    /// Prints a message above the spinners.
    pub(crate) fn println(&self, text: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => println!("{text}"),
        }
    }
}

impl Line {
    /// Ticks the line: ready after `took`.
    pub(crate) fn ready(&self, took: Duration) {
        let text = format!("✔ {:<22} ready ({:.1} s)", self.name, took.as_secs_f64());
        self.finish(text);
    }

    /// Marks the line failed.
    pub(crate) fn failed(&self, why: &str) {
        let text = format!("✘ {:<22} {why}", self.name);
        self.finish(text);
    }

    fn finish(&self, text: String) {
        match &self.bar {
            Some(bar) => {
                bar.set_style(
                    ProgressStyle::with_template("  {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.finish_with_message(text);
            }
            None => println!("  {text}"),
        }
    }
}
