//! What `meshctl up` runs: every process with its command line, environment, ports and
//! readiness probe, computed before anything starts (so a bad port or a missing binary
//! is refused up front).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::tokens::{self, Grant};
use crate::ports::{Claim, PortPlan};
use crate::state::{ProcessState, Role};
use crate::supervisor::{Output, ProcessSpec};
use crate::workloads::Workload;

/// Binary of the control plane.
pub(crate) const CONTROL_BIN: &str = "mesh-control";
/// Binary of sidecars and the gateway.
pub(crate) const PROXY_BIN: &str = "mesh-proxy";
/// The gateway's workload name, as Istio's.
pub(crate) const GATEWAY: &str = "istio-ingressgateway";
/// The port the shipped bookinfo-gateway.yaml declares.
const GATEWAY_SERVER_PORT: u16 = 8080;

/// Proxy variables a child must not inherit from the machine: an outside proxy would
/// capture traffic between local processes.
const PROXY_VARS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// Upstream wiring variables the apps read: inherited values would rewire the mesh.
const WIRING_VARS: &[&str] = &[
    "DETAILS_HOSTNAME",
    "DETAILS_SERVICE_PORT",
    "REVIEWS_HOSTNAME",
    "REVIEWS_SERVICE_PORT",
    "RATINGS_HOSTNAME",
    "RATINGS_SERVICE_PORT",
    "SERVICES_DOMAIN",
];

/// How to tell that a process is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Probe {
    /// `GET url` answers 200.
    Http(String),
    /// Something accepts TCP connections on 127.0.0.1:port.
    Tcp(u16),
}

/// One process to run.
#[derive(Debug, Clone)]
pub(crate) struct Component {
    pub(crate) spec: ProcessSpec,
    pub(crate) role: Role,
    pub(crate) workload: Option<String>,
    pub(crate) ports: BTreeMap<String, u16>,
    pub(crate) probe: Probe,
    pub(crate) log: Option<PathBuf>,
}

impl Component {
    /// Its entry in the state file.
    pub(crate) fn state(&self, pid: Option<u32>) -> ProcessState {
        ProcessState {
            name: self.spec.name.clone(),
            role: self.role,
            workload: self.workload.clone(),
            pid,
            ports: self.ports.clone(),
            log: self.log.clone(),
        }
    }

    fn claims(&self, flag: &'static str) -> Vec<Claim> {
        self.ports
            .iter()
            .map(|(what, port)| Claim {
                port: *port,
                owner: format!("{} ({what})", self.spec.name),
                flag: match what.as_str() {
                    "gateway" => "--gateway-port",
                    "control" => "--control-port",
                    _ => flag,
                },
            })
            .collect()
    }
}

/// Inputs of the plan.
#[derive(Debug, Clone)]
pub(crate) struct PlanInput {
    pub(crate) bin_dir: PathBuf,
    pub(crate) log_dir: PathBuf,
    pub(crate) config_dir: PathBuf,
    /// Where the workload tokens go (`tokens::write`).
    pub(crate) tokens_dir: PathBuf,
    /// Where the control plane keeps its CA root (`--ca-dir`).
    pub(crate) ca_dir: PathBuf,
    pub(crate) ports: PortPlan,
    pub(crate) workloads: Vec<Workload>,
    pub(crate) mesh: bool,
    pub(crate) verbose: bool,
    /// Suffix of the apps' HOSTNAME, like a pod name's (`reviews-v2-1a2b`).
    pub(crate) pod_suffix: String,
    /// The user's environment names an OTLP endpoint (Jaeger, a collector): the proxies
    /// export there, inheriting it, instead of to the control plane's store.
    pub(crate) otlp_elsewhere: bool,
    /// The user's environment sets `OTEL_BSP_SCHEDULE_DELAY`, which the proxies inherit.
    pub(crate) batch_delay_set: bool,
}

/// Everything `up` will run.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The control plane, started first (mesh only).
    pub(crate) control: Option<Component>,
    /// Apps, sidecars and the gateway, started together once the control plane is up.
    pub(crate) components: Vec<Component>,
    pub(crate) product_page_url: String,
    pub(crate) control_url: Option<String>,
    /// Whether a product page is expected (productpage selected).
    pub(crate) has_page: bool,
    /// The identity each proxy's token stands for (mesh only).
    pub(crate) grants: Vec<Grant>,
}

impl Plan {
    /// Every port the plan binds.
    pub(crate) fn claims(&self) -> Vec<Claim> {
        self.control
            .iter()
            .chain(&self.components)
            .flat_map(|c| c.claims("--base-port"))
            .collect()
    }

