//! `meshctl get <kind>`: Istio resources in force, fault leases, registered workloads.

use mesh_api::wire::{LeaseView, ResourceEntry, WorkloadView};
use serde::Serialize;
use serde_json::Value;

use super::render::{ago, at, cell, fault_effect, fault_match, opt, pairs, remaining, text};
use crate::CtlError;
use crate::cli::OutputFormat;
use crate::control::ControlClient;
use crate::table::Table;

/// What `get` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// An Istio kind, as the API names it.
    Resource(&'static str),
    /// Fault leases.
    Faults,
    /// Registered workloads.
    Workloads,
}

/// Kinds with their accepted spellings (plural first, as in the help).
const KINDS: &[(Kind, &[&str])] = &[
    (
        Kind::Resource("VirtualService"),
        &["virtualservices", "virtualservice", "vs"],
    ),
    (
        Kind::Resource("DestinationRule"),
        &["destinationrules", "destinationrule", "dr"],
    ),
    (Kind::Resource("Gateway"), &["gateways", "gateway", "gw"]),
    (
        Kind::Resource("ServiceEntry"),
        &["serviceentries", "serviceentry", "se"],
    ),
    (
        Kind::Resource("PeerAuthentication"),
        &["peerauthentications", "peerauthentication", "pa"],
    ),
    (
        Kind::Resource("AuthorizationPolicy"),
        &["authorizationpolicies", "authorizationpolicy", "ap"],
    ),
    (
        Kind::Resource("EnvoyFilter"),
        &["envoyfilters", "envoyfilter", "ef"],
    ),
    (
        Kind::Resource("Gateway.gateway.networking.k8s.io"),
        &[
            "gateways.gateway.networking.k8s.io",
            "gateway.gateway.networking.k8s.io",
        ],
    ),
    (Kind::Resource("HTTPRoute"), &["httproutes", "httproute"]),
    (Kind::Faults, &["faults", "fault"]),
    (Kind::Workloads, &["workloads", "workload"]),
];

pub(super) fn parse_kind(text: &str) -> Result<Kind, CtlError> {
    let t = text.trim().to_ascii_lowercase();
    KINDS
        .iter()
        .find(|(k, names)| {
            names.contains(&t.as_str())
                || matches!(k, Kind::Resource(n) if n.eq_ignore_ascii_case(&t))
        })
        .map(|(k, _)| *k)
        .ok_or_else(|| {
            let known: Vec<&str> = KINDS.iter().map(|(_, n)| n[0]).collect();
            CtlError::Usage(format!(
                "unknown kind {text:?}: expected one of {} (or vs, dr, gw, se, pa, ap)",
                known.join(", ")
            ))
        })
}

pub(super) async fn run(
    control: &ControlClient,
    kind: &str,
    output: OutputFormat,
) -> Result<u8, CtlError> {
    let kind = parse_kind(kind)?;
    match kind {
        Kind::Resource(name) => {
            let rows = control.resources(Some(name)).await?;
            let yaml = || resource_documents(&rows);
            print_rows(kind, output, &rows, yaml, |rows| resource_table(name, rows))
        }
        Kind::Faults => {
            let rows = control.faults().await?;
            print_rows(kind, output, &rows, || yaml(&rows), fault_table)
        }
        Kind::Workloads => {
            let rows = control.workloads().await?;
            print_rows(kind, output, &rows, || yaml(&rows), workload_table)
        }
    }?;
    Ok(0)
}

/// Prints `rows` as JSON (the answer as the control plane sent it), YAML or a table.
fn print_rows<T: Serialize>(
    kind: Kind,
    output: OutputFormat,
    rows: &[T],
    yaml: impl FnOnce() -> Result<String, CtlError>,
    table: impl FnOnce(&[T]) -> Table,
) -> Result<(), CtlError> {
    match output {
        OutputFormat::Json => println!("{}", pretty_json(rows)?),
        OutputFormat::Yaml => print!("{}", yaml()?),
        OutputFormat::Table if rows.is_empty() => eprintln!("No {} found.", plural(kind)),
        OutputFormat::Table => print!("{}", table(rows).render()),
    }
    Ok(())
}

