//! `control-api`: a real `mesh-control` fed mutated requests on each door that takes a
//! body or a name: apply and delete (YAML), workload registration, certificate requests
//! and faults (JSON), and the paths and queries of describe and the proxy-config poll.
//! Whatever a request changes is undone right after (delete what was applied,
//! deregister, clear faults), so memory measures leaks, not state.
//!
//! Promises: every request gets an HTTP answer within the limit and none is a 5xx (a
//! 5xx is the server failing, not the client); the process never panics or exits.

use std::net::SocketAddr;
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

use super::Env;
use super::istio::IstioYaml;
use crate::harness::{Target, rss_kb_of};
use crate::mutate::Mutator;
use crate::process::{Program, free_port};
use crate::wire::{Answer, End, exchange, request};

/// Valid bodies the JSON doors accept, to mutate.
const REGISTRATION: &str = r#"{"name": "reviews-v2", "namespace": "default", "service": "reviews", "serviceAccount": "bookinfo-reviews", "labels": {"app": "reviews", "version": "v2"}, "address": "127.0.0.1:15006", "sidecar": true, "mode": "sidecar", "ports": [9080]}"#;
const CERTIFICATE: &str = r#"{"workload": "reviews-v2", "csr": "-----BEGIN CERTIFICATE REQUEST-----\nMIIBFTCBvAIBADAaMRgwFgYDVQQDDA9yZXZpZXdzLWRlZmF1bHQwWTATBgcqhkjO\n-----END CERTIFICATE REQUEST-----\n", "ttl_seconds": 3600}"#;
const FAULT: &str = r#"{"service": "ratings", "subset": "v1", "delay": {"fixed_delay": "7s", "percentage": 100}, "abort": {"http_status": 500, "percentage": 50}, "headers": {"end-user": "jason"}, "ttl_seconds": 60}"#;
const NAMES: [&str; 4] = [
    "reviews",
    "ratings.default.svc.cluster.local",
    "productpage-v1",
    "reviews-v2",
];

/// The doors, as the first byte of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Door {
    Apply,
    Delete,
    Register,
    Certificate,
    Fault,
    Describe,
    ProxyConfig,
}

const DOORS: [Door; 7] = [
    Door::Apply,
    Door::Delete,
    Door::Register,
    Door::Certificate,
    Door::Fault,
    Door::Describe,
    Door::ProxyConfig,
];

/// The `control-api` target.
#[derive(Debug)]
pub struct ControlApi {
    program: Program,
    addr: SocketAddr,
    yaml: IstioYaml,
    json: Mutator,
    names: Mutator,
    limit: Duration,
}

impl ControlApi {
    /// Starts `mesh-control` on a free port.
    pub fn new(env: &Env) -> anyhow::Result<Self> {
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let program = Program::start(
            "mesh-control",
            &env.bin_dir,
            "mesh-control",
            &[("MESH_CONTROL_LISTEN", addr.to_string())],
            &env.work,
            addr,
        )?;
        Ok(Self {
            program,
            addr,
            yaml: IstioYaml::new(env)?,
            json: Mutator {
                dictionary: vec![
                    b"\"",
                    b":",
                    b",",
                    b"{",
                    b"}",
                    b"[",
                    b"]",
                    b"null",
                    b"true",
                    b"\\u0000",
                    b"\\ud800",
                    b"1e999",
                    b"-0",
                    b"\"ttl_seconds\": ",
                    b"\"percentage\": ",
                ],
                max_len: 16 * 1024,
            },
            names: Mutator {
                dictionary: vec![
                    b"%", b"%00", b"%2F", b"/", b"..", b"?", b"&", b"=", b"#", b" ",
                ],
                max_len: 2048,
            },
            limit: Duration::from_secs(1),
        })
    }

