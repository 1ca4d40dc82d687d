//! `meshctl get <kind>`: Istio resources in force, fault leases, registered workloads.

use serde_json::Value;

use super::render::{ago, at, cell, fault_effect, fault_match, remaining};
use crate::CtlError;
use crate::cli::OutputFormat;
use crate::control::Control;
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
    control: &Control,
    kind: &str,
    output: OutputFormat,
) -> Result<u8, CtlError> {
    let kind = parse_kind(kind)?;
    let answer = match kind {
        Kind::Resource(name) => control.get("api/v1/resources", &[("kind", name)]).await?,
        Kind::Faults => control.get("api/v1/faults", &[]).await?,
        Kind::Workloads => control.get("api/v1/workloads", &[]).await?,
    };
    let rows = answer.as_array().cloned().unwrap_or_default();
    match output {
        OutputFormat::Json => println!("{}", pretty_json(&answer)),
        OutputFormat::Yaml => print!("{}", yaml(kind, &rows)?),
        OutputFormat::Table if rows.is_empty() => eprintln!("No {} found.", plural(kind)),
        OutputFormat::Table => print!("{}", table(kind, &rows).render()),
    }
    Ok(0)
}

fn pretty_json(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

fn plural(kind: Kind) -> &'static str {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("resources", |(_, n)| n[0])
}

/// Istio resources as YAML documents (re-appliable); other lists as one YAML list.
fn yaml(kind: Kind, rows: &[Value]) -> Result<String, CtlError> {
    let enc = |v: &Value| {
        serde_norway::to_string(v).map_err(|e| CtlError::Failed(format!("cannot write YAML: {e}")))
    };
    match kind {
        Kind::Resource(_) => {
            let mut out = String::new();
            for (i, r) in rows.iter().enumerate() {
                if i > 0 {
                    out.push_str("---\n");
                }
                out.push_str(&enc(r.get("resource").unwrap_or(r))?);
            }
            Ok(out)
        }
        _ => enc(&Value::Array(rows.to_vec())),
    }
}

/// The resource's spec: the API returns the whole resource (or just its spec).
fn spec(r: &Value) -> &Value {
    let res = r.get("resource").unwrap_or(r);
    res.get("spec").unwrap_or(res)
}

fn table(kind: Kind, rows: &[Value]) -> Table {
    match kind {
        Kind::Resource("VirtualService") => {
            let mut t = Table::new(["NAMESPACE", "NAME", "GATEWAYS", "HOSTS", "SOURCE"]);
            for r in rows {
                let s = spec(r);
                t.row([
                    cell(r, &["namespace"]),
                    cell(r, &["name"]),
                    cell(s, &["gateways"]),
                    cell(s, &["hosts"]),
                    cell(r, &["source"]),
                ]);
            }
            t
        }
        Kind::Resource("DestinationRule") => {
            let mut t = Table::new(["NAMESPACE", "NAME", "HOST", "SUBSETS", "SOURCE"]);
            for r in rows {
                let s = spec(r);
                let subsets = at(s, &["subsets"])
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|x| cell(x, &["name"]))
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .filter(|x| !x.is_empty())
                    .unwrap_or_else(|| "-".to_owned());
                t.row([
                    cell(r, &["namespace"]),
                    cell(r, &["name"]),
                    cell(s, &["host"]),
                    subsets,
                    cell(r, &["source"]),
                ]);
            }
            t
        }
        Kind::Resource("Gateway") => {
            let mut t = Table::new(["NAMESPACE", "NAME", "SELECTOR", "PORTS", "SOURCE"]);
            for r in rows {
                let s = spec(r);
                let ports = at(s, &["servers"])
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|x| cell(x, &["port", "number"]))
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .filter(|x| !x.is_empty())
                    .unwrap_or_else(|| "-".to_owned());
                t.row([
                    cell(r, &["namespace"]),
                    cell(r, &["name"]),
                    cell(s, &["selector"]),
                    ports,
                    cell(r, &["source"]),
                ]);
            }
            t
        }
        Kind::Resource(_) => {
            let mut t = Table::new(["NAMESPACE", "NAME", "SOURCE"]);
            for r in rows {
                t.row([
                    cell(r, &["namespace"]),
                    cell(r, &["name"]),
                    cell(r, &["source"]),
                ]);
            }
            t
        }
        Kind::Faults => fault_table(rows),
        Kind::Workloads => {
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
                    cell(r, &["name"]),
                    cell(r, &["namespace"]),
                    cell(r, &["service"]),
                    cell(r, &["mode"]),
                    cell(r, &["address"]),
                    cell(r, &["labels"]),
                    ago(r, "last_seen_ms"),
                ]);
            }
            t
        }
    }
}

/// The fault table shared by `get faults` and `fault list`.
pub(super) fn fault_table(rows: &[Value]) -> Table {
    let mut t = Table::new(["ID", "SERVICE", "SUBSET", "FAULT", "MATCH", "REMAINING"]);
    for f in rows {
        t.row([
            cell(f, &["id"]),
            cell(f, &["service"]),
            cell(f, &["subset"]),
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
        assert_eq!(parse_kind("faults").unwrap(), Kind::Faults);
        assert_eq!(parse_kind("workload").unwrap(), Kind::Workloads);
        let e = parse_kind("pods").unwrap_err();
        assert!(e.to_string().contains("unknown kind \"pods\""));
        assert_eq!(e.exit_code(), 64);
    }

    #[test]
    fn destination_rule_table_lists_subsets() {
        let rows = [
            json!({"kind": "DestinationRule", "namespace": "default", "name": "reviews", "source": "destination-rule-all.yaml",
            "resource": {"spec": {"host": "reviews", "subsets": [{"name": "v1"}, {"name": "v2"}]}}}),
        ];
        assert_eq!(
            table(Kind::Resource("DestinationRule"), &rows).render(),
            "NAMESPACE   NAME      HOST      SUBSETS   SOURCE\n\
             default     reviews   reviews   v1,v2     destination-rule-all.yaml\n"
        );
    }

    #[test]
    fn yaml_is_one_document_per_resource() {
        let rows = [
            json!({"resource": {"kind": "Gateway", "metadata": {"name": "a"}}}),
            json!({"resource": {"kind": "Gateway", "metadata": {"name": "b"}}}),
        ];
        let y = yaml(Kind::Resource("Gateway"), &rows).unwrap();
        assert_eq!(y.matches("---").count(), 1);
        assert!(y.contains("name: a") && y.contains("name: b"), "{y}");
    }
}
