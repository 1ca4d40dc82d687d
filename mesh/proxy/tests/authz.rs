//! PeerAuthentication precedence and AuthorizationPolicy evaluation, from YAML as users
//! write it, through to the decision.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderValue};
use mesh_api::MeshConfig;
use mesh_proxy::inbound::authz::{
    Authorizer, DENIED_BODY, DENIED_STATUS, Decision, NO_MATCHING_ALLOW, ROOT_NAMESPACE,
    RequestAttributes, effective_mtls,
};
use mesh_proxy::tls::MtlsMode;

const PRODUCTPAGE: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage";
const REVIEWS: &str = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews";
const OUTSIDER: &str = "spiffe://cluster.local/ns/other/sa/client";

fn load(yaml: &str) -> MeshConfig {
    let outcome = MeshConfig::load([("test.yaml", yaml)]).unwrap();
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    outcome.config
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// One AuthorizationPolicy document in `default` with a flow-style `spec`.
fn policy(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n\
         metadata: {{name: {name}, namespace: default}}\nspec: {spec}\n"
    )
}

/// A request as the inbound listener would describe it.
#[derive(Clone)]
struct Req {
    peer: Option<&'static str>,
    ip: &'static str,
    method: &'static str,
    path: &'static str,
    host: &'static str,
    port: u16,
    headers: Vec<(&'static str, &'static str)>,
}

fn req() -> Req {
    Req {
        peer: Some(PRODUCTPAGE),
        ip: "10.1.2.3",
        method: "GET",
        path: "/reviews/0",
        host: "reviews:9080",
        port: 9080,
        headers: Vec::new(),
    }
}

impl Req {
    fn peer(mut self, peer: Option<&'static str>) -> Self {
        self.peer = peer;
        self
    }
    fn ip(mut self, ip: &'static str) -> Self {
        self.ip = ip;
        self
    }
    fn method(mut self, method: &'static str) -> Self {
        self.method = method;
        self
    }
    fn path(mut self, path: &'static str) -> Self {
        self.path = path;
        self
    }
    fn host(mut self, host: &'static str) -> Self {
        self.host = host;
        self
    }
    fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }

    fn decide(&self, authorizer: &Authorizer) -> Decision {
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            headers.append(*name, HeaderValue::from_static(value));
        }
        authorizer.authorize(&RequestAttributes {
            peer: self.peer,
            source_ip: self.ip.parse().unwrap(),
            method: self.method,
            path: self.path,
            host: self.host,
            port: self.port,
            headers: &headers,
        })
    }
}

/// The authorizer of reviews-v1 (`app=reviews,version=v1` in `default`).
fn reviews_authorizer(yaml: &str) -> Authorizer {
    let config = load(yaml);
    Authorizer::for_workload(
        config.authorization_policies(),
        ROOT_NAMESPACE,
        "default",
        &labels(&[("app", "reviews"), ("version", "v1")]),
    )
}

