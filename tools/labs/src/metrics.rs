//! Just enough of the Prometheus text format to read what `curl .../stats/prometheus`
//! printed: sample lines `name{label="value",...} value`, summed over a label selector.

/// Parses `name{a="x",b="y"}` (or a bare name) into its name and label pairs.
pub fn parse_selector(s: &str) -> Result<(String, Vec<(String, String)>), String> {
    let s = s.trim();
    let (name, labels) = match s.split_once('{') {
        Some((name, rest)) => {
            let inner = rest
                .strip_suffix('}')
                .ok_or_else(|| "the labels do not end with }".to_owned())?;
            (name, labels(inner)?)
        }
        None => (s, Vec::new()),
    };
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    if !valid {
        return Err(format!("{name:?} is not a metric name"));
    }
    Ok((name.to_owned(), labels))
}

/// `a="x",b="y"` with `\"`, `\\` and `\n` escapes in the values.
fn labels(inner: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("label {rest:?} has no ="))?;
        let body = after.trim_start().strip_prefix('"').ok_or_else(|| {
            format!(
                "the value of label {:?} is not in double quotes",
                key.trim()
            )
        })?;
        let mut value = String::new();
        let mut end = None;
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = Some(i);
                    break;
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => break,
                },
                c => value.push(c),
            }
        }
        let end =
            end.ok_or_else(|| format!("the value of label {:?} is not closed", key.trim()))?;
        out.push((key.trim().to_owned(), value));
        rest = body[end + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Ok(out)
}

/// Prints a selector back, as written in a lab.
pub fn selector(name: &str, labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return name.to_owned();
    }
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{name}{{{}}}", pairs.join(","))
}

/// The sum of every sample named `name` that has at least `want`'s labels; `None` when no
/// sample matches. Lines that are not samples (comments, other output) are skipped.
pub fn sum(text: &str, name: &str, want: &[(String, String)]) -> Option<f64> {
    let mut total = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        let Some((sample, value)) = split_sample(line) else {
            continue;
        };
        let Ok((n, have)) = parse_selector(sample) else {
            continue;
        };
        if n != name || !want.iter().all(|w| have.contains(w)) {
            continue;
        }
        if let Ok(v) = value.parse::<f64>() {
            *total.get_or_insert(0.0) += v;
        }
    }
    total
}

/// `name{...} 12 [timestamp]` into the selector and the value.
fn split_sample(line: &str) -> Option<(&str, &str)> {
    let end = match line.rfind('}') {
        Some(i) => i + 1,
        None => line.find(char::is_whitespace)?,
    };
    let value = line[end..].split_whitespace().next()?;
    Some((&line[..end], value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn selectors_round_trip() {
        let (name, labels) =
            parse_selector("istio_requests_total{a=\"x\", b=\"y \\\"z\\\"\"}").unwrap();
        assert_eq!(name, "istio_requests_total");
        assert_eq!(labels, [pair("a", "x"), pair("b", "y \"z\"")]);
        assert_eq!(
            selector(&name, &labels[..1]),
            "istio_requests_total{a=\"x\"}"
        );
        assert_eq!(parse_selector("up").unwrap(), ("up".to_owned(), vec![]));
        for bad in ["", "a b", "x{a=1}", "x{a=\"1\"", "x{a}"] {
            assert!(parse_selector(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sums_skip_comments_other_lines_and_other_series() {
        let text = "# HELP x\nsome other output\nx{a=\"1\",b=\"2\"} 3\nx{a=\"1\"} 4 1700000000\nxy{a=\"1\"} 100\nx 5\n";
        assert_eq!(sum(text, "x", &[pair("a", "1")]), Some(7.0));
        assert_eq!(sum(text, "x", &[]), Some(12.0));
        assert_eq!(sum(text, "x", &[pair("a", "2")]), None);
    }
}