    /// Every binary the plan needs (deduplicated).
    pub(crate) fn binaries(&self) -> Vec<PathBuf> {
        let mut bins: Vec<PathBuf> = self
            .control
            .iter()
            .chain(&self.components)
            .map(|c| c.spec.program.clone())
            .collect();
        bins.sort();
        bins.dedup();
        bins
    }
}

/// Builds the plan.
pub(crate) fn build(input: &PlanInput) -> Plan {
    let url = |port: u16| format!("http://127.0.0.1:{port}");
    let p = &input.ports;
    let mut components = Vec::new();
    let mut grants = Vec::new();
    let control = input.mesh.then(|| control(input));
    for w in &input.workloads {
        let block = p.block(w.slot);
        let mut env = vec![
            ("BIND_ADDRESS".to_owned(), "127.0.0.1".to_owned()),
            (
                "HOSTNAME".to_owned(),
                format!("{}-{}", w.name, input.pod_suffix),
            ),
            ("SERVICE_VERSION".to_owned(), w.version.to_owned()),
        ];
        let app_port = if input.mesh || w.service != "productpage" {
            block.app
        } else {
            // Without the mesh productpage itself is the entry point.
            p.gateway
        };
        env.push(("PORT".to_owned(), app_port.to_string()));
        if input.mesh {
            let proxy = url(block.outbound);
            env.push(("HTTP_PROXY".to_owned(), proxy.clone()));
            env.push(("http_proxy".to_owned(), proxy));
        } else {
            env.extend(direct_wiring(input));
        }
        let mut removed: Vec<String> = PROXY_VARS.iter().map(|v| (*v).to_owned()).collect();
        removed.extend(WIRING_VARS.iter().map(|v| (*v).to_owned()));
        removed.retain(|v| !env.iter().any(|(k, _)| k == v));
        let port_name = if app_port == p.gateway {
            "gateway"
        } else {
            "app"
        };
        components.push(component(
            input,
            w.name,
            w.service,
            Role::App,
            Some(w.name),
            env,
            removed,
            BTreeMap::from([(port_name.to_owned(), app_port)]),
            Probe::Tcp(app_port),
        ));
        if input.mesh {
            let mut env = mesh_env(input);
            env.extend([
                ("MESH_PROXY_MODE".to_owned(), "sidecar".to_owned()),
                ("MESH_PROXY_WORKLOAD".to_owned(), w.name.to_owned()),
                ("MESH_PROXY_SERVICE".to_owned(), w.service.to_owned()),
                (
                    "MESH_PROXY_SERVICE_ACCOUNT".to_owned(),
                    w.service_account.to_owned(),
                ),
                ("MESH_PROXY_LABELS".to_owned(), w.labels()),
                (
                    "MESH_PROXY_OUTBOUND".to_owned(),
                    format!("127.0.0.1:{}", block.outbound),
                ),
                (
                    "MESH_PROXY_INBOUND".to_owned(),
                    format!("127.0.0.1:{}", block.inbound),
                ),
                (
                    "MESH_PROXY_APP".to_owned(),
                    format!("127.0.0.1:{}", block.app),
                ),
                (
                    "MESH_PROXY_ADMIN".to_owned(),
                    format!("127.0.0.1:{}", block.admin),
                ),
            ]);
            env.push(token_env(input, w.name));
            grants.push(Grant {
                workload: w.name.to_owned(),
                namespace: "default".to_owned(),
                service_account: w.service_account.to_owned(),
            });
            components.push(component(
                input,
                &format!("{}-proxy", w.name),
                PROXY_BIN,
                Role::Sidecar,
                Some(w.name),
                env,
                proxy_removed(),
                BTreeMap::from([
                    ("outbound".to_owned(), block.outbound),
                    ("inbound".to_owned(), block.inbound),
                    ("admin".to_owned(), block.admin),
                ]),
                Probe::Http(format!("{}/ready", url(block.admin))),
            ));
        }
    }
    if input.mesh {
        let block = p.gateway_block();
        let mut env = mesh_env(input);
        // Like Istio's ingress gateway, ours lives in the root namespace, so policies of
        // the app namespace (allow-nothing in `default`) do not close the front door.
        env.retain(|(k, _)| k != "MESH_PROXY_NAMESPACE");
        env.extend([
            ("MESH_PROXY_NAMESPACE".to_owned(), "istio-system".to_owned()),
            ("MESH_PROXY_MODE".to_owned(), "gateway".to_owned()),
            ("MESH_PROXY_WORKLOAD".to_owned(), GATEWAY.to_owned()),
            ("MESH_PROXY_SERVICE_ACCOUNT".to_owned(), GATEWAY.to_owned()),
            (
                "MESH_PROXY_LABELS".to_owned(),
                format!("istio=ingressgateway,app={GATEWAY}"),
            ),
            (
                "MESH_PROXY_GATEWAY_ADDRESS".to_owned(),
                "127.0.0.1".to_owned(),
            ),
            (
                "MESH_PROXY_GATEWAY_PORTS".to_owned(),
                format!("{GATEWAY_SERVER_PORT}:{}", p.gateway),
            ),
            // Not used by a gateway, but kept off the defaults another proxy may hold.
            (
                "MESH_PROXY_OUTBOUND".to_owned(),
                format!("127.0.0.1:{}", block.outbound),
            ),
            (
                "MESH_PROXY_INBOUND".to_owned(),
                format!("127.0.0.1:{}", block.inbound),
            ),
            (
                "MESH_PROXY_ADMIN".to_owned(),
                format!("127.0.0.1:{}", block.admin),
            ),
        ]);
        env.push(token_env(input, GATEWAY));
        grants.push(Grant {
            workload: GATEWAY.to_owned(),
            namespace: "istio-system".to_owned(),
            service_account: GATEWAY.to_owned(),
        });
        components.push(component(
            input,
            GATEWAY,
            PROXY_BIN,
            Role::Gateway,
            Some(GATEWAY),
            env,
            proxy_removed(),
            BTreeMap::from([
                ("gateway".to_owned(), p.gateway),
                ("admin".to_owned(), block.admin),
            ]),
            Probe::Http(format!("{}/ready", url(block.admin))),
        ));
    }
    let has_page = input.workloads.iter().any(|w| w.service == "productpage");
    Plan {
        control,
        components,
        product_page_url: format!("{}/productpage", url(p.gateway)),
        control_url: input.mesh.then(|| url(p.control)),
        has_page,
        grants,
    }
}

