//! VirtualService checks: istiod's HTTPRoute rules (mutual exclusions, weights, retries,
//! faults, mirrors, matches).

use super::Problems;
use crate::networking::virtual_service::{
    CorsPolicy, Destination, HttpDirectResponse, HttpFaultInjection, HttpMatchRequest,
    HttpRedirect, HttpRetry, HttpRewrite, HttpRoute, VirtualService,
};

/// `retryOn` conditions Envoy (and so istiod) accepts, besides HTTP status codes.
pub(crate) const RETRY_ON_POLICIES: [&str; 16] = [
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "envoy-ratelimited",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// Every destination of a VirtualService with its field path (routes and mirrors).
pub(crate) fn destinations(vs: &VirtualService) -> Vec<(String, &Destination)> {
    let mut out = Vec::new();
    for (i, http) in vs.spec.http.iter().enumerate() {
        for (j, d) in http.route.iter().enumerate() {
            out.push((
                format!("spec.http[{i}].route[{j}].destination"),
                &d.destination,
            ));
        }
        if let Some(m) = &http.mirror {
            out.push((format!("spec.http[{i}].mirror"), m));
        }
        for (j, m) in http.mirrors.iter().enumerate() {
            out.push((
                format!("spec.http[{i}].mirrors[{j}].destination"),
                &m.destination,
            ));
        }
    }
    for (i, tcp) in vs.spec.tcp.iter().enumerate() {
        for (j, d) in tcp.route.iter().enumerate() {
            out.push((
                format!("spec.tcp[{i}].route[{j}].destination"),
                &d.destination,
            ));
        }
    }
    for (i, tls) in vs.spec.tls.iter().enumerate() {
        for (j, d) in tls.route.iter().enumerate() {
            out.push((
                format!("spec.tls[{i}].route[{j}].destination"),
                &d.destination,
            ));
        }
    }
    out
}

pub(crate) fn virtual_service(vs: &VirtualService, p: &mut Problems) {
    let spec = &vs.spec;
    let bound_to_mesh = spec.gateways.is_empty() || spec.gateways.iter().any(|g| g == "mesh");
    let has_delegate = spec.http.iter().any(|h| h.delegate.is_some());
    if spec.hosts.is_empty() && !has_delegate {
        p.add("spec.hosts", "at least one host is required");
    }
    for (i, host) in spec.hosts.iter().enumerate() {
        let path = format!("spec.hosts[{i}]");
        if host.is_empty() {
            p.add(path, "must not be empty");
        } else if host == "*" && bound_to_mesh {
            p.add(
                path,
                "\"*\" alone is not allowed for the mesh gateway; name the services",
            );
        } else if host.contains('/') {
            p.add(path, "must be a host name, not namespace/name");
        }
    }
    if spec.http.is_empty() && spec.tcp.is_empty() && spec.tls.is_empty() {
        p.add("spec", "at least one of http, tcp or tls is required");
    }
    for (i, route) in spec.http.iter().enumerate() {
        http_route(&format!("spec.http[{i}]"), route, p);
    }
    for (i, tcp) in spec.tcp.iter().enumerate() {
        let path = format!("spec.tcp[{i}]");
        if tcp.route.is_empty() {
            p.add(
                format!("{path}.route"),
                "at least one destination is required",
            );
        }
        for (j, m) in tcp.matches.iter().enumerate() {
            if let Some(port) = m.port {
                p.port(&format!("{path}.match[{j}].port"), port);
            }
        }
        let weights: Vec<_> = tcp
            .route
            .iter()
            .map(|r| (r.weight, &r.destination))
            .collect();
        weighted(&path, &weights, p);
    }
    for (i, tls) in spec.tls.iter().enumerate() {
        let path = format!("spec.tls[{i}]");
        if tls.matches.is_empty() {
            p.add(
                format!("{path}.match"),
                "at least one match is required for TLS routes",
            );
        }
        for (j, m) in tls.matches.iter().enumerate() {
            if m.sni_hosts.is_empty() {
                p.add(
                    format!("{path}.match[{j}].sniHosts"),
                    "at least one SNI host is required",
                );
            }
        }
        if tls.route.is_empty() {
            p.add(
                format!("{path}.route"),
                "at least one destination is required",
            );
        }
        let weights: Vec<_> = tls
            .route
            .iter()
            .map(|r| (r.weight, &r.destination))
            .collect();
        weighted(&path, &weights, p);
    }
}

/// One HTTP rule: which actions may be combined, then each part.
fn http_route(path: &str, r: &HttpRoute, p: &mut Problems) {
    let route = !r.route.is_empty();
    let redirect = r.redirect.is_some();
    let direct = r.direct_response.is_some();
    let delegate = r.delegate.is_some();
    let fault = r.fault.is_some();
    let rewrite = r.rewrite.is_some();
    let exclusive = [
        (route, "route", redirect, "redirect"),
        (route, "route", direct, "directResponse"),
        (redirect, "redirect", direct, "directResponse"),
        (fault, "fault", redirect, "redirect"),
        (fault, "fault", direct, "directResponse"),
        (rewrite, "rewrite", redirect, "redirect"),
        (rewrite, "rewrite", direct, "directResponse"),
        (delegate, "delegate", route || redirect, "route or redirect"),
    ];
    for (a, a_name, b, b_name) in exclusive {
        if a && b {
            p.add(path, format!("{a_name} and {b_name} cannot both be set"));
        }
    }
    if r.mirror.is_some() && !r.mirrors.is_empty() {
        p.add(path, "mirror and mirrors cannot both be set");
    }
    if !(route || redirect || direct || delegate) {
        p.add(
            path,
            "one of route, redirect, directResponse or delegate is required",
        );
    }

    for (j, m) in r.matches.iter().enumerate() {
        http_match(&format!("{path}.match[{j}]"), m, p);
    }
    let weights: Vec<_> = r.route.iter().map(|d| (d.weight, &d.destination)).collect();
    weighted(path, &weights, p);

    if let Some(redirect) = &r.redirect {
        check_redirect(path, redirect, p);
    }
    if let Some(direct) = &r.direct_response {
        check_direct_response(path, direct, p);
    }
    if let Some(rewrite) = &r.rewrite {
        check_rewrite(path, rewrite, p);
    }
    if let Some(timeout) = r.timeout
        && !timeout.get().is_zero()
    {
        p.at_least_1ms(&format!("{path}.timeout"), Some(timeout.get()));
    }
    if let Some(retries) = &r.retries {
        check_retries(path, retries, p);
    }
    if let Some(fault) = &r.fault {
        check_fault(path, fault, p);
    }
    if let Some(mirror) = &r.mirror {
        destination(&format!("{path}.mirror"), mirror, p);
    }
    p.percentage(&format!("{path}.mirrorPercentage"), r.mirror_percentage);
    if let Some(percent) = r.mirror_percent {
        p.percent(&format!("{path}.mirrorPercent"), f64::from(percent));
    }
    for (j, m) in r.mirrors.iter().enumerate() {
        let mp = format!("{path}.mirrors[{j}]");
        destination(&format!("{mp}.destination"), &m.destination, p);
        p.percentage(&format!("{mp}.percentage"), m.percentage);
    }
    if let Some(cors) = &r.cors_policy {
        check_cors(path, cors, p);
    }
}

/// One `match` alternative: string matches, header names, ports.
fn http_match(path: &str, m: &HttpMatchRequest, p: &mut Problems) {
    for (name, value) in [
        ("uri", &m.uri),
        ("scheme", &m.scheme),
        ("method", &m.method),
        ("authority", &m.authority),
    ] {
        if let Some(value) = value {
            p.string_match(&format!("{path}.{name}"), value, true);
        }
    }
    for (field, map) in [
        ("headers", &m.headers),
        ("withoutHeaders", &m.without_headers),
    ] {
        for (name, value) in map {
            let hp = format!("{path}.{field}.{name}");
            if name.is_empty() {
                p.add(&hp, "header name must not be empty");
            } else if name.chars().any(|c| c.is_ascii_uppercase()) {
                p.add(&hp, "header names must be lowercase");
            }
            p.string_match(&hp, value, false);
        }
    }
    for (name, value) in &m.query_params {
        p.string_match(&format!("{path}.queryParams.{name}"), value, false);
    }
    if let Some(port) = m.port {
        p.port(&format!("{path}.port"), port);
    }
}

/// Weights are relative: each must be >= 0, and with several destinations the total must
/// be positive. Sums other than 100 are fine (Istio >= 1.13).
fn weighted(path: &str, routes: &[(Option<i32>, &Destination)], p: &mut Problems) {
    let mut total: i64 = 0;
    for (j, (weight, dest)) in routes.iter().enumerate() {
        let dp = format!("{path}.route[{j}]");
        destination(&format!("{dp}.destination"), dest, p);
        if let Some(w) = weight {
            if *w < 0 {
                p.add(format!("{dp}.weight"), "must not be negative");
            } else {
                total += i64::from(*w);
            }
        }
    }
    if routes.len() > 1 && total == 0 {
        p.add(
            format!("{path}.route"),
            "total weight must be greater than 0 when there is more than one destination",
        );
    }
    if total > i64::from(i32::MAX) {
        p.add(
            format!("{path}.route"),
            format!("total weight must not exceed {}", i32::MAX),
        );
    }
}

/// A destination (route, mirror): host required, port in range.
fn destination(path: &str, d: &Destination, p: &mut Problems) {
    if d.host.is_empty() {
        p.add(format!("{path}.host"), "is required");
    } else if d.host.contains('/') {
        p.add(
            format!("{path}.host"),
            "must be a host name, not namespace/name",
        );
    }
    if let Some(subset) = &d.subset
        && subset.is_empty()
    {
        p.add(format!("{path}.subset"), "must not be empty");
    }
    if let Some(port) = d.port {
        p.port(&format!("{path}.port.number"), port.number);
    }
}

/// `redirect` fields.
fn check_redirect(path: &str, redirect: &HttpRedirect, p: &mut Problems) {
    let rp = format!("{path}.redirect");
    if redirect.uri.is_some() && redirect.prefix_rewrite.is_some() {
        p.add(&rp, "uri and prefixRewrite cannot both be set");
    }
    if redirect.port.is_some() && redirect.derive_port.is_some() {
        p.add(&rp, "port and derivePort cannot both be set");
    }
    if let Some(port) = redirect.port {
        p.port(&format!("{rp}.port"), port);
    }
    if let Some(derive) = redirect.derive_port.as_deref()
        && !matches!(derive, "FROM_PROTOCOL_DEFAULT" | "FROM_REQUEST_PORT")
    {
        p.add(
            format!("{rp}.derivePort"),
            format!(
                "unknown value {derive:?} (expected FROM_PROTOCOL_DEFAULT or FROM_REQUEST_PORT)"
            ),
        );
    }
    if let Some(code) = redirect.redirect_code
        && !matches!(code, 301 | 302 | 303 | 307 | 308)
    {
        p.add(
            format!("{rp}.redirectCode"),
            format!("must be one of 301, 302, 303, 307, 308, got {code}"),
        );
    }
}

/// `directResponse` status range and body.
fn check_direct_response(path: &str, direct: &HttpDirectResponse, p: &mut Problems) {
    let dp = format!("{path}.directResponse");
    if !(200..=599).contains(&direct.status) {
        p.add(
            format!("{dp}.status"),
            format!("must be between 200 and 599, got {}", direct.status),
        );
    }
    if let Some(body) = &direct.body
        && body.string.is_some()
        && body.bytes.is_some()
    {
        p.add(format!("{dp}.body"), "string and bytes cannot both be set");
    }
}

/// `rewrite` exclusions and regex.
fn check_rewrite(path: &str, rewrite: &HttpRewrite, p: &mut Problems) {
    if rewrite.uri.is_some() && rewrite.uri_regex_rewrite.is_some() {
        p.add(
            format!("{path}.rewrite"),
            "uri and uriRegexRewrite cannot both be set",
        );
    }
    if let Some(rr) = &rewrite.uri_regex_rewrite
        && let Err(err) = regex::Regex::new(&rr.pattern)
    {
        let first = err.to_string();
        let first = first.lines().last().unwrap_or_default().to_owned();
        p.add(
            format!("{path}.rewrite.uriRegexRewrite.match"),
            format!(
                "invalid regex {:?}: {}",
                rr.pattern,
                first.trim_start_matches("error: ")
            ),
        );
    }
}

/// `retries`: attempts, durations and `retryOn` conditions.
fn check_retries(path: &str, retries: &HttpRetry, p: &mut Problems) {
    let rp = format!("{path}.retries");
    if retries.attempts < 0 {
        p.add(format!("{rp}.attempts"), "must not be negative");
    }
    p.at_least_1ms(
        &format!("{rp}.perTryTimeout"),
        retries.per_try_timeout.map(|d| d.get()),
    );
    p.at_least_1ms(&format!("{rp}.backoff"), retries.backoff.map(|d| d.get()));
    if let Some(retry_on) = &retries.retry_on {
        for item in retry_on.split(',').map(str::trim) {
            if item.is_empty() {
                continue;
            }
            let ok = match item.parse::<u32>() {
                Ok(code) => (100..=599).contains(&code),
                Err(_) => RETRY_ON_POLICIES.contains(&item),
            };
            if !ok {
                p.add(
                    format!("{rp}.retryOn"),
                    format!("unknown retry condition {item:?}"),
                );
            }
        }
    }
}

/// `fault`: delay/abort shape, durations, percentages, status ranges.
fn check_fault(path: &str, fault: &HttpFaultInjection, p: &mut Problems) {
    let fp = format!("{path}.fault");
    if fault.delay.is_none() && fault.abort.is_none() {
        p.add(&fp, "one of delay or abort is required");
    }
    if let Some(delay) = &fault.delay {
        let dp = format!("{fp}.delay");
        match delay.fixed_delay {
            None => p.add(format!("{dp}.fixedDelay"), "is required"),
            Some(d) => p.at_least_1ms(&format!("{dp}.fixedDelay"), Some(d.get())),
        }
        p.percentage(&format!("{dp}.percentage"), delay.percentage);
        if let Some(percent) = delay.percent {
            p.percent(&format!("{dp}.percent"), f64::from(percent));
        }
    }
    if let Some(abort) = &fault.abort {
        let ap = format!("{fp}.abort");
        match (abort.http_status, &abort.grpc_status) {
            (Some(_), Some(_)) => p.add(&ap, "httpStatus and grpcStatus cannot both be set"),
            (None, None) => p.add(&ap, "one of httpStatus or grpcStatus is required"),
            (Some(status), None) if !(200..=599).contains(&status) => p.add(
                format!("{ap}.httpStatus"),
                format!("must be between 200 and 599, got {status}"),
            ),
            _ => {}
        }
        p.percentage(&format!("{ap}.percentage"), abort.percentage);
    }
}

/// `corsPolicy`.
fn check_cors(path: &str, cors: &CorsPolicy, p: &mut Problems) {
    for (j, origin) in cors.allow_origins.iter().enumerate() {
        p.string_match(
            &format!("{path}.corsPolicy.allowOrigins[{j}]"),
            origin,
            true,
        );
    }
    p.at_least_1ms(
        &format!("{path}.corsPolicy.maxAge"),
        cors.max_age.map(|d| d.get()),
    );
    if let Some(u) = cors.unmatched_preflights.as_deref()
        && !matches!(u, "UNSPECIFIED" | "FORWARD" | "IGNORE")
    {
        p.add(
            format!("{path}.corsPolicy.unmatchedPreflights"),
            format!("unknown value {u:?} (expected FORWARD or IGNORE)"),
        );
    }
}
