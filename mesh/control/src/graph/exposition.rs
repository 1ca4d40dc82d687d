//! Just enough of the Prometheus text format to read a proxy's Istio metrics: one sample
//! per line, `name{label="value",...} number`; comments, timestamps and exemplars skipped.
//! A line that does not parse is skipped, never a reason to drop the whole scrape.

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// Metric name with its suffix (`istio_requests_total`, `..._bucket`).
    pub name: &'a str,
    /// Labels in the order written, values unescaped.
    pub labels: Vec<(&'a str, String)>,
    /// The value.
    pub value: f64,
}

impl Sample<'_> {
    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The samples of `text` whose metric name starts with `prefix` (cheap to skip the rest).
pub fn samples<'a>(text: &'a str, prefix: &'a str) -> impl Iterator<Item = Sample<'a>> + 'a {
    text.lines()
        .filter(move |line| line.starts_with(prefix))
        .filter_map(parse_line)
}

/// Parses one sample line; `None` for anything else.
pub fn parse_line(line: &str) -> Option<Sample<'_>> {
    let line = line.trim_end();
    let name_end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inner)?;
        labels = parsed;
        rest = after;
    }
    // The value, then an optional timestamp or exemplar (`# {...} 1`).
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// `k="v",k2="v2"}` → the pairs and what follows the closing brace.
fn parse_labels(mut s: &str) -> Option<(Vec<(&str, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if let Some(after) = s.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim();
        s = s[eq + 1..].strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                other => value.push(other),
            }
        };
        labels.push((key, value));
        s = &s[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reads_names_labels_and_values() {
        let s = parse_line(r#"istio_requests_total{reporter="source",response_code="200"} 21"#)
            .unwrap();
        assert_eq!(s.name, "istio_requests_total");
        assert_eq!(s.label("reporter"), Some("source"));
        assert_eq!(s.label("response_code"), Some("200"));
        assert_eq!(s.value, 21.0);
        let b = parse_line(r#"x_bucket{le="+Inf"} 3 1700000000"#).unwrap();
        assert_eq!(b.label("le"), Some("+Inf"));
        assert_eq!(b.value, 3.0);
        assert_eq!(parse_line("up 1").unwrap().value, 1.0);
    }

    #[test]
    fn unescapes_label_values() {
        let s = parse_line(r#"m{path="a\"b\\c\nd",x="}"} 1.5"#).unwrap();
        assert_eq!(s.label("path"), Some("a\"b\\c\nd"));
        assert_eq!(s.label("x"), Some("}"));
        assert_eq!(s.value, 1.5);
    }

    #[test]
    fn skips_what_is_not_a_sample() {
        for line in [
            "# TYPE istio_requests_total counter",
            "",
            "m{a=\"unterminated} 1",
            "m{a=\"1\"}",
            "m{a=\"1\"} notanumber",
            "m{a} 1",
        ] {
            assert_eq!(parse_line(line), None, "{line:?}");
        }
        let text = "# HELP x\nistio_a{r=\"1\"} 1\nother 2\nistio_b 3\n";
        let names: Vec<_> = samples(text, "istio_").map(|s| s.name).collect();
        assert_eq!(names, ["istio_a", "istio_b"]);
    }
}
