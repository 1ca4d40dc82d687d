//! The dashboard: one self-contained HTML page (no CDN, readable from the back of a room)
//! that polls the JSON API every second and shows workloads with their sync state,
//! routes per service, active faults counting down, and recent configuration errors.

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
    let fault = route.fault.as_ref().map(|f| {
        let mut parts = Vec::new();
        if let Some(d) = &f.delay {
            parts.push(format!("delay {:?} ({}%)", d.fixed_delay, d.percent));
        }
        if let Some(a) = &f.abort {
            let status = match &a.status {
                mesh_api::defaults::AbortStatus::Http(code) => code.to_string(),
                mesh_api::defaults::AbortStatus::Grpc(name) => name.clone(),
            };
            parts.push(format!("abort {status} ({}%)", a.percent));
        }
        parts.join(", ")
    });
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

const PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bookinfo-RS mesh control plane</title>
<style>
  body { font-family: system-ui, sans-serif; font-size: 22px; margin: 1em 2em; background: #fafafa; color: #222; }
  h1 { font-size: 1.6em; margin: 0 0 .3em; }
  h2 { font-size: 1.2em; margin: 1.2em 0 .4em; border-bottom: 2px solid #ccc; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid #e3e3e3; vertical-align: top; }
  th { background: #eee; }
  .ok { color: #1b7a1b; font-weight: bold; }
  .bad { color: #b00020; font-weight: bold; }
  .fault { color: #b00020; }
  .muted { color: #777; }
  code { font-size: .9em; }
</style>
</head>
<body>
<h1>Bookinfo-RS mesh control plane</h1>
<div id="summary" class="muted">loading…</div>
<h2>Workloads</h2>
<table><thead><tr><th>workload</th><th>service</th><th>labels</th><th>address</th><th>config</th><th>seen</th></tr></thead><tbody id="workloads"></tbody></table>
<h2>Active faults</h2>
<table><thead><tr><th>id</th><th>service</th><th>fault</th><th>only</th><th>remaining</th></tr></thead><tbody id="faults"></tbody></table>
<h2>Routes per service</h2>
<table><thead><tr><th>service</th><th>match</th><th>to</th><th>timeout</th><th>fault</th></tr></thead><tbody id="routes"></tbody></table>
<h2>Recent configuration errors</h2>
<div id="errors" class="muted">none</div>
<script>
"use strict";
const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
const get = (path) => fetch(path, {cache: "no-store"}).then((r) => r.json());
const rows = (id, list, cells, empty) => {
  document.getElementById(id).innerHTML = list.length
    ? list.map((x) => "<tr>" + cells(x).map((c) => "<td>" + c + "</td>").join("") + "</tr>").join("")
    : '<tr><td colspan="6" class="muted">' + empty + "</td></tr>";
};
async function refresh() {
  try {
    const [workloads, status, faults, overview] = await Promise.all([
      get("/api/v1/workloads"), get("/api/v1/proxy-status"), get("/api/v1/faults"), get("/api/v1/overview")]);
    const sync = Object.fromEntries(status.map((s) => [s.workload, s]));
    document.getElementById("summary").textContent =
      "config version " + overview.version + " · " + overview.resources + " resources · " +
      workloads.length + " workloads · " + faults.length + " active faults";
    rows("workloads", workloads, (w) => {
      const s = sync[w.name] || {};
      const cls = s.status === "SYNCED" ? "ok" : "bad";
      return [esc(w.name) + ' <span class="muted">' + esc(w.mode) + "</span>", esc(w.service),
        esc(Object.entries(w.labels || {}).map(([k, v]) => k + "=" + v).join(" ")), esc(w.address),
        '<span class="' + cls + '">' + esc(s.status || "?") + "</span> v" + esc(s.version || "-"),
        (w.age_ms / 1000).toFixed(0) + " s ago"];
    }, "no workload registered");
    rows("faults", faults, (f) => [esc(f.id), esc(f.service) + (f.subset ? " " + esc(f.subset) : ""),
      '<span class="fault">' + esc([f.delay && "delay " + f.delay.fixed_delay + " (" + f.delay.percentage + "%)",
        f.abort && "abort " + f.abort.http_status + " (" + f.abort.percentage + "%)"].filter(Boolean).join(", ")) + "</span>",
      esc(Object.entries(f.headers || {}).map(([k, v]) => k + ": " + v).join(", ") || "all requests"),
      (f.remaining_ms / 1000).toFixed(0) + " s"], "none");
    const routeRows = [];
    for (const s of overview.services) {
      s.routes.forEach((r, i) => routeRows.push([i === 0 ? "<b>" + esc(s.host.split(".")[0]) + "</b>" : "",
        esc(r.match), esc(r.to), esc(r.timeout || "none"),
        r.fault ? '<span class="fault">' + esc(r.fault) + "</span>" : ""]));
    }
    rows("routes", routeRows, (r) => r, "no services");
    const errors = overview.errors.slice(-5).reverse();
    document.getElementById("errors").innerHTML = errors.length
      ? errors.map((e) => '<p><span class="bad">' + esc(new Date(e.at_ms).toLocaleTimeString()) + " " + esc(e.change) +
        "</span><br><code>" + e.errors.map(esc).join("<br>") + "</code></p>").join("")
      : "none";
  } catch (err) {
    document.getElementById("summary").textContent = "control plane unreachable: " + err;
  }
}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
"#;
