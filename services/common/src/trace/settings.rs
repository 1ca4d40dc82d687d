//! The standard OpenTelemetry variables, read the way the mesh's proxy reads them, so a
//! service and its sidecar follow one environment: an OTLP endpoint turns tracing on,
//! `OTEL_TRACES_SAMPLER(_ARG)` pick the sampler (default: Istio's parent-based 1 %),
//! `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` describe the service.

use std::time::Duration;

use crate::config::{ConfigError, Lookup};

/// Istio's default sampling: 1 % of the traces that start here.
pub const DEFAULT_RATIO: f64 = 0.01;

/// How traces are sampled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Follow the caller's decision when one comes in.
    pub parent_based: bool,
    /// The share of traces sampled when this service decides (0 to 1).
    pub ratio: f64,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            parent_based: true,
            ratio: DEFAULT_RATIO,
        }
    }
}

/// Tracing configuration. `from_lookup` returns `None` (tracing off) without an
/// endpoint or with `OTEL_TRACES_EXPORTER=none`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Where spans are posted (the full `.../v1/traces` URL).
    pub endpoint: String,
    /// `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`.
    pub sampling: Sampling,
    /// `OTEL_SERVICE_NAME`; the program's name when unset (and no `service.name` in
    /// the resource attributes).
    pub service_name: Option<String>,
    /// `OTEL_RESOURCE_ATTRIBUTES`.
    pub resource: Vec<(String, String)>,
    /// `OTEL_BSP_SCHEDULE_DELAY` (default 5 s): how long spans wait for their batch.
    pub batch_delay: Duration,
}

impl Settings {
    /// Settings for `endpoint`, every other value at its default (tests, embedders).
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            sampling: Sampling::default(),
            service_name: None,
            resource: Vec::new(),
            batch_delay: Duration::from_secs(5),
        }
    }

    /// Reads the variables; `None` when tracing is off.
    pub fn from_lookup(env: &dyn Lookup) -> Result<Option<Self>, ConfigError> {
        let var = |k: &str| {
            env.get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        match var("OTEL_TRACES_EXPORTER").as_deref() {
            None | Some("otlp") => {}
            Some("none") => return Ok(None),
            Some(other) => {
                return Err(ConfigError::new(
                    "OTEL_TRACES_EXPORTER",
                    other,
                    "expected otlp or none (spans go out by OTLP/HTTP)",
                ));
            }
        }
        let endpoint = match (
            var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            var("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(url), _) => {
                check_url(&url)
                    .map_err(|r| ConfigError::new("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &url, r))?;
                url
            }
            (None, Some(base)) => {
                check_url(&base)
                    .map_err(|r| ConfigError::new("OTEL_EXPORTER_OTLP_ENDPOINT", &base, r))?;
                format!("{}/v1/traces", base.trim_end_matches('/'))
            }
            (None, None) => return Ok(None),
        };
        for protocol in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Some(p) = var(protocol) {
                if p != "http/protobuf" {
                    return Err(ConfigError::new(
                        protocol,
                        &p,
                        "expected http/protobuf, the one protocol the services export with",
                    ));
                }
                break;
            }
        }
        let arg = var("OTEL_TRACES_SAMPLER_ARG");
        let ratio = |default: f64| -> Result<f64, ConfigError> {
            match &arg {
                None => Ok(default),
                Some(a) => a
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| {
                        ConfigError::new(
                            "OTEL_TRACES_SAMPLER_ARG",
                            a,
                            "expected a ratio from 0 to 1",
                        )
                    }),
            }
        };
        let sampling = |parent_based, ratio| Sampling {
            parent_based,
            ratio,
        };
        let sampling = match var("OTEL_TRACES_SAMPLER").as_deref() {
            None => sampling(true, ratio(DEFAULT_RATIO)?),
            Some("always_on") => sampling(false, 1.0),
            Some("always_off") => sampling(false, 0.0),
            Some("traceidratio") => sampling(false, ratio(1.0)?),
            Some("parentbased_always_on") => sampling(true, 1.0),
            Some("parentbased_always_off") => sampling(true, 0.0),
            Some("parentbased_traceidratio") => sampling(true, ratio(1.0)?),
            Some(other) => {
                return Err(ConfigError::new(
                    "OTEL_TRACES_SAMPLER",
                    other,
                    "expected always_on, always_off, traceidratio, parentbased_always_on, \
                     parentbased_always_off or parentbased_traceidratio",
                ));
            }
        };
        let resource = match var("OTEL_RESOURCE_ATTRIBUTES") {
            None => Vec::new(),
            Some(list) => parse_resource(&list).ok_or_else(|| {
                ConfigError::new(
                    "OTEL_RESOURCE_ATTRIBUTES",
                    &list,
                    "expected comma-separated key=value pairs",
                )
            })?,
        };
        let batch_delay = match var("OTEL_BSP_SCHEDULE_DELAY") {
            None => Duration::from_secs(5),
            Some(ms) => ms.parse::<u64>().map(Duration::from_millis).map_err(|_| {
                ConfigError::new(
                    "OTEL_BSP_SCHEDULE_DELAY",
                    &ms,
                    "expected milliseconds, such as 5000",
                )
            })?,
        };
        Ok(Some(Self {
            endpoint,
            sampling,
            service_name: var("OTEL_SERVICE_NAME"),
            resource,
            batch_delay,
        }))
    }

    /// The `service.name`: `OTEL_SERVICE_NAME`, else `service.name` of the resource
    /// attributes, else `program`.
    pub fn service(&self, program: &str) -> String {
        self.service_name
            .clone()
            .or_else(|| {
                self.resource
                    .iter()
                    .find(|(k, _)| k == "service.name")
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_else(|| program.to_owned())
    }
}

fn check_url(url: &str) -> Result<(), &'static str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(()),
        _ => Err("expected an http:// or https:// URL such as http://127.0.0.1:4318"),
    }
}

