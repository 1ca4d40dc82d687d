//! Runs one target: a fixed number of inputs from a seeded generator, each timed and run
//! under a panic guard, with the memory of whatever is under test read after warm-up and
//! at the end. A finding is saved with the input that caused it, so it can be replayed
//! (`fuzz replay`) and turned into a regression test.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;

/// One fuzz target.
pub trait Target {
    /// Short name (`istio-yaml`).
    fn name(&self) -> &'static str;

    /// The next input.
    fn input(&mut self, rng: &mut StdRng) -> Vec<u8>;

    /// Feeds one input to what is under test; `Err` says which promise it broke (a
    /// panic counts too).
    fn run(&mut self, input: &[u8]) -> Result<(), String>;

    /// Resident memory of what is under test, in KB.
    fn rss_kb(&self) -> u64;

    /// A periodic check that what is under test still works (a server still serves).
    fn check(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Inputs to run.
    pub count: u64,
    /// The generator's seed: the same seed gives the same inputs.
    pub seed: u64,
    /// An input taking longer than this is a hang.
    pub hang: Duration,
    /// Where findings are saved.
    pub out: PathBuf,
    /// Progress lines on stderr.
    pub progress: bool,
}

/// Something a target promised and an input broke.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Which input (0-based).
    pub index: u64,
    /// What went wrong.
    pub problem: String,
    /// Where the input was saved.
    pub saved: Option<PathBuf>,
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct Report {
    /// The target.
    pub target: &'static str,
    /// Inputs run.
    pub inputs: u64,
    /// Broken promises (at most [`MAX_FINDINGS`]; the run stops there).
    pub findings: Vec<Finding>,
    /// The slowest input.
    pub slowest: Duration,
    /// Memory of what is under test after warm-up (half the run), in KB.
    pub rss_start_kb: u64,
    /// Memory at the end, in KB.
    pub rss_end_kb: u64,
    /// Panics the code under test caught itself (its own guards), not findings.
    pub guarded_panics: u64,
    /// How long the run took.
    pub elapsed: Duration,
}

/// A run stops after this many findings: the first ones are what matters.
pub const MAX_FINDINGS: usize = 10;

/// Whether memory leaked between warm-up (`start_kb`), three quarters of the run
/// (`three_quarters_kb`) and the end (`end_kb`). It may move by 10 % plus 2 MB in all
/// (allocator caches, buffer pools sized by the largest input so far); beyond that it is
/// a leak only when both quarters grew, each by at least a quarter of the growth: a leak
/// grows with every input, while one large input late in the run raises the high-water
/// mark once, in one quarter (a debug run of 4,000 YAML inputs moved 18.5 → 23.6 MB in one
/// step that way, then stayed at 23.6 MB over 16,000 more).
fn grew_too_much(start_kb: u64, three_quarters_kb: u64, end_kb: u64) -> bool {
    let growth = end_kb.saturating_sub(start_kb);
    growth > start_kb / 10 + 2048
        && three_quarters_kb.saturating_sub(start_kb) >= growth / 4
        && end_kb.saturating_sub(three_quarters_kb) >= growth / 4
}

static PANICS: AtomicU64 = AtomicU64::new(0);
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Replaces the panic hook: panics are counted and their message kept for the report,
/// instead of printed (the code under test may catch panics of its own).
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        PANICS.fetch_add(1, Ordering::Relaxed);
        let mut last = LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner());
        *last = Some(info.to_string());
    }));
}

fn last_panic() -> String {
    LAST_PANIC
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_else(|| "a panic".to_owned())
}

fn save(out: &Path, target: &str, index: u64, input: &[u8]) -> Option<PathBuf> {
    std::fs::create_dir_all(out).ok()?;
    let path = out.join(format!("{target}-{index}.bin"));
    std::fs::write(&path, input).ok()?;
    Some(path)
}

/// Runs `target` as `settings` say.
pub fn run(target: &mut dyn Target, settings: &Settings) -> Report {
    let started = Instant::now();
    let name = target.name();
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let panics_before = PANICS.load(Ordering::Relaxed);
    let mut escaped = 0;
    let mut findings = Vec::new();
    let mut slowest = Duration::ZERO;
    // Warm-up is the first half (at least 200 inputs): allocator caches and buffers grow
    // to the largest inputs seen, which takes a while with inputs of random size; a leak
    // keeps growing through the second half, a high-water mark does not.
    let warm_up = (settings.count / 2).max(200).min(settings.count);
    let mut rss_start_kb = target.rss_kb();
    let three_quarters = warm_up + (settings.count - warm_up) / 2;
    let mut rss_three_quarters_kb = rss_start_kb;
    let mut inputs = 0;
    let finding = |index: u64, problem: String, input: &[u8], findings: &mut Vec<Finding>| {
        let saved = save(&settings.out, name, index, input);
        findings.push(Finding {
            index,
            problem,
            saved,
        });
    };
    for index in 0..settings.count {
        if findings.len() >= MAX_FINDINGS {
            break;
        }
        let input = target.input(&mut rng);
        let t0 = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| target.run(&input)));
        let took = t0.elapsed();
        slowest = slowest.max(took);
        inputs += 1;
        match result {
            Ok(Ok(())) if took <= settings.hang => {}
            Ok(Ok(())) => finding(
                index,
                format!(
                    "took {} ms (limit {} ms)",
                    took.as_millis(),
                    settings.hang.as_millis()
                ),
                &input,
                &mut findings,
            ),
            Ok(Err(problem)) => finding(index, problem, &input, &mut findings),
            Err(_) => {
                escaped += 1;
                finding(
                    index,
                    format!("panicked: {}", last_panic()),
                    &input,
                    &mut findings,
                );
            }
        }
        if index + 1 == warm_up {
            rss_start_kb = target.rss_kb();
        }
        if index + 1 == three_quarters {
            rss_three_quarters_kb = target.rss_kb();
        }
        if (index + 1) % 500 == 0
            && let Err(problem) = target.check()
        {
            finding(
                index,
                format!("after this input: {problem}"),
                &input,
                &mut findings,
            );
        }
        if settings.progress && settings.count >= 20 && (index + 1) % (settings.count / 20) == 0 {
            eprintln!(
                "  {name}: {} / {} inputs, {} findings, {:.0} inputs/s",
                index + 1,
                settings.count,
                findings.len(),
                (index + 1) as f64 / started.elapsed().as_secs_f64().max(1e-9)
            );
        }
    }
    if let Err(problem) = target.check() {
        findings.push(Finding {
            index: inputs,
            problem: format!("at the end: {problem}"),
            saved: None,
        });
    }
    let rss_end_kb = target.rss_kb();
    if inputs >= warm_up * 2 - 1 && grew_too_much(rss_start_kb, rss_three_quarters_kb, rss_end_kb) {
        findings.push(Finding {
            index: inputs,
            problem: format!("memory grew from {rss_start_kb} KB after warm-up to {rss_end_kb} KB"),
            saved: None,
        });
    }
    Report {
        target: name,
        inputs,
        findings,
        slowest,
        rss_start_kb,
        rss_end_kb,
        guarded_panics: PANICS.load(Ordering::Relaxed) - panics_before - escaped,
        elapsed: started.elapsed(),
    }
}

