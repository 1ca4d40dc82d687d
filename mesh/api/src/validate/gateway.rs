//! Gateway and ServiceEntry checks: listeners and registry entries.

use std::collections::BTreeSet;

use super::Problems;
use crate::networking::gateway::Gateway;
use crate::networking::service_entry::{Resolution, ServiceEntry};

pub(crate) fn gateway(gw: &Gateway, p: &mut Problems) {
    if gw.spec.servers.is_empty() {
        p.add("spec.servers", "at least one server is required");
    }
    for (i, server) in gw.spec.servers.iter().enumerate() {
        let path = format!("spec.servers[{i}]");
        match &server.port {
            None => p.add(format!("{path}.port"), "is required"),
            Some(port) => {
                p.port(&format!("{path}.port.number"), port.number);
                if port.protocol.is_empty() {
                    p.add(format!("{path}.port.protocol"), "is required");
                }
            }
        }
        if server.hosts.is_empty() {
            p.add(format!("{path}.hosts"), "at least one host is required");
        }
    }
}

pub(crate) fn service_entry(se: &ServiceEntry, p: &mut Problems) {
    let spec = &se.spec;
    if spec.hosts.is_empty() {
        p.add("spec.hosts", "at least one host is required");
    }
    for (i, host) in spec.hosts.iter().enumerate() {
        if host.is_empty() || host == "*" {
            p.add(
                format!("spec.hosts[{i}]"),
                "must be a host name (\"*\" alone is not allowed)",
            );
        }
    }
    let mut numbers = BTreeSet::new();
    for (i, port) in spec.ports.iter().enumerate() {
        let path = format!("spec.ports[{i}]");
        p.port(&format!("{path}.number"), port.number);
        if !numbers.insert(port.number) {
            p.add(
                format!("{path}.number"),
                format!("duplicate port {}", port.number),
            );
        }
        if port.name.is_empty() {
            p.add(format!("{path}.name"), "is required");
        }
    }
    let resolution = spec.resolution.unwrap_or(Resolution::None);
    if resolution == Resolution::Static
        && spec.endpoints.is_empty()
        && spec.workload_selector.is_none()
    {
        p.add(
            "spec.endpoints",
            "at least one endpoint is required when resolution is STATIC",
        );
    }
    if matches!(resolution, Resolution::Dns | Resolution::DnsRoundRobin)
        && spec.endpoints.is_empty()
        && spec.hosts.iter().any(|h| h.starts_with('*'))
    {
        p.add(
            "spec.hosts",
            "wildcard hosts need endpoints when resolution is DNS",
        );
    }
    for (i, endpoint) in spec.endpoints.iter().enumerate() {
        let path = format!("spec.endpoints[{i}]");
        match endpoint.address.as_deref() {
            None | Some("") if spec.workload_selector.is_none() => {
                p.add(format!("{path}.address"), "is required")
            }
            Some(address)
                if resolution == Resolution::Static
                    && address.parse::<std::net::IpAddr>().is_err()
                    && !address.starts_with("unix://") =>
            {
                p.add(
                    format!("{path}.address"),
                    format!("must be an IP address when resolution is STATIC, got {address:?}"),
                )
            }
            _ => {}
        }
        for (name, port) in &endpoint.ports {
            p.port(&format!("{path}.ports.{name}"), *port);
        }
    }
}