/// `MESH_PROXY_TOKEN_FILE` of the proxy of `workload`.
fn token_env(input: &PlanInput, workload: &str) -> (String, String) {
    (
        "MESH_PROXY_TOKEN_FILE".to_owned(),
        tokens::token_path(&input.tokens_dir, workload)
            .display()
            .to_string(),
    )
}

fn control(input: &PlanInput) -> Component {
    let port = input.ports.control;
    let mut c = component(
        input,
        CONTROL_BIN,
        CONTROL_BIN,
        Role::Control,
        None,
        Vec::new(),
        PROXY_VARS.iter().map(|v| (*v).to_owned()).collect(),
        BTreeMap::from([("control".to_owned(), port)]),
        Probe::Http(format!("http://127.0.0.1:{port}/healthz")),
    );
    c.spec.args = vec![
        "--listen".to_owned(),
        format!("127.0.0.1:{port}"),
        "--config-dir".to_owned(),
        input.config_dir.display().to_string(),
        // Identities are checked even on loopback: another local process must not get a
        // workload's certificate by naming its service account.
        "--workload-tokens".to_owned(),
        input
            .tokens_dir
            .join(tokens::CONTROL_FILE)
            .display()
            .to_string(),
        // The root outlives a restart of the control plane: the proxies keep trusting the
        // root of their first certificate, so a new root would break mTLS between them at
        // their next renewal.
        "--ca-dir".to_owned(),
        input.ca_dir.display().to_string(),
    ];
    c
}

/// Variables every mesh proxy gets.
fn mesh_env(input: &PlanInput) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "MESH_PROXY_CONTROL".to_owned(),
            format!("http://127.0.0.1:{}", input.ports.control),
        ),
        ("MESH_PROXY_NAMESPACE".to_owned(), "default".to_owned()),
    ];
    // Traces go to the control plane's embedded store unless the user named a backend.
    if !input.otlp_elsewhere {
        env.push((
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT".to_owned(),
            format!("http://127.0.0.1:{}/v1/traces", input.ports.control),
        ));
    }
    // A demo's traces should show up within a second, not the SDK's five.
    if !input.batch_delay_set {
        env.push(("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "1000".to_owned()));
    }
    env
}

fn proxy_removed() -> Vec<String> {
    let mut v: Vec<String> = PROXY_VARS.iter().map(|v| (*v).to_owned()).collect();
    v.extend([
        "MESH_PROXY_CONFIG".to_owned(),
        "MESH_PROXY_SERVICE".to_owned(),
        // A token inherited from the user's shell would conflict with the token file.
        "MESH_PROXY_TOKEN".to_owned(),
    ]);
    v
}

/// Without the mesh: each app reaches the others directly on their ports.
fn direct_wiring(input: &PlanInput) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for service in ["details", "reviews", "ratings"] {
        if let Some(w) = input.workloads.iter().find(|w| w.service == service) {
            let upper = service.to_ascii_uppercase();
            env.push((format!("{upper}_HOSTNAME"), "127.0.0.1".to_owned()));
            env.push((
                format!("{upper}_SERVICE_PORT"),
                input.ports.block(w.slot).app.to_string(),
            ));
        }
    }
    env
}

