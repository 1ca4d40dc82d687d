//! `meshctl fault add` arguments turned into the control plane's fault lease request.

use std::collections::BTreeMap;
use std::time::Duration;

use mesh_api::wire::{AbortRequest, DelayRequest, FaultRequest};

use crate::cli::parse_duration;
use crate::{CtlError, human};

/// The flags of `meshctl fault add`, as typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultArgs {
    /// Target service.
    pub service: String,
    /// Optional subset (`v1`).
    pub subset: Option<String>,
    /// `--delay 7s`.
    pub delay: Option<String>,
    /// `--abort 500`.
    pub abort: Option<String>,
    /// `--percent 100`.
    pub percent: Option<String>,
    /// `--header k=v`, repeatable.
    pub headers: Vec<String>,
    /// `--ttl 2m`.
    pub ttl: String,
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
        if self.delay.is_none() && self.abort.is_none() {
            return Err(CtlError::Usage(
                "fault add needs --delay DURATION and/or --abort HTTP_STATUS".to_owned(),
            ));
        }
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
            Some(d) => {
                let delay =
                    parse_duration(d).map_err(|e| CtlError::Usage(format!("--delay: {e}")))?;
                if delay.is_zero() || delay > Duration::from_secs(3600) {
                    return Err(CtlError::Usage(format!(
                        "invalid --delay {d:?}: expected more than 0 and at most 1h"
                    )));
                }
                Some(DelayRequest {
                    fixed_delay: human::istio(delay),
                    percentage: Some(percent),
                })
            }
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
            (FaultArgs { ..args() }, "--delay DURATION and/or --abort"),
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
    fn header_values_may_contain_equals() {
        assert_eq!(
            parse_header("X-Token=a=b").unwrap(),
            ("x-token".to_owned(), "a=b".to_owned())
        );
    }
}
