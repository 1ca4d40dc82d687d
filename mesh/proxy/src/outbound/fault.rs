//! Fault injection for a route's effective fault (`VirtualService http[].fault`, or a
//! fault lease from the control plane), by the caller's proxy as Istio does: the
//! decision, then the phase that applies it. Delay and abort are independent: a request
//! may be delayed (`DI`), then aborted (`FI`).

use std::ops::ControlFlow;
use std::time::Duration;

use http::{HeaderValue, Response, StatusCode};
use mesh_api::defaults::{AbortStatus, EffectiveFault};
use opentelemetry::KeyValue;
use rand::Rng;

use crate::http::body::ProxyBody;
use crate::http::headers;
use crate::http::respond;
use crate::outbound::Phase;
use crate::outbound::ctx::Ctx;
use crate::telemetry::flags::Flag;

/// How an aborted request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abort {
    /// With this HTTP status.
    Http(u16),
    /// With HTTP 200 and this `grpc-status`.
    Grpc(u32),
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decision {
    /// Wait this long first.
    pub delay: Option<Duration>,
    /// Then answer this instead of forwarding.
    pub abort: Option<Abort>,
}

fn hit(percent: f64, rng: &mut impl Rng) -> bool {
    percent >= 100.0 || (percent > 0.0 && rng.random::<f64>() * 100.0 < percent)
}

/// gRPC status code for a name such as `UNAVAILABLE` (unknown names → 2, UNKNOWN).
pub fn grpc_code(name: &str) -> u32 {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(name))
        .map_or(2, |i| i as u32)
}

/// Rolls the dice for one request.
pub fn decide(fault: &EffectiveFault, rng: &mut impl Rng) -> Decision {
    Decision {
        delay: fault
            .delay
            .as_ref()
            .filter(|d| hit(d.percent, rng))
            .map(|d| d.fixed_delay),
        abort: fault
            .abort
            .as_ref()
            .filter(|a| hit(a.percent, rng))
            .map(|a| match &a.status {
                AbortStatus::Http(code) => Abort::Http(*code),
                AbortStatus::Grpc(name) => Abort::Grpc(grpc_code(name)),
            }),
    }
}

/// The fault phase: waits out an injected delay, and answers an injected abort.
pub(super) async fn inject(fault: &EffectiveFault, ctx: &mut Ctx) -> Phase<()> {
    let decision = decide(fault, &mut rand::rng());
    if let Some(delay) = decision.delay {
        ctx.note_flag(Flag::DelayInjected);
        ctx.trace_event("fault.delay", || {
            vec![KeyValue::new("fault.delay_ms", delay.as_millis() as i64)]
        });
        tokio::time::sleep(delay).await;
    }
    if let Some(abort) = decision.abort {
        ctx.note_flag(Flag::FaultInjected);
        ctx.trace_event("fault.abort", || {
            vec![match abort {
                Abort::Http(code) => KeyValue::new("fault.abort.http_status", i64::from(code)),
                Abort::Grpc(code) => KeyValue::new("fault.abort.grpc_status", i64::from(code)),
            }]
        });
        ctx.note_details("fault_filter_abort");
        return ControlFlow::Break(aborted(abort));
    }
    ControlFlow::Continue(())
}

fn aborted(abort: Abort) -> Response<ProxyBody> {
    match abort {
        Abort::Http(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            respond::text(
                status,
                "fault filter abort",
                "FI fault_filter_abort: injected by the route's fault",
            )
        }
        Abort::Grpc(code) => {
            let mut r = respond::text(
                StatusCode::OK,
                "",
                "FI fault_filter_abort: injected by the route's fault",
            );
            r.headers_mut()
                .insert(headers::GRPC_STATUS.clone(), HeaderValue::from(code));
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_api::defaults::{EffectiveAbort, EffectiveDelay};
    use rand::SeedableRng;

    #[test]
    fn percentages_hold() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let delay = EffectiveFault {
            delay: Some(EffectiveDelay {
                fixed_delay: Duration::from_secs(7),
                percent: 100.0,
            }),
            abort: None,
        };
        assert_eq!(decide(&delay, &mut rng).delay, Some(Duration::from_secs(7)));
        let never = EffectiveFault {
            delay: None,
            abort: Some(EffectiveAbort {
                status: AbortStatus::Http(500),
                percent: 0.0,
            }),
        };
        assert_eq!(decide(&never, &mut rng).abort, None);
        let half = EffectiveFault {
            delay: None,
            abort: Some(EffectiveAbort {
                status: AbortStatus::Http(503),
                percent: 50.0,
            }),
        };
        let hits = (0..10_000)
            .filter(|_| decide(&half, &mut rng).abort.is_some())
            .count();
        assert!((4_700..5_300).contains(&hits), "{hits}");
        let grpc = EffectiveFault {
            delay: None,
            abort: Some(EffectiveAbort {
                status: AbortStatus::Grpc("UNAVAILABLE".into()),
                percent: 100.0,
            }),
        };
        assert_eq!(decide(&grpc, &mut rng).abort, Some(Abort::Grpc(14)));
    }
}
