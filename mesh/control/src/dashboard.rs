//! The dashboard: one self-contained HTML page (no CDN, no library; inline SVG and a
//! little JavaScript), readable on a 1280x720 projector from the back of a room. It polls
//! the JSON API every second and shows the live service graph (`/api/v1/graph`: rates,
//! errors, p99, mTLS and version shares per edge), the faults in force counting down,
//! the routing rules and security policies, and the recent configuration changes.

use axum::response::Html;
use mesh_api::wire::RouteSummary;
use mesh_api::{CompiledRoute, RouteAction};

/// `GET /`.
pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// A route in a few words for the dashboard: what it matches, where it goes, its fault.
pub fn describe_route(route: &CompiledRoute) -> RouteSummary {
    let matches: Vec<String> = route
        .matches
        .iter()
        .map(|m| {
            let mut parts = Vec::new();
            if let Some(uri) = &m.uri {
                parts.push(format!("uri {}", string_match(uri)));
            }
            for (name, value) in &m.headers {
                parts.push(format!("{name} {}", string_match(value)));
            }
            if parts.is_empty() {
                "any".to_owned()
            } else {
                parts.join(" & ")
            }
        })
        .collect();
    let to = match &route.action {
        RouteAction::Forward(f) => f
            .destinations
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let short = d.host.split('.').next().unwrap_or(&d.host);
                let target = match &d.subset {
                    Some(s) => format!("{short} {s}"),
                    None => short.to_owned(),
                };
                format!("{target} {:.0}%", f.percent(i))
            })
            .collect::<Vec<_>>()
            .join(", "),
        RouteAction::Redirect(_) => "redirect".to_owned(),
        RouteAction::DirectResponse(_) => "direct response".to_owned(),
        RouteAction::Delegate(_) => "delegate".to_owned(),
    };
    let fault = route.fault.as_ref().map(ToString::to_string);
    RouteSummary {
        name: route.name.clone(),
        matches: if matches.is_empty() {
            "any".to_owned()
        } else {
            matches.join(" | ")
        },
        to,
        timeout: route.timeout.map(|t| format!("{t:?}")),
        fault,
        expires_at_ms: route.expires_at_ms,
    }
}

fn string_match(m: &mesh_api::StringMatch) -> String {
    if let Some(v) = &m.exact {
        format!("= {v}")
    } else if let Some(v) = &m.prefix {
        format!("^ {v}")
    } else if let Some(v) = &m.regex {
        format!("~ {}", v.as_str())
    } else {
        "present".to_owned()
    }
}

/// The page itself (`dashboard/page.html`), compiled into the binary.
const PAGE: &str = include_str!("dashboard/page.html");
