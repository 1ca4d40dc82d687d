//! Runs one lab: a fresh folder that looks like the repository (its top-level entries
//! linked, its own `.run/` for `meshctl up`'s state and logs), a fresh `meshctl up` on
//! free ports, then every step in order with its expectations, stopping at the first
//! step that fails and saying which, with the command and what it saw.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::expect::{Mismatch, Outcome};
use crate::markdown::{self, Kind, Lab, Step};
use crate::mesh::Mesh;
use crate::ports;
use crate::shell::Shell;

/// Entries of the repository a lab folder does not link: its own state, the build (the
/// runner puts the built binaries on `PATH`), the git metadata.
const NOT_LINKED: [&str; 3] = [".run", "target", ".git"];
/// Output lines shown with a failure.
const TAIL: usize = 25;

/// How to run labs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The repository root (what a lab's commands see as the current directory).
    pub repo: PathBuf,
    /// Where meshctl, the services, loadgen and chaos are.
    pub bin_dir: PathBuf,
    /// Scratch space: one folder per lab.
    pub work: PathBuf,
    /// Time limit of one run of a block without `timeout`.
    pub step_timeout: Duration,
    /// How long `meshctl up` may take to be ready.
    pub up_timeout: Duration,
}

/// How a lab went.
#[derive(Debug)]
pub struct Report {
    /// Folder name.
    pub name: String,
    /// Steps passed.
    pub passed: usize,
    /// Steps in all.
    pub steps: usize,
    /// The failure, if any (already printed).
    pub failure: Option<String>,
    /// Wall time.
    pub took: Duration,
}

/// Reads and parses `lab_dir/README.md`.
pub fn load(lab_dir: &Path) -> Result<Lab, String> {
    let readme = lab_dir.join("README.md");
    let text = std::fs::read_to_string(&readme)
        .map_err(|e| format!("cannot read {}: {e}", readme.display()))?;
    markdown::parse(&text).map_err(|e| format!("{}: {e}", readme.display()))
}

/// Runs the lab in `lab_dir`, printing each step as it goes.
pub fn run(lab_dir: &Path, opts: &Options) -> Report {
    let started = Instant::now();
    let name = lab_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut report = Report {
        name: name.clone(),
        passed: 0,
        steps: 0,
        failure: None,
        took: Duration::ZERO,
    };
    // Every failure is printed where it happens (a step's as it fails, before the
    // cleanups run); the result only carries it into the report.
    let shown = |e: String| {
        println!("{e}");
        e
    };
    let result = load(lab_dir).map_err(shown).and_then(|lab| {
        println!("== {name}: {}", lab.title);
        report.steps = lab.steps.len();
        let readme = Path::new("labs").join(&name).join("README.md");
        let mut session = Session::new(&name, opts).map_err(shown)?;
        let (cleanups, steps): (Vec<&Step>, Vec<&Step>) =
            lab.steps.iter().partition(|s| s.kind == Kind::Cleanup);
        let mut outcome = Ok(());
        for step in steps {
            outcome = session.step(step, &readme).map_err(shown);
            if outcome.is_err() {
                break;
            }
            report.passed += 1;
        }
        // Cleanups run whatever happened: they stop what the lab started outside its
        // `meshctl up`. After a failure, theirs is reported but the first failure stands.
        for step in cleanups {
            match session.step(step, &readme).map_err(shown) {
                Ok(()) => report.passed += 1,
                Err(e) => outcome = outcome.and(Err(e)),
            }
        }
        outcome
    });
    report.took = started.elapsed();
    match result {
        Ok(()) => println!(
            "== {name}: passed, {} steps in {:.1} s\n",
            report.steps,
            report.took.as_secs_f64()
        ),
        Err(e) => {
            println!(
                "== {name}: FAILED after {} of {} steps ({:.1} s)\n",
                report.passed,
                report.steps,
                report.took.as_secs_f64()
            );
            report.failure = Some(e);
        }
    }
    report
}

/// One lab in progress.
struct Session<'a> {
    opts: &'a Options,
    workdir: PathBuf,
    shell: Shell,
    plan: ports::Plan,
    mesh: Option<Mesh>,
}

impl<'a> Session<'a> {
    fn new(name: &str, opts: &'a Options) -> Result<Self, String> {
        let workdir = opts.work.join(name);
        lab_folder(&opts.repo, &workdir)
            .map_err(|e| format!("cannot prepare {}: {e}", workdir.display()))?;
        let shell = Shell::new(&workdir, &opts.bin_dir)
            .map_err(|e| format!("cannot prepare the shell: {e}"))?;
        let plan = ports::free_plan(std::process::id())
            .ok_or("no window of 200 free ports between 20000 and 32000")?;
        Ok(Self {
            opts,
            workdir,
            shell,
            plan,
            mesh: None,
        })
    }

