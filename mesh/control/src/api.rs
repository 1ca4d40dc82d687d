//! The HTTP API (see `docs/control-plane-api.md`): plain JSON with
//! `Content-Type: application/json`, errors as `{"error": ...}`.
//!
//! Who may call what ([`crate::auth`]): reads are open; registration and certificates need
//! the workload's credential (unless the local demo runs open); apply, delete, faults and
//! deregistration need the admin token when one is configured (always off loopback).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRef, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use mesh_api::Kind;
use mesh_api::wire::{
    self, CaRoot, CertificateRequest, Deregistered, FaultCreated, FaultDeleted, FaultRequest,
    FaultsCleared, Registered, WorkloadSpec,
};
use serde::{Deserialize, Serialize};

use crate::auth::{self, Auth};
use crate::control::Control;
use crate::dashboard;
use crate::error::AppError;

type Shared = State<Arc<Control>>;
type Guard = State<Arc<Auth>>;
type ApiResult = Result<Response, AppError>;

/// What every handler may read: the control plane and how callers are authenticated.
#[derive(Debug, Clone)]
struct App {
    control: Arc<Control>,
    auth: Arc<Auth>,
}

impl FromRef<App> for Arc<Control> {
    fn from_ref(app: &App) -> Self {
        Arc::clone(&app.control)
    }
}

impl FromRef<App> for Arc<Auth> {
    fn from_ref(app: &App) -> Self {
        Arc::clone(&app.auth)
    }
}

/// Every route of the control plane, checking no credential (the open local demo, and
/// tests of everything but authentication).
pub fn router(control: Arc<Control>) -> Router {
    secured(control, Arc::new(Auth::open()))
}

/// Every route of the control plane, authenticating callers with `auth`.
pub fn secured(control: Arc<Control>, auth: Arc<Auth>) -> Router {
    let app = App { control, auth };
    // The calls that change the mesh for everyone; the admin token guards them.
    let mutating = Router::new()
        .route("/api/v1/apply", post(apply))
        .route("/api/v1/delete", post(delete_resources))
        .route("/api/v1/faults", post(add_fault).delete(clear_faults))
        .route("/api/v1/faults/{id}", delete(remove_fault))
        .route("/api/v1/experiments", post(report_experiment))
        .route_layer(middleware::from_fn_with_state(app.clone(), require_admin));
    Router::new()
        .merge(mutating)
        .route("/", get(dashboard::page))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/api/v1/resources", get(resources))
        .route("/api/v1/config-errors", get(config_errors))
        .route("/api/v1/overview", get(overview))
        .route("/api/v1/graph", get(graph))
        .route("/api/v1/describe/{service}", get(describe))
        .route("/api/v1/analyze", get(analyze).post(analyze_files))
        .route("/api/v1/workloads", post(register).get(workloads))
        .route("/api/v1/workloads/{name}", delete(deregister))
        .route("/api/v1/proxy-config", get(proxy_config))
        .route("/api/v1/proxy-status", get(proxy_status))
        .route("/api/v1/prometheus/targets", get(prometheus_targets))
        .route("/api/v1/ca/root", get(ca_root))
        .route("/api/v1/certificates", post(certificate))
        .route("/api/v1/faults", get(faults))
        .route("/api/v1/experiments", get(experiments))
        .route("/v1/traces", post(otlp_traces))
        .route("/api/traces", get(traces))
        .route("/api/traces/{trace_id}", get(trace))
        .fallback(not_found)
        .with_state(app)
}

/// Admits a mutating call only with the admin token (when one is configured).
async fn require_admin(State(app): State<App>, request: Request, next: Next) -> Response {
    let action = format!("{} {}", request.method(), request.uri().path());
    match app.auth.admin(request.headers(), &action) {
        Ok(()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

/// A 200 answer with `value` as JSON; every answer is one of the `mesh_api::wire` types.
fn ok<T: Serialize>(value: T) -> ApiResult {
    Ok(Json(value).into_response())
}

/// OTLP/HTTP export of spans (protobuf), from the proxies and services.
async fn otlp_traces(
    State(control): State<Arc<Control>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/x-protobuf") {
        return Ok((
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("expected OTLP in protobuf (Content-Type: application/x-protobuf), got {content_type:?}"),
        )
            .into_response());
    }
    control
        .traces()
        .ingest(&body)
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    // An empty ExportTraceServiceResponse: every span was taken.
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-protobuf")],
        Vec::<u8>::new(),
    )
        .into_response())
}

/// Query of `GET /api/traces`.
#[derive(Debug, serde::Deserialize)]
struct TracesQuery {
    service: Option<String>,
    limit: Option<usize>,
}

/// Recent traces, most recent first (`?service=` keeps those with a span of that
/// service, `?limit=` at most that many: default 20, at most 500).
async fn traces(
    State(control): State<Arc<Control>>,
    axum::extract::Query(q): axum::extract::Query<TracesQuery>,
) -> ApiResult {
    let limit = q.limit.unwrap_or(20).min(500);
    let service = q.service.as_deref().filter(|s| !s.is_empty());
    ok(control.traces().recent(service, limit))
}

