//! Self-contained HTML report: inline CSS and SVG line charts drawn here, no scripts, no
//! external assets, sized and coloured to stay legible on a projector.

use std::fmt::Write as _;

use super::report::Report;

/// One line on a chart.
struct Series<'a> {
    name: &'a str,
    color: &'a str,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

const WIDTH: f64 = 1200.0;
const HEIGHT: f64 = 560.0;
const LEFT: f64 = 130.0;
const RIGHT: f64 = 40.0;
const TOP: f64 = 70.0;
const BOTTOM: f64 = 150.0;

/// Escapes text for HTML and SVG.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `target` ticks.
fn nice_step(max: f64, target: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / target;
    let power = 10f64.powf(raw.log10().floor());
    let unit = raw / power;
    let nice = if unit <= 1.0 {
        1.0
    } else if unit <= 2.0 {
        2.0
    } else if unit <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// Formats a tick value with as many decimals as the step needs (0.5 -> 1, 0.05 -> 2).
fn fmt_tick(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil() as usize
    };
    format!("{v:.decimals$}")
}

/// An SVG line chart over run time, with labelled axes and a legend.
fn line_chart(title: &str, y_label: &str, series: &[Series<'_>]) -> String {
    let x_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0f64, f64::max)
        .ceil();
    let y_top = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    let y_step = nice_step(y_top, 5.0);
    let y_max = ((y_top / y_step).ceil() * y_step).max(y_step);
    let x_step = nice_step(x_max, 8.0);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let sx = |x: f64| LEFT + x / x_max * plot_w;
    let sy = |y: f64| TOP + plot_h - y / y_max * plot_h;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{t}">"#,
        t = esc(title)
    );
    let _ = write!(
        svg,
        r#"<text x="{LEFT}" y="42" class="title">{}</text>"#,
        esc(title)
    );
    // Grid and y ticks.
    let mut y = 0.0;
    while y <= y_max + y_step / 2.0 {
        let py = sy(y);
        let _ = write!(
            svg,
            r#"<line x1="{LEFT}" y1="{py:.1}" x2="{x2:.1}" y2="{py:.1}" class="grid"/><text x="{tx:.1}" y="{ty:.1}" class="tick" text-anchor="end">{label}</text>"#,
            x2 = WIDTH - RIGHT,
            tx = LEFT - 12.0,
            ty = py + 8.0,
            label = fmt_tick(y, y_step)
        );
        y += y_step;
    }
    // X ticks.
    let mut x = 0.0;
    while x <= x_max + 1e-9 {
        let px = sx(x);
        let _ = write!(
            svg,
            r#"<line x1="{px:.1}" y1="{y0:.1}" x2="{px:.1}" y2="{y1:.1}" class="axis"/><text x="{px:.1}" y="{ty:.1}" class="tick" text-anchor="middle">{label}</text>"#,
            y0 = TOP + plot_h,
            y1 = TOP + plot_h + 10.0,
            ty = TOP + plot_h + 40.0,
            label = fmt_tick(x, x_step)
        );
        x += x_step;
    }
    // Axes and their labels.
    let _ = write!(
        svg,
        r#"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{yb:.1}" class="axis"/><line x1="{LEFT}" y1="{yb:.1}" x2="{xr:.1}" y2="{yb:.1}" class="axis"/>"#,
        yb = TOP + plot_h,
        xr = WIDTH - RIGHT
    );
    let _ = write!(
        svg,
        r#"<text x="{cx:.1}" y="{ly:.1}" class="label" text-anchor="middle">time since start (s)</text>"#,
        cx = LEFT + plot_w / 2.0,
        ly = TOP + plot_h + 80.0
    );
    let _ = write!(
        svg,
        r#"<text transform="translate(40 {cy:.1}) rotate(-90)" class="label" text-anchor="middle">{}</text>"#,
        esc(y_label),
        cy = TOP + plot_h / 2.0
    );
    // Lines.
    for s in series {
        if s.points.is_empty() {
            continue;
        }
        let points: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let dash = if s.dashed {
            r#" stroke-dasharray="14 8""#
        } else {
            ""
        };
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{c}" stroke-width="5"{dash} points="{p}"><title>{n}</title></polyline>"#,
            c = s.color,
            p = points.join(" "),
            n = esc(s.name)
        );
    }
    // Legend under the x-axis label.
    let mut lx = LEFT;
    let ly = HEIGHT - 22.0;
    for s in series {
        let dash = if s.dashed {
            r#" stroke-dasharray="14 8""#
        } else {
            ""
        };
        let _ = write!(
            svg,
            r#"<line x1="{lx:.1}" y1="{y:.1}" x2="{x2:.1}" y2="{y:.1}" stroke="{c}" stroke-width="6"{dash}/><text x="{tx:.1}" y="{ty:.1}" class="legend">{n}</text>"#,
            y = ly - 8.0,
            x2 = lx + 50.0,
            c = s.color,
            tx = lx + 62.0,
            ty = ly,
            n = esc(s.name)
        );
        lx += 90.0 + 15.0 * s.name.chars().count() as f64;
    }
    svg.push_str("</svg>");
    svg
}

