//! `meshctl fault add` arguments turned into the control plane's fault lease request:
//! Istio's delay and abort, and the network faults (bandwidth, reset, blackhole, slow
//! close, jitter and direction) the sidecars apply to one HTTP exchange.

use std::collections::BTreeMap;
use std::time::Duration;

use mesh_api::defaults::parse_rate;
use mesh_api::wire::{
    AbortRequest, BandwidthFault, BlackholeFault, DelayRequest, Direction, FaultRequest,
    ResetFault, SlowCloseFault,
};

use crate::cli::parse_duration;
use crate::{CtlError, human};

/// `meshctl fault add`: its flags as typed, checked by [`FaultArgs::to_request`].
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct FaultArgs {
    /// Target service, e.g. ratings.
    pub service: String,
    /// Only this subset (DestinationRule subset name, e.g. v1).
    #[arg(long)]
    pub subset: Option<String>,
    /// Delay every affected request by this long (e.g. 7s).
    #[arg(long, value_name = "DURATION")]
    pub delay: Option<String>,
    /// Vary each delay at random by up to this much either way (e.g. 500ms).
    #[arg(long, value_name = "DURATION", requires = "delay")]
    pub jitter: Option<String>,
    /// Answer affected requests with this HTTP status (e.g. 500).
    #[arg(long, value_name = "STATUS")]
    pub abort: Option<String>,
    /// Throttle the response body to this rate (e.g. 2KB/s, 16KiB/s; KB = 1000 bytes);
    /// with --direction request, the request body.
    #[arg(long, value_name = "RATE")]
    pub bandwidth: Option<String>,
    /// Cut the caller's connection before any of the response reaches it.
    #[arg(long)]
    pub reset: bool,
    /// Cut the caller's connection after this many bytes of the response body.
    #[arg(long, value_name = "BYTES")]
    pub reset_after: Option<String>,
    /// Never forward the request: the caller hangs until it gives up or the fault ends.
    #[arg(long)]
    pub blackhole: bool,
    /// Relay the whole response but hold back its end this long (e.g. 3s).
    #[arg(long, value_name = "DURATION")]
    pub slow_close: Option<String>,
    /// Where --delay, --bandwidth, --reset and --blackhole act: on the request on its way
    /// to the service, or on the response on its way back [default: response for
    /// bandwidth and reset, request for delay and blackhole].
    #[arg(long, value_name = "request|response")]
    pub direction: Option<String>,
    /// Share of requests affected, 0 to 100.
    #[arg(long, value_name = "PERCENT")]
    pub percent: Option<String>,
    /// Only requests with this header (NAME=VALUE, repeatable), e.g. end-user=jason.
    #[arg(long = "header", value_name = "NAME=VALUE")]
    pub headers: Vec<String>,
    /// How long the fault lasts (1s to 1h); it disappears by itself afterwards.
    #[arg(long, value_name = "DURATION")]
    pub ttl: String,
}

/// A duration flag bounded like the control plane's: more than 0, at most 1 h.
fn bounded(flag: &str, text: &str) -> Result<Duration, CtlError> {
    let d = parse_duration(text).map_err(|e| CtlError::Usage(format!("--{flag}: {e}")))?;
    if d.is_zero() || d > Duration::from_secs(3600) {
        return Err(CtlError::Usage(format!(
            "invalid --{flag} {text:?}: expected more than 0 and at most 1h"
        )));
    }
    Ok(d)
}

/// Parses `end-user=jason` into its name and value.
pub fn parse_header(text: &str) -> Result<(String, String), CtlError> {
    let (name, value) = text.split_once('=').ok_or_else(|| {
        CtlError::Usage(format!(
            "invalid --header {text:?}: expected NAME=VALUE, such as end-user=jason"
        ))
    })?;
    let name = name.trim();
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
    if !valid {
        return Err(CtlError::Usage(format!(
            "invalid --header {text:?}: {name:?} is not a header name (letters, digits, - and _)"
        )));
    }
    Ok((name.to_ascii_lowercase(), value.to_owned()))
}