/// `k=v,k2=v2`, values percent-decoded (the Resource SDK's encoding).
fn parse_resource(list: &str) -> Option<Vec<(String, String)>> {
    list.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_owned(), percent_decode(v.trim())))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&'static str, &'static str)]) -> Result<Option<Settings>, ConfigError> {
        let env: HashMap<&str, &str> = vars.iter().copied().collect();
        Settings::from_lookup(&env)
    }

    const BASE: (&str, &str) = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");

    #[test]
    fn off_without_an_endpoint_or_with_exporter_none() {
        assert_eq!(settings(&[]).unwrap(), None);
        assert_eq!(
            settings(&[BASE, ("OTEL_TRACES_EXPORTER", "none")]).unwrap(),
            None
        );
    }

    #[test]
    fn endpoints_follow_the_spec() {
        let base = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/x/")])
            .unwrap()
            .unwrap();
        assert_eq!(base.endpoint, "http://c:4318/x/v1/traces");
        assert_eq!(base.sampling, Sampling::default());
        assert_eq!(base.service("reviews"), "reviews");
        let traces = settings(&[
            BASE,
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/spans"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(traces.endpoint, "http://t:1/spans");
        let e = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "c:4318")]).unwrap_err();
        assert!(e.to_string().contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{e}");
    }

    #[test]
    fn samplers_names_and_resources() {
        let s = settings(&[
            BASE,
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=shop,team=a%2Cb"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            s.sampling,
            Sampling {
                parent_based: true,
                ratio: 0.25
            }
        );
        assert_eq!(s.resource[1], ("team".to_owned(), "a,b".to_owned()));
        assert_eq!(s.service("details"), "shop");
        let named = settings(&[BASE, ("OTEL_SERVICE_NAME", "edge")])
            .unwrap()
            .unwrap();
        assert_eq!(named.service("details"), "edge");
        for (var, value) in [
            ("OTEL_TRACES_SAMPLER", "sometimes"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
            ("OTEL_RESOURCE_ATTRIBUTES", "novalue"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_BSP_SCHEDULE_DELAY", "soon"),
            ("OTEL_TRACES_EXPORTER", "zipkin"),
        ] {
            let e = settings(&[BASE, (var, value)]).unwrap_err();
            assert!(e.to_string().contains(var), "{var}: {e}");
        }
    }
}
