//! A table of invalid inputs, each with the exact error users will see.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use mesh_api::{MeshConfig, parse_file};

fn errors(yaml: &str) -> Vec<String> {
    match MeshConfig::load([("bad.yaml", yaml)]) {
        Ok(outcome) => panic!("expected errors, loaded {} resources", outcome.config.len()),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

const VS: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\nspec:\n  hosts: [reviews]\n";

/// `(case, yaml, expected error)`; the error must be the only one.
fn cases() -> Vec<(&'static str, String, &'static str)> {
    let vs = |http: &str| format!("{VS}  http:\n{http}");
    vec![
        (
            "negative weight",
            vs("  - route:\n    - destination: {host: reviews, subset: v1}\n      weight: 110\n    - destination: {host: reviews, subset: v2}\n      weight: -10\n"),
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0].route[1].weight: must not be negative",
        ),
        (
            "zero total weight",
            vs("  - route:\n    - destination: {host: reviews, subset: v1}\n      weight: 0\n    - destination: {host: reviews, subset: v2}\n"),
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0].route: total weight must be greater than 0 when there is more than one destination",
        ),
        (
            "total weight too large",
            vs("  - route:\n    - destination: {host: reviews, subset: v1}\n      weight: 2147483647\n    - destination: {host: reviews, subset: v2}\n      weight: 1\n"),
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0].route: total weight must not exceed 2147483647",
        ),
        (
            "route and redirect",
            vs("  - route:\n    - destination: {host: reviews}\n    redirect: {uri: /v1}\n"),
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0]: route and redirect cannot both be set",
        ),
        (
            "route and directResponse",
            vs("  - route:\n    - destination: {host: reviews}\n    directResponse: {status: 503}\n"),
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0]: route and directResponse cannot both be set",
        ),
        (
            "fault with redirect",
            vs("  - redirect: {uri: /v1}\n    fault: {abort: {httpStatus: 500, percentage: {value: 1}}}\n"),
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0]: fault and redirect cannot both be set",
        ),
        (
            "mirror and mirrors",
            vs("  - route:\n    - destination: {host: reviews}\n    mirror: {host: reviews, subset: v2}\n    mirrors:\n    - destination: {host: reviews, subset: v3}\n"),
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0]: mirror and mirrors cannot both be set",
        ),
        (
            "no action",
            vs("  - match:\n    - uri: {prefix: /}\n"),
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0]: one of route, redirect, directResponse or delegate is required",
        ),
        (
            "unknown retryOn",
            vs("  - route:\n    - destination: {host: reviews}\n    retries: {attempts: 3, retryOn: \"5xx,503,sometimes\"}\n"),
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0].retries.retryOn: unknown retry condition \"sometimes\"",
        ),
        (
            "negative attempts",
            vs("  - route:\n    - destination: {host: reviews}\n    retries: {attempts: -1}\n"),
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0].retries.attempts: must not be negative",
        ),
        (
            "perTryTimeout below 1ms",
            vs("  - route:\n    - destination: {host: reviews}\n    retries: {attempts: 2, perTryTimeout: 500us}\n"),
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0].retries.perTryTimeout: must be at least 1ms",
        ),
        (
            "bad duration",
            vs("  - route:\n    - destination: {host: reviews}\n    timeout: 7sec\n"),
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0].timeout: invalid duration \"7sec\": expected a number followed by h, m, s, ms, us or ns (e.g. \"7s\", \"0.5s\", \"100ms\")",
        ),
        (
            "percentage 150",
            vs("  - route:\n    - destination: {host: reviews}\n    fault:\n      delay: {fixedDelay: 7s, percentage: {value: 150}}\n"),
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0].fault.delay.percentage.value: must be between 0 and 100, got 150",
        ),
        (
            "abort status out of range",
            vs("  - route:\n    - destination: {host: reviews}\n    fault:\n      abort: {httpStatus: 700, percentage: {value: 10}}\n"),
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0].fault.abort.httpStatus: must be between 200 and 599, got 700",
        ),
        (
            "delay without fixedDelay",
            vs("  - route:\n    - destination: {host: reviews}\n    fault:\n      delay: {percentage: {value: 10}}\n"),
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0].fault.delay.fixedDelay: is required",
        ),
        (
            "uppercase header name",
            vs("  - match:\n    - headers:\n        End-User: {exact: jason}\n    route:\n    - destination: {host: reviews}\n"),
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0].match[0].headers.End-User: header names must be lowercase",
        ),
        (
            "two string match kinds",
            vs("  - match:\n    - uri: {exact: /a, prefix: /b}\n    route:\n    - destination: {host: reviews}\n"),
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0].match[0].uri: only one of exact, prefix or regex may be set",
        ),
        (
            "bad regex",
            vs("  - match:\n    - uri: {regex: \"/api/(v1\"}\n    route:\n    - destination: {host: reviews}\n"),
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0].match[0].uri.regex: invalid regex \"/api/(v1\": unclosed group",
        ),
        (
            "missing destination host",
            vs("  - route:\n    - destination: {subset: v1}\n"),
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0].route[0].destination.host: is required",
        ),
        (
            "missing hosts",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  http:\n  - route:\n    - destination: {host: reviews}\n".to_owned(),
            "bad.yaml: document 1: VirtualService default/reviews: spec.hosts: at least one host is required",
        ),
        (
            "wildcard host on the mesh gateway",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: all}\nspec:\n  hosts: ['*']\n  http:\n  - route:\n    - destination: {host: reviews}\n".to_owned(),
            "bad.yaml: document 1: VirtualService default/all: spec.hosts[0]: \"*\" alone is not allowed for the mesh gateway; name the services",
        ),
        (
            "missing subset",
            format!("{}---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: reviews}}\nspec:\n  host: reviews\n  subsets:\n  - name: v1\n    labels: {{version: v1}}\n",
                vs("  - route:\n    - destination: {host: reviews, subset: v9}\n")),
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0].route[0].destination.subset: subset \"v9\" is not defined in DestinationRule default/reviews for host reviews.default.svc.cluster.local",
        ),
        (
            "wrong type",
            vs("  - route:\n    - destination: {host: reviews}\n      weight: fifty\n"),
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0].route[0].weight: invalid type: string \"fifty\", expected i32",
        ),
        (
            "wrong apiVersion",
            "apiVersion: networking.istio.io/v2\nkind: VirtualService\nmetadata: {name: reviews}\nspec: {hosts: [reviews]}\n".to_owned(),
            "bad.yaml: document 1: VirtualService default/reviews: apiVersion: \"networking.istio.io/v2\" is not supported for VirtualService (expected one of networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3)",
        ),
        (
            "missing kind",
            "apiVersion: networking.istio.io/v1\nmetadata: {name: reviews}\n".to_owned(),
            "bad.yaml: document 1: kind: is required",
        ),
        (
            "missing name",
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {namespace: shop}\nspec: {host: reviews}\n".to_owned(),
            "bad.yaml: document 1: DestinationRule shop/: metadata.name: is required",
        ),
        (
            "not a mapping",
            "- just\n- a list\n".to_owned(),
            "bad.yaml: document 1: expected a Kubernetes object (a mapping with apiVersion, kind, metadata, spec)",
        ),
        (
            "error in the second document",
            format!("{VS}  http:\n  - route:\n    - destination: {{host: reviews}}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: reviews, namespace: shop}}\nspec:\n  host: reviews\n  trafficPolicy:\n    outlierDetection: {{maxEjectionPercent: 150}}\n"),
            "bad.yaml: document 2: DestinationRule shop/reviews: spec.trafficPolicy.outlierDetection.maxEjectionPercent: must be between 0 and 100, got 150",
        ),
        (
            "duplicate subset",
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v1, labels: {version: v2}}\n".to_owned(),
            "bad.yaml: document 1: DestinationRule default/reviews: spec.subsets[1].name: duplicate subset name \"v1\"",
        ),
        (
            "unknown load balancer",
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  trafficPolicy:\n    loadBalancer: {simple: FASTEST}\n".to_owned(),
            "bad.yaml: document 1: DestinationRule default/reviews: spec.trafficPolicy.loadBalancer.simple: unknown variant `FASTEST`, expected one of `UNSPECIFIED`, `LEAST_CONN`, `RANDOM`, `PASSTHROUGH`, `ROUND_ROBIN`, `LEAST_REQUEST`",
        ),
        (
            "ISTIO_MUTUAL with certificates",
            "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL, clientCertificate: /etc/cert.pem}\n".to_owned(),
            "bad.yaml: document 1: DestinationRule default/reviews: spec.trafficPolicy.tls: ISTIO_MUTUAL uses the mesh certificates: clientCertificate, privateKey, caCertificates, credentialName, subjectAltNames and sni must not be set",
        ),
        (
            "gateway port out of range",
            "apiVersion: networking.istio.io/v1alpha3\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  selector: {istio: ingressgateway}\n  servers:\n  - port: {number: 70000, name: http, protocol: HTTP}\n    hosts: ['*']\n".to_owned(),
            "bad.yaml: document 1: Gateway default/gw: spec.servers[0].port.number: must be a port number between 1 and 65535, got 70000",
        ),
        (
            "PeerAuthentication portLevelMtls without selector",
            "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: bookinfo}\nspec:\n  mtls: {mode: STRICT}\n  portLevelMtls:\n    9080: {mode: DISABLE}\n".to_owned(),
            "bad.yaml: document 1: PeerAuthentication bookinfo/default: spec.portLevelMtls: requires a selector (port-level mTLS only applies to selected workloads)",
        ),
        (
            "unknown mTLS mode",
            "apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata: {name: default}\nspec:\n  mtls: {mode: STRICTEST}\n".to_owned(),
            "bad.yaml: document 1: PeerAuthentication default/default: spec.mtls.mode: unknown variant `STRICTEST`, expected one of `UNSET`, `DISABLE`, `PERMISSIVE`, `STRICT`",
        ),
        (
            "CUSTOM without provider",
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ext}\nspec:\n  action: CUSTOM\n  rules:\n  - to:\n    - operation: {paths: [/admin]}\n".to_owned(),
            "bad.yaml: document 1: AuthorizationPolicy default/ext: spec.provider: is required when action is CUSTOM",
        ),
        (
            "principal with spiffe prefix",
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: reviews-viewer}\nspec:\n  selector: {matchLabels: {app: reviews}}\n  rules:\n  - from:\n    - source: {principals: ['spiffe://cluster.local/ns/default/sa/bookinfo-productpage']}\n".to_owned(),
            "bad.yaml: document 1: AuthorizationPolicy default/reviews-viewer: spec.rules[0].from[0].source.principals[0]: must not start with spiffe:// (write <trust-domain>/ns/<namespace>/sa/<account>)",
        ),
        (
            "unknown condition key",
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p}\nspec:\n  rules:\n  - when:\n    - {key: request.colour, values: [red]}\n".to_owned(),
            "bad.yaml: document 1: AuthorizationPolicy default/p: spec.rules[0].when[0].key: unknown attribute \"request.colour\"",
        ),
        (
            "ServiceEntry STATIC without endpoints",
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: db}\nspec:\n  hosts: [db.example.com]\n  ports: [{number: 3306, name: mysql, protocol: TCP}]\n  resolution: STATIC\n".to_owned(),
            "bad.yaml: document 1: ServiceEntry default/db: spec.endpoints: at least one endpoint is required when resolution is STATIC",
        ),
    ]
}

