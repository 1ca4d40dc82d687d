//! Executing providers: `http`, `process` and the native ones (fault leases, kill, mesh
//! configuration, load). Each returns the activity's output as JSON, or a [`ProviderError`]
//! whose text the journal records as the activity's exception. Calls to the mesh control
//! plane go through [`super::control`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

use super::control::{ControlError, ControlPlane, Removal, error_chain};
use super::experiment::{FaultSpec, LoadSpec, MixSpec, Provider};
use crate::load::mix::MixError;
use crate::load::stats::SecondSummary;
use crate::load::target::TargetError;
use crate::load::{Mix, Model, Recorder, RunConfig, Schedule, Target, window};
use mesh_api::defaults::format_rate;
use mesh_api::wire::{
    AbortRequest, BandwidthFault, BlackholeFault, DelayRequest, FaultRequest, ResetFault,
    SlowCloseFault,
};

/// Why an activity failed; the text is what the journal shows as its exception.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The run was interrupted while the activity was in progress.
    #[error("interrupted")]
    Interrupted,
    #[error("invalid HTTP method {0:?}")]
    HttpMethod(String),
    #[error("invalid URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    /// `reason` holds the whole cause chain (connection refused, timeout, ...).
    #[error("{method} {url}: {reason}")]
    Request {
        method: String,
        url: String,
        reason: String,
    },
    #[error("reading the response: {0}")]
    Response(reqwest::Error),
    #[error("{} did not finish within {timeout:?}", .program.display())]
    Timeout { program: PathBuf, timeout: Duration },
    #[error("cannot run {}: {source}", .program.display())]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("no workload to kill")]
    NoWorkload,
    #[error("{} kill {workload} exited with {status}: {stderr}", .program.display())]
    KillFailed {
        program: PathBuf,
        workload: String,
        /// The exit code, -1 when a signal ended it.
        status: i64,
        stderr: String,
    },
    #[error("cannot read {}: {source}", .path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Mix(#[from] MixError),
    #[error("cannot serve the load window on {addr}: {source}")]
    Serve {
        addr: String,
        source: std::io::Error,
    },
    #[error("no load has been started (add a background `load` action before this probe)")]
    NoLoad,
    #[error(transparent)]
    Encode(#[from] serde_json::Error),
}

/// A fault lease this run created, and when it was in force (seconds since the run start).
#[derive(Debug, Clone)]
pub struct FaultWindow {
    pub id: String,
    pub activity: String,
    pub service: String,
    pub description: String,
    pub ttl_s: u64,
    pub start_s: f64,
    /// When it was removed, or when its lease ran out.
    pub end_s: f64,
    pub removed: bool,
}

/// A background load started by a `load` action.
pub struct LoadRun {
    pub activity: String,
    pub target: String,
    pub recorder: Arc<Recorder>,
    pub schedule: Schedule,
    pub handle: tokio::task::JoinHandle<()>,
    pub server: Option<tokio::task::JoinHandle<()>>,
    pub serve_addr: Option<String>,
    pub stopped_s: Option<f64>,
}

/// A finished load's figures for the journal.
#[derive(Debug, Clone)]
pub struct LoadSeries {
    pub activity: String,
    pub target: String,
    pub start_s: f64,
    pub series: Vec<SecondSummary>,
}