    fn step(&mut self, step: &Step, readme: &Path) -> Result<(), String> {
        let started = Instant::now();
        let label = format!("{:>2} {}", step.number, step.heading);
        let fail = |detail: String| {
            format!(
                "  ✘ {label} ({}:{})\n{}\n{detail}",
                readme.display(),
                step.line,
                indent(&format!("$ {}", step.script.trim_end()), "     ")
            )
        };
        match step.kind {
            Kind::Manual => {
                println!("  - {label} (for the student only, not run)");
                return Ok(());
            }
            Kind::Up => {
                let args = markdown::up_args(&step.script).unwrap_or_default();
                if self.mesh.is_some() {
                    return Err(fail("     a lab starts one `meshctl up`".to_owned()));
                }
                let mesh = Mesh::start(
                    &self.workdir,
                    &self.opts.bin_dir,
                    &args,
                    &self.plan,
                    self.opts.up_timeout,
                )
                .map_err(|e| fail(indent(&e.to_string(), "     ")))?;
                self.mesh = Some(mesh);
                println!(
                    "  ✔ {label}: meshctl up on ports {}.. (gateway {}, control {}) ({:.1} s)",
                    self.plan.base,
                    self.plan.gateway,
                    self.plan.control,
                    started.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            Kind::Env | Kind::Run | Kind::Cleanup => {}
        }
        let script = if step.kind == Kind::Env {
            self.plan.translate(&step.script)
        } else {
            step.script.clone()
        };
        let limit = step.expect.timeout.unwrap_or(self.opts.step_timeout);
        let until = step.expect.within.map(|w| Instant::now() + w);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let outcome = self
                .shell
                .run(&script, limit)
                .map_err(|e| fail(format!("     cannot run bash: {e}")))?;
            let verdict = step.expect.verify(&outcome);
            let retry = until.is_some_and(|u| Instant::now() < u);
            match verdict {
                Ok(()) => {
                    let tries = if attempts > 1 {
                        format!(", {attempts} tries")
                    } else {
                        String::new()
                    };
                    println!("  ✔ {label} ({:.1} s{tries})", outcome.took.as_secs_f64());
                    return Ok(());
                }
                Err(_) if retry => std::thread::sleep(Duration::from_millis(500)),
                Err(mismatches) => return Err(fail(self.explain(&outcome, &mismatches, attempts))),
            }
        }
    }

    /// The failure text: each mismatch, the output's last lines, where the logs are.
    fn explain(&self, outcome: &Outcome, mismatches: &[Mismatch], attempts: usize) -> String {
        let mut out = String::new();
        for m in mismatches {
            out.push_str(&format!("     {m}\n"));
        }
        if attempts > 1 {
            out.push_str(&format!("     (the last of {attempts} tries)\n"));
        }
        out.push_str(&format!(
            "     took {:.2} s; output",
            outcome.took.as_secs_f64()
        ));
        let lines: Vec<&str> = outcome.output.lines().collect();
        if lines.is_empty() {
            out.push_str(": (nothing)\n");
        } else {
            let from = lines.len().saturating_sub(TAIL);
            out.push_str(if from > 0 { " (last lines):\n" } else { ":\n" });
            for l in &lines[from..] {
                out.push_str(&format!("       | {}\n", truncate(l, 200)));
            }
        }
        if self.mesh.is_some() {
            out.push_str(&format!(
                "     logs of its meshctl up: {}",
                self.workdir.join(".run/meshctl/logs").display()
            ));
        }
        out
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if let Some(mut mesh) = self.mesh.take() {
            mesh.stop();
        }
    }
}

/// A fresh folder with a link to every top-level entry of the repository but its state
/// and build: `mesh/config/...`, `loadtest/...`, `labs/...` resolve as in the repository,
/// while `.run/meshctl` (state, logs) and files a lab writes stay in the folder.
fn lab_folder(repo: &Path, dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let repo = std::path::absolute(repo)?;
    for entry in std::fs::read_dir(&repo)? {
        let entry = entry?;
        let name = entry.file_name();
        if NOT_LINKED.iter().any(|n| name == *n) {
            continue;
        }
        std::os::unix::fs::symlink(entry.path(), dir.join(&name))?;
    }
    Ok(())
}

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|l| format!("{by}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn truncate(line: &str, max: usize) -> String {
    if line.chars().count() <= max {
        return line.to_owned();
    }
    let cut: String = line.chars().take(max).collect();
    format!("{cut} ...")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_folder_links_the_repository_but_not_its_state() {
        let base = std::env::temp_dir().join(format!("labs-folder-{}", std::process::id()));
        let repo = base.join("repo");
        for d in ["mesh/config", ".run/meshctl", "target", "labs"] {
            std::fs::create_dir_all(repo.join(d)).unwrap();
        }
        std::fs::write(repo.join("mesh/config/a.yaml"), "x").unwrap();
        let dir = base.join("work/01");
        std::fs::create_dir_all(dir.join("stale")).unwrap();
        lab_folder(&repo, &dir).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("mesh/config/a.yaml")).unwrap(),
            "x"
        );
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["labs", "mesh"]);
        std::fs::remove_dir_all(base).unwrap();
    }
}
