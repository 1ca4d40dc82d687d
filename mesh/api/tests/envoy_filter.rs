//! EnvoyFilter: the local rate limit of Istio's "Enabling Rate Limits using Envoy" task is
//! parsed, validated and compiled into the selected sidecars' tables; every other patch
//! is refused with a message naming the one the mesh understands.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::time::Duration;

use mesh_api::compile::rate_limit::{HeaderToAdd, LocalRateLimit, TokenBucket, UNDERSTOOD};
use mesh_api::{IstioDuration, MeshConfig, ProxyScope, compile};

/// The task's EnvoyFilter, as istio.io shows it.
const TASK: &str = include_str!("data/local-ratelimit-productpage.yaml");

fn load(yaml: &str) -> MeshConfig {
    let outcome = MeshConfig::load([("ratelimit.yaml", yaml)]).unwrap();
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    outcome.config
}

fn errors(yaml: &str) -> String {
    MeshConfig::load([("ratelimit.yaml", yaml)])
        .expect_err("must be rejected")
        .to_string()
}

fn productpage() -> ProxyScope {
    ProxyScope::sidecar("default", &[("app", "productpage"), ("version", "v1")])
}

fn task_limit() -> LocalRateLimit {
    LocalRateLimit {
        filter: "istio-system/filter-local-ratelimit-svc".to_owned(),
        stat_prefix: "http_local_rate_limiter".to_owned(),
        token_bucket: TokenBucket {
            max_tokens: 4,
            tokens_per_fill: 4,
            fill_interval: IstioDuration(Duration::from_secs(60)),
        },
        enabled_percent: 100.0,
        enforced_percent: 100.0,
        status: 429,
        response_headers_to_add: vec![HeaderToAdd {
            name: "x-local-rate-limit".to_owned(),
            value: "true".to_owned(),
            append: false,
        }],
    }
}

#[test]
fn the_task_filter_compiles_into_productpage_sidecars_only() {
    let config = load(TASK);
    assert_eq!(
        compile(&config, &productpage()).local_rate_limits,
        vec![task_limit()]
    );
    // Other workloads, and gateways (which have no sidecar inbound), get nothing.
    let reviews = ProxyScope::sidecar("default", &[("app", "reviews"), ("version", "v1")]);
    assert!(compile(&config, &reviews).local_rate_limits.is_empty());
    let gateway = ProxyScope::gateway("istio-system", &[("app", "productpage")]);
    assert!(compile(&config, &gateway).local_rate_limits.is_empty());
}