#[allow(clippy::too_many_arguments)]
fn component(
    input: &PlanInput,
    name: &str,
    binary: &str,
    role: Role,
    workload: Option<&str>,
    env: Vec<(String, String)>,
    env_remove: Vec<String>,
    ports: BTreeMap<String, u16>,
    probe: Probe,
) -> Component {
    let log = log_path(&input.log_dir, name);
    let mut env = env;
    if !input.verbose {
        // Log files are read with less, grep and editors: no colour escapes in them.
        env.push(("NO_COLOR".to_owned(), "1".to_owned()));
    }
    Component {
        spec: ProcessSpec {
            name: name.to_owned(),
            program: input.bin_dir.join(binary),
            args: Vec::new(),
            env,
            env_remove,
            output: if input.verbose {
                Output::Prefixed
            } else {
                Output::File(log.clone())
            },
        },
        role,
        workload: workload.map(str::to_owned),
        ports,
        probe,
        log: (!input.verbose).then_some(log),
    }
}

/// `<log_dir>/<name>.log`.
pub(crate) fn log_path(log_dir: &Path, name: &str) -> PathBuf {
    log_dir.join(format!("{name}.log"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::{ALL, reviews_version};

    fn input(mesh: bool, workloads: Vec<Workload>) -> PlanInput {
        PlanInput {
            bin_dir: PathBuf::from("/bin"),
            log_dir: PathBuf::from("/run/logs"),
            config_dir: PathBuf::from("/run/config"),
            tokens_dir: PathBuf::from("/run/tokens"),
            ca_dir: PathBuf::from("/run/ca"),
            ports: PortPlan::new(15100, 15010, 8080).unwrap(),
            workloads,
            mesh,
            verbose: false,
            pod_suffix: "abc".into(),
            otlp_elsewhere: false,
            batch_delay_set: false,
        }
    }

    fn env<'a>(c: &'a Component, k: &str) -> Option<&'a str> {
        c.spec
            .env
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }

    fn by_name<'a>(p: &'a Plan, name: &str) -> &'a Component {
        p.components.iter().find(|c| c.spec.name == name).unwrap()
    }

    #[test]
    fn mesh_plan_wires_apps_sidecars_gateway_and_control() {
        let p = build(&input(true, ALL.to_vec()));
        let c = p.control.as_ref().unwrap();
        assert_eq!(
            c.spec.args,
            [
                "--listen",
                "127.0.0.1:15010",
                "--config-dir",
                "/run/config",
                "--workload-tokens",
                "/run/tokens/workload-tokens.yaml",
                "--ca-dir",
                "/run/ca",
            ]
        );
        assert_eq!(
            c.probe,
            Probe::Http("http://127.0.0.1:15010/healthz".into())
        );
        // 6 apps + 6 sidecars + gateway.
        assert_eq!(p.components.len(), 13);

        let app = by_name(&p, "reviews-v2");
        assert_eq!(app.spec.program, PathBuf::from("/bin/reviews"));
        assert_eq!(env(app, "PORT"), Some("15130"));
        assert_eq!(env(app, "BIND_ADDRESS"), Some("127.0.0.1"));
        assert_eq!(env(app, "HOSTNAME"), Some("reviews-v2-abc"));
        assert_eq!(env(app, "SERVICE_VERSION"), Some("v2"));
        assert_eq!(env(app, "HTTP_PROXY"), Some("http://127.0.0.1:15131"));
        assert!(app.spec.env_remove.contains(&"NO_PROXY".to_owned()));
        assert!(!app.spec.env_remove.contains(&"HTTP_PROXY".to_owned()));
        assert_eq!(app.probe, Probe::Tcp(15130));
        assert_eq!(env(app, "NO_COLOR"), Some("1"));
        assert_eq!(
            app.spec.output,
            Output::File("/run/logs/reviews-v2.log".into())
        );

        let side = by_name(&p, "reviews-v2-proxy");
        assert_eq!(side.spec.program, PathBuf::from("/bin/mesh-proxy"));
        for (k, v) in [
            ("MESH_PROXY_CONTROL", "http://127.0.0.1:15010"),
            ("MESH_PROXY_WORKLOAD", "reviews-v2"),
            ("MESH_PROXY_SERVICE", "reviews"),
            ("MESH_PROXY_SERVICE_ACCOUNT", "bookinfo-reviews"),
            ("MESH_PROXY_LABELS", "app=reviews,version=v2"),
            ("MESH_PROXY_MODE", "sidecar"),
            ("MESH_PROXY_OUTBOUND", "127.0.0.1:15131"),
            ("MESH_PROXY_INBOUND", "127.0.0.1:15132"),
            ("MESH_PROXY_APP", "127.0.0.1:15130"),
            ("MESH_PROXY_ADMIN", "127.0.0.1:15133"),
            ("MESH_PROXY_TOKEN_FILE", "/run/tokens/reviews-v2.token"),
        ] {
            assert_eq!(env(side, k), Some(v), "{k}");
        }
        assert!(
            side.spec
                .env_remove
                .contains(&"MESH_PROXY_TOKEN".to_owned())
        );
        assert_eq!(
            env(app, "MESH_PROXY_TOKEN_FILE"),
            None,
            "apps hold no token"
        );
        // One grant per proxy, the gateway in the root namespace.
        assert_eq!(p.grants.len(), 7);
        assert!(p.grants.contains(&Grant {
            workload: "istio-ingressgateway".into(),
            namespace: "istio-system".into(),
            service_account: "istio-ingressgateway".into(),
        }));
        assert_eq!(
            side.probe,
            Probe::Http("http://127.0.0.1:15133/ready".into())
        );

        let gw = by_name(&p, GATEWAY);
        for (k, v) in [
            ("MESH_PROXY_MODE", "gateway"),
            ("MESH_PROXY_NAMESPACE", "istio-system"),
            ("MESH_PROXY_WORKLOAD", "istio-ingressgateway"),
            ("MESH_PROXY_SERVICE_ACCOUNT", "istio-ingressgateway"),
            (
                "MESH_PROXY_LABELS",
                "istio=ingressgateway,app=istio-ingressgateway",
            ),
            ("MESH_PROXY_GATEWAY_ADDRESS", "127.0.0.1"),
            ("MESH_PROXY_GATEWAY_PORTS", "8080:8080"),
            // Traces go to the control plane's store.
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://127.0.0.1:15010/v1/traces",
            ),
        ] {
            assert_eq!(env(gw, k), Some(v), "{k}");
        }
        assert_eq!(
            env(side, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            Some("http://127.0.0.1:15010/v1/traces")
        );
        assert!(
            gw.spec
                .env_remove
                .contains(&"MESH_PROXY_SERVICE".to_owned())
        );
        assert_eq!(p.product_page_url, "http://127.0.0.1:8080/productpage");
        assert_eq!(p.control_url.as_deref(), Some("http://127.0.0.1:15010"));
        assert!(p.has_page);
        assert_eq!(p.binaries().len(), 6);

        // No two processes claim the same port.
        let claims = p.claims();
        let mut ports: Vec<u16> = claims.iter().map(|c| c.port).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), claims.len());
    }

    #[test]
    fn no_mesh_wires_services_directly_and_productpage_is_the_entry() {
        let ws = vec![ALL[0], ALL[1], reviews_version("v3").unwrap(), ALL[5]];
        let p = build(&input(false, ws));
        assert!(p.control.is_none());
        assert_eq!(p.components.len(), 4);
        let pp = by_name(&p, "productpage-v1");
        assert_eq!(env(pp, "PORT"), Some("8080"));
        assert_eq!(env(pp, "DETAILS_HOSTNAME"), Some("127.0.0.1"));
        assert_eq!(env(pp, "DETAILS_SERVICE_PORT"), Some("15110"));
        assert_eq!(env(pp, "REVIEWS_SERVICE_PORT"), Some("15140"));
        assert_eq!(env(pp, "RATINGS_SERVICE_PORT"), Some("15150"));
        assert_eq!(env(pp, "HTTP_PROXY"), None);
        assert!(pp.spec.env_remove.contains(&"HTTP_PROXY".to_owned()));
        assert!(!pp.spec.env_remove.contains(&"DETAILS_HOSTNAME".to_owned()));
        assert_eq!(pp.ports.get("gateway"), Some(&8080));
        let rv = by_name(&p, "reviews-v3");
        assert_eq!(env(rv, "RATINGS_SERVICE_PORT"), Some("15150"));
        assert!(
            p.claims()
                .iter()
                .any(|c| c.port == 8080 && c.flag == "--gateway-port")
        );
        assert_eq!(p.control_url, None);
    }
}
