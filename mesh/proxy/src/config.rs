//! The proxy's configuration: environment variables for the process, and a YAML file
//! describing who the workload is, the service registry, and which Istio resource files
//! to apply. The file is re-read when it (or a resource file) changes; an invalid change
//! is rejected with the precise error and the running configuration stays in force.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mesh_api::{MeshConfig, ProxyScope, RouteTable, compile};
use mesh_client::Credential;
use serde::Deserialize;

use crate::registry::Registry;
use crate::telemetry::metrics::Workload;
use crate::telemetry::peer::{Exchange, NodeMetadata};

/// What the proxy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Next to an app: outbound + inbound listeners.
    Sidecar,
    /// An ingress gateway: listeners from the selected `Gateway` resources.
    Gateway,
}

/// Where the proxy's configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `MESH_PROXY_CONFIG`: a YAML file (workload, registry, resource files), watched.
    File(PathBuf),
    /// `MESH_PROXY_CONTROL`: the control plane at this URL, with the workload described
    /// by `MESH_PROXY_WORKLOAD`, `_NAMESPACE`, `_SERVICE`, `_SERVICE_ACCOUNT`, `_LABELS`.
    Control {
        /// Base URL, e.g. `http://127.0.0.1:15010`.
        url: String,
        /// Who we are.
        workload: WorkloadSpec,
        /// `MESH_PROXY_TOKEN`, or `MESH_PROXY_TOKEN_FILE` (re-read for every request:
        /// Kubernetes rotates projected tokens): the credential proving who we are, sent as
        /// `Authorization: Bearer` when registering and asking for certificates.
        token: Option<Credential>,
    },
}

/// Process settings from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    /// `MESH_PROXY_MODE`: `sidecar` (default) or `gateway`.
    pub mode: Mode,
    /// Where the configuration comes from.
    pub source: Source,
    /// `MESH_PROXY_OUTBOUND` (default 127.0.0.1:15001): where the app's `HTTP_PROXY` points.
    pub outbound: SocketAddr,
    /// `MESH_PROXY_INBOUND` (default 0.0.0.0:15006): traffic for the app arrives here.
    pub inbound: SocketAddr,
    /// `MESH_PROXY_APP` (default 127.0.0.1:9080): the app.
    pub app: SocketAddr,
    /// `MESH_PROXY_ADMIN` (default 127.0.0.1:15000).
    pub admin: SocketAddr,
    /// `MESH_PROXY_GATEWAY_ADDRESS` (default 0.0.0.0): address gateway listeners bind.
    pub gateway_address: std::net::IpAddr,
    /// `MESH_PROXY_GATEWAY_PORTS` (`8080:18080,...`): a Gateway server port → the local
    /// port actually bound (for laptops where the declared port is taken).
    pub gateway_ports: BTreeMap<u16, u16>,
    /// `MESH_PROXY_ACCESS_LOG` (default true).
    pub access_log: bool,
    /// `MESH_PROXY_DRAIN` (default 5s): how long to let connections finish on shutdown.
    pub drain: Duration,
    /// Tracing, from the standard `OTEL_*` variables: on when
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set.
    pub trace: Option<crate::telemetry::trace::Settings>,
}

/// A bad environment value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {var}={value:?}: {reason}")]
pub struct EnvError {
    var: &'static str,
    value: String,
    reason: &'static str,
}

impl Env {
    /// The credential sent to the control plane (control-plane mode only).
    pub fn control_token(&self) -> Option<Credential> {
        match &self.source {
            Source::Control { token, .. } => token.clone(),
            Source::File(_) => None,
        }
    }

    /// Defaults for a file-configured sidecar (tests start from this).
    pub fn with_file(path: PathBuf) -> Self {
        let loopback = |port| SocketAddr::from(([127, 0, 0, 1], port));
        Self {
            mode: Mode::Sidecar,
            source: Source::File(path),
            outbound: loopback(15001),
            inbound: SocketAddr::from(([0, 0, 0, 0], 15006)),
            app: loopback(9080),
            admin: loopback(15000),
            gateway_address: [0, 0, 0, 0].into(),
            gateway_ports: BTreeMap::new(),
            access_log: true,
            drain: Duration::from_secs(5),
            trace: None,
        }
    }