#[test]
fn invalid_resource_table() {
    let cases = cases();
    assert!(cases.len() >= 15);
    for (name, yaml, expected) in cases {
        let errors = errors(&yaml);
        assert_eq!(errors, [expected], "case {name:?}");
    }
}

#[test]
fn error_parts_are_fields() {
    let errors = MeshConfig::load([("bad.yaml", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - route:\n    - destination: {host: r}\n      weight: -1\n")])
        .unwrap_err();
    let error = &errors.0[0];
    assert_eq!(error.file, "bad.yaml");
    assert_eq!(error.document, Some(1));
    assert_eq!(error.resource.as_deref(), Some("VirtualService default/r"));
    assert_eq!(error.path, "spec.http[0].route[0].weight");
    assert_eq!(error.message, "must not be negative");
}

#[test]
fn all_problems_are_reported_not_only_the_first() {
    let errors = errors(&format!(
        "{VS}  http:\n  - route:\n    - destination: {{host: reviews}}\n      weight: -1\n    - destination: {{host: ''}}\n    retries: {{attempts: 1, retryOn: bogus}}\n"
    ));
    assert_eq!(
        errors,
        [
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0].route[0].weight: must not be negative",
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0].route[1].destination.host: is required",
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0].route: total weight must be greater than 0 when there is more than one destination",
            "bad.yaml: document 1: VirtualService default/reviews: spec.http[0].retries.retryOn: unknown retry condition \"bogus\"",
        ]
    );
}