pub(super) fn pretty_json(v: &(impl Serialize + ?Sized)) -> Result<String, CtlError> {
    serde_json::to_string_pretty(v).map_err(|e| CtlError::Failed(format!("cannot write JSON: {e}")))
}

pub(super) fn yaml(v: &(impl Serialize + ?Sized)) -> Result<String, CtlError> {
    serde_norway::to_string(v).map_err(|e| CtlError::Failed(format!("cannot write YAML: {e}")))
}

fn plural(kind: Kind) -> &'static str {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("resources", |(_, n)| n[0])
}

/// Istio resources as YAML documents, re-appliable.
fn resource_documents(rows: &[ResourceEntry]) -> Result<String, CtlError> {
    let mut out = String::new();
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&yaml(&r.resource)?);
    }
    Ok(out)
}

/// The resource's spec (the API returns the whole resource; a bare spec is taken as is).
fn spec(r: &ResourceEntry) -> &Value {
    r.resource.get("spec").unwrap_or(&r.resource)
}

/// A comma-joined column of one field of each element of the list at `list`.
fn joined(spec: &Value, list: &str, field: &[&str]) -> String {
    at(spec, &[list])
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| cell(x, field))
                .collect::<Vec<_>>()
                .join(",")
        })
        .filter(|x| !x.is_empty())
        .unwrap_or_else(|| "-".to_owned())
}

/// The cells a kind adds between NAME and SOURCE, read from the resource's spec.
type SpecCells = fn(&Value) -> Vec<String>;

/// The table of an Istio kind: where it comes from, plus what matters for the kind.
fn resource_table(kind: &str, rows: &[ResourceEntry]) -> Table {
    let (extra, columns): (&[&str], SpecCells) = match kind {
        "VirtualService" => (&["GATEWAYS", "HOSTS"], |s| {
            vec![cell(s, &["gateways"]), cell(s, &["hosts"])]
        }),
        "DestinationRule" => (&["HOST", "SUBSETS"], |s| {
            vec![cell(s, &["host"]), joined(s, "subsets", &["name"])]
        }),
        "Gateway" => (&["SELECTOR", "PORTS"], |s| {
            vec![
                cell(s, &["selector"]),
                joined(s, "servers", &["port", "number"]),
            ]
        }),
        _ => (&[], |_| Vec::new()),
    };
    let headers = ["NAMESPACE", "NAME"]
        .iter()
        .chain(extra)
        .chain(&["SOURCE"])
        .copied();
    let mut t = Table::new(headers);
    for r in rows {
        let mut row = vec![text(&r.namespace), text(&r.name)];
        row.extend(columns(spec(r)));
        row.push(text(&r.source));
        t.row(row);
    }
    t
}

fn workload_table(rows: &[WorkloadView]) -> Table {
    let mut t = Table::new([
        "NAME",
        "NAMESPACE",
        "SERVICE",
        "MODE",
        "ADDRESS",
        "LABELS",
        "LAST SEEN",
    ]);
    for r in rows {
        t.row([
            text(&r.spec.name),
            text(&r.spec.namespace),
            opt(r.spec.service.as_deref()),
            r.spec.mode.as_str().to_owned(),
            r.spec
                .address
                .map_or_else(|| "-".to_owned(), |a| a.to_string()),
            pairs(&r.spec.labels),
            ago(r.last_seen_ms),
        ]);
    }
    t
}