/// One trace by id (32 hex digits).
async fn trace(State(control): State<Arc<Control>>, Path(trace_id): Path<String>) -> ApiResult {
    if trace_id.len() != 32 || !trace_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AppError::BadRequest(format!(
            "{trace_id:?} is not a trace id (32 hex digits)"
        )));
    }
    match control.traces().trace(&trace_id) {
        Some(t) => ok(t),
        None => Err(AppError::NotFound(format!(
            "no trace {trace_id} in the store (never received, or evicted)"
        ))),
    }
}

async fn not_found() -> AppError {
    AppError::NotFound("no such endpoint; see docs/control-plane-api.md".to_owned())
}

fn query(
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<HashMap<String, String>, AppError> {
    q.map(|Query(q)| q)
        .map_err(|e| AppError::BadRequest(format!("bad query string: {}", e.body_text())))
}

fn path(p: Result<Path<String>, PathRejection>) -> Result<String, AppError> {
    p.map(|Path(p)| p)
        .map_err(|e| AppError::BadRequest(format!("bad path: {}", e.body_text())))
}

fn utf8(body: &Bytes) -> Result<&str, AppError> {
    std::str::from_utf8(body).map_err(|_| AppError::BadRequest("body is not UTF-8 text".to_owned()))
}

fn json_body<T: for<'de> Deserialize<'de>>(body: &Bytes, what: &str) -> Result<T, AppError> {
    serde_json::from_slice(body).map_err(|e| AppError::BadRequest(format!("invalid {what}: {e}")))
}

async fn metrics(State(control): Shared) -> Response {
    match control.metrics_text() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            )],
            text,
        )
            .into_response(),
        Err(_) => AppError::Internal("metrics encoding failed".to_owned()).into_response(),
    }
}

fn file_name(q: &HashMap<String, String>) -> String {
    q.get("file")
        .filter(|f| !f.is_empty())
        .cloned()
        .unwrap_or_else(|| "request".to_owned())
}

async fn apply(
    State(control): Shared,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
    body: Bytes,
) -> ApiResult {
    let q = query(q)?;
    let file = file_name(&q);
    let (applied, version) = control.apply(&file, utf8(&body)?)?;
    ok(wire::Applied {
        applied: applied.applied,
        warnings: applied.warnings,
        version,
    })
}

async fn analyze(State(control): Shared) -> ApiResult {
    ok(wire::Analysis {
        findings: control.analyze(&[])?,
    })
}

/// Analysis of the configuration as it would be with the request's files applied; a
/// file that would be rejected is answered 400 as by apply, and nothing changes.
async fn analyze_files(State(control): Shared, body: Bytes) -> ApiResult {
    let request: wire::AnalyzeRequest = json_body(&body, "analyze request")?;
    let files: Vec<(String, String)> = request
        .files
        .into_iter()
        .map(|f| (f.name, f.text))
        .collect();
    ok(wire::Analysis {
        findings: control.analyze(&files)?,
    })
}

async fn delete_resources(
    State(control): Shared,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
    body: Bytes,
) -> ApiResult {
    let q = query(q)?;
    let file = file_name(&q);
    let (deleted, version) = control.delete(&file, utf8(&body)?)?;
    ok(wire::Deleted {
        deleted: deleted.deleted,
        missing: deleted.missing,
        version,
    })
}

async fn resources(
    State(control): Shared,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let kind = match q.get("kind") {
        None => None,
        Some(name) => Some(Kind::from_name(name).ok_or_else(|| {
            let known: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            AppError::BadRequest(format!("kind: {name:?} is not one of {}", known.join(", ")))
        })?),
    };
    ok(control.resources(kind))
}

async fn config_errors(State(control): Shared) -> ApiResult {
    ok(control.config_errors())
}

async fn overview(State(control): Shared) -> ApiResult {
    ok(control.overview())
}

async fn graph(State(control): Shared) -> ApiResult {
    ok(control.graph())
}