/// Renders the whole report as one HTML document.
pub fn render(report: &Report) -> String {
    // Points sit at the middle of the second they describe.
    let series = &report.time_series;
    let at = |s: u64| s as f64 + 0.5;
    let rps = line_chart(
        "Throughput: requested vs achieved",
        "requests per second",
        &[
            Series {
                name: "achieved (responses)",
                color: "#d35400",
                dashed: false,
                points: series
                    .iter()
                    .map(|s| (at(s.second), s.achieved_rps))
                    .collect(),
            },
            Series {
                name: "requested (scheduled)",
                color: "#1f4e9c",
                dashed: true,
                points: series
                    .iter()
                    .map(|s| (at(s.second), s.requested_rps))
                    .collect(),
            },
        ],
    );
    let latency = line_chart(
        "Latency per second",
        "latency (ms)",
        &[
            Series {
                name: "p99 corrected",
                color: "#b0001e",
                dashed: false,
                points: series
                    .iter()
                    .map(|s| (at(s.second), s.corrected.p99))
                    .collect(),
            },
            Series {
                name: "p50 corrected",
                color: "#1f4e9c",
                dashed: false,
                points: series
                    .iter()
                    .map(|s| (at(s.second), s.corrected.p50))
                    .collect(),
            },
            Series {
                name: "p99 raw",
                color: "#e67e22",
                dashed: true,
                points: series.iter().map(|s| (at(s.second), s.raw.p99)).collect(),
            },
            Series {
                name: "p50 raw",
                color: "#2e8b57",
                dashed: true,
                points: series.iter().map(|s| (at(s.second), s.raw.p50)).collect(),
            },
        ],
    );
    let errors = line_chart(
        "Errors per second",
        "requests per second",
        &[
            Series {
                name: "transport errors",
                color: "#b0001e",
                dashed: false,
                points: series
                    .iter()
                    .map(|s| (at(s.second), s.errors as f64))
                    .collect(),
            },
            Series {
                name: "HTTP 5xx",
                color: "#6a1b9a",
                dashed: false,
                points: series
                    .iter()
                    .map(|s| (at(s.second), s.server_errors as f64))
                    .collect(),
            },
            Series {
                name: "dropped (late)",
                color: "#555555",
                dashed: true,
                points: series
                    .iter()
                    .map(|s| (at(s.second), s.dropped as f64))
                    .collect(),
            },
        ],
    );

    let mut rows = String::new();
    for (label, l) in [
        ("corrected", &report.latency_ms.corrected),
        ("raw", &report.latency_ms.raw),
    ] {
        let _ = write!(
            rows,
            "<tr><th>{label}</th><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr>",
            l.p50, l.p90, l.p99, l.p99_9, l.max
        );
    }
    let codes: Vec<String> = report
        .status_codes
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    let errs: Vec<String> = report
        .errors
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    let r = &report.requests;
    let requested = report
        .requested_rps
        .map_or_else(|| "closed model".to_string(), |v| format!("{v:.1}/s"));
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>loadgen report: {target}</title>
<style>
body {{ font-family: system-ui, sans-serif; font-size: 24px; color: #111; background: #fff; margin: 2rem auto; max-width: 1300px; padding: 0 1rem; }}
h1 {{ font-size: 44px; margin-bottom: .2rem; }}
.sub {{ font-size: 26px; color: #333; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: 26px; }}
th, td {{ border: 2px solid #444; padding: .3rem .8rem; text-align: right; }}
th {{ background: #eee; }}
.facts td, .facts th {{ text-align: left; }}
.chart {{ width: 100%; height: auto; margin: 1.5rem 0; border: 2px solid #ccc; }}
.chart .title {{ font-size: 34px; font-weight: 700; fill: #111; }}
.chart .tick {{ font-size: 24px; fill: #111; }}
.chart .label {{ font-size: 26px; fill: #111; font-weight: 600; }}
.chart .legend {{ font-size: 24px; fill: #111; }}
.chart .grid {{ stroke: #ddd; stroke-width: 1.5; }}
.chart .axis {{ stroke: #111; stroke-width: 3; }}
</style></head><body>
<h1>Load test report</h1>
<p class="sub">{target} &middot; {model} model &middot; {conns} connections{proto} &middot; {dur:.1} s</p>
<table class="facts">
<tr><th>requested rate</th><td>{requested}</td></tr>
<tr><th>achieved rate</th><td>{achieved:.1}/s</td></tr>
<tr><th>requests</th><td>intended {intended}, sent {started}, responses {completed}, errors {errors}, dropped (late) {dropped}</td></tr>
<tr><th>status codes</th><td>{codes}</td></tr>
<tr><th>errors by kind</th><td>{errs}</td></tr>
</table>
<table><tr><th>latency (ms)</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>{rows}</table>
<p class="sub">corrected = measured from the intended send time, so queueing behind slow responses counts; raw = from the moment the request was actually sent.</p>
{rps}
{latency}
{errors_chart}
</body></html>
"#,
        target = esc(&report.parameters.target),
        model = report.parameters.model,
        conns = report.parameters.connections,
        proto = if report.parameters.http2 {
            ", h2c"
        } else {
            ", HTTP/1.1"
        },
        dur = report.duration_s,
        achieved = report.achieved_rps,
        intended = r.intended,
        started = r.started,
        completed = r.completed,
        errors = r.errors,
        dropped = r.dropped,
        codes = esc(&if codes.is_empty() {
            "none".into()
        } else {
            codes.join(", ")
        }),
        errs = esc(&if errs.is_empty() {
            "none".into()
        } else {
            errs.join(", ")
        }),
        errors_chart = errors,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(fmt_tick(0.5, 0.5), "0.5");
        assert_eq!(fmt_tick(1.0, 0.5), "1.0");
        assert_eq!(fmt_tick(0.05, 0.05), "0.05");
        assert_eq!(fmt_tick(40.0, 20.0), "40");
        assert_eq!(nice_step(7.0, 5.0), 2.0);
        assert_eq!(nice_step(0.0, 5.0), 1.0);
        assert!((nice_step(0.3, 5.0) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn chart_has_axes_labels_and_lines() {
        let svg = line_chart(
            "T <x>",
            "latency (ms)",
            &[Series {
                name: "a",
                color: "#000",
                dashed: false,
                points: vec![(0.5, 1.0), (1.5, 3.0)],
            }],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("T &lt;x&gt;"));
        assert!(svg.contains("latency (ms)"));
        assert!(svg.contains("time since start (s)"));
        assert_eq!(svg.matches("<polyline").count(), 1);
    }
}