/// The fault table shared by `get faults` and `fault list`.
pub(super) fn fault_table(rows: &[LeaseView]) -> Table {
    let mut t = Table::new(["ID", "SERVICE", "SUBSET", "FAULT", "MATCH", "REMAINING"]);
    for f in rows {
        t.row([
            text(&f.id),
            text(&f.service),
            opt(f.subset.as_deref()),
            fault_effect(f),
            fault_match(f),
            remaining(f),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_and_aliases() {
        assert_eq!(parse_kind("vs").unwrap(), Kind::Resource("VirtualService"));
        assert_eq!(
            parse_kind("DestinationRules").unwrap(),
            Kind::Resource("DestinationRule")
        );
        assert_eq!(
            parse_kind("VirtualService").unwrap(),
            Kind::Resource("VirtualService")
        );
        assert_eq!(
            parse_kind("ap").unwrap(),
            Kind::Resource("AuthorizationPolicy")
        );
        assert_eq!(
            parse_kind("httproutes").unwrap(),
            Kind::Resource("HTTPRoute")
        );
        // `gateways` is Istio's; the Gateway API's needs its group, as with kubectl.
        assert_eq!(parse_kind("gw").unwrap(), Kind::Resource("Gateway"));
        assert_eq!(
            parse_kind("gateways.gateway.networking.k8s.io").unwrap(),
            Kind::Resource("Gateway.gateway.networking.k8s.io")
        );
        assert_eq!(parse_kind("faults").unwrap(), Kind::Faults);
        assert_eq!(parse_kind("workload").unwrap(), Kind::Workloads);
        let e = parse_kind("pods").unwrap_err();
        assert!(e.to_string().contains("unknown kind \"pods\""));
        assert_eq!(e.exit_code(), 64);
    }

    /// Resources in force as the control plane lists them.
    fn entries(rows: Value) -> Vec<ResourceEntry> {
        serde_json::from_value(rows).unwrap()
    }

    #[test]
    fn destination_rule_table_lists_subsets() {
        let rows = entries(json!([
            {"kind": "DestinationRule", "namespace": "default", "name": "reviews", "source": "config-dir", "file": "destination-rule-all.yaml",
             "resource": {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "reviews", "namespace": "default"},
                          "spec": {"host": "reviews", "subsets": [{"name": "v1"}, {"name": "v2"}]}}}
        ]));
        assert_eq!(
            resource_table("DestinationRule", &rows).render(),
            "NAMESPACE   NAME      HOST      SUBSETS   SOURCE\n\
             default     reviews   reviews   v1,v2     config-dir\n"
        );
    }

    #[test]
    fn gateway_and_other_tables() {
        let rows = entries(json!([
            {"kind": "Gateway", "namespace": "default", "name": "bookinfo-gateway", "source": "api", "file": "gw.yaml",
             "resource": {"apiVersion": "networking.istio.io/v1", "kind": "Gateway", "metadata": {"name": "bookinfo-gateway"},
                          "spec": {"selector": {"istio": "ingressgateway"}, "servers": [{"port": {"number": 8080, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}}}
        ]));
        assert_eq!(
            resource_table("Gateway", &rows).render(),
            "NAMESPACE   NAME               SELECTOR               PORTS   SOURCE\n\
             default     bookinfo-gateway   istio=ingressgateway   8080    api\n"
        );
        assert_eq!(
            resource_table("ServiceEntry", &rows).render(),
            "NAMESPACE   NAME               SOURCE\n\
             default     bookinfo-gateway   api\n"
        );
    }

    #[test]
    fn yaml_is_one_document_per_resource() {
        let rows = entries(json!([
            {"kind": "Gateway", "namespace": "default", "name": "a", "source": "api", "file": "a.yaml",
             "resource": {"kind": "Gateway", "metadata": {"name": "a"}}},
            {"kind": "Gateway", "namespace": "default", "name": "b", "source": "api", "file": "b.yaml",
             "resource": {"kind": "Gateway", "metadata": {"name": "b"}}}
        ]));
        let y = resource_documents(&rows).unwrap();
        assert_eq!(y.matches("---").count(), 1);
        assert!(y.contains("name: a") && y.contains("name: b"), "{y}");
    }

    #[test]
    fn workload_table_shows_gateways_without_service_or_address() {
        let rows: Vec<WorkloadView> = serde_json::from_value(json!([
            {"name": "istio-ingressgateway", "namespace": "default", "serviceAccount": "default",
             "labels": {"istio": "ingressgateway"}, "sidecar": true, "mode": "gateway",
             "last_seen_ms": 1500, "age_ms": 1500, "registered_at_ms": 1}
        ]))
        .unwrap();
        assert_eq!(
            workload_table(&rows).render(),
            "NAME                   NAMESPACE   SERVICE   MODE      ADDRESS   LABELS                 LAST SEEN\n\
             istio-ingressgateway   default     -         gateway   -         istio=ingressgateway   1.5s ago\n"
        );
    }
}