    fn send(
        &self,
        method: &str,
        target: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Answer, String> {
        let answer = exchange(
            self.addr,
            &request(method, target, content_type, body),
            End::Open,
            self.limit,
        )
        .map_err(|e| format!("{method} {}: {e}", shorten(target)))?;
        match answer.status() {
            None => Err(format!("{method} {}: not an HTTP answer", shorten(target))),
            Some(s) if s >= 500 => Err(format!(
                "{method} {}: {s}: {}",
                shorten(target),
                String::from_utf8_lossy(&answer.bytes)
                    .lines()
                    .last()
                    .unwrap_or("")
            )),
            Some(_) => Ok(answer),
        }
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(80).collect()
}

/// Percent-encodes everything but unreserved characters, for a name in a path or query.
fn encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (*b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The JSON field `field` of an answer's body, when it is a string.
fn body_field(answer: &Answer, field: &str) -> Option<String> {
    let text = String::from_utf8_lossy(&answer.bytes);
    let body = text.split_once("\r\n\r\n")?.1;
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    value.get(field)?.as_str().map(str::to_owned)
}

impl Target for ControlApi {
    fn name(&self) -> &'static str {
        "control-api"
    }

    fn input(&mut self, rng: &mut StdRng) -> Vec<u8> {
        let index = rng.random_range(0..DOORS.len());
        let seeds = |s: &str| vec![s.as_bytes().to_vec()];
        let payload = match DOORS[index] {
            Door::Apply | Door::Delete => {
                let mut yaml = self.yaml.input(rng);
                yaml.truncate(64 * 1024);
                yaml
            }
            Door::Register => self
                .json
                .mutate(rng, REGISTRATION.as_bytes(), &seeds(REGISTRATION)),
            Door::Certificate => self
                .json
                .mutate(rng, CERTIFICATE.as_bytes(), &seeds(CERTIFICATE)),
            Door::Fault => self.json.mutate(rng, FAULT.as_bytes(), &seeds(FAULT)),
            Door::Describe | Door::ProxyConfig => {
                let name = NAMES.choose(rng).copied().unwrap_or("reviews");
                self.names.mutate(rng, name.as_bytes(), &[])
            }
        };
        let mut input = vec![index as u8];
        input.extend(payload);
        input
    }

    fn run(&mut self, input: &[u8]) -> Result<(), String> {
        let Some((&index, payload)) = input.split_first() else {
            return Ok(());
        };
        let Some(door) = DOORS.get(usize::from(index)) else {
            return Ok(());
        };
        match door {
            Door::Apply => {
                let answer = self.send("POST", "/api/v1/apply", "application/yaml", payload)?;
                if answer.status() == Some(200) {
                    self.send("POST", "/api/v1/delete", "application/yaml", payload)?;
                }
            }
            Door::Delete => {
                self.send("POST", "/api/v1/delete", "application/yaml", payload)?;
            }
            Door::Register => {
                let answer = self.send("POST", "/api/v1/workloads", "application/json", payload)?;
                if let Some(name) = body_field(&answer, "registered") {
                    let path = format!("/api/v1/workloads/{}", encode(name.as_bytes()));
                    self.send("DELETE", &path, "text/plain", b"")?;
                }
            }
            Door::Certificate => {
                self.send("POST", "/api/v1/certificates", "application/json", payload)?;
            }
            Door::Fault => {
                let answer = self.send("POST", "/api/v1/faults", "application/json", payload)?;
                if answer.status() == Some(201) {
                    self.send("DELETE", "/api/v1/faults", "text/plain", b"")?;
                }
            }
            Door::Describe => {
                let path = format!("/api/v1/describe/{}", encode(payload));
                self.send("GET", &path, "text/plain", b"")?;
            }
            Door::ProxyConfig => {
                // The raw bytes as the query (they may hold `&`, `=`, `%`), never waiting.
                let query: String = String::from_utf8_lossy(payload)
                    .chars()
                    .filter(|c| c.is_ascii_graphic() && *c != '#')
                    .collect();
                let path = format!("/api/v1/proxy-config?workload={query}&wait=0");
                self.send("GET", &path, "text/plain", b"")?;
            }
        }
        Ok(())
    }

    fn rss_kb(&self) -> u64 {
        rss_kb_of(&self.program.pid())
    }

    fn check(&mut self) -> Result<(), String> {
        self.program.alive().map_err(|e| e.to_string())?;
        self.send("GET", "/healthz", "text/plain", b"").map(|_| ())
    }
}