    /// Reads the environment through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let bad = |var: &'static str, value: &str, reason: &'static str| EnvError {
            var,
            value: value.to_owned(),
            reason,
        };
        let addr = |var: &'static str, default: &str| -> Result<SocketAddr, EnvError> {
            let v = get(var).unwrap_or_else(|| default.to_owned());
            v.parse()
                .map_err(|_| bad(var, &v, "expected an address such as 127.0.0.1:15001"))
        };
        let mode = match get("MESH_PROXY_MODE").as_deref().unwrap_or("sidecar") {
            "sidecar" => Mode::Sidecar,
            "gateway" => Mode::Gateway,
            other => return Err(bad("MESH_PROXY_MODE", other, "expected sidecar or gateway")),
        };
        let source = match (
            get("MESH_PROXY_CONTROL").filter(|c| !c.is_empty()),
            get("MESH_PROXY_CONFIG").filter(|c| !c.is_empty()),
        ) {
            (Some(url), _) => {
                if mesh_client::base_url(&url).is_err() {
                    return Err(bad(
                        "MESH_PROXY_CONTROL",
                        &url,
                        "expected an http:// URL such as http://127.0.0.1:15010",
                    ));
                }
                let name = get("MESH_PROXY_WORKLOAD")
                    .filter(|n| !n.is_empty())
                    .ok_or(bad(
                        "MESH_PROXY_WORKLOAD",
                        "",
                        "required with MESH_PROXY_CONTROL: the workload name, e.g. reviews-v2",
                    ))?;
                let labels_text = get("MESH_PROXY_LABELS").unwrap_or_default();
                let mut labels = BTreeMap::new();
                for pair in labels_text
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                {
                    let (k, v) = pair.split_once('=').ok_or(bad(
                        "MESH_PROXY_LABELS",
                        &labels_text,
                        "expected key=value pairs separated by commas",
                    ))?;
                    labels.insert(k.trim().to_owned(), v.trim().to_owned());
                }
                let token = match (
                    get("MESH_PROXY_TOKEN").filter(|t| !t.trim().is_empty()),
                    get("MESH_PROXY_TOKEN_FILE").filter(|f| !f.trim().is_empty()),
                ) {
                    (Some(_), Some(file)) => {
                        return Err(bad(
                            "MESH_PROXY_TOKEN_FILE",
                            &file,
                            "set MESH_PROXY_TOKEN or MESH_PROXY_TOKEN_FILE, not both",
                        ));
                    }
                    (Some(token), None) => Some(Credential::token(&token)),
                    (None, Some(file)) => Some(Credential::File(PathBuf::from(file.trim()))),
                    (None, None) => None,
                };
                Source::Control {
                    url,
                    token,
                    workload: WorkloadSpec {
                        name,
                        namespace: get("MESH_PROXY_NAMESPACE")
                            .filter(|n| !n.is_empty())
                            .unwrap_or_else(default_namespace),
                        service_account: get("MESH_PROXY_SERVICE_ACCOUNT")
                            .filter(|s| !s.is_empty()),
                        labels,
                        service: get("MESH_PROXY_SERVICE").filter(|s| !s.is_empty()),
                    },
                }
            }
            (None, Some(path)) => Source::File(PathBuf::from(path)),
            (None, None) => {
                return Err(bad(
                    "MESH_PROXY_CONFIG",
                    "",
                    "required: set MESH_PROXY_CONFIG to a YAML file, or MESH_PROXY_CONTROL to a control plane URL",
                ));
            }
        };
        let access_log = match get("MESH_PROXY_ACCESS_LOG").as_deref().unwrap_or("true") {
            "true" | "1" => true,
            "false" | "0" => false,
            other => {
                return Err(bad(
                    "MESH_PROXY_ACCESS_LOG",
                    other,
                    "expected true or false",
                ));
            }
        };
        let drain = get("MESH_PROXY_DRAIN").unwrap_or_else(|| "5s".to_owned());
        let drain = mesh_api::parse_duration(&drain)
            .map_err(|_| bad("MESH_PROXY_DRAIN", &drain, "expected a duration such as 5s"))?;
        let gw = get("MESH_PROXY_GATEWAY_ADDRESS").unwrap_or_else(|| "0.0.0.0".to_owned());
        let ports_text = get("MESH_PROXY_GATEWAY_PORTS").unwrap_or_default();
        let mut gateway_ports = BTreeMap::new();
        for pair in ports_text
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let parsed = pair.split_once(':').and_then(|(a, b)| {
                Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?))
            });
            let (from, to) = parsed.ok_or(bad(
                "MESH_PROXY_GATEWAY_PORTS",
                &ports_text,
                "expected GATEWAY_PORT:LOCAL_PORT pairs, e.g. 8080:18080",
            ))?;
            gateway_ports.insert(from, to);
        }
        let trace = crate::telemetry::trace::Settings::from_lookup(&get).map_err(|e| EnvError {
            var: e.var,
            value: e.value,
            reason: e.reason,
        })?;
        Ok(Self {
            mode,
            source,
            outbound: addr("MESH_PROXY_OUTBOUND", "127.0.0.1:15001")?,
            inbound: addr("MESH_PROXY_INBOUND", "0.0.0.0:15006")?,
            app: addr("MESH_PROXY_APP", "127.0.0.1:9080")?,
            admin: addr("MESH_PROXY_ADMIN", "127.0.0.1:15000")?,
            gateway_address: gw
                .parse()
                .map_err(|_| bad("MESH_PROXY_GATEWAY_ADDRESS", &gw, "expected an IP address"))?,
            gateway_ports,
            access_log,
            drain,
            trace,
        })
    }
}