async fn describe(
    State(control): Shared,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> ApiResult {
    let service = path(p)?;
    let q = query(q)?;
    let namespace = q.get("namespace").map_or("default", String::as_str);
    ok(control.describe(&service, namespace)?)
}

async fn register(
    State(control): Shared,
    State(auth): Guard,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let spec: WorkloadSpec = json_body(&body, "workload")?;
    if let Some(caller) = auth.workload(&headers, "register").await? {
        // The claim must be the credential's, and a name registered by one identity
        // cannot be taken over by another (its traffic would follow).
        auth::authorize(
            &caller,
            "register",
            &spec.name,
            &spec.namespace,
            &spec.service_account,
        )?;
        if let Some((namespace, account)) = control.registered_identity(&spec.name) {
            auth::authorize(&caller, "register", &spec.name, &namespace, &account)?;
        }
    }
    let name = control.register(spec)?;
    ok(Registered { registered: name })
}

/// The admin, or the workload itself (a proxy leaving on shutdown), may deregister it.
async fn deregister(
    State(control): Shared,
    State(auth): Guard,
    headers: HeaderMap,
    p: Result<Path<String>, PathRejection>,
) -> ApiResult {
    let name = path(p)?;
    let action = format!("DELETE /api/v1/workloads/{name}");
    if !auth.is_admin(&headers) {
        let own = match (auth.is_open(), control.registered_identity(&name)) {
            (false, Some((namespace, account))) => match auth.workload(&headers, &action).await? {
                Some(caller) => {
                    auth::authorize(&caller, "deregister", &name, &namespace, &account)?;
                    true
                }
                None => false,
            },
            _ => false,
        };
        if !own {
            auth.admin(&headers, &action)?;
        }
    }
    control.deregister(&name)?;
    ok(Deregistered { deregistered: name })
}

async fn workloads(State(control): Shared) -> ApiResult {
    ok(control.workloads())
}

/// Prometheus's HTTP service discovery (`http_sd_configs`): every registered proxy's
/// metrics address, so a scrape config pointed here follows workloads as they come, go
/// and restart on new ports.
async fn prometheus_targets(State(control): Shared) -> ApiResult {
    ok(control.prometheus_targets())
}

async fn proxy_config(
    State(control): Shared,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> ApiResult {
    let q = query(q)?;
    let workload = q
        .get("workload")
        .filter(|w| !w.is_empty())
        .ok_or_else(|| AppError::BadRequest("workload: query parameter is required".to_owned()))?;
    let held = q
        .get("version")
        .map(String::as_str)
        .filter(|v| !v.is_empty());
    let wait = match q.get("wait") {
        None => None,
        Some(w) => Some(Duration::from_secs_f64(
            w.parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 300.0)
                .ok_or_else(|| {
                    AppError::BadRequest(format!(
                        "wait: {w:?} is not a number of seconds from 0 to 300"
                    ))
                })?,
        )),
    };
    let config = control.poll(workload, held, wait).await?;
    ok(config)
}

async fn proxy_status(State(control): Shared) -> ApiResult {
    ok(control.proxy_status())
}

async fn ca_root(State(control): Shared) -> ApiResult {
    ok(CaRoot {
        root: control.root_pem().to_owned(),
    })
}

/// Longest certificate lifetime a workload may ask for (a year).
const MAX_CERT_TTL_SECONDS: u64 = 365 * 24 * 3600;

async fn certificate(
    State(control): Shared,
    State(auth): Guard,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let request: CertificateRequest = json_body(&body, "certificate request")?;
    let ttl = match request.ttl_seconds {
        None => None,
        Some(t) if (1..=MAX_CERT_TTL_SECONDS).contains(&t) => Some(Duration::from_secs(t)),
        Some(t) => {
            return Err(AppError::BadRequest(format!(
                "ttl_seconds: {t} is not between 1 and {MAX_CERT_TTL_SECONDS}"
            )));
        }
    };
    let Some(caller) = auth.workload(&headers, "certificate").await? else {
        return ok(control.issue(&request.workload, &request.csr, ttl)?);
    };
    // The workload must be registered, by this identity; the certificate says what the
    // credential proves, never what the registration or the CSR claims.
    let (namespace, account) = control
        .registered_identity(&request.workload)
        .ok_or_else(|| {
            tracing::warn!(workload = %request.workload, reason = "not registered", "certificate refused");
            AppError::Forbidden(format!(
                "workload {:?} is not registered; only registered workloads get certificates",
                request.workload
            ))
        })?;
    auth::authorize(
        &caller,
        "certificate",
        &request.workload,
        &namespace,
        &account,
    )?;
    ok(control.sign(
        &caller.namespace,
        &caller.service_account,
        &request.csr,
        ttl,
    )?)
}

async fn add_fault(State(control): Shared, body: Bytes) -> ApiResult {
    let request: FaultRequest = json_body(&body, "fault")?;
    let (lease, warnings) = control.add_fault(request)?;
    Ok((StatusCode::CREATED, Json(FaultCreated { lease, warnings })).into_response())
}

/// A chaos runner's report of the experiment it runs (its whole state each time).
async fn report_experiment(State(control): Shared, body: Bytes) -> ApiResult {
    let report: wire::ExperimentReport = json_body(&body, "experiment report")?;
    let id = report.id.clone();
    control
        .experiments()
        .record(report, mesh_api::compile::now_ms())
        .map_err(|e| AppError::BadRequest(format!("experiment report: {e}")))?;
    ok(wire::ExperimentRecorded { recorded: id })
}

async fn experiments(State(control): Shared) -> ApiResult {
    ok(control.experiments().list(mesh_api::compile::now_ms()))
}

async fn faults(State(control): Shared) -> ApiResult {
    ok(control.faults())
}

async fn remove_fault(State(control): Shared, p: Result<Path<String>, PathRejection>) -> ApiResult {
    let id = path(p)?;
    control.remove_fault(&id)?;
    ok(FaultDeleted { deleted: id })
}

async fn clear_faults(State(control): Shared) -> ApiResult {
    ok(FaultsCleared {
        deleted: control.clear_faults(),
    })
}
