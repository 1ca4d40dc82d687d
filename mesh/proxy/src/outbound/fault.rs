//! Fault injection for a route's effective fault (`VirtualService http[].fault`, or a
//! fault lease from the control plane), by the caller's proxy as Istio does: the
//! decision, then the phase that applies it. Delay and abort are independent: a request
//! may be delayed (`DI`), then aborted (`FI`). A fault lease may add network faults
//! ([`network`]): a throttled link, a cut connection, a blackhole, a slow close.

use std::ops::ControlFlow;
use std::time::Duration;

use http::{HeaderValue, Response, StatusCode};
use mesh_api::defaults::{AbortStatus, EffectiveDelay, EffectiveFault};
use opentelemetry::KeyValue;
use rand::Rng;

use crate::http::body::ProxyBody;
use crate::http::headers;
use crate::http::respond;
use crate::outbound::Phase;
use crate::outbound::ctx::Ctx;
use crate::telemetry::flags::Flag;

pub(super) mod network;

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
    /// The network faults that fired, for both directions.
    pub network: network::Network,
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

/// A delay drawn from `fixed ± jitter`.
fn jittered(d: &EffectiveDelay, rng: &mut impl Rng) -> Duration {
    if d.jitter.is_zero() {
        return d.fixed_delay;
    }
    let low = d.fixed_delay.saturating_sub(d.jitter);
    let high = d.fixed_delay + d.jitter;
    low + (high - low).mul_f64(rng.random::<f64>())
}

/// Rolls the dice for one request.
pub fn decide(fault: &EffectiveFault, rng: &mut impl Rng) -> Decision {
    let delay = fault
        .delay
        .as_ref()
        .filter(|d| hit(d.percent, rng))
        .map(|d| (jittered(d, rng), d.direction));
    Decision {
        delay: delay
            .filter(|(_, dir)| dir.is_request())
            .map(|(wait, _)| wait),
        abort: fault
            .abort
            .as_ref()
            .filter(|a| hit(a.percent, rng))
            .map(|a| match &a.status {
                AbortStatus::Http(code) => Abort::Http(*code),
                AbortStatus::Grpc(name) => Abort::Grpc(grpc_code(name)),
            }),
        network: network::Network {
            response_delay: delay
                .filter(|(_, dir)| !dir.is_request())
                .map(|(wait, _)| wait),
            bandwidth: fault
                .bandwidth
                .as_ref()
                .filter(|b| hit(b.percent, rng))
                .map(|b| (b.bytes_per_second, b.direction)),
            reset: fault
                .reset
                .as_ref()
                .filter(|r| hit(r.percent, rng))
                .map(|r| (r.after_bytes, r.direction)),
            blackhole: fault
                .blackhole
                .as_ref()
                .filter(|b| hit(b.percent, rng))
                .map(|b| b.direction),
            slow_close: fault
                .slow_close
                .as_ref()
                .filter(|s| hit(s.percent, rng))
                .map(|s| s.delay),
            expires_at_ms: None,
        },
    }
}

/// The fault phase: waits out an injected delay, answers an injected abort, and applies
/// the request's side of the network faults. What is left for the response comes back.
/// `expires_at_ms`: the end of the fault's lease, which bounds a blackhole.
pub(super) async fn inject(
    fault: &EffectiveFault,
    expires_at_ms: Option<u64>,
    ctx: &mut Ctx,
) -> Phase<network::Network> {
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
    let mut network = decision.network;
    network.expires_at_ms = expires_at_ms;
    network.on_request(ctx).await?;
    ControlFlow::Continue(network)
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
    use mesh_api::defaults::{Direction, EffectiveAbort, EffectiveBandwidth};
    use rand::SeedableRng;

    #[test]
    fn percentages_hold() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let delay = EffectiveFault {
            delay: Some(EffectiveDelay {
                fixed_delay: Duration::from_secs(7),
                percent: 100.0,
                jitter: Duration::ZERO,
                direction: Direction::Request,
            }),
            ..EffectiveFault::default()
        };
        assert_eq!(decide(&delay, &mut rng).delay, Some(Duration::from_secs(7)));
        let never = EffectiveFault {
            delay: None,
            abort: Some(EffectiveAbort {
                status: AbortStatus::Http(500),
                percent: 0.0,
            }),
            ..EffectiveFault::default()
        };
        assert_eq!(decide(&never, &mut rng).abort, None);
        let half = EffectiveFault {
            delay: None,
            abort: Some(EffectiveAbort {
                status: AbortStatus::Http(503),
                percent: 50.0,
            }),
            ..EffectiveFault::default()
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
            ..EffectiveFault::default()
        };
        assert_eq!(decide(&grpc, &mut rng).abort, Some(Abort::Grpc(14)));
    }

    #[test]
    fn jitter_spreads_delays_and_direction_sends_them_to_the_response() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let fault = EffectiveFault {
            delay: Some(EffectiveDelay {
                fixed_delay: Duration::from_millis(500),
                percent: 100.0,
                jitter: Duration::from_millis(100),
                direction: Direction::Response,
            }),
            bandwidth: Some(EffectiveBandwidth {
                bytes_per_second: 1000,
                direction: Direction::Response,
                percent: 100.0,
            }),
            ..EffectiveFault::default()
        };
        let waits: Vec<Duration> = (0..1000)
            .map(|_| {
                let d = decide(&fault, &mut rng);
                assert_eq!(d.delay, None, "a response delay is not a request delay");
                assert_eq!(d.network.bandwidth, Some((1000, Direction::Response)));
                d.network.response_delay.unwrap()
            })
            .collect();
        let (min, max) = (waits.iter().min().unwrap(), waits.iter().max().unwrap());
        assert!(*min >= Duration::from_millis(400) && *max <= Duration::from_millis(600));
        // Spread over the band, not stuck at one value.
        assert!(*min < Duration::from_millis(420) && *max > Duration::from_millis(580));
    }
}