/// The proxy's configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyFile {
    /// Who this proxy serves.
    pub workload: WorkloadSpec,
    /// Services and endpoints.
    #[serde(default)]
    pub registry: Registry,
    /// Istio resource files or directories (relative to this file).
    #[serde(default)]
    pub resources: Vec<PathBuf>,
}

/// The workload a proxy serves.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Workload name, e.g. `reviews-v2` (or `istio-ingressgateway`).
    pub name: String,
    /// Namespace (default `default`).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Service account (for the SPIFFE identity).
    #[serde(default)]
    pub service_account: Option<String>,
    /// Labels: `app`, `version`, `istio: ingressgateway`, ...
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The service this workload serves, for inbound metrics (default: the `app` label).
    #[serde(default)]
    pub service: Option<String>,
}

fn default_namespace() -> String {
    "default".to_owned()
}

/// Why a configuration could not be loaded. The message names the file and the problem.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The proxy file is not valid YAML of the expected shape.
    #[error("{path}: {message}")]
    Parse {
        /// File.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The Istio resources are invalid.
    #[error("{0}")]
    Invalid(String),
}

/// A loaded, validated, compiled configuration.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file's content.
    pub file: ProxyFile,
    /// The compiled routing table.
    pub table: RouteTable,
    /// Security resources that may apply to this workload.
    pub security: mesh_api::security::WorkloadSecurity,
    /// Files read (watched for changes).
    pub files: Vec<PathBuf>,
}

impl WorkloadSpec {
    /// The metrics view of this workload.
    pub fn workload(&self) -> Workload {
        let label = |k: &str| {
            self.labels
                .get(k)
                .cloned()
                .unwrap_or_else(|| "unknown".to_owned())
        };
        let (canonical_service, canonical_revision) = crate::telemetry::metrics::canonical_names(
            |k| self.labels.get(k).map(String::as_str),
            &self.name,
        );
        Workload {
            workload: self.name.clone(),
            namespace: self.namespace.clone(),
            principal: self.service_account.as_ref().map_or_else(
                || "unknown".to_owned(),
                |sa| format!("spiffe://cluster.local/ns/{}/sa/{sa}", self.namespace),
            ),
            app: label("app"),
            version: label("version"),
            canonical_service,
            canonical_revision,
            cluster: crate::telemetry::metrics::DEFAULT_CLUSTER.to_owned(),
        }
    }

    /// The peer metadata this workload's proxy sends to mesh peers (`gateway`: as an
    /// ingress gateway; `ip`: the address its node id names). The service account is the
    /// one its certificate is issued for (`default` when none is set). `None` when a
    /// name cannot go into a header.
    pub fn exchange(&self, gateway: bool, ip: std::net::IpAddr) -> Option<Exchange> {
        let sa = self.service_account.as_deref().unwrap_or("default");
        let node = NodeMetadata::of_workload(&self.name, &self.namespace, sa, &self.labels);
        let id = Exchange::node_id(gateway, ip, &self.name, &self.namespace);
        match Exchange::new(&id, &node) {
            Ok(e) => Some(e),
            Err(error) => {
                tracing::warn!(%error, workload = %self.name, "No peer metadata exchange: the workload's names cannot go into a header.");
                None
            }
        }
    }
}