impl FaultArgs {
    /// The body of `POST /api/v1/faults`, after checking every flag.
    pub fn to_request(&self) -> Result<FaultRequest, CtlError> {
        if self.service.trim().is_empty() {
            return Err(CtlError::Usage("fault add needs a service name".to_owned()));
        }
        let reset = self.reset || self.reset_after.is_some();
        if self.delay.is_none()
            && self.abort.is_none()
            && self.bandwidth.is_none()
            && !reset
            && !self.blackhole
            && self.slow_close.is_none()
        {
            return Err(CtlError::Usage(
                "fault add needs at least one of --delay, --abort, --bandwidth, --reset, \
                 --reset-after, --blackhole, --slow-close"
                    .to_owned(),
            ));
        }
        if self.direction.is_some()
            && self.delay.is_none()
            && self.bandwidth.is_none()
            && !reset
            && !self.blackhole
        {
            return Err(CtlError::Usage(
                "--direction applies to --delay, --bandwidth, --reset and --blackhole; \
                 give one of them"
                    .to_owned(),
            ));
        }
        let direction = match self.direction.as_deref().map(str::trim) {
            None => None,
            Some("request") => Some(Direction::Request),
            Some("response") => Some(Direction::Response),
            Some(other) => {
                return Err(CtlError::Usage(format!(
                    "invalid --direction {other:?}: expected request or response"
                )));
            }
        };
        let percent = match &self.percent {
            None => 100.0,
            Some(p) => match p.trim().trim_end_matches('%').parse::<f64>() {
                Ok(v) if (0.0..=100.0).contains(&v) => v,
                _ => {
                    return Err(CtlError::Usage(format!(
                        "invalid --percent {p:?}: expected a number from 0 to 100"
                    )));
                }
            },
        };
        let ttl = parse_duration(&self.ttl).map_err(|e| CtlError::Usage(format!("--ttl: {e}")))?;
        let ttl_seconds = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        if !(1..=3600).contains(&ttl_seconds) {
            return Err(CtlError::Usage(format!(
                "invalid --ttl {:?}: a fault lease lasts from 1s to 1h",
                self.ttl
            )));
        }
        let delay = match &self.delay {
            None => None,
            Some(d) => Some(DelayRequest {
                fixed_delay: human::istio(bounded("delay", d)?),
                percentage: Some(percent),
                jitter: match &self.jitter {
                    Some(j) => Some(human::istio(bounded("jitter", j)?)),
                    None => None,
                },
                direction,
            }),
        };
        let bandwidth = match &self.bandwidth {
            None => None,
            Some(rate) => Some(BandwidthFault {
                bytes_per_second: parse_rate(rate)
                    .ok()
                    .and_then(|r| i64::try_from(r).ok())
                    .ok_or_else(|| {
                        CtlError::Usage(format!(
                            "invalid --bandwidth {rate:?}: expected a rate such as 2KB/s, \
                             16KiB/s or 1MB/s"
                        ))
                    })?,
                direction,
                percentage: Some(percent),
            }),
        };
        let reset = match (reset, &self.reset_after) {
            (false, _) => None,
            (true, None) => Some(ResetFault {
                after_bytes: None,
                direction,
                percentage: Some(percent),
            }),
            (true, Some(bytes)) => match bytes.trim().parse::<u32>() {
                Ok(after) => Some(ResetFault {
                    after_bytes: Some(i64::from(after)),
                    direction,
                    percentage: Some(percent),
                }),
                Err(_) => {
                    return Err(CtlError::Usage(format!(
                        "invalid --reset-after {bytes:?}: expected a number of bytes, such as 1000"
                    )));
                }
            },
        };
        let blackhole = self.blackhole.then_some(BlackholeFault {
            direction,
            percentage: Some(percent),
        });
        let slow_close = match &self.slow_close {
            None => None,
            Some(d) => Some(SlowCloseFault {
                delay: human::istio(bounded("slow-close", d)?),
                percentage: Some(percent),
            }),
        };
        let abort = match &self.abort {
            None => None,
            Some(a) => match a.trim().parse::<u16>() {
                Ok(status) if (200..=599).contains(&status) => Some(AbortRequest {
                    http_status: i64::from(status),
                    percentage: Some(percent),
                }),
                _ => {
                    return Err(CtlError::Usage(format!(
                        "invalid --abort {a:?}: expected an HTTP status from 200 to 599, such as 500"
                    )));
                }
            },
        };
        let headers = self
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        Ok(FaultRequest {
            service: self.service.trim().to_owned(),
            namespace: None,
            subset: self.subset.clone(),
            delay,
            abort,
            bandwidth,
            reset,
            blackhole,
            slow_close,
            headers,
            ttl_seconds: Some(i64::try_from(ttl_seconds).unwrap_or(i64::MAX)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The request as the control plane receives it.
    fn sent(a: &FaultArgs) -> serde_json::Value {
        serde_json::to_value(a.to_request().unwrap()).unwrap()
    }

    fn args() -> FaultArgs {
        FaultArgs {
            service: "ratings".into(),
            ttl: "2m".into(),
            ..FaultArgs::default()
        }
    }

    #[test]
    fn delay_for_jason() {
        let a = FaultArgs {
            delay: Some("7s".into()),
            headers: vec!["end-user=jason".into()],
            ..args()
        };
        assert_eq!(
            sent(&a),
            json!({"service": "ratings", "delay": {"fixed_delay": "7s", "percentage": 100.0},
                   "headers": {"end-user": "jason"}, "ttl_seconds": 120})
        );
    }

    #[test]
    fn abort_with_subset_and_percent() {
        let a = FaultArgs {
            subset: Some("v1".into()),
            abort: Some("500".into()),
            percent: Some("50".into()),
            ttl: "90s".into(),
            ..args()
        };
        assert_eq!(
            sent(&a),
            json!({"service": "ratings", "subset": "v1",
                   "abort": {"http_status": 500, "percentage": 50.0}, "ttl_seconds": 90})
        );
    }

    #[test]
    fn bad_values_get_clear_errors() {
        let cases = [
            (
                FaultArgs { ..args() },
                "at least one of --delay, --abort, --bandwidth",
            ),
            (
                FaultArgs {
                    bandwidth: Some("fast".into()),
                    ..args()
                },
                "invalid --bandwidth \"fast\"",
            ),
            (
                FaultArgs {
                    reset_after: Some("-1".into()),
                    ..args()
                },
                "invalid --reset-after \"-1\"",
            ),
            (
                FaultArgs {
                    blackhole: true,
                    direction: Some("up".into()),
                    ..args()
                },
                "invalid --direction \"up\"",
            ),
            (
                FaultArgs {
                    abort: Some("500".into()),
                    direction: Some("response".into()),
                    ..args()
                },
                "--direction applies to",
            ),
            (
                FaultArgs {
                    slow_close: Some("2h".into()),
                    ..args()
                },
                "invalid --slow-close \"2h\"",
            ),
            (
                FaultArgs {
                    delay: Some("7".into()),
                    ..args()
                },
                "invalid duration \"7\"",
            ),
            (
                FaultArgs {
                    abort: Some("700".into()),
                    ..args()
                },
                "invalid --abort \"700\"",
            ),
            (
                FaultArgs {
                    abort: Some("x".into()),
                    ..args()
                },
                "invalid --abort \"x\"",
            ),
            (
                FaultArgs {
                    abort: Some("500".into()),
                    percent: Some("120".into()),
                    ..args()
                },
                "invalid --percent \"120\"",
            ),
            (
                FaultArgs {
                    abort: Some("500".into()),
                    ttl: "2h".into(),
                    ..args()
                },
                "from 1s to 1h",
            ),
            (
                FaultArgs {
                    abort: Some("500".into()),
                    headers: vec!["end-user".into()],
                    ..args()
                },
                "expected NAME=VALUE",
            ),
            (
                FaultArgs {
                    abort: Some("500".into()),
                    headers: vec!["a b=c".into()],
                    ..args()
                },
                "is not a header name",
            ),
        ];
        for (a, want) in cases {
            let e = a.to_request().unwrap_err();
            assert!(e.to_string().contains(want), "{e} (wanted {want})");
            assert_eq!(e.exit_code(), 64);
        }
    }

    #[test]
    fn network_faults_carry_the_direction_given() {
        let a = FaultArgs {
            bandwidth: Some("2KB/s".into()),
            reset_after: Some("1000".into()),
            percent: Some("25".into()),
            direction: Some("request".into()),
            ..args()
        };
        assert_eq!(
            sent(&a),
            json!({"service": "ratings",
                   "bandwidth": {"bytes_per_second": 2000, "direction": "request", "percentage": 25.0},
                   "reset": {"after_bytes": 1000, "direction": "request", "percentage": 25.0},
                   "ttl_seconds": 120})
        );
        let a = FaultArgs {
            delay: Some("1s".into()),
            jitter: Some("250ms".into()),
            blackhole: true,
            slow_close: Some("3s".into()),
            ..args()
        };
        assert_eq!(
            sent(&a),
            json!({"service": "ratings",
                   "delay": {"fixed_delay": "1s", "jitter": "250ms", "percentage": 100.0},
                   "blackhole": {"percentage": 100.0},
                   "slow_close": {"delay": "3s", "percentage": 100.0},
                   "ttl_seconds": 120})
        );
    }

    #[test]
    fn header_values_may_contain_equals() {
        assert_eq!(
            parse_header("X-Token=a=b").unwrap(),
            ("x-token".to_owned(), "a=b".to_owned())
        );
    }
}