enum Expect {
    Allow,
    /// Denied by this rule name (or `none`).
    Deny(&'static str),
}

struct Case {
    name: &'static str,
    /// (policy name, flow-style spec)
    policies: &'static [(&'static str, &'static str)],
    request: Req,
    expect: Expect,
}

const ALLOW_GET: (&str, &str) = (
    "allow-get",
    r#"{rules: [{to: [{operation: {methods: ["GET"]}}]}]}"#,
);

fn cases() -> Vec<Case> {
    use Expect::{Allow, Deny};
    vec![
        Case {
            name: "no policy allows everything",
            policies: &[],
            request: req().peer(None).method("DELETE"),
            expect: Allow,
        },
        Case {
            name: "spec {} (allow-nothing) denies everything",
            policies: &[("allow-nothing", "{}")],
            request: req(),
            expect: Deny(NO_MATCHING_ALLOW),
        },
        Case {
            name: "rules [{}] allows everything",
            policies: &[("allow-all", "{rules: [{}]}")],
            request: req().peer(None).method("POST"),
            expect: Allow,
        },
        Case {
            name: "DENY without rules never matches",
            policies: &[("deny-none", "{action: DENY}")],
            request: req(),
            expect: Allow,
        },
        Case {
            name: "DENY rules [{}] denies everything",
            policies: &[("deny-all", "{action: DENY, rules: [{}]}")],
            request: req(),
            expect: Deny("ns[default]-policy[deny-all]-rule[0]"),
        },
        Case {
            name: "a matching DENY wins over a matching ALLOW",
            policies: &[
                ("allow-all", "{rules: [{}]}"),
                (
                    "deny-post",
                    r#"{action: DENY, rules: [{to: [{operation: {methods: ["POST"]}}]}]}"#,
                ),
            ],
            request: req().method("POST"),
            expect: Deny("ns[default]-policy[deny-post]-rule[0]"),
        },
        Case {
            name: "a DENY that does not match leaves the ALLOW decision",
            policies: &[
                ("allow-all", "{rules: [{}]}"),
                (
                    "deny-post",
                    r#"{action: DENY, rules: [{to: [{operation: {methods: ["POST"]}}]}]}"#,
                ),
            ],
            request: req().method("GET"),
            expect: Allow,
        },
        Case {
            name: "a matching CUSTOM policy denies (no external authorizer) before ALLOW",
            policies: &[
                ("allow-all", "{rules: [{}]}"),
                (
                    "ext-authz",
                    r#"{action: CUSTOM, provider: {name: opa}, rules: [{to: [{operation: {paths: ["/admin*"]}}]}]}"#,
                ),
            ],
            request: req().path("/admin/users"),
            expect: Deny("ns[default]-policy[ext-authz]-rule[0]"),
        },
        Case {
            name: "a CUSTOM policy that does not match has no effect",
            policies: &[(
                "ext-authz",
                r#"{action: CUSTOM, provider: {name: opa}, rules: [{to: [{operation: {paths: ["/admin*"]}}]}]}"#,
            )],
            request: req().path("/reviews/1"),
            expect: Allow,
        },
        Case {
            name: "AUDIT never changes the decision",
            policies: &[("audit-all", "{action: AUDIT, rules: [{}]}")],
            request: req(),
            expect: Allow,
        },
        Case {
            name: "ALLOW policies exist and none matches: deny",
            policies: &[ALLOW_GET],
            request: req().method("DELETE"),
            expect: Deny(NO_MATCHING_ALLOW),
        },
        Case {
            name: "principals: exact match without spiffe://",
            policies: &[(
                "from-productpage",
                r#"{rules: [{from: [{source: {principals: ["cluster.local/ns/default/sa/bookinfo-productpage"]}}]}]}"#,
            )],
            request: req(),
            expect: Allow,
        },
        Case {
            name: "principals: another identity is denied",
            policies: &[(
                "from-productpage",
                r#"{rules: [{from: [{source: {principals: ["cluster.local/ns/default/sa/bookinfo-productpage"]}}]}]}"#,
            )],
            request: req().peer(Some(REVIEWS)),
            expect: Deny(NO_MATCHING_ALLOW),
        },
        Case {
            name: "principals need mTLS: presence * does not match plaintext",
            policies: &[(
                "any-authenticated",
                r#"{rules: [{from: [{source: {principals: ["*"]}}]}]}"#,
            )],
            request: req().peer(None),
            expect: Deny(NO_MATCHING_ALLOW),
        },
        Case {
            name: "principals: presence * matches any mTLS peer",
            policies: &[(
                "any-authenticated",
                r#"{rules: [{from: [{source: {principals: ["*"]}}]}]}"#,
            )],
            request: req().peer(Some(OUTSIDER)),
            expect: Allow,
        },
        Case {
            name: "principals: prefix match",
            policies: &[(
                "default-ns",
                r#"{rules: [{from: [{source: {principals: ["cluster.local/ns/default/*"]}}]}]}"#,
            )],
            request: req().peer(Some(REVIEWS)),
            expect: Allow,
        },
        Case {
            name: "principals: suffix match",
            policies: &[(
                "any-productpage",
                r#"{rules: [{from: [{source: {principals: ["*/sa/bookinfo-productpage"]}}]}]}"#,
            )],
            request: req().peer(Some(REVIEWS)),
            expect: Deny(NO_MATCHING_ALLOW),
        },
        Case {
            name: "notPrincipals: the excluded identity is denied by DENY",
            policies: &[(
                "deny-but-productpage",
                r#"{action: DENY, rules: [{from: [{source: {notPrincipals: ["cluster.local/ns/default/sa/bookinfo-productpage"]}}]}]}"#,
            )],
            request: req().peer(Some(REVIEWS)),
            expect: Deny("ns[default]-policy[deny-but-productpage]-rule[0]"),
        },
        Case {
            name: "notPrincipals: the listed identity is not denied",
            policies: &[(
                "deny-but-productpage",
                r#"{action: DENY, rules: [{from: [{source: {notPrincipals: ["cluster.local/ns/default/sa/bookinfo-productpage"]}}]}]}"#,
            )],
            request: req(),
            expect: Allow,
        },
        Case {
            name: "namespaces come from the peer principal",
            policies: &[(
                "from-default",
                r#"{rules: [{from: [{source: {namespaces: ["default"]}}]}]}"#,
            )],
            request: req().peer(Some(OUTSIDER)),
            expect: Deny(NO_MATCHING_ALLOW),
        },
        Case {
            name: "namespaces without mTLS never match",
            policies: &[(
                "from-default",
                r#"{rules: [{from: [{source: {namespaces: ["default"]}}]}]}"#,
            )],
            request: req().peer(None),
            expect: Deny(NO_MATCHING_ALLOW),
        },
        Case {
            name: "notNamespaces denies the other namespace",
            policies: &[(
                "deny-foreign",
                r#"{action: DENY, rules: [{from: [{source: {notNamespaces: ["default"]}}]}]}"#,
            )],
            request: req().peer(Some(OUTSIDER)),
            expect: Deny("ns[default]-policy[deny-foreign]-rule[0]"),
        },
        Case {
            name: "requestPrincipals never match (no JWT authentication)",
            policies: &[(
                "jwt-only",
                r#"{rules: [{from: [{source: {requestPrincipals: ["*"]}}]}]}"#,
            )],
            request: req(),
            expect: Deny(NO_MATCHING_ALLOW),
        },
        Case {
            name: "notRequestPrincipals: a request without JWT is denied by DENY",
            policies: &[(
                "require-jwt",
                r#"{action: DENY, rules: [{from: [{source: {notRequestPrincipals: ["*"]}}]}]}"#,
            )],
            request: req(),
            expect: Deny("ns[default]-policy[require-jwt]-rule[0]"),
        },
        Case {
            name: "ipBlocks: CIDR on the peer address",
            policies: &[(
                "cluster-net",
                r#"{rules: [{from: [{source: {ipBlocks: ["10.0.0.0/8"]}}]}]}"#,
            )],
            request: req().ip("10.200.1.1"),
            expect: Allow,
        },
        Case {
            name: "ipBlocks: an address outside is denied",
            policies: &[(
                "cluster-net",
                r#"{rules: [{from: [{source: {ipBlocks: ["10.0.0.0/8"]}}]}]}"#,
            )],
            request: req().ip("192.168.1.1"),
            expect: Deny(NO_MATCHING_ALLOW),
        },
        Case {
            name: "notIpBlocks: single address excluded",
            policies: &[(
                "deny-one",
                r#"{action: DENY, rules: [{from: [{source: {ipBlocks: ["10.0.0.0/8"], notIpBlocks: ["10.1.2.3"]}}]}]}"#,
            )],
            request: req().ip("10.1.2.3"),
            expect: Allow,
        },
        Case {
            name: "remoteIpBlocks is checked against the peer address",
            policies: &[(
                "remote",
                r#"{rules: [{from: [{source: {remoteIpBlocks: ["127.0.0.0/8"]}}]}]}"#,
            )],
            request: req().ip("::ffff:127.0.0.1"),
            expect: Allow,
        },
        Case {
            name: "source fields are ANDed: right principal, wrong address",
            policies: &[(
                "both",
                r#"{rules: [{from: [{source: {principals: ["cluster.local/ns/default/sa/bookinfo-productpage"], ipBlocks: ["10.0.0.0/8"]}}]}]}"#,
            )],
            request: req().ip("172.16.0.1"),
            expect: Deny(NO_MATCHING_ALLOW),
        },
        Case {
            name: "sources are ORed",
            policies: &[(
                "either",
                r#"{rules: [{from: [{source: {principals: ["cluster.local/ns/default/sa/bookinfo-reviews"]}}, {source: {ipBlocks: ["10.0.0.0/8"]}}]}]}"#,
            )],
            request: req(),
            expect: Allow,
        },
        Case {
            name: "hosts match case-insensitively with a suffix pattern",
            policies: &[(
                "hosts",
                r#"{rules: [{to: [{operation: {hosts: ["*.Example.com"]}}]}]}"#,
            )],
            request: req().host("Bookinfo.EXAMPLE.com"),
            expect: Allow,
        },
        Case {
            name: "notHosts excludes a host",
            policies: &[(
                "not-admin-host",
                r#"{rules: [{to: [{operation: {notHosts: ["admin.example.com"]}}]}]}"#,
            )],
            request: req().host("ADMIN.example.com"),
            expect: Deny(NO_MATCHING_ALLOW),
        },
        Case {
            name: "ports must match",
            policies: &[(
                "port",
                r#"{rules: [{to: [{operation: {ports: ["9080"]}}]}]}"#,
            )],
            request: req().port(9081),
            expect: Deny(NO_MATCHING_ALLOW),
        },
        Case {
            name: "notPorts",
            policies: &[(
                "deny-admin-port",
                r#"{action: DENY, rules: [{to: [{operation: {notPorts: ["9080"]}}]}]}"#,
            )],
            request: req().port(15000),
            expect: Deny("ns[default]-policy[deny-admin-port]-rule[0]"),
        },
        Case {
            name: "methods: GET allowed",
            policies: &[ALLOW_GET],
            request: req().method("GET"),
            expect: Allow,
        },
        Case {
            name: "notMethods",
            policies: &[(
                "read-only",
                r#"{rules: [{to: [{operation: {notMethods: ["POST", "PUT", "DELETE"]}}]}]}"#,
            )],
            request: req().method("PUT"),
            expect: Deny(NO_MATCHING_ALLOW),
        },
        Case {
            name: "paths: prefix, the query string is ignored",
            policies: &[(
                "api",
                r#"{rules: [{to: [{operation: {paths: ["/api/v1/products*"]}}]}]}"#,
            )],
            request: req().path("/api/v1/products/0/reviews?debug=1"),
            expect: Allow,
        },
        Case {
            name: "paths: exact does not match a longer path",
            policies: &[(
                "exact",
                r#"{rules: [{to: [{operation: {paths: ["/health"]}}]}]}"#,
            )],
            request: req().path("/healthz"),
            expect: Deny(NO_MATCHING_ALLOW),
        },
        Case {
            name: "paths: suffix",
            policies: &[(
                "static",
                r#"{rules: [{to: [{operation: {paths: ["*.css"]}}]}]}"#,
            )],
            request: req().path("/static/bootstrap.min.css"),
            expect: Allow,
        },
        Case {
            name: "notPaths in DENY protects everything but /health",
            policies: &[(
                "deny-not-health",
                r#"{action: DENY, rules: [{from: [{source: {notPrincipals: ["*"]}}], to: [{operation: {notPaths: ["/health"]}}]}]}"#,
            )],
            request: req().peer(None).path("/health"),
            expect: Allow,
        },
        Case {
            name: "operations are ORed",
            policies: &[(
                "two-ops",
                r#"{rules: [{to: [{operation: {methods: ["POST"]}}, {operation: {paths: ["/reviews/*"]}}]}]}"#,
            )],
            request: req().method("GET").path("/reviews/7"),
            expect: Allow,
        },
        Case {
            name: "from AND to: right source, wrong operation",
            policies: &[(
                "pp-get",
                r#"{rules: [{from: [{source: {principals: ["cluster.local/ns/default/sa/bookinfo-productpage"]}}], to: [{operation: {methods: ["GET"]}}]}]}"#,
            )],
            request: req().method("POST"),
            expect: Deny(NO_MATCHING_ALLOW),
        },
        Case {
            name: "rules are ORed",
            policies: &[(
                "two-rules",
                r#"{rules: [{to: [{operation: {methods: ["POST"]}}]}, {to: [{operation: {methods: ["GET"]}}]}]}"#,
            )],
            request: req(),
            expect: Allow,
        },
        Case {
            name: "when request.headers: value matches",
            policies: &[(
                "jason",
                r#"{rules: [{when: [{key: "request.headers[End-User]", values: ["jason"]}]}]}"#,
            )],
            request: req().header("end-user", "jason"),
            expect: Allow,
        },
        Case {
            name: "when request.headers: absent header does not match",
            policies: &[(
                "jason",
                r#"{rules: [{when: [{key: "request.headers[end-user]", values: ["jason"]}]}]}"#,
            )],
            request: req(),
            expect: Deny(NO_MATCHING_ALLOW),
        },
        Case {
            name: "when request.headers notValues",
            policies: &[(
                "not-bot",
                r#"{action: DENY, rules: [{when: [{key: "request.headers[user-agent]", values: ["*"], notValues: ["Mozilla*"]}]}]}"#,
            )],
            request: req().header("user-agent", "curl/8.0"),
            expect: Deny("ns[default]-policy[not-bot]-rule[0]"),
        },
        Case {
            name: "when conditions are ANDed",
            policies: &[(
                "both-conditions",
                r#"{rules: [{when: [{key: "request.headers[end-user]", values: ["jason"]}, {key: "source.ip", values: ["192.168.0.0/16"]}]}]}"#,
            )],
            request: req().header("end-user", "jason"),
            expect: Deny(NO_MATCHING_ALLOW),
        },
        Case {
            name: "when source.namespace and source.principal",
            policies: &[(
                "ns-and-principal",
                r#"{rules: [{when: [{key: source.namespace, values: ["default"]}, {key: source.principal, values: ["cluster.local/ns/default/sa/bookinfo-productpage"]}]}]}"#,
            )],
            request: req(),
            expect: Allow,
        },
        Case {
            name: "when source.serviceAccount",
            policies: &[(
                "sa",
                r#"{rules: [{when: [{key: source.serviceAccount, values: ["default/bookinfo-reviews"]}]}]}"#,
            )],
            request: req().peer(Some(REVIEWS)),
            expect: Allow,
        },
        Case {
            name: "when destination.port",
            policies: &[(
                "dport",
                r#"{rules: [{when: [{key: destination.port, values: ["9080"]}]}]}"#,
            )],
            request: req().port(9443),
            expect: Deny(NO_MATCHING_ALLOW),
        },
        Case {
            name: "when request.auth.* never matches",
            policies: &[(
                "claims",
                r#"{rules: [{when: [{key: "request.auth.claims[iss]", values: ["*"]}]}]}"#,
            )],
            request: req(),
            expect: Deny(NO_MATCHING_ALLOW),
        },
        Case {
            name: "when with an unsupported key is ignored",
            policies: &[(
                "sni",
                r#"{rules: [{to: [{operation: {methods: ["GET"]}}], when: [{key: connection.sni, values: ["nothing-like-this"]}]}]}"#,
            )],
            request: req(),
            expect: Allow,
        },
        Case {
            name: "deny names the first matching rule",
            policies: &[(
                "multi",
                r#"{action: DENY, rules: [{to: [{operation: {methods: ["POST"]}}]}, {to: [{operation: {paths: ["/secret"]}}]}]}"#,
            )],
            request: req().path("/secret"),
            expect: Deny("ns[default]-policy[multi]-rule[1]"),
        },
    ]
}

#[test]
fn authorization_table() {
    let cases = cases();
    assert!(cases.len() >= 25);
    let mut failures = Vec::new();
    for case in &cases {
        let yaml: Vec<String> = case
            .policies
            .iter()
            .map(|(name, spec)| policy(name, spec))
            .collect();
        let authorizer = reviews_authorizer(&yaml.join("---\n"));
        let got = case.request.decide(&authorizer);
        let ok = match (&case.expect, &got) {
            (Expect::Allow, Decision::Allow) => true,
            (Expect::Deny(want), Decision::Deny { policy }) => policy == want,
            _ => false,
        };
        if !ok {
            failures.push(format!("{}: got {got:?}", case.name));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn policies_apply_by_namespace_selector_and_root_namespace() {
    let yaml = "\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ratings-only, namespace: default}
spec: {selector: {matchLabels: {app: ratings}}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: other-ns, namespace: other}
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: mesh-deny-delete, namespace: istio-system}
spec:
  action: DENY
  rules:
  - to:
    - operation: {methods: [DELETE]}
";
    let authorizer = reviews_authorizer(yaml);
    // Neither the ratings-only nor the other namespace's allow-nothing applies to reviews,
    // the mesh-wide DENY does.
    assert_eq!(req().decide(&authorizer), Decision::Allow);
    assert_eq!(
        req().method("DELETE").decide(&authorizer),
        Decision::Deny {
            policy: "ns[istio-system]-policy[mesh-deny-delete]-rule[0]".into()
        }
    );
    assert!(!authorizer.is_empty());
    assert!(Authorizer::new([]).is_empty());
}

#[test]
fn denial_constants_match_envoy() {
    assert_eq!(DENIED_STATUS.as_u16(), 403);
    assert_eq!(DENIED_BODY, "RBAC: access denied");
}

// --- The Bookinfo authorization task, step by step ---------------------------------

const ALLOW_NOTHING: &str = "\
# Nothing in the namespace may be called until a policy allows it.
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: allow-nothing
  namespace: default
spec: {}
";

const PRODUCTPAGE_VIEWER: &str = "\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: productpage-viewer
  namespace: default
spec:
  selector:
    matchLabels:
      app: productpage
  action: ALLOW
  rules:
  - to:
    - operation:
        methods: [GET]
";

fn viewer(name: &str, app: &str, principal: &str) -> String {
    format!(
        "\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: {name}
  namespace: default
spec:
  selector:
    matchLabels:
      app: {app}
  action: ALLOW
  rules:
  - from:
    - source:
        principals: [\"{principal}\"]
    to:
    - operation:
        methods: [GET]
"
    )
}

fn bookinfo_step(docs: &[String], app: &str) -> Authorizer {
    let config = load(&docs.join("---\n"));
    Authorizer::for_workload(
        config.authorization_policies(),
        ROOT_NAMESPACE,
        "default",
        &labels(&[("app", app), ("version", "v1")]),
    )
}

#[test]
fn bookinfo_authorization_task() {
    let mut docs = vec![ALLOW_NOTHING.to_owned()];
    // Step 1: allow-nothing. Every service refuses everyone.
    for app in ["productpage", "details", "reviews", "ratings"] {
        let authorizer = bookinfo_step(&docs, app);
        assert!(!req().decide(&authorizer).is_allowed(), "{app}");
        assert!(!req().peer(None).decide(&authorizer).is_allowed(), "{app}");
    }

    // Step 2: productpage-viewer. Anyone may GET the product page, nothing else.
    docs.push(PRODUCTPAGE_VIEWER.to_owned());
    let productpage = bookinfo_step(&docs, "productpage");
    let browser = req().peer(None).ip("192.168.1.20").path("/productpage");
    assert!(browser.decide(&productpage).is_allowed());
    assert_eq!(
        browser.clone().method("POST").decide(&productpage),
        Decision::Deny {
            policy: NO_MATCHING_ALLOW.into()
        }
    );
    for app in ["details", "reviews", "ratings"] {
        assert!(
            !req().decide(&bookinfo_step(&docs, app)).is_allowed(),
            "{app} is still closed"
        );
    }

    // Step 3: details-viewer and reviews-viewer admit productpage's identity only.
    let pp = "cluster.local/ns/default/sa/bookinfo-productpage";
    docs.push(viewer("details-viewer", "details", pp));
    docs.push(viewer("reviews-viewer", "reviews", pp));
    for app in ["details", "reviews"] {
        let authorizer = bookinfo_step(&docs, app);
        assert!(req().decide(&authorizer).is_allowed(), "{app}");
        assert!(
            !req().method("POST").decide(&authorizer).is_allowed(),
            "{app}"
        );
        assert!(
            !req().peer(Some(REVIEWS)).decide(&authorizer).is_allowed(),
            "{app}"
        );
        assert!(
            !req().peer(None).decide(&authorizer).is_allowed(),
            "{app}: plaintext has no principal"
        );
    }
    let ratings = bookinfo_step(&docs, "ratings");
    assert!(!req().peer(Some(REVIEWS)).decide(&ratings).is_allowed());

    // Step 4: ratings-viewer admits reviews.
    docs.push(viewer(
        "ratings-viewer",
        "ratings",
        "cluster.local/ns/default/sa/bookinfo-reviews",
    ));
    let ratings = bookinfo_step(&docs, "ratings");
    assert!(req().peer(Some(REVIEWS)).decide(&ratings).is_allowed());
    assert!(!req().decide(&ratings).is_allowed(), "productpage may not");
    assert!(!req().peer(None).decide(&ratings).is_allowed());
}

#[test]
fn shipped_security_files_say_what_the_task_says() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/security");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let same = |file: &str, text: &str| {
        let shipped = load(&read(file));
        let expected = load(text);
        assert_eq!(
            shipped.authorization_policies().collect::<Vec<_>>(),
            expected.authorization_policies().collect::<Vec<_>>(),
            "{file}"
        );
    };
    same("allow-nothing.yaml", ALLOW_NOTHING);
    same("productpage-viewer.yaml", PRODUCTPAGE_VIEWER);
    let pp = "cluster.local/ns/default/sa/bookinfo-productpage";
    same(
        "details-viewer.yaml",
        &viewer("details-viewer", "details", pp),
    );
    same(
        "reviews-viewer.yaml",
        &viewer("reviews-viewer", "reviews", pp),
    );
    same(
        "ratings-viewer.yaml",
        &viewer(
            "ratings-viewer",
            "ratings",
            "cluster.local/ns/default/sa/bookinfo-reviews",
        ),
    );
    let strict = load(&read("peer-authentication-strict.yaml"));
    let policies: Vec<_> = strict.peer_authentications().collect();
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0].namespace(), "default");
    for app in ["productpage", "ratings"] {
        assert_eq!(
            effective_mtls(
                policies.iter().copied(),
                ROOT_NAMESPACE,
                "default",
                &labels(&[("app", app)]),
                9080
            ),
            MtlsMode::Strict
        );
    }
}