/// Reads the proxy file and its resources, validates and compiles them.
pub fn load(path: &Path, mode: Mode) -> Result<Loaded, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let file: ProxyFile = serde_norway::from_str(&text).map_err(|e| LoadError::Parse {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut files = vec![path.to_owned()];
    let mut texts = Vec::new();
    for r in &file.resources {
        let p = base.join(r);
        let mut found = if p.is_dir() {
            let entries = std::fs::read_dir(&p).map_err(|source| LoadError::Read {
                path: p.display().to_string(),
                source,
            })?;
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|f| f.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect::<Vec<_>>()
        } else {
            vec![p]
        };
        found.sort();
        for f in found {
            let t = std::fs::read_to_string(&f).map_err(|source| LoadError::Read {
                path: f.display().to_string(),
                source,
            })?;
            texts.push((f.display().to_string(), t));
            files.push(f);
        }
    }
    let outcome = MeshConfig::load(texts.iter().map(|(n, t)| (n.as_str(), t.as_str())))
        .map_err(|e| LoadError::Invalid(e.to_string()))?;
    for w in &outcome.warnings {
        tracing::warn!(warning = %w, "Configuration warning.");
    }
    let labels: Vec<(&str, &str)> = file
        .workload
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let scope = match mode {
        Mode::Sidecar => ProxyScope::sidecar(&file.workload.namespace, &labels),
        Mode::Gateway => ProxyScope::gateway(&file.workload.namespace, &labels),
    };
    let table = compile(&outcome.config, &scope);
    let security = mesh_api::security::WorkloadSecurity::for_workload(
        outcome.config.peer_authentications(),
        outcome.config.authorization_policies(),
        &file.workload.namespace,
        &file.workload.labels,
    );
    Ok(Loaded {
        file,
        table,
        security,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<Env, EnvError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Env::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn control_plane_mode_reads_the_workload() {
        let e = env(&[
            ("MESH_PROXY_CONTROL", "http://127.0.0.1:15010"),
            ("MESH_PROXY_WORKLOAD", "reviews-v2"),
            ("MESH_PROXY_SERVICE", "reviews"),
            ("MESH_PROXY_LABELS", "app=reviews, version=v2"),
            ("MESH_PROXY_GATEWAY_PORTS", "8080:18080"),
        ])
        .unwrap();
        assert_eq!(e.control_token(), None);
        let Source::Control { workload, .. } = e.source else {
            panic!("control mode expected")
        };
        assert_eq!(workload.labels["version"], "v2");
        assert_eq!(workload.namespace, "default");
        assert_eq!(e.gateway_ports[&8080], 18080);
    }

    #[test]
    fn the_control_plane_token_comes_from_the_environment_or_a_file() {
        let base = [
            ("MESH_PROXY_CONTROL", "http://127.0.0.1:15010"),
            ("MESH_PROXY_WORKLOAD", "reviews-v2"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = base.to_vec();
            pairs.extend_from_slice(extra);
            env(&pairs)
        };
        assert_eq!(
            with(&[("MESH_PROXY_TOKEN", "abc")])
                .unwrap()
                .control_token(),
            Some(Credential::token("abc"))
        );
        assert_eq!(
            with(&[("MESH_PROXY_TOKEN_FILE", "/var/run/secrets/mesh/token")])
                .unwrap()
                .control_token(),
            Some(Credential::File("/var/run/secrets/mesh/token".into()))
        );
        let both = with(&[("MESH_PROXY_TOKEN", "abc"), ("MESH_PROXY_TOKEN_FILE", "/t")]);
        assert!(
            both.unwrap_err().to_string().contains("not both"),
            "both set must be refused"
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let msg = |pairs: &[(&str, &str)]| env(pairs).unwrap_err().to_string();
        assert!(msg(&[]).starts_with("invalid MESH_PROXY_CONFIG="));
        assert!(
            msg(&[("MESH_PROXY_CONTROL", "http://x:1")])
                .starts_with("invalid MESH_PROXY_WORKLOAD=")
        );
        assert!(
            msg(&[
                ("MESH_PROXY_CONFIG", "p.yaml"),
                ("MESH_PROXY_GATEWAY_PORTS", "8080")
            ])
            .starts_with("invalid MESH_PROXY_GATEWAY_PORTS=")
        );
        assert!(
            msg(&[
                ("MESH_PROXY_CONFIG", "p.yaml"),
                ("MESH_PROXY_OUTBOUND", "nowhere")
            ])
            .starts_with("invalid MESH_PROXY_OUTBOUND=")
        );
        assert!(
            msg(&[
                ("MESH_PROXY_CONFIG", "p.yaml"),
                ("MESH_PROXY_MODE", "ambient")
            ])
            .starts_with("invalid MESH_PROXY_MODE=")
        );
    }
}