/// Resident memory of a process (`/proc/<pid>/status`), in KB; 0 when unreadable.
pub fn rss_kb_of(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rand::Rng as _;

    use super::*;

    /// A target with planted faults: a panic on input byte 0, a slow input on byte 1,
    /// an error on byte 2, and memory that grows with every input when `leaks`.
    struct Planted {
        leaks: bool,
        inputs: u64,
    }

    impl Target for Planted {
        fn name(&self) -> &'static str {
            "planted"
        }
        fn input(&mut self, rng: &mut StdRng) -> Vec<u8> {
            vec![rng.random_range(0..=255u8)]
        }
        fn run(&mut self, input: &[u8]) -> Result<(), String> {
            self.inputs += 1;
            match input[0] {
                0 => panic!("planted panic"),
                1 => {
                    std::thread::sleep(Duration::from_millis(30));
                    Ok(())
                }
                2 => Err("planted error".to_owned()),
                _ => Ok(()),
            }
        }
        fn rss_kb(&self) -> u64 {
            10_000 + if self.leaks { self.inputs * 10 } else { 0 }
        }
    }

    fn settings(count: u64, out: &str) -> Settings {
        Settings {
            count,
            seed: 3,
            hang: Duration::from_millis(20),
            out: std::env::temp_dir().join(format!("fuzz-harness-{}-{out}", std::process::id())),
            progress: false,
        }
    }

    #[test]
    fn planted_faults_are_found_and_their_inputs_saved() {
        quiet_panics();
        let mut target = Planted {
            leaks: false,
            inputs: 0,
        };
        let s = settings(2000, "faults");
        let report = run(&mut target, &s);
        let problems: Vec<&str> = report.findings.iter().map(|f| f.problem.as_str()).collect();
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("panicked: ") && p.contains("planted panic")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.starts_with("took ")),
            "{problems:?}"
        );
        assert!(problems.contains(&"planted error"), "{problems:?}");
        assert!(report.findings.len() <= MAX_FINDINGS);
        let saved = report.findings[0].saved.as_ref().unwrap();
        assert_eq!(std::fs::read(saved).unwrap().len(), 1);
        std::fs::remove_dir_all(&s.out).unwrap();
    }

    #[test]
    fn a_clean_target_has_no_findings_and_a_leak_is_one() {
        /// Only harmless inputs.
        struct Clean(Planted);
        impl Target for Clean {
            fn name(&self) -> &'static str {
                "clean"
            }
            fn input(&mut self, rng: &mut StdRng) -> Vec<u8> {
                vec![rng.random_range(3..=255u8)]
            }
            fn run(&mut self, input: &[u8]) -> Result<(), String> {
                self.0.run(input)
            }
            fn rss_kb(&self) -> u64 {
                self.0.rss_kb()
            }
        }
        let clean = run(
            &mut Clean(Planted {
                leaks: false,
                inputs: 0,
            }),
            &settings(1000, "clean"),
        );
        assert!(clean.findings.is_empty(), "{:?}", clean.findings);
        assert_eq!(clean.inputs, 1000);
        // 10 KB per input: 500 inputs after warm-up is 5 MB, over 10 % + 2 MB of 15 MB.
        let leaky = run(
            &mut Clean(Planted {
                leaks: true,
                inputs: 0,
            }),
            &settings(1000, "leak"),
        );
        assert_eq!(leaky.findings.len(), 1, "{:?}", leaky.findings);
        assert!(leaky.findings[0].problem.starts_with("memory grew"));
    }

    #[test]
    fn one_large_input_late_in_the_run_is_a_high_water_mark_not_a_leak() {
        assert!(
            !grew_too_much(18_468, 18_468, 23_636),
            "one step in the last quarter"
        );
        assert!(
            !grew_too_much(18_468, 23_636, 23_636),
            "one step in the third quarter"
        );
        assert!(grew_too_much(15_000, 17_500, 20_000), "steady growth");
        assert!(!grew_too_much(15_000, 16_000, 17_000), "within 10 % + 2 MB");
    }
}