/// Shared state of one run that providers read and update.
pub struct Context {
    /// For Chaos Toolkit `http` providers (any URL).
    pub http: reqwest::Client,
    pub control: ControlPlane,
    pub meshctl: Option<PathBuf>,
    pub base_dir: PathBuf,
    pub start: Instant,
    /// Lease length for faults without an explicit `ttl`.
    pub default_ttl: Duration,
    rng: Mutex<StdRng>,
    faults: Mutex<Vec<FaultWindow>>,
    loads: Mutex<Vec<LoadRun>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded lists stay consistent even if a holder panicked mid-way.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Context {
    pub fn new(
        http: reqwest::Client,
        control: String,
        meshctl: Option<PathBuf>,
        base_dir: PathBuf,
        seed: u64,
        default_ttl: Duration,
    ) -> Self {
        Context {
            control: ControlPlane::new(&control),
            http,
            meshctl,
            base_dir,
            start: Instant::now(),
            default_ttl,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            faults: Mutex::new(Vec::new()),
            loads: Mutex::new(Vec::new()),
        }
    }

    pub fn offset(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    pub fn faults(&self) -> Vec<FaultWindow> {
        lock(&self.faults).clone()
    }

    pub fn is_load_running(&self) -> bool {
        lock(&self.loads).iter().any(|l| l.stopped_s.is_none())
    }

    /// Stops every load and returns their per-second series.
    pub fn finish_loads(&self) -> Vec<LoadSeries> {
        let now = tokio::time::Instant::now();
        let mut loads = lock(&self.loads);
        loads
            .iter_mut()
            .map(|l| {
                stop(l, self.offset());
                let start_s = l.recorder.started_at().map_or(0.0, |s| {
                    s.into_std()
                        .saturating_duration_since(self.start)
                        .as_secs_f64()
                });
                LoadSeries {
                    activity: l.activity.clone(),
                    target: l.target.clone(),
                    start_s,
                    series: l.recorder.totals(now).series,
                }
            })
            .collect()
    }

    /// Executes one provider.
    pub async fn execute(&self, name: &str, provider: &Provider) -> Result<Value, ProviderError> {
        match provider {
            Provider::Http {
                url,
                method,
                headers,
                arguments,
                timeout,
            } => {
                self.http_call(url, method, headers, arguments.as_ref(), *timeout)
                    .await
            }
            Provider::Process {
                path,
                arguments,
                timeout,
            } => process(Path::new(path), arguments, *timeout).await,
            Provider::MeshFault(spec) => self.fault(name, spec).await,
            Provider::MeshFaultClear { all } => self.clear_faults(*all).await,
            Provider::Kill {
                workloads,
                meshctl,
                args,
                timeout,
            } => {
                self.kill(workloads, meshctl.as_deref(), args, *timeout)
                    .await
            }
            Provider::MeshApply { file, delete } => self.apply(file, *delete).await,
            Provider::Load(spec) => self.start_load(name, spec).await,
            Provider::LoadStop => {
                let mut stopped = 0;
                for l in lock(&self.loads)
                    .iter_mut()
                    .filter(|l| l.stopped_s.is_none())
                {
                    stop(l, self.offset());
                    stopped += 1;
                }
                Ok(json!({"stopped": stopped}))
            }
            Provider::LoadWindow => self.window(),
        }
    }

    async fn http_call(
        &self,
        url: &str,
        method: &str,
        headers: &[(String, String)],
        arguments: Option<&Value>,
        timeout: Duration,
    ) -> Result<Value, ProviderError> {
        let m = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| ProviderError::HttpMethod(method.to_string()))?;
        let mut full = reqwest::Url::parse(url).map_err(|e| ProviderError::Url {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        if let (Some(args), true) = (arguments, m == reqwest::Method::GET) {
            full.query_pairs_mut().extend_pairs(flat_pairs(args));
        }
        let mut req = self.http.request(m.clone(), full).timeout(timeout);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let json_body = headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v == "application/json");
        if let Some(args) = arguments {
            if m == reqwest::Method::GET {
                // Already in the query string.
            } else if json_body {
                req = req.body(args.to_string());
            } else {
                // Chaos Toolkit sends form fields unless the request says JSON.
                req = req
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form_encode(&flat_pairs(args)));
            }
        }
        let resp = req.send().await.map_err(|e| ProviderError::Request {
            method: method.to_string(),
            url: url.to_string(),
            reason: error_chain(&e),
        })?;
        response_value(resp).await
    }

    /// The fault lease request of `spec`; the lease length is always set (bounded to the
    /// control plane's 1 s to 1 h).
    pub fn fault_request(&self, spec: &FaultSpec) -> FaultRequest {
        let ttl = spec
            .ttl
            .unwrap_or(self.default_ttl)
            .as_secs()
            .clamp(1, 3600);
        FaultRequest {
            service: spec.service.clone(),
            subset: spec.subset.clone(),
            delay: spec.delay.as_ref().map(|d| DelayRequest {
                fixed_delay: d.clone(),
                percentage: Some(spec.percentage),
                jitter: spec.jitter.clone(),
                direction: spec.direction,
            }),
            abort: spec.abort.map(|code| AbortRequest {
                http_status: i64::from(code),
                percentage: Some(spec.percentage),
            }),
            bandwidth: spec.bandwidth.map(|rate| BandwidthFault {
                bytes_per_second: i64::try_from(rate).unwrap_or(i64::MAX),
                direction: spec.direction,
                percentage: Some(spec.percentage),
            }),
            reset: spec.reset_after.map(|after| ResetFault {
                after_bytes: (after > 0).then(|| i64::try_from(after).unwrap_or(i64::MAX)),
                direction: spec.direction,
                percentage: Some(spec.percentage),
            }),
            blackhole: spec.blackhole.then_some(BlackholeFault {
                direction: spec.direction,
                percentage: Some(spec.percentage),
            }),
            slow_close: spec.slow_close.as_ref().map(|d| SlowCloseFault {
                delay: d.clone(),
                percentage: Some(spec.percentage),
            }),
            headers: spec
                .headers
                .iter()
                .map(|(k, v)| {
                    let value = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    (k.clone(), value)
                })
                .collect(),
            ttl_seconds: i64::try_from(ttl).ok(),
            namespace: None,
        }
    }

    async fn fault(&self, name: &str, spec: &FaultSpec) -> Result<Value, ProviderError> {
        let request = self.fault_request(spec);
        let ttl = request
            .ttl_seconds
            .and_then(|t| u64::try_from(t).ok())
            .unwrap_or(1);
        let lease = self.control.create_fault(&request).await?;
        let start_s = self.offset();
        let mut what = Vec::new();
        let way = spec
            .direction
            .map(|d| format!(" on the {}", d.as_str()))
            .unwrap_or_default();
        if let Some(d) = &spec.delay {
            let jitter = spec
                .jitter
                .as_ref()
                .map(|j| format!(" ±{j}"))
                .unwrap_or_default();
            what.push(format!("delay {d}{jitter}{way}"));
        }
        if let Some(c) = spec.abort {
            what.push(format!("abort {c}"));
        }
        if let Some(rate) = spec.bandwidth {
            what.push(format!("bandwidth {}{way}", format_rate(rate)));
        }
        match spec.reset_after {
            Some(0) => what.push(format!("reset{way}")),
            Some(n) => what.push(format!("reset after {n} B{way}")),
            None => {}
        }
        if spec.blackhole {
            what.push(format!("blackhole{way}"));
        }
        if let Some(d) = &spec.slow_close {
            what.push(format!("slow close {d}"));
        }
        let mut description = format!(
            "{} {}% on {}",
            what.join(" + "),
            spec.percentage,
            spec.service
        );
        if let Some(s) = &spec.subset {
            description.push_str(&format!(" {s}"));
        }
        for (k, v) in &spec.headers {
            description.push_str(&format!(" when {k}={}", v.as_str().unwrap_or_default()));
        }
        lock(&self.faults).push(FaultWindow {
            id: lease.id,
            activity: name.to_string(),
            service: spec.service.clone(),
            description,
            ttl_s: ttl,
            start_s,
            end_s: start_s + ttl as f64,
            removed: false,
        });
        Ok(json!({"request": request, "response": lease.answer}))
    }

    async fn clear_faults(&self, all: bool) -> Result<Value, ProviderError> {
        let now = self.offset();
        let mark = |id: Option<&str>| {
            for f in lock(&self.faults).iter_mut() {
                if !f.removed && id.is_none_or(|id| id == f.id) && f.end_s > now {
                    f.removed = true;
                    f.end_s = now;
                }
            }
        };
        if all {
            let answer = self.control.halt_faults().await?;
            mark(None);
            return Ok(answer);
        }
        let ids: Vec<String> = lock(&self.faults)
            .iter()
            .filter(|f| !f.removed)
            .map(|f| f.id.clone())
            .collect();
        let mut deleted = Vec::new();
        let mut expired = Vec::new();
        for id in ids {
            match self.control.remove_fault(&id).await? {
                Removal::Deleted => deleted.push(id.clone()),
                Removal::Expired => expired.push(id.clone()),
            }
            mark(Some(&id));
        }
        Ok(json!({"deleted": deleted, "expired": expired}))
    }

    fn meshctl_path(&self, explicit: Option<&str>) -> PathBuf {
        if let Some(p) = explicit {
            return PathBuf::from(p);
        }
        if let Some(p) = &self.meshctl {
            return p.clone();
        }
        let sibling = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|d| d.join("meshctl")));
        match sibling {
            Some(p) if p.is_file() => p,
            _ => PathBuf::from("meshctl"),
        }
    }

    /// Picks one of `workloads` with the run's seeded generator.
    pub fn pick<'a>(&self, workloads: &'a [String]) -> Option<&'a String> {
        if workloads.len() <= 1 {
            return workloads.first();
        }
        let i = lock(&self.rng).random_range(0..workloads.len());
        workloads.get(i)
    }

    async fn kill(
        &self,
        workloads: &[String],
        meshctl: Option<&str>,
        args: &[String],
        timeout: Duration,
    ) -> Result<Value, ProviderError> {
        let workload = self.pick(workloads).ok_or(ProviderError::NoWorkload)?;
        let program = self.meshctl_path(meshctl);
        let mut argv = vec![
            "--control".to_string(),
            self.control.url().to_string(),
            "kill".to_string(),
        ];
        argv.extend(args.iter().cloned());
        argv.push(workload.clone());
        let mut out = process(&program, &argv, timeout).await?;
        if out["status"] != json!(0) {
            return Err(ProviderError::KillFailed {
                workload: workload.clone(),
                status: out["status"].as_i64().unwrap_or(-1),
                stderr: out["stderr"]
                    .as_str()
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
                program,
            });
        }
        out["workload"] = json!(workload);
        Ok(out)
    }

    fn resolve_file(&self, file: &str) -> PathBuf {
        let p = PathBuf::from(file);
        if p.is_absolute() || p.exists() {
            return p;
        }
        self.base_dir.join(p)
    }

    async fn apply(&self, file: &str, delete: bool) -> Result<Value, ProviderError> {
        let path = self.resolve_file(file);
        let text =
            tokio::fs::read_to_string(&path)
                .await
                .map_err(|source| ProviderError::ReadFile {
                    path: path.clone(),
                    source,
                })?;
        Ok(self.control.apply_config(&path, text, delete).await?)
    }

    async fn start_load(&self, name: &str, spec: &LoadSpec) -> Result<Value, ProviderError> {
        let target = Target::resolve(&spec.target).await?;
        let mix = match &spec.mix {
            MixSpec::Bookinfo => Mix::bookinfo(&target),
            MixSpec::Url => Mix::single(
                http::Method::GET,
                &target.path_and_query,
                http::HeaderMap::new(),
                bytes::Bytes::new(),
            ),
            MixSpec::File(f) => Mix::from_file(&self.resolve_file(f), &target)?,
        };
        let schedule = Schedule::constant(spec.rate, spec.duration);
        let cfg = RunConfig {
            target,
            mix,
            model: Model::Open {
                schedule: schedule.clone(),
                max_lateness: Duration::from_secs(1),
            },
            connections: spec.connections,
            http2: false,
            timeout: spec.timeout,
        };
        let recorder = Arc::new(Recorder::new(spec.window));
        let (mut server, mut serve_addr) = (None, None);
        if let Some(addr) = &spec.serve {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| ProviderError::Serve {
                    addr: addr.clone(),
                    source,
                })?;
            serve_addr = listener.local_addr().ok().map(|a| a.to_string());
            let rate = schedule.clone();
            let rate_fn: window::RateFn = Arc::new(move |t| rate.rate_at(t));
            server = Some(tokio::spawn(window::serve(
                listener,
                Arc::clone(&recorder),
                rate_fn,
            )));
        }
        let rec = Arc::clone(&recorder);
        let handle = tokio::spawn(async move {
            // The configuration was checked when the experiment was validated.
            let _ = crate::load::run(cfg, rec).await;
        });
        lock(&self.loads).push(LoadRun {
            activity: name.to_string(),
            target: spec.target.clone(),
            recorder,
            schedule,
            handle,
            server,
            serve_addr: serve_addr.clone(),
            stopped_s: None,
        });
        Ok(
            json!({"target": spec.target, "rate": spec.rate, "duration_s": spec.duration.as_secs_f64(), "window": serve_addr}),
        )
    }

    fn window(&self) -> Result<Value, ProviderError> {
        let loads = lock(&self.loads);
        let load = loads
            .iter()
            .rev()
            .find(|l| l.recorder.started_at().is_some())
            .or_else(|| loads.last())
            .ok_or(ProviderError::NoLoad)?;
        let schedule = load.schedule.clone();
        let summary = load
            .recorder
            .window(tokio::time::Instant::now(), |t| schedule.rate_at(t));
        Ok(serde_json::to_value(summary)?)
    }
}

