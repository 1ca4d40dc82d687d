//! DestinationRule checks: subsets, load balancer, pools, outlier detection, client TLS.

use std::collections::BTreeSet;

use super::Problems;
use crate::networking::destination_rule::{
    ClientTlsSettings, ConnectionPoolSettings, DestinationRule, LoadBalancerSettings,
    OutlierDetection, TlsMode, TrafficPolicy,
};

pub(crate) fn destination_rule(dr: &DestinationRule, p: &mut Problems) {
    let spec = &dr.spec;
    if spec.host.is_empty() {
        p.add("spec.host", "is required");
    }
    if let Some(policy) = &spec.traffic_policy {
        traffic_policy("spec.trafficPolicy", policy, p);
    }
    let mut seen = BTreeSet::new();
    for (i, subset) in spec.subsets.iter().enumerate() {
        let path = format!("spec.subsets[{i}]");
        if subset.name.is_empty() {
            p.add(format!("{path}.name"), "is required");
        } else if !seen.insert(subset.name.as_str()) {
            p.add(
                format!("{path}.name"),
                format!("duplicate subset name {:?}", subset.name),
            );
        }
        if let Some(policy) = &subset.traffic_policy {
            traffic_policy(&format!("{path}.trafficPolicy"), policy, p);
        }
    }
}

fn traffic_policy(path: &str, policy: &TrafficPolicy, p: &mut Problems) {
    policy_parts(
        path,
        policy.load_balancer.as_ref(),
        policy.connection_pool.as_ref(),
        policy.outlier_detection.as_ref(),
        policy.tls.as_ref(),
        p,
    );
    let mut ports = BTreeSet::new();
    for (i, pls) in policy.port_level_settings.iter().enumerate() {
        let pp = format!("{path}.portLevelSettings[{i}]");
        match pls.port {
            None => p.add(format!("{pp}.port"), "is required"),
            Some(port) => {
                p.port(&format!("{pp}.port.number"), port.number);
                if !ports.insert(port.number) {
                    p.add(
                        format!("{pp}.port.number"),
                        format!("duplicate port {}", port.number),
                    );
                }
            }
        }
        policy_parts(
            &pp,
            pls.load_balancer.as_ref(),
            pls.connection_pool.as_ref(),
            pls.outlier_detection.as_ref(),
            pls.tls.as_ref(),
            p,
        );
    }
}

fn policy_parts(
    path: &str,
    lb: Option<&LoadBalancerSettings>,
    pool: Option<&ConnectionPoolSettings>,
    outlier: Option<&OutlierDetection>,
    tls: Option<&ClientTlsSettings>,
    p: &mut Problems,
) {
    if let Some(lb) = lb {
        let lp = format!("{path}.loadBalancer");
        if lb.simple.is_some() && lb.consistent_hash.is_some() {
            p.add(&lp, "simple and consistentHash cannot both be set");
        }
        if let Some(hash) = &lb.consistent_hash {
            let keys = usize::from(hash.http_header_name.is_some())
                + usize::from(hash.http_cookie.is_some())
                + usize::from(hash.use_source_ip == Some(true))
                + usize::from(hash.http_query_parameter_name.is_some());
            if keys != 1 {
                p.add(
                    format!("{lp}.consistentHash"),
                    "exactly one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName is required",
                );
            }
        }
    }
    if let Some(pool) = pool {
        let cp = format!("{path}.connectionPool");
        if let Some(tcp) = &pool.tcp {
            if tcp.max_connections.is_some_and(|v| v < 0) {
                p.add(format!("{cp}.tcp.maxConnections"), "must not be negative");
            }
            p.at_least_1ms(
                &format!("{cp}.tcp.connectTimeout"),
                tcp.connect_timeout.map(|d| d.get()),
            );
        }
        if let Some(http) = &pool.http {
            for (name, value) in [
                ("http1MaxPendingRequests", http.http1_max_pending_requests),
                ("http2MaxRequests", http.http2_max_requests),
                ("maxRequestsPerConnection", http.max_requests_per_connection),
                ("maxRetries", http.max_retries),
                ("maxConcurrentStreams", http.max_concurrent_streams),
            ] {
                if value.is_some_and(|v| v < 0) {
                    p.add(format!("{cp}.http.{name}"), "must not be negative");
                }
            }
            if let Some(policy) = http.h2_upgrade_policy.as_deref()
                && !matches!(policy, "DEFAULT" | "DO_NOT_UPGRADE" | "UPGRADE")
            {
                p.add(
                    format!("{cp}.http.h2UpgradePolicy"),
                    format!(
                        "unknown value {policy:?} (expected DEFAULT, DO_NOT_UPGRADE or UPGRADE)"
                    ),
                );
            }
        }
    }
    if let Some(od) = outlier {
        let op = format!("{path}.outlierDetection");
        p.at_least_1ms(&format!("{op}.interval"), od.interval.map(|d| d.get()));
        p.at_least_1ms(
            &format!("{op}.baseEjectionTime"),
            od.base_ejection_time.map(|d| d.get()),
        );
        if od.consecutive_errors.is_some_and(|v| v < 0) {
            p.add(format!("{op}.consecutiveErrors"), "must not be negative");
        }
        if let Some(v) = od.max_ejection_percent {
            p.percent(&format!("{op}.maxEjectionPercent"), f64::from(v));
        }
        if let Some(v) = od.min_health_percent {
            p.percent(&format!("{op}.minHealthPercent"), f64::from(v));
        }
    }
    if let Some(tls) = tls {
        let tp = format!("{path}.tls");
        let has_files = tls.client_certificate.is_some()
            || tls.private_key.is_some()
            || tls.ca_certificates.is_some()
            || tls.credential_name.is_some();
        match tls.mode {
            TlsMode::IstioMutual if has_files || !tls.subject_alt_names.is_empty() || tls.sni.is_some() => p.add(
                &tp,
                "ISTIO_MUTUAL uses the mesh certificates: clientCertificate, privateKey, caCertificates, credentialName, subjectAltNames and sni must not be set",
            ),
            TlsMode::Mutual
                if tls.credential_name.is_none()
                    && (tls.client_certificate.is_none() || tls.private_key.is_none()) =>
            {
                p.add(
                    &tp,
                    "MUTUAL needs credentialName, or both clientCertificate and privateKey",
                )
            }
            _ => {}
        }
    }
}
