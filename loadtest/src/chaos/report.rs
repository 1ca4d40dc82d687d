//! The run report, rendered from the journal alone (so `chaos report journal.json` works
//! later): one self-contained HTML page (inline CSS and SVG, no scripts) and a Markdown
//! twin. It tells the story: hypothesis, what was injected when (fault windows shaded over
//! the latency and error plots), verdict, measured values, rollbacks, time to recover,
//! error budget per phase, findings.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::experiment::{Experiment, Provider};

/// Error budget consumed per phase for every SLO tolerance with an `availability`, from the
/// load's per-second series: bad requests (transport errors and 5xx) over the number the
/// budget allows.
pub fn budgets(journal: &Value, experiment: &Experiment) -> Vec<Value> {
    let Some(h) = &experiment.hypothesis else {
        return Vec::new();
    };
    let phases = journal["phases"].as_array().cloned().unwrap_or_default();
    let loads = journal["load"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for p in &h.probes {
        let (Some(budget), Provider::LoadWindow) =
            (p.tolerance.as_ref().and_then(|t| t.budget()), &p.provider)
        else {
            continue;
        };
        let allowed = 1.0 - budget.availability / 100.0;
        let mut rows = Vec::new();
        for phase in &phases {
            let (from, to) = (num(&phase["start_s"]), num(&phase["end_s"]));
            let (mut total, mut bad) = (0u64, 0u64);
            for load in &loads {
                let start = num(&load["start_s"]);
                for s in load["series"].as_array().into_iter().flatten() {
                    let mid = start + num(&s["second"]) + 0.5;
                    if mid >= from && mid < to {
                        let errors = s["errors"].as_u64().unwrap_or(0);
                        total += s["completed"].as_u64().unwrap_or(0) + errors;
                        bad += errors + s["server_errors"].as_u64().unwrap_or(0);
                        if let Some(t) = budget.latency_ms {
                            bad += s["slower_than_ms"][t.to_string()].as_u64().unwrap_or(0);
                        }
                    }
                }
            }
            let allowed_bad = total as f64 * allowed;
            let consumed = if allowed_bad > 0.0 {
                bad as f64 / allowed_bad * 100.0
            } else if bad > 0 {
                f64::INFINITY
            } else {
                0.0
            };
            rows.push(json!({
                "phase": phase["name"], "requests": total, "bad": bad,
                "allowed_bad": (allowed_bad * 100.0).round() / 100.0,
                "consumed_pct": if consumed.is_finite() { json!((consumed * 10.0).round() / 10.0) } else { Value::Null },
            }));
        }
        let objective = match budget.latency_ms {
            Some(t) => format!("{}% under {t} ms", budget.availability),
            None => format!("{}% availability", budget.availability),
        };
        out.push(json!({"probe": p.name, "availability": budget.availability, "latency_ms": budget.latency_ms, "objective": objective, "phases": rows}));
    }
    out
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

/// The verdict in one word.
pub fn verdict(journal: &Value) -> &'static str {
    match (journal["status"].as_str(), journal["deviated"].as_bool()) {
        (Some("completed"), Some(false)) => "HELD",
        (Some("completed"), _) => "DEVIATED",
        (Some("interrupted"), _) => "INTERRUPTED",
        (Some("aborted"), _) => "ABORTED",
        _ => "FAILED",
    }
}

fn name_of(entry: &Value) -> String {
    text(&entry["activity"]["name"])
}

/// A measured value for people: metric objects as `p99_ms = 512.3, error_ratio = 0`.
fn measured_text(v: &Value) -> String {
    match v.as_object() {
        Some(map) if map.values().all(|x| x.is_number() || x.is_null()) => map
            .iter()
            .map(|(k, x)| match x.as_f64() {
                Some(n) => format!("{k} = {}", (n * 1000.0).round() / 1000.0),
                None => format!("{k} = missing"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => {
            let t = text(v);
            // Whole response bodies would drown the table.
            if t.chars().count() > 200 {
                format!("{}…", t.chars().take(200).collect::<String>())
            } else {
                t
            }
        }
    }
}

/// Probe rows of one steady-state check: (probe, expected, measured, met).
fn probe_rows(state: &Value) -> Vec<(String, String, String, bool)> {
    state["probes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let measured = if p.get("measured").is_some() {
                measured_text(&p["measured"])
            } else if let Some(e) = p["exception"].as_array().and_then(|e| e.first()) {
                format!("error: {}", text(e))
            } else {
                "—".into()
            };
            let expected = p
                .get("expected")
                .map_or_else(|| text(&p["activity"]["tolerance"]), text);
            (
                name_of(p),
                expected,
                measured,
                p["tolerance_met"] == json!(true),
            )
        })
        .collect()
}

/// Automatic findings: the sentences a presenter would say about this run.
pub fn findings(journal: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let states = &journal["steady_states"];
    if states["before"]["steady_state_met"] == json!(false) {
        out.push("The steady state did not hold before the method: the experiment did not inject anything; fix the system or the hypothesis first.".into());
    }
    let during = states["during"].as_array().cloned().unwrap_or_default();
    let missed: Vec<&Value> = during
        .iter()
        .filter(|s| s["steady_state_met"] != json!(true))
        .collect();
    if let Some(first) = missed.first() {
        out.push(format!(
            "The hypothesis was disproved during the method: {} of {} checks missed, the first at t={:.1}s.",
            missed.len(),
            during.len(),
            num(&first["offset_s"])
        ));
    }
    for (probe, expected, measured, met) in probe_rows(&states["after"]) {
        if !met {
            out.push(format!(
                "After the method, {probe} expected {expected} but measured {measured}."
            ));
        }
    }
    for f in journal["faults"].as_array().into_iter().flatten() {
        out.push(format!(
            "Fault {} ({}) was in force from t={:.1}s to t={:.1}s{}.",
            text(&f["id"]),
            text(&f["description"]),
            num(&f["start_s"]),
            num(&f["end_s"]),
            if f["removed"] == json!(true) {
                ", removed by the run"
            } else {
                ", left to its lease"
            }
        ));
    }
    let failed: Vec<String> = journal["rollbacks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["status"] != json!("succeeded"))
        .map(name_of)
        .collect();
    if !failed.is_empty() {
        out.push(format!(
            "Rollbacks failed: {}. Check the system by hand.",
            failed.join(", ")
        ));
    }
    let r = &journal["recovery"];
    if r["checked"] == json!(true) {
        if r["recovered"] == json!(true) {
            out.push(format!(
                "The steady state came back {:.1}s after the rollbacks.",
                num(&r["time_to_recover_s"])
            ));
        } else {
            out.push(format!(
                "The steady state did not come back within {:.0}s of the rollbacks.",
                num(&r["timeout_s"])
            ));
        }
    }
    for b in journal["slo_budgets"].as_array().into_iter().flatten() {
        for p in b["phases"].as_array().into_iter().flatten() {
            if p["consumed_pct"].as_f64().is_none_or(|c| c > 100.0)
                && p["bad"].as_u64().unwrap_or(0) > 0
            {
                out.push(format!(
                    "The {} phase spent more than the whole error budget of {} ({}): {} bad of {} requests.",
                    text(&p["phase"]),
                    text(&b["probe"]),
                    text(&b["objective"]),
                    p["bad"],
                    p["requests"]
                ));
            }
        }
    }
    if out.is_empty() {
        out.push("Nothing unexpected: the steady state held throughout.".into());
    }
    out
}

/// A named, coloured line of (seconds since the start, value) points.
type Series<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

const W: f64 = 900.0;
const H: f64 = 220.0;
const PAD_L: f64 = 56.0;
const PAD_R: f64 = 16.0;
const PAD_T: f64 = 24.0;
const PAD_B: f64 = 28.0;

struct Axis {
    t_max: f64,
    y_max: f64,
}

impl Axis {
    fn x(&self, t: f64) -> f64 {
        PAD_L + (t / self.t_max).clamp(0.0, 1.0) * (W - PAD_L - PAD_R)
    }
    fn y(&self, v: f64) -> f64 {
        H - PAD_B - (v / self.y_max).clamp(0.0, 1.0) * (H - PAD_T - PAD_B)
    }
}

fn nice(max: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * mag)
}

/// One SVG chart with fault windows shaded and the series drawn over time (seconds since
/// the run start).
fn chart(title: &str, unit: &str, journal: &Value, series: &[Series<'_>]) -> String {
    let t_max = num(&journal["duration"]).max(1.0);
    let y_max = nice(
        series
            .iter()
            .flat_map(|s| s.2.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let a = Axis { t_max, y_max };
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" width="100%" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = esc(title)
    );
    for p in journal["phases"].as_array().into_iter().flatten() {
        if p["name"] == json!("method") {
            let (x0, x1) = (a.x(num(&p["start_s"])), a.x(num(&p["end_s"])));
            let _ = write!(
                s,
                r#"<rect class="method-window" x="{x0:.1}" y="{PAD_T}" width="{:.1}" height="{:.1}"/>"#,
                (x1 - x0).max(0.5),
                H - PAD_T - PAD_B
            );
        }
    }
    for f in journal["faults"].as_array().into_iter().flatten() {
        let (x0, x1) = (a.x(num(&f["start_s"])), a.x(num(&f["end_s"])));
        let _ = write!(
            s,
            r#"<rect class="fault-window" x="{x0:.1}" y="{PAD_T}" width="{:.1}" height="{:.1}"><title>{}</title></rect><text class="fault-label" x="{:.1}" y="{:.1}">{}</text>"#,
            (x1 - x0).max(1.0),
            H - PAD_T - PAD_B,
            esc(&text(&f["description"])),
            x0 + 3.0,
            PAD_T + 12.0,
            esc(&text(&f["id"]))
        );
    }
    for i in 0..=4 {
        let v = y_max * f64::from(i) / 4.0;
        let y = a.y(v);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{PAD_L}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{v}</text>"#,
            W - PAD_R,
            PAD_L - 6.0,
            y + 4.0
        );
    }
    for i in 0..=5 {
        let t = t_max * f64::from(i) / 5.0;
        let _ = write!(
            s,
            r#"<text class="tick" x="{:.1}" y="{:.1}" text-anchor="middle">{t:.0}s</text>"#,
            a.x(t),
            H - 8.0
        );
    }
    let _ = write!(
        s,
        r#"<text class="unit" x="6" y="{:.1}">{}</text>"#,
        PAD_T - 10.0,
        esc(unit)
    );
    let mut legend_x = PAD_L + 8.0;
    for (name, color, points) in series {
        if points.is_empty() {
            continue;
        }
        let d: Vec<String> = points
            .iter()
            .map(|(t, v)| format!("{:.1},{:.1}", a.x(*t), a.y(*v)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline class="series" fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            d.join(" ")
        );
        let _ = write!(
            s,
            r#"<text class="legend" x="{legend_x:.1}" y="{:.1}" fill="{color}">{}</text>"#,
            H - PAD_B - 6.0,
            esc(name)
        );
        legend_x += 14.0 + 8.0 * name.len() as f64;
    }
    s.push_str("</svg>");
    s
}

fn load_series(journal: &Value, field: &dyn Fn(&Value) -> f64) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for load in journal["load"].as_array().into_iter().flatten() {
        let start = num(&load["start_s"]);
        for s in load["series"].as_array().into_iter().flatten() {
            out.push((start + num(&s["second"]) + 0.5, field(s)));
        }
    }
    out
}

fn charts(journal: &Value) -> String {
    let has_load = journal["load"].as_array().is_some_and(|l| !l.is_empty());
    if !has_load {
        // Without load there is nothing to plot but the timeline itself.
        return chart("Timeline: method and fault windows", "", journal, &[]);
    }
    let latency = chart(
        "Latency per second (corrected, ms)",
        "ms",
        journal,
        &[
            (
                "p50",
                "#2b6cb0",
                load_series(journal, &|s| num(&s["corrected"]["p50"])),
            ),
            (
                "p99",
                "#c53030",
                load_series(journal, &|s| num(&s["corrected"]["p99"])),
            ),
        ],
    );
    let traffic = chart(
        "Throughput and errors per second",
        "req/s",
        journal,
        &[
            (
                "requested",
                "#718096",
                load_series(journal, &|s| num(&s["requested_rps"])),
            ),
            (
                "achieved",
                "#2f855a",
                load_series(journal, &|s| num(&s["achieved_rps"])),
            ),
            (
                "errors+5xx",
                "#c53030",
                load_series(journal, &|s| num(&s["errors"]) + num(&s["server_errors"])),
            ),
        ],
    );
    format!("<h3>Latency</h3>{latency}<h3>Throughput and errors</h3>{traffic}")
}

fn state_table(title: &str, state: &Value) -> String {
    if state.is_null() {
        return format!("<h3>{}</h3><p class=\"muted\">not checked</p>", esc(title));
    }
    let mut s = format!(
        "<h3>{} — {}</h3><table><tr><th>probe</th><th>expected</th><th>measured</th><th>met</th></tr>",
        esc(title),
        if state["steady_state_met"] == json!(true) {
            "<span class=ok>met</span>"
        } else {
            "<span class=bad>not met</span>"
        }
    );
    for (probe, expected, measured, met) in probe_rows(state) {
        let _ = write!(
            s,
            "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
            esc(&probe),
            esc(&expected),
            esc(&measured),
            if met {
                "<span class=ok>yes</span>"
            } else {
                "<span class=bad>no</span>"
            }
        );
    }
    s.push_str("</table>");
    s
}

fn activity_table(entries: &Value) -> String {
    let mut s = String::from(
        "<table><tr><th>t (s)</th><th>activity</th><th>provider</th><th>status</th><th>duration (s)</th><th>detail</th></tr>",
    );
    for e in entries.as_array().into_iter().flatten() {
        let detail = e["exception"]
            .as_array()
            .and_then(|x| x.first())
            .map(text)
            .unwrap_or_default();
        let _ = write!(
            s,
            "<tr><td>{:.1}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            num(&e["start_offset_s"]),
            esc(&name_of(e)),
            esc(&text(&e["activity"]["provider"]["type"])),
            if e["status"] == json!("succeeded") {
                "ok"
            } else {
                "bad"
            },
            esc(&text(&e["status"])),
            text(&e["duration"]),
            esc(&detail)
        );
    }
    s.push_str("</table>");
    s
}

const STYLE: &str = "body{font:18px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#1a202c}\
h1{font-size:2rem;margin-bottom:.2rem}table{border-collapse:collapse;margin:.5rem 0 1rem;width:100%}\
td,th{border:1px solid #cbd5e0;padding:.3rem .5rem;text-align:left;vertical-align:top}th{background:#edf2f7}\
.verdict{display:inline-block;font-size:1.6rem;font-weight:700;padding:.3rem 1rem;border-radius:.4rem;color:#fff}\
.HELD{background:#2f855a}.DEVIATED,.FAILED,.ABORTED{background:#c53030}.INTERRUPTED{background:#b7791f}\
.ok{color:#2f855a;font-weight:600}.bad{color:#c53030;font-weight:600}.muted{color:#718096}\
.fault-window{fill:#c53030;fill-opacity:.15}.method-window{fill:#ecc94b;fill-opacity:.12}\
.fault-label{font-size:12px;fill:#9b2c2c}.grid{stroke:#e2e8f0}.tick,.unit{font-size:12px;fill:#4a5568}.legend{font-size:13px;font-weight:600}\
code{font-size:.85em}";

/// The HTML report.
pub fn html(journal: &Value) -> String {
    let exp = &journal["experiment"];
    let run = &journal["chaos-run"];
    let v = verdict(journal);
    let mut s = String::new();
    let _ = write!(
        s,
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>{t}</title><style>{STYLE}</style></head><body><h1>{t}</h1><p>{d}</p><p><span class=\"verdict {v}\">{v}</span></p>",
        t = esc(&text(&exp["title"])),
        d = esc(&text(&exp["description"]))
    );
    let _ = write!(
        s,
        "<table><tr><th>status</th><td>{}</td><th>deviated</th><td>{}</td></tr><tr><th>start</th><td>{}</td><th>duration</th><td>{} s</td></tr><tr><th>seed</th><td><code>{}</code></td><th>config hash</th><td><code>{}</code></td></tr><tr><th>strategies</th><td>hypothesis {}, every {} s; rollbacks {}</td><th>node</th><td>{} ({})</td></tr></table>",
        esc(&text(&journal["status"])),
        text(&journal["deviated"]),
        esc(&text(&journal["start"])),
        text(&journal["duration"]),
        text(&run["seed"]),
        esc(&text(&run["config_hash"])),
        esc(&text(&run["hypothesis_strategy"])),
        text(&run["hypothesis_frequency_s"]),
        esc(&text(&run["rollback_strategy"])),
        esc(&text(&journal["node"])),
        esc(&text(&journal["platform"]))
    );
    if journal["dry"] == json!(true) {
        s.push_str("<p><strong>Dry run:</strong> nothing was executed; this is a rehearsal of the plan.</p>");
    }
    s.push_str("<h2>Findings</h2><ul>");
    for f in findings(journal) {
        let _ = write!(s, "<li>{}</li>", esc(&f));
    }
    s.push_str("</ul>");
    let _ = write!(
        s,
        "<h2>Hypothesis: {}</h2>",
        esc(&text(&exp["steady-state-hypothesis"]["title"]))
    );
    let states = &journal["steady_states"];
    s.push_str(&state_table("Before the method", &states["before"]));
    let during = states["during"].as_array().cloned().unwrap_or_default();
    let missed = during
        .iter()
        .filter(|d| d["steady_state_met"] != json!(true))
        .count();
    let _ = write!(
        s,
        "<h3>During the method</h3><p>{} checks, {} missed.</p>",
        during.len(),
        missed
    );
    if let Some(first) = during.iter().find(|d| d["steady_state_met"] != json!(true)) {
        s.push_str(&state_table(
            &format!("First miss at t={:.1}s", num(&first["offset_s"])),
            first,
        ));
    }
    s.push_str(&state_table("After the method", &states["after"]));
    s.push_str("<h2>What happened when</h2>");
    s.push_str(&charts(journal));
    s.push_str("<p class=muted>Red bands: fault leases in force. Yellow band: the method.</p>");
    s.push_str("<h3>Method</h3>");
    s.push_str(&activity_table(&journal["run"]));
    let faults = journal["faults"].as_array().cloned().unwrap_or_default();
    if !faults.is_empty() {
        s.push_str("<h3>Fault leases</h3><table><tr><th>id</th><th>fault</th><th>from (s)</th><th>to (s)</th><th>TTL (s)</th><th>ended by</th></tr>");
        for f in &faults {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td><td>{}</td></tr>",
                esc(&text(&f["id"])),
                esc(&text(&f["description"])),
                num(&f["start_s"]),
                num(&f["end_s"]),
                text(&f["ttl_s"]),
                if f["removed"] == json!(true) {
                    "rollback"
                } else {
                    "lease expiry"
                }
            );
        }
        s.push_str("</table>");
    }
    s.push_str("<h2>Rollbacks</h2>");
    if journal["rollbacks"].as_array().is_none_or(|r| r.is_empty()) {
        s.push_str("<p class=muted>none played</p>");
    } else {
        s.push_str(&activity_table(&journal["rollbacks"]));
    }
    let r = &journal["recovery"];
    s.push_str("<h2>Recovery</h2>");
    if r["checked"] == json!(true) {
        let _ = write!(
            s,
            "<p>Time to recover: <strong>{}</strong> ({} checks).</p>",
            if r["recovered"] == json!(true) {
                format!("{:.1} s", num(&r["time_to_recover_s"]))
            } else {
                format!("not recovered within {} s", text(&r["timeout_s"]))
            },
            text(&r["attempts"])
        );
        s.push_str(&state_table(
            "Steady state after the rollbacks",
            &states["recovery"],
        ));
    } else {
        s.push_str(
            "<p class=muted>not checked (no rollbacks played, no hypothesis, or a dry run)</p>",
        );
    }
    let budgets = journal["slo_budgets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !budgets.is_empty() {
        s.push_str("<h2>Error budget per phase</h2>");
        for b in &budgets {
            let _ = write!(
                s,
                "<h3>{} ({})</h3><table><tr><th>phase</th><th>requests</th><th>bad</th><th>budget allows</th><th>budget consumed</th></tr>",
                esc(&text(&b["probe"])),
                esc(&text(&b["objective"]))
            );
            for p in b["phases"].as_array().into_iter().flatten() {
                let consumed = p["consumed_pct"]
                    .as_f64()
                    .map_or("∞".into(), |c| format!("{c:.1} %"));
                let _ = write!(
                    s,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&text(&p["phase"])),
                    p["requests"],
                    p["bad"],
                    p["allowed_bad"],
                    consumed
                );
            }
            s.push_str("</table>");
        }
    }
    s.push_str("</body></html>\n");
    s
}

/// The Markdown report.
pub fn markdown(journal: &Value) -> String {
    let exp = &journal["experiment"];
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# {}\n\n{}\n\n**Verdict: {}** (status `{}`, deviated `{}`)\n",
        text(&exp["title"]),
        text(&exp["description"]),
        verdict(journal),
        text(&journal["status"]),
        text(&journal["deviated"])
    );
    let run = &journal["chaos-run"];
    let _ = writeln!(
        s,
        "Started {}, {} s; seed `{}`, config hash `{}`.\n",
        text(&journal["start"]),
        text(&journal["duration"]),
        text(&run["seed"]),
        text(&run["config_hash"])
    );
    s.push_str("## Findings\n\n");
    for f in findings(journal) {
        let _ = writeln!(s, "- {f}");
    }
    let states = &journal["steady_states"];
    for (title, key) in [
        ("Before the method", "before"),
        ("After the method", "after"),
        ("After the rollbacks", "recovery"),
    ] {
        let _ = writeln!(s, "\n## {title}\n");
        if states[key].is_null() {
            s.push_str("not checked\n");
            continue;
        }
        s.push_str("| probe | expected | measured | met |\n|---|---|---|---|\n");
        for (probe, expected, measured, met) in probe_rows(&states[key]) {
            let _ = writeln!(
                s,
                "| {probe} | `{expected}` | `{measured}` | {} |",
                if met { "yes" } else { "**no**" }
            );
        }
    }
    s.push_str("\n## Fault windows\n\n");
    for f in journal["faults"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "- `{}` {}: t={:.1}s → t={:.1}s (TTL {} s)",
            text(&f["id"]),
            text(&f["description"]),
            num(&f["start_s"]),
            num(&f["end_s"]),
            text(&f["ttl_s"])
        );
    }
    s.push_str("\n## Method and rollbacks\n\n| t (s) | activity | status |\n|---|---|---|\n");
    for e in journal["run"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(journal["rollbacks"].as_array().into_iter().flatten())
    {
        let _ = writeln!(
            s,
            "| {:.1} | {} | {} |",
            num(&e["start_offset_s"]),
            name_of(e),
            text(&e["status"])
        );
    }
    let r = &journal["recovery"];
    if r["checked"] == json!(true) {
        let _ = writeln!(
            s,
            "\nTime to recover: {}",
            if r["recovered"] == json!(true) {
                format!("{:.1} s", num(&r["time_to_recover_s"]))
            } else {
                "not recovered".into()
            }
        );
    }
    for b in journal["slo_budgets"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "\n## Error budget: {} ({})\n\n| phase | requests | bad | consumed |\n|---|---|---|---|",
            text(&b["probe"]),
            text(&b["objective"])
        );
        for p in b["phases"].as_array().into_iter().flatten() {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                text(&p["phase"]),
                p["requests"],
                p["bad"],
                p["consumed_pct"]
                    .as_f64()
                    .map_or("∞".into(), |c| format!("{c:.1} %"))
            );
        }
    }
    s
}