fn stop(l: &mut LoadRun, now: f64) {
    if l.stopped_s.is_none() {
        // Aborting drops the workers and with them the queue, which ends the scheduler.
        l.handle.abort();
        if let Some(s) = &l.server {
            s.abort();
        }
        l.stopped_s = Some(now);
    }
}

fn flat_pairs(args: &Value) -> Vec<(String, String)> {
    match args {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_string),
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn form_encode(pairs: &[(String, String)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                other => format!("%{other:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

async fn response_value(resp: reqwest::Response) -> Result<Value, ProviderError> {
    let status = resp.status().as_u16();
    let mut headers = Map::new();
    for (k, v) in resp.headers() {
        headers.insert(k.to_string(), json!(v.to_str().unwrap_or_default()));
    }
    // Like Chaos Toolkit: decode JSON only when the server says exactly application/json.
    let is_json = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/json");
    let text = resp.text().await.map_err(ProviderError::Response)?;
    let body = if is_json {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    } else {
        Value::String(text)
    };
    Ok(json!({"status": status, "headers": headers, "body": body}))
}

/// Runs a program; the output is `{status, stdout, stderr}` (status -1 when killed by a
/// signal). A program that outlives `timeout` is killed and the activity fails.
pub async fn process(
    path: &Path,
    arguments: &[String],
    timeout: Duration,
) -> Result<Value, ProviderError> {
    let child = tokio::process::Command::new(path)
        .args(arguments)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(timeout, child)
        .await
        .map_err(|_| ProviderError::Timeout {
            program: path.to_path_buf(),
            timeout,
        })?
        .map_err(|source| ProviderError::Spawn {
            program: path.to_path_buf(),
            source,
        })?;
    Ok(json!({
        "status": out.status.code().unwrap_or(-1),
        "stdout": String::from_utf8_lossy(&out.stdout),
        "stderr": String::from_utf8_lossy(&out.stderr),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(seed: u64) -> Context {
        bookinfo_common::client::install_crypto_provider();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Context::new(
            http,
            "http://127.0.0.1:1".into(),
            None,
            PathBuf::from("."),
            seed,
            Duration::from_secs(90),
        )
    }

    #[test]
    fn picks_are_replayed_by_the_seed() {
        let w: Vec<String> = (1..=5).map(|i| format!("reviews-v{i}")).collect();
        let run = |seed| {
            let c = ctx(seed);
            (0..8)
                .map(|_| c.pick(&w).unwrap().clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn fault_bodies_always_carry_a_bounded_ttl() {
        let c = ctx(1);
        let spec = FaultSpec {
            service: "ratings".into(),
            subset: Some("v1".into()),
            delay: Some("7s".into()),
            jitter: None,
            abort: None,
            bandwidth: None,
            reset_after: None,
            blackhole: false,
            slow_close: None,
            direction: None,
            percentage: 100.0,
            headers: serde_json::from_value(json!({"end-user": "jason"})).unwrap(),
            ttl: None,
        };
        let body = serde_json::to_value(c.fault_request(&spec)).unwrap();
        assert_eq!(body["ttl_seconds"], json!(90));
        assert_eq!(
            body["delay"],
            json!({"fixed_delay": "7s", "percentage": 100.0})
        );
        assert_eq!(body["headers"]["end-user"], "jason");
        let long = FaultSpec {
            ttl: Some(Duration::from_secs(20)),
            ..spec
        };
        assert_eq!(c.fault_request(&long).ttl_seconds, Some(20));
        // The journal records the request as sent: only the fields the spec sets.
        assert_eq!(
            serde_json::to_string(&c.fault_request(&long)).unwrap(),
            r#"{"service":"ratings","subset":"v1","delay":{"fixed_delay":"7s","percentage":100.0},"headers":{"end-user":"jason"},"ttl_seconds":20}"#
        );
    }

    #[test]
    fn network_faults_reach_the_lease_request() {
        let spec = FaultSpec {
            service: "productpage".into(),
            subset: None,
            delay: None,
            jitter: None,
            abort: None,
            bandwidth: Some(2000),
            reset_after: Some(0),
            blackhole: true,
            slow_close: Some("2s".into()),
            direction: Some(mesh_api::defaults::Direction::Request),
            percentage: 50.0,
            headers: Map::new(),
            ttl: Some(Duration::from_secs(30)),
        };
        assert_eq!(
            serde_json::to_value(ctx(1).fault_request(&spec)).unwrap(),
            json!({"service": "productpage",
                   "bandwidth": {"bytes_per_second": 2000, "direction": "request", "percentage": 50.0},
                   "reset": {"direction": "request", "percentage": 50.0},
                   "blackhole": {"direction": "request", "percentage": 50.0},
                   "slow_close": {"delay": "2s", "percentage": 50.0},
                   "ttl_seconds": 30})
        );
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            form_encode(&[("a b".into(), "x&y=1".into())]),
            "a+b=x%26y%3D1"
        );
    }

    #[tokio::test]
    async fn processes_report_status_and_output() {
        let out = process(
            Path::new("/bin/sh"),
            &["-c".into(), "echo hi; exit 3".into()],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(out["status"], json!(3));
        assert_eq!(out["stdout"], json!("hi\n"));
        let missing = process(Path::new("/no/such/program"), &[], Duration::from_secs(1)).await;
        assert!(
            missing
                .unwrap_err()
                .to_string()
                .starts_with("cannot run /no/such/program")
        );
    }
}