// --- PeerAuthentication precedence ------------------------------------------------

fn peer_auth(name: &str, namespace: &str, spec: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n\
         metadata: {{name: {name}, namespace: {namespace}}}\nspec: {spec}\n"
    )
}

/// (case, PeerAuthentication documents oldest first, workload labels, port, expected mode)
type PrecedenceRow<'a> = (
    &'a str,
    Vec<&'a String>,
    &'a BTreeMap<String, String>,
    u16,
    MtlsMode,
);

#[test]
fn peer_authentication_precedence() {
    let mesh_strict = peer_auth("default", "istio-system", "{mtls: {mode: STRICT}}");
    let ns_permissive = peer_auth("default", "default", "{mtls: {mode: PERMISSIVE}}");
    let ns_unset = peer_auth("default", "default", "{mtls: {mode: UNSET}}");
    let reviews_disable = peer_auth(
        "reviews",
        "default",
        "{selector: {matchLabels: {app: reviews}}, mtls: {mode: DISABLE}, portLevelMtls: {\"9443\": {mode: STRICT}}}",
    );
    let reviews_ports_only = peer_auth(
        "reviews-ports",
        "default",
        "{selector: {matchLabels: {app: reviews}}, portLevelMtls: {\"9090\": {mode: DISABLE}, \"9091\": {mode: UNSET}}}",
    );
    let reviews_strict_later = peer_auth(
        "reviews-strict",
        "default",
        "{selector: {matchLabels: {app: reviews}}, mtls: {mode: STRICT}}",
    );
    let root_selector = peer_auth(
        "root-selector",
        "istio-system",
        "{selector: {matchLabels: {app: reviews}}, mtls: {mode: DISABLE}}",
    );
    let other_ns = peer_auth("default", "other", "{mtls: {mode: DISABLE}}");
    let mesh_permissive_newer = peer_auth("newer", "istio-system", "{mtls: {mode: PERMISSIVE}}");

    let reviews = labels(&[("app", "reviews"), ("version", "v2")]);
    let ratings = labels(&[("app", "ratings"), ("version", "v1")]);
    use MtlsMode::{Disable, Permissive, Strict};
    let table: Vec<PrecedenceRow<'_>> = vec![
        ("nothing: PERMISSIVE", vec![], &reviews, 9080, Permissive),
        ("mesh STRICT", vec![&mesh_strict], &reviews, 9080, Strict),
        (
            "namespace PERMISSIVE beats mesh STRICT",
            vec![&mesh_strict, &ns_permissive],
            &ratings,
            9080,
            Permissive,
        ),
        (
            "namespace UNSET inherits mesh STRICT",
            vec![&mesh_strict, &ns_unset],
            &ratings,
            9080,
            Strict,
        ),
        (
            "workload DISABLE beats namespace and mesh",
            vec![&mesh_strict, &ns_permissive, &reviews_disable],
            &reviews,
            9080,
            Disable,
        ),
        (
            "port-level STRICT beats workload DISABLE on its port",
            vec![&mesh_strict, &ns_permissive, &reviews_disable],
            &reviews,
            9443,
            Strict,
        ),
        (
            "workload policy does not select ratings",
            vec![&mesh_strict, &ns_permissive, &reviews_disable],
            &ratings,
            9443,
            Permissive,
        ),
        (
            "workload policy with only ports inherits elsewhere",
            vec![&mesh_strict, &reviews_ports_only],
            &reviews,
            9080,
            Strict,
        ),
        (
            "port-level DISABLE on its port",
            vec![&mesh_strict, &reviews_ports_only],
            &reviews,
            9090,
            Disable,
        ),
        (
            "port-level UNSET inherits",
            vec![&mesh_strict, &reviews_ports_only],
            &reviews,
            9091,
            Strict,
        ),
        (
            "oldest workload policy wins",
            vec![&reviews_disable, &reviews_strict_later],
            &reviews,
            9080,
            Disable,
        ),
        (
            "oldest workload policy wins (other order)",
            vec![&reviews_strict_later, &reviews_disable],
            &reviews,
            9080,
            Strict,
        ),
        (
            "selector in the root namespace selects nothing outside it",
            vec![&mesh_strict, &root_selector],
            &reviews,
            9080,
            Strict,
        ),
        (
            "another namespace's policy does not apply",
            vec![&other_ns],
            &reviews,
            9080,
            Permissive,
        ),
        (
            "only the oldest mesh-wide policy counts",
            vec![&mesh_strict, &mesh_permissive_newer],
            &ratings,
            9080,
            Strict,
        ),
    ];
    let mut failures = Vec::new();
    for (name, docs, workload, port, want) in &table {
        let text: Vec<&str> = docs.iter().map(|d| d.as_str()).collect();
        let config = if text.is_empty() {
            MeshConfig::default()
        } else {
            load(&text.join("---\n"))
        };
        let got = effective_mtls(
            config.peer_authentications(),
            ROOT_NAMESPACE,
            "default",
            workload,
            *port,
        );
        if got != *want {
            failures.push(format!("{name}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
