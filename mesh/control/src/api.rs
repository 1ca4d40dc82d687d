//! The HTTP API (see `docs/control-plane-api.md`): plain JSON with
//! `Content-Type: application/json`, errors as `{"error": ...}`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use mesh_api::Kind;
use mesh_api::wire::{
    self, CaRoot, CertificateRequest, Deregistered, FaultCreated, FaultDeleted, FaultRequest,
    FaultsCleared, Registered, WorkloadSpec,
};
use serde::{Deserialize, Serialize};

use crate::control::Control;
use crate::dashboard;
use crate::error::AppError;

type Shared = State<Arc<Control>>;
type ApiResult = Result<Response, AppError>;

/// Every route of the control plane.
pub fn router(control: Arc<Control>) -> Router {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/api/v1/apply", post(apply))
        .route("/api/v1/delete", post(delete_resources))
        .route("/api/v1/resources", get(resources))
        .route("/api/v1/config-errors", get(config_errors))
        .route("/api/v1/overview", get(overview))
        .route("/api/v1/describe/{service}", get(describe))
        .route("/api/v1/workloads", post(register).get(workloads))
        .route("/api/v1/workloads/{name}", delete(deregister))
        .route("/api/v1/proxy-config", get(proxy_config))
        .route("/api/v1/proxy-status", get(proxy_status))
        .route("/api/v1/ca/root", get(ca_root))
        .route("/api/v1/certificates", post(certificate))
        .route(
            "/api/v1/faults",
            post(add_fault).get(faults).delete(clear_faults),
        )
        .route("/api/v1/faults/{id}", delete(remove_fault))
        .fallback(not_found)
        .with_state(control)
}

/// A 200 answer with `value` as JSON; every answer is one of the `mesh_api::wire` types.
fn ok<T: Serialize>(value: T) -> ApiResult {
    Ok(Json(value).into_response())
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
            AppError::BadRequest(format!(
                "kind: {name:?} is not one of VirtualService, DestinationRule, Gateway, ServiceEntry, PeerAuthentication, AuthorizationPolicy"
            ))
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

async fn register(State(control): Shared, body: Bytes) -> ApiResult {
    let spec: WorkloadSpec = json_body(&body, "workload")?;
    let name = control.register(spec)?;
    ok(Registered { registered: name })
}

async fn deregister(State(control): Shared, p: Result<Path<String>, PathRejection>) -> ApiResult {
    let name = path(p)?;
    control.deregister(&name)?;
    ok(Deregistered { deregistered: name })
}

async fn workloads(State(control): Shared) -> ApiResult {
    ok(control.workloads())
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

async fn certificate(State(control): Shared, body: Bytes) -> ApiResult {
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
    let issued = control.issue(&request.workload, &request.csr, ttl)?;
    ok(issued)
}

async fn add_fault(State(control): Shared, body: Bytes) -> ApiResult {
    let request: FaultRequest = json_body(&body, "fault")?;
    let (lease, warnings) = control.add_fault(request)?;
    Ok((StatusCode::CREATED, Json(FaultCreated { lease, warnings })).into_response())
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
