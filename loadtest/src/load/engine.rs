//! The run engine: open model (global arrival schedule feeding a connection pool through a
//! queue) and closed model (N connections back to back). What to run is described by
//! [`RunConfig`]; the result is a [`Report`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::config::{Model, RunConfig, RunError};
use super::conn::{self, Conn};
use super::plan::Schedule;
use super::report::Report;
use super::stats::{ErrorKind, Outcome, Recorder};

struct Job {
    intended: Instant,
    entry: usize,
}

/// Runs the load and returns the report. `recorder` may be shared with a progress display
/// or the window endpoint; it must be fresh. The open-model scheduler paces requests with the
/// real clock on a thread of its own, so run this under real time (not tokio's paused clock).
pub async fn run(cfg: RunConfig, recorder: Arc<Recorder>) -> Result<Report, RunError> {
    cfg.validate()?;
    let cfg = Arc::new(cfg);
    let conns = warm_up(&cfg).await;
    let start = Instant::now();
    recorder.start(start);
    match &cfg.model {
        Model::Open {
            schedule,
            max_lateness,
        } => {
            open(&cfg, schedule, *max_lateness, conns, &recorder, start).await;
        }
        Model::Closed { requests, duration } => {
            closed(
                &cfg,
                *requests,
                duration.map(|d| start + d),
                conns,
                &recorder,
            )
            .await;
        }
    }
    let end = Instant::now();
    Ok(Report::new(&cfg, &recorder.totals(end), end - start))
}

/// Opens every connection (and logs in) before the clock starts, so the first second does
/// not measure handshakes. Failures are left for the run to retry and count.
async fn warm_up(cfg: &Arc<RunConfig>) -> Vec<Option<Conn>> {
    let mut set = JoinSet::new();
    for _ in 0..cfg.connections {
        let cfg = Arc::clone(cfg);
        set.spawn(async move {
            let mut conn = conn::connect(&cfg.target, cfg.http2, cfg.timeout)
                .await
                .ok()?;
            for user in cfg.mix.logins() {
                let login = conn.login(&cfg.target.base_path, &user);
                tokio::time::timeout(cfg.timeout, login).await.ok()?.ok()?;
            }
            Some(conn)
        });
    }
    let mut conns = Vec::with_capacity(cfg.connections);
    while let Some(done) = set.join_next().await {
        conns.push(done.ok().flatten());
    }
    conns
}

/// Sends one request on the slot's connection, (re)connecting first when needed. Any error
/// discards the connection: after a timeout or reset its state is unknown.
async fn execute(slot: &mut Option<Conn>, cfg: &RunConfig, entry: usize) -> Outcome {
    if slot.as_ref().is_none_or(|c| !c.is_usable()) {
        match conn::connect(&cfg.target, cfg.http2, cfg.timeout).await {
            Ok(c) => *slot = Some(c),
            Err(kind) => {
                *slot = None;
                return Outcome::Error(kind);
            }
        }
    }
    let Some(conn) = slot.as_mut() else {
        return Outcome::Error(ErrorKind::Connect);
    };
    match conn
        .send(&cfg.mix, entry, &cfg.target.base_path, cfg.timeout)
        .await
    {
        Ok((code, 0)) => Outcome::Status(code),
        Ok((code, texts)) => Outcome::Degraded {
            status: code,
            texts,
        },
        Err(kind) => {
            *slot = None;
            Outcome::Error(kind)
        }
    }
}

async fn open(
    cfg: &Arc<RunConfig>,
    schedule: &Schedule,
    max_lateness: Duration,
    conns: Vec<Option<Conn>>,
    recorder: &Arc<Recorder>,
    start: Instant,
) {
    // Unbounded on purpose: the scheduler must never wait for the pool, or the arrival rate
    // would bend to the server's speed. Stale jobs are dropped by the workers instead.
    let (tx, rx) = mpsc::unbounded_channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    let mut workers = JoinSet::new();
    for mut slot in conns {
        let (cfg, rx, recorder) = (Arc::clone(cfg), Arc::clone(&rx), Arc::clone(recorder));
        workers.spawn(async move {
            loop {
                let job = rx.lock().await.recv().await;
                let Some(job) = job else { break };
                let now = Instant::now();
                if now.saturating_duration_since(job.intended) > max_lateness {
                    recorder.dropped(job.intended, now, job.entry);
                    continue;
                }
                recorder.started(now);
                let outcome = execute(&mut slot, &cfg, job.entry).await;
                recorder.finished(job.intended, now, Instant::now(), job.entry, outcome);
            }
        });
    }
    // The scheduler runs on its own thread: tokio's timer has millisecond granularity, which
    // would add up to a millisecond of our own lateness to every corrected latency, while a
    // thread sleep wakes within tens of microseconds.
    let (schedule, recorder, cfg) = (schedule.clone(), Arc::clone(recorder), Arc::clone(cfg));
    let scheduler = tokio::task::spawn_blocking(move || {
        let std_start = start.into_std();
        let mut i = 0u64;
        while let Some(offset) = schedule.offset(i) {
            let wait = (std_start + offset).saturating_duration_since(std::time::Instant::now());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
            let at = start + offset;
            recorder.intended(at);
            if tx
                .send(Job {
                    intended: at,
                    entry: cfg.mix.pick(i),
                })
                .is_err()
            {
                break;
            }
            i += 1;
        }
    });
    // The scheduler only ends by finishing its plan; if its thread died, the run is over too.
    let _ = scheduler.await;
    while workers.join_next().await.is_some() {}
}

async fn closed(
    cfg: &Arc<RunConfig>,
    requests: Option<u64>,
    deadline: Option<Instant>,
    conns: Vec<Option<Conn>>,
    recorder: &Arc<Recorder>,
) {
    let sent = Arc::new(AtomicU64::new(0));
    let limit = requests.unwrap_or(u64::MAX);
    let mut workers = JoinSet::new();
    for mut slot in conns {
        let (cfg, recorder, sent) = (Arc::clone(cfg), Arc::clone(recorder), Arc::clone(&sent));
        workers.spawn(async move {
            loop {
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    break;
                }
                let i = sent.fetch_add(1, Ordering::Relaxed);
                if i >= limit {
                    break;
                }
                // In the closed model the next request is due exactly when it is sent, so
                // corrected and raw latency coincide.
                recorder.sent_now(now);
                let entry = cfg.mix.pick(i);
                let outcome = execute(&mut slot, &cfg, entry).await;
                recorder.finished(now, now, Instant::now(), entry, outcome);
            }
        });
    }
    while workers.join_next().await.is_some() {}
}