#[test]
fn the_compiled_limit_survives_the_wire() {
    let table = compile(&load(TASK), &productpage());
    let json = serde_json::to_string(&table).unwrap();
    assert!(json.contains(r#""fill_interval":"60s""#), "{json}");
    let back: mesh_api::RouteTable = serde_json::from_str(&json).unwrap();
    assert_eq!(back, table);
    // Without a limit the table's JSON is what it was before rate limits existed.
    let plain = compile(&MeshConfig::default(), &productpage());
    assert!(
        !serde_json::to_string(&plain)
            .unwrap()
            .contains("local_rate_limits")
    );
}

#[test]
fn envoys_inline_typed_config_and_camel_case_fields_are_accepted() {
    // Envoy's own docs: the body inline under typed_config, beside its `@type`.
    let (head, body) = TASK.split_once("            value:\n").unwrap();
    let head = head.replace(
        "\"@type\": type.googleapis.com/udpa.type.v1.TypedStruct\n            type_url:",
        "\"@type\":",
    );
    let body = body.replace("\n  ", "\n").replacen("  ", "", 1);
    let inline = format!("{head}{body}").replace("max_tokens", "maxTokens");
    assert_ne!(inline, TASK);
    assert_eq!(
        compile(&load(&inline), &productpage()).local_rate_limits,
        vec![task_limit()]
    );
}

#[test]
fn a_filter_in_another_namespace_selects_only_its_own_workloads() {
    let config = load(&TASK.replace("namespace: istio-system", "namespace: shop"));
    assert!(
        compile(&config, &productpage())
            .local_rate_limits
            .is_empty()
    );
    let shop = ProxyScope::sidecar("shop", &[("app", "productpage")]);
    assert_eq!(compile(&config, &shop).local_rate_limits.len(), 1);
}

#[test]
fn defaults_follow_envoy() {
    // No filter_enabled: the filter does nothing; no filter_enforced: it only counts;
    // no tokens_per_fill: 1; a status below 400: 429.
    let yaml = TASK
        .replace("                tokens_per_fill: 4\n", "")
        .replace("              filter_enabled:\n                runtime_key: local_rate_limit_enabled\n                default_value:\n                  numerator: 100\n                  denominator: HUNDRED\n", "              status: {code: 200}\n")
        .replace("              filter_enforced:\n                runtime_key: local_rate_limit_enforced\n                default_value:\n                  numerator: 100\n                  denominator: HUNDRED\n", "");
    let limits = compile(&load(&yaml), &productpage()).local_rate_limits;
    assert_eq!(limits.len(), 1);
    assert_eq!(limits[0].token_bucket.tokens_per_fill, 1);
    assert_eq!(limits[0].enabled_percent, 0.0);
    assert_eq!(limits[0].enforced_percent, 0.0);
    assert_eq!(limits[0].status, 429);
    let half = TASK.replacen(
        "numerator: 100\n                  denominator: HUNDRED",
        "numerator: 5000\n                  denominator: TEN_THOUSAND",
        1,
    );
    assert_eq!(
        compile(&load(&half), &productpage()).local_rate_limits[0].enabled_percent,
        50.0
    );
}

#[test]
fn other_patches_are_refused_with_what_is_understood() {
    let cases = [
        (
            TASK.replace("applyTo: HTTP_FILTER", "applyTo: CLUSTER"),
            "spec.configPatches[0].applyTo: applyTo \"CLUSTER\" is not supported",
        ),
        (
            TASK.replace("context: SIDECAR_INBOUND", "context: GATEWAY"),
            "spec.configPatches[0].match.context: context \"GATEWAY\" is not supported",
        ),
        (
            TASK.replace("operation: INSERT_BEFORE", "operation: REMOVE"),
            "spec.configPatches[0].patch.operation: operation \"REMOVE\" is not supported",
        ),
        (
            TASK.replace(
                "name: envoy.filters.http.local_ratelimit",
                "name: envoy.filters.http.lua",
            ),
            "spec.configPatches[0].patch.value.name: HTTP filter \"envoy.filters.http.lua\" is not supported",
        ),
        (
            TASK.replace(
                "name: \"envoy.filters.network.http_connection_manager\"",
                "name: envoy.filters.network.tcp_proxy",
            ),
            "match.listener.filterChain.filter.name: filter \"envoy.filters.network.tcp_proxy\" is not supported",
        ),
    ];
    for (yaml, expected) in cases {
        let message = errors(&yaml);
        assert!(message.contains(expected), "{message}");
        assert!(message.contains(UNDERSTOOD), "{message}");
        assert!(
            message.contains("EnvoyFilter istio-system/filter-local-ratelimit-svc"),
            "{message}"
        );
    }
}

#[test]
fn fields_the_proxy_cannot_carry_out_are_refused_not_ignored() {
    let descriptors = TASK.replace(
        "              stat_prefix: http_local_rate_limiter\n",
        "              stat_prefix: http_local_rate_limiter\n              descriptors: []\n",
    );
    let message = errors(&descriptors);
    assert!(
        message.contains("typed_config.value.descriptors: is not supported by the mesh"),
        "{message}"
    );
    let port = TASK.replace(
        "        listener:\n",
        "        listener:\n          portNumber: 9080\n",
    );
    assert!(errors(&port).contains("match.listener.portNumber: is not supported"));
}

#[test]
fn a_bad_bucket_names_the_field() {
    let cases = [
        (TASK.replace("max_tokens: 4", "max_tokens: 0"), "token_bucket.max_tokens: must be a whole number above 0, got 0"),
        (TASK.replace("fill_interval: 60s", "fill_interval: 10ms"), "token_bucket.fill_interval: must be at least 50ms, got 10ms"),
        (TASK.replace("fill_interval: 60s", "fill_interval: soon"), "token_bucket.fill_interval:"),
        (TASK.replace("                fill_interval: 60s\n", ""), "token_bucket.fill_interval: is required"),
        (
            TASK.replace("              token_bucket:\n                max_tokens: 4\n                tokens_per_fill: 4\n                fill_interval: 60s\n", ""),
            "value.token_bucket: is required: a filter without it limits only routes with a per-route configuration",
        ),
        (TASK.replace("denominator: HUNDRED", "denominator: HALF"), "filter_enabled.default_value.denominator: must be HUNDRED, TEN_THOUSAND or MILLION"),
        (TASK.replace("key: x-local-rate-limit", "key: \"bad header\""), "response_headers_to_add[0].header.key: must be a header name"),
        (
            TASK.replace("type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit", "type_url: type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"),
            "typed_config.type_url: must be type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        ),
    ];
    for (yaml, expected) in cases {
        assert_ne!(yaml, TASK, "{expected}");
        let message = errors(&yaml);
        assert!(message.contains(expected), "{expected}\n{message}");
    }
}

#[test]
fn envoy_filter_is_served_as_v1alpha3_only() {
    let message = errors(&TASK.replace("networking.istio.io/v1alpha3", "networking.istio.io/v1"));
    assert!(
        message.contains("is not supported for EnvoyFilter"),
        "{message}"
    );
}