#[test]
fn malformed_yaml_names_the_line() {
    let yaml = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\n spec: [unclosed\n";
    let errors = errors(yaml);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("bad.yaml: document 1: invalid YAML: "),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("line 5"), "{}", errors[0]);
}

#[test]
fn good_documents_survive_a_bad_one() {
    let yaml = format!(
        "{VS}  http:\n  - route:\n    - destination: {{host: reviews}}\n---\nkind: VirtualService\napiVersion: networking.istio.io/v1\nmetadata: {{name: x}}\nspec: {{hosts: [x], http: [{{route: [{{destination: {{host: x}}, weight: zero}}]}}]}}\n"
    );
    let parsed = parse_file("two.yaml", &yaml);
    assert_eq!(parsed.resources.len(), 1);
    assert_eq!(parsed.errors.len(), 1);
    assert_eq!(parsed.errors[0].document, Some(2));
}

#[test]
fn alias_across_documents_is_an_error_not_a_panic() {
    let yaml = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\nspec: &shared\n  host: reviews\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: b}\nspec: *shared\n";
    let parsed = parse_file("alias.yaml", yaml);
    assert!(
        !parsed.errors.is_empty(),
        "expected an error, got {parsed:?}"
    );
    let message = parsed.errors[0].to_string();
    assert!(message.starts_with("alias.yaml: document "), "{message}");
    assert!(message.contains("invalid YAML"), "{message}");
}

#[test]
fn alias_inside_one_document_works() {
    let yaml = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - route: &to_r\n    - destination: {host: r}\n  - route: *to_r\n";
    let outcome = MeshConfig::load([("ok.yaml", yaml)]).unwrap();
    assert_eq!(
        outcome
            .config
            .virtual_services()
            .next()
            .unwrap()
            .spec
            .http
            .len(),
        2
    );
}
