//! The expectations a lab states after a command block: a fenced `expect` block, one
//! expectation a line, written for the student to read in the rendered page
//! (`status 200`, `contains "Book Details"`, `stars black`, `takes 5.5s..7s`,
//! `count stars 50 ± 10 of 100`, `metric istio_requests_total{response_code="503"} > 0`),
//! and the checks of a step's outcome against them.

use std::fmt;
use std::time::Duration;

use crate::metrics;

/// What running a command block gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Everything it printed, stdout and stderr interleaved as a terminal shows them.
    pub output: String,
    /// Its exit status; `None` when it was stopped at its time limit or by a signal.
    pub exit: Option<i32>,
    /// How long it ran.
    pub took: Duration,
}

/// The star colour of a product page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stars {
    /// Reviews shown without ratings (reviews v1, or ratings failing).
    None,
    /// Black stars (reviews v2).
    Black,
    /// Red stars (reviews v3).
    Red,
}

/// A comparison of a number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Compare {
    /// `> x`
    Above(f64),
    /// `>= x`
    AtLeast(f64),
    /// `< x`
    Below(f64),
    /// `<= x`
    AtMost(f64),
    /// `== x`
    Equal(f64),
    /// `a..b`, inclusive.
    Between(f64, f64),
}

impl Compare {
    fn holds(self, v: f64) -> bool {
        match self {
            Self::Above(x) => v > x,
            Self::AtLeast(x) => v >= x,
            Self::Below(x) => v < x,
            Self::AtMost(x) => v <= x,
            Self::Equal(x) => (v - x).abs() < 1e-9,
            Self::Between(a, b) => a <= v && v <= b,
        }
    }
}

impl fmt::Display for Compare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Above(x) => write!(f, "> {x}"),
            Self::AtLeast(x) => write!(f, ">= {x}"),
            Self::Below(x) => write!(f, "< {x}"),
            Self::AtMost(x) => write!(f, "<= {x}"),
            Self::Equal(x) => write!(f, "== {x}"),
            Self::Between(a, b) => write!(f, "{a}..{b}"),
        }
    }
}

/// One expectation.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// `exit N`: the block's exit status.
    Exit(i32),
    /// `fails`: any exit status but 0.
    Fails,
    /// `status N`: the HTTP status the block printed (`curl -w "%{http_code}"` or a
    /// status line of `curl -i`).
    Status(u16),
    /// `contains "text"`.
    Contains(String),
    /// `does not contain "text"`.
    Lacks(String),
    /// `stars none|black|red`: the product page's reviews, by star colour.
    Stars(Stars),
    /// `takes 5.5s..7s`, `takes under 1s`, `takes over 2s`.
    Takes {
        /// Lower bound.
        min: Option<Duration>,
        /// Upper bound.
        max: Option<Duration>,
    },
    /// `count WORD N ± M [of T]`: how many output lines are WORD (or, for `uniq -c`
    /// output, the tally in front of WORD), and how many there are in all.
    Count {
        /// The line counted.
        word: String,
        /// The expected count.
        target: u64,
        /// How far from it the count may be.
        tolerance: u64,
        /// The expected total, if stated.
        of: Option<u64>,
    },
    /// `metric NAME{label="value",...} OP NUMBER`: the sum of the Prometheus samples the
    /// block printed with that name and at least those labels.
    Metric {
        /// Metric name.
        name: String,
        /// Labels every counted sample has.
        labels: Vec<(String, String)>,
        /// The comparison of the sum.
        compare: Compare,
    },
}

/// Every expectation of one step, and its time options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expect {
    /// The checks, in the order written.
    pub checks: Vec<Check>,
    /// `within 10s`: run the block again until every check holds, for at most this long
    /// (for what settles: a pushed route, a lease, an ejection).
    pub within: Option<Duration>,
    /// `timeout 90s`: the time limit of one run of the block (default: the runner's).
    pub timeout: Option<Duration>,
}

/// A line of an `expect` block that is not an expectation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}: {text:?}")]
pub struct ParseError {
    /// Line number inside the README.
    pub line: usize,
    /// What is wrong.
    pub message: String,
    /// The line.
    pub text: String,
}

/// The expectation words, for error messages.
const KNOWN: &str =
    "status, contains, does not contain, stars, takes, count, metric, exit, fails, within, timeout";

impl Expect {
    /// Parses the lines of an `expect` block; `first_line` is the README line of the
    /// first one. Blank lines and `#` comments are skipped.
    pub fn parse(text: &str, first_line: usize) -> Result<Self, ParseError> {
        let mut out = Self::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fail = |message: &str| ParseError {
                line: first_line + i,
                message: message.to_owned(),
                text: raw.to_owned(),
            };
            let (word, rest) = split_word(line);
            match word {
                "within" => {
                    out.within = Some(
                        duration(rest).ok_or_else(|| fail("expected a duration such as 10s"))?,
                    )
                }
                "timeout" => {
                    out.timeout = Some(
                        duration(rest).ok_or_else(|| fail("expected a duration such as 90s"))?,
                    )
                }
                _ => out
                    .checks
                    .push(parse_check(word, rest).map_err(|m| fail(&m))?),
            }
        }
        Ok(out)
    }

    /// Checks an outcome against every expectation (and, unless `exit` or `fails` says
    /// otherwise, that the block exited 0). The error lists every mismatch.
    pub fn verify(&self, outcome: &Outcome) -> Result<(), Vec<Mismatch>> {
        let mut failed = Vec::new();
        let states_exit = self
            .checks
            .iter()
            .any(|c| matches!(c, Check::Exit(_) | Check::Fails));
        if !states_exit && let Err(m) = Check::Exit(0).verify(outcome) {
            failed.push(m);
        }
        failed.extend(self.checks.iter().filter_map(|c| c.verify(outcome).err()));
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed)
        }
    }
}

/// An expectation that did not hold, and what was seen instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The expectation, as written.
    pub expected: String,
    /// What the outcome showed.
    pub saw: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {}, saw {}", self.expected, self.saw)
    }
}

fn split_word(line: &str) -> (&str, &str) {
    match line.split_once(char::is_whitespace) {
        Some((w, rest)) => (w, rest.trim()),
        None => (line, ""),
    }
}

fn parse_check(word: &str, rest: &str) -> Result<Check, String> {
    match word {
        "exit" => rest
            .parse()
            .map(Check::Exit)
            .map_err(|_| "expected an exit status such as 0".to_owned()),
        "fails" if rest.is_empty() => Ok(Check::Fails),
        "status" => match rest.parse::<u16>() {
            Ok(s) if (100..=599).contains(&s) => Ok(Check::Status(s)),
            _ => Err("expected an HTTP status such as 200".to_owned()),
        },
        "contains" => quoted_only(rest).map(Check::Contains),
        "does" => match rest.strip_prefix("not contain") {
            Some(text) => quoted_only(text.trim()).map(Check::Lacks),
            None => Err("expected `does not contain \"text\"`".to_owned()),
        },
        "stars" => match rest {
            "none" => Ok(Check::Stars(Stars::None)),
            "black" => Ok(Check::Stars(Stars::Black)),
            "red" => Ok(Check::Stars(Stars::Red)),
            _ => Err("expected stars none, black or red".to_owned()),
        },
        "takes" => takes(rest),
        "count" => count(rest),
        "metric" => metric(rest),
        _ => Err(format!("unknown expectation (known: {KNOWN})")),
    }
}

/// `"text"` with `\"` and `\\` escapes, and where it ends.
fn quoted(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[i + 1..])),
            '\\' => out.push(chars.next()?.1),
            c => out.push(c),
        }
    }
    None
}

fn quoted_only(s: &str) -> Result<String, String> {
    match quoted(s) {
        Some((text, "")) if !text.is_empty() => Ok(text),
        _ => Err("expected one non-empty text in double quotes".to_owned()),
    }
}

/// `7s`, `5.5s`, `500ms`, `2m`.
pub fn duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (number, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        return None;
    };
    let v: f64 = number.parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| Duration::from_secs_f64(v * scale))
}

fn takes(rest: &str) -> Result<Check, String> {
    let bad = || {
        "expected `takes 5.5s..7s`, `takes between 5.5s and 7s`, `takes under 1s` or `takes over 2s`".to_owned()
    };
    let (min, max) = if let Some(r) = rest
        .strip_prefix("under ")
        .or_else(|| rest.strip_prefix("less than "))
    {
        (None, Some(duration(r).ok_or_else(bad)?))
    } else if let Some(r) = rest
        .strip_prefix("over ")
        .or_else(|| rest.strip_prefix("at least "))
    {
        (Some(duration(r).ok_or_else(bad)?), None)
    } else {
        let r = rest.strip_prefix("between ").unwrap_or(rest);
        let (a, b) = r
            .split_once("..")
            .or_else(|| r.split_once(" and "))
            .ok_or_else(bad)?;
        let (a, b) = (duration(a).ok_or_else(bad)?, duration(b).ok_or_else(bad)?);
        if a > b {
            return Err("the lower bound is above the upper one".to_owned());
        }
        (Some(a), Some(b))
    };
    Ok(Check::Takes { min, max })
}

fn count(rest: &str) -> Result<Check, String> {
    let bad = || {
        "expected `count WORD N ± M of TOTAL` (WORD in double quotes if it has spaces)".to_owned()
    };
    let (word, rest) = match quoted(rest) {
        Some((w, r)) => (w, r.trim()),
        None => {
            let (w, r) = split_word(rest);
            (w.to_owned(), r)
        }
    };
    let tokens: Vec<&str> = rest.split_whitespace().collect();
    let (target, tolerance, of) = match tokens.as_slice() {
        [n] => (n, "0", None),
        [n, "of", t] => (n, "0", Some(t)),
        [n, pm, m] if is_plus_minus(pm) => (n, *m, None),
        [n, pm, m, "of", t] if is_plus_minus(pm) => (n, *m, Some(t)),
        _ => return Err(bad()),
    };
    let number = |s: &str| s.parse::<u64>().map_err(|_| bad());
    Ok(Check::Count {
        word,
        target: number(target)?,
        tolerance: number(tolerance)?,
        of: of.map(|t| number(t)).transpose()?,
    })
}

fn is_plus_minus(s: &str) -> bool {
    matches!(s, "±" | "+-" | "+/-")
}

fn metric(rest: &str) -> Result<Check, String> {
    let bad = |why: &str| {
        format!(
            "{why}: expected `metric NAME{{label=\"value\"}} > 0` (or >=, <, <=, ==, or a band 40..60)"
        )
    };
    let (selector, comparison) = match rest.find('}') {
        Some(end) => (&rest[..=end], rest[end + 1..].trim()),
        None => split_word(rest),
    };
    let (name, labels) = metrics::parse_selector(selector).map_err(|e| bad(&e))?;
    let number = |s: &str| s.trim().parse::<f64>().map_err(|_| bad("not a number"));
    let compare = if let Some((a, b)) = comparison.split_once("..") {
        Compare::Between(number(a)?, number(b)?)
    } else {
        let (op, n) = split_word(comparison);
        let n = number(n)?;
        match op {
            ">" => Compare::Above(n),
            ">=" => Compare::AtLeast(n),
            "<" => Compare::Below(n),
            "<=" => Compare::AtMost(n),
            "==" | "=" => Compare::Equal(n),
            _ => return Err(bad("unknown comparison")),
        }
    };
    Ok(Check::Metric {
        name,
        labels,
        compare,
    })
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exit(n) => write!(f, "exit {n}"),
            Self::Fails => write!(f, "fails"),
            Self::Status(s) => write!(f, "status {s}"),
            Self::Contains(t) => write!(f, "contains {t:?}"),
            Self::Lacks(t) => write!(f, "does not contain {t:?}"),
            Self::Stars(s) => write!(f, "stars {}", stars_name(*s)),
            Self::Takes { min, max } => match (min, max) {
                (Some(a), Some(b)) => write!(f, "takes {}..{}", secs(*a), secs(*b)),
                (None, Some(b)) => write!(f, "takes under {}", secs(*b)),
                (Some(a), None) => write!(f, "takes over {}", secs(*a)),
                (None, None) => write!(f, "takes any time"),
            },
            Self::Count {
                word,
                target,
                tolerance,
                of,
            } => {
                write!(f, "count {word:?} {target} ± {tolerance}")?;
                match of {
                    Some(t) => write!(f, " of {t}"),
                    None => Ok(()),
                }
            }
            Self::Metric {
                name,
                labels,
                compare,
            } => write!(f, "metric {} {compare}", metrics::selector(name, labels)),
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

fn stars_name(s: Stars) -> &'static str {
    match s {
        Stars::None => "none",
        Stars::Black => "black",
        Stars::Red => "red",
    }
}

/// The HTTP status a block printed: the last `HTTP/x NNN` status line (`curl -i`), else
/// a last line that is only a status code (`curl -w "%{http_code}"`).
pub fn http_status(output: &str) -> Option<u16> {
    let from_status_line = output.lines().rev().find_map(|l| {
        let mut parts = l.split_whitespace();
        let proto = parts.next()?;
        if !proto.starts_with("HTTP/") {
            return None;
        }
        parts.next()?.parse().ok()
    });
    from_status_line.or_else(|| {
        let last = output.lines().rev().find(|l| !l.trim().is_empty())?.trim();
        (last.len() == 3).then(|| last.parse().ok()).flatten()
    })
}

/// What a product page shows in its reviews: `None` when it is not a page with reviews
/// at all (an error page, a 403, the reviews error).
pub fn page_stars(page: &str) -> Option<Stars> {
    if !page.contains("Reviews served by:") {
        return None;
    }
    // The filled star carries this id since the Tailwind template; its colour is the
    // class of the div around it. `text-red-500` is also the class of the ratings error,
    // so red counts only with a star on the page.
    let star = page.contains("glyphicon glyphicon-star");
    Some(match (star, page.contains("text-black-500")) {
        (false, _) => Stars::None,
        (true, true) => Stars::Black,
        (true, false) => Stars::Red,
    })
}

/// Line tallies: `uniq -c` output (`  48 stars`) is read as counts, any other output as
/// one count per line. Returns (count of `word`, total).
pub fn tally(output: &str, word: &str) -> (u64, u64) {
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let counted: Option<Vec<(u64, &str)>> = lines
        .iter()
        .map(|l| {
            let (n, rest) = l.split_once(char::is_whitespace)?;
            Some((n.parse().ok()?, rest.trim()))
        })
        .collect();
    match counted {
        Some(pairs) if !pairs.is_empty() => (
            pairs
                .iter()
                .filter(|(_, w)| *w == word)
                .map(|(n, _)| n)
                .sum(),
            pairs.iter().map(|(n, _)| n).sum(),
        ),
        _ => (
            lines.iter().filter(|l| **l == word).count() as u64,
            lines.len() as u64,
        ),
    }
}

impl Check {
    /// Checks one outcome; the error says what was seen.
    pub fn verify(&self, o: &Outcome) -> Result<(), Mismatch> {
        let saw = match self {
            Self::Exit(want) => (o.exit != Some(*want)).then(|| exit_text(o.exit)),
            Self::Fails => matches!(o.exit, Some(0)).then(|| "exit 0".to_owned()),
            Self::Status(want) => match http_status(&o.output) {
                Some(s) if s == *want => None,
                Some(s) => Some(format!("status {s}")),
                None => Some(format!(
                    "no HTTP status in the output: {}",
                    excerpt(&o.output)
                )),
            },
            Self::Contains(t) => (!o.output.contains(t.as_str()))
                .then(|| format!("no {t:?} in the output: {}", excerpt(&o.output))),
            Self::Lacks(t) => o
                .output
                .contains(t.as_str())
                .then(|| format!("{t:?} in the output")),
            Self::Stars(want) => match page_stars(&o.output) {
                Some(s) if s == *want => None,
                Some(s) => Some(format!("stars {}", stars_name(s))),
                None => Some(format!("no reviews on the page: {}", excerpt(&o.output))),
            },
            Self::Takes { min, max } => {
                let short = min.is_some_and(|m| o.took < m);
                let long = max.is_some_and(|m| o.took > m);
                (short || long).then(|| format!("{:.2}s", o.took.as_secs_f64()))
            }
            Self::Count {
                word,
                target,
                tolerance,
                of,
            } => {
                let (n, total) = tally(&o.output, word);
                let off = n.abs_diff(*target) > *tolerance || of.is_some_and(|t| t != total);
                off.then(|| format!("{n} {word:?} of {total}"))
            }
            Self::Metric {
                name,
                labels,
                compare,
            } => {
                let found = metrics::sum(&o.output, name, labels);
                let value = found.unwrap_or(0.0);
                (!compare.holds(value)).then(|| match found {
                    Some(v) => format!("{v}"),
                    None => format!(
                        "no sample of {} in the output",
                        metrics::selector(name, labels)
                    ),
                })
            }
        };
        match saw {
            None => Ok(()),
            Some(saw) => Err(Mismatch {
                expected: self.to_string(),
                saw,
            }),
        }
    }
}

fn exit_text(exit: Option<i32>) -> String {
    match exit {
        Some(n) => format!("exit {n}"),
        None => "no exit status (stopped at its time limit, or killed)".to_owned(),
    }
}

/// The output, shortened to fit a failure line.
fn excerpt(output: &str) -> String {
    let flat: String = output.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.is_empty() {
        return "(nothing)".to_owned();
    }
    let mut cut: String = flat.chars().take(160).collect();
    if cut.len() < flat.len() {
        cut.push_str(" ...");
    }
    format!("{cut:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(output: &str, exit: i32, secs: f64) -> Outcome {
        Outcome {
            output: output.to_owned(),
            exit: Some(exit),
            took: Duration::from_secs_f64(secs),
        }
    }

    fn one(line: &str) -> Check {
        let e = Expect::parse(line, 1).unwrap();
        assert_eq!(e.checks.len(), 1, "{line}");
        e.checks[0].clone()
    }

    #[test]
    fn every_expectation_parses_and_prints_as_written() {
        for line in [
            "status 200",
            "contains \"Ratings service is currently unavailable\"",
            "does not contain \"glyphicon glyphicon-star\"",
            "stars black",
            "takes 5.5s..7s",
            "takes under 1s",
            "takes over 2s",
            "count \"stars\" 50 ± 10 of 100",
            "metric istio_requests_total{response_code=\"503\"} > 0",
            "exit 1",
            "fails",
        ] {
            assert_eq!(one(line).to_string(), line);
        }
        assert_eq!(one("takes between 5.5s and 7s"), one("takes 5.5s..7s"));
        assert_eq!(
            one("count stars 50 +- 10 of 100"),
            one("count \"stars\" 50 ± 10 of 100")
        );
        assert_eq!(one("takes less than 500ms").to_string(), "takes under 0.5s");
        let e = Expect::parse(
            "# wait for the push\nwithin 5s\n\ntimeout 2m\nstatus 200\n",
            10,
        )
        .unwrap();
        assert_eq!(e.within, Some(Duration::from_secs(5)));
        assert_eq!(e.timeout, Some(Duration::from_secs(120)));
        assert_eq!(e.checks, [Check::Status(200)]);
    }

    #[test]
    fn bad_lines_name_their_line_and_the_problem() {
        let e = Expect::parse("status 200\nstatus two hundred", 41).unwrap_err();
        assert_eq!(e.line, 42);
        assert_eq!(
            e.to_string(),
            "line 42: expected an HTTP status such as 200: \"status two hundred\""
        );
        for bad in [
            "shows 200",
            "contains Book Details",
            "contains \"\"",
            "takes 7s..5s",
            "takes about 6s",
            "stars blue",
            "count stars fifty",
            "metric istio_requests_total{code=503} > 0",
            "metric istio_requests_total ~ 3",
            "within soon",
            "does contain \"x\"",
        ] {
            assert!(Expect::parse(bad, 1).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_failing_check_says_what_it_expected_and_what_it_saw() {
        let e = Expect::parse("status 200\ncontains \"Book Details\"", 1).unwrap();
        let got = e
            .verify(&outcome("RBAC: access denied\n403\n", 0, 0.1))
            .unwrap_err();
        let lines: Vec<String> = got.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "expected status 200, saw status 403",
                "expected contains \"Book Details\", saw no \"Book Details\" in the output: \"RBAC: access denied 403\""
            ]
        );
    }

    #[test]
    fn the_exit_status_must_be_zero_unless_stated() {
        let none = Expect::default();
        assert!(none.verify(&outcome("", 0, 0.0)).is_ok());
        let e = none.verify(&outcome("boom", 2, 0.0)).unwrap_err();
        assert_eq!(e[0].to_string(), "expected exit 0, saw exit 2");
        let fails = Expect::parse("fails", 1).unwrap();
        assert!(fails.verify(&outcome("", 7, 0.0)).is_ok());
        assert!(fails.verify(&outcome("", 0, 0.0)).is_err());
        let timed_out = Outcome {
            exit: None,
            ..outcome("", 0, 30.0)
        };
        assert!(
            none.verify(&timed_out).unwrap_err()[0]
                .saw
                .contains("time limit")
        );
    }

    #[test]
    fn status_comes_from_curl_w_or_a_status_line() {
        assert_eq!(http_status("200\n"), Some(200));
        assert_eq!(
            http_status("HTTP/1.1 302 Found\nlocation: /productpage\n\n"),
            Some(302)
        );
        assert_eq!(http_status("<html>page</html>"), None);
        assert_eq!(http_status("1234"), None);
    }

    #[test]
    fn stars_read_the_page() {
        let reviews = "Book Reviews Reviews served by: reviews-v1";
        let black = format!(
            "{reviews} <div class=\"text-black-500\"><svg id=\"glyphicon glyphicon-star\">"
        );
        let red =
            format!("{reviews} <div class=\"text-red-500\"><svg id=\"glyphicon glyphicon-star\">");
        let error = format!(
            "{reviews} <p class=\"text-red-500\">Ratings service is currently unavailable</p>"
        );
        assert_eq!(page_stars(reviews), Some(Stars::None));
        assert_eq!(page_stars(&black), Some(Stars::Black));
        assert_eq!(page_stars(&red), Some(Stars::Red));
        assert_eq!(page_stars(&error), Some(Stars::None));
        assert_eq!(page_stars("Error fetching product reviews"), None);
        let e = one("stars red")
            .verify(&outcome(&black, 0, 0.0))
            .unwrap_err();
        assert_eq!(e.to_string(), "expected stars red, saw stars black");
        let e = one("stars none")
            .verify(&outcome("RBAC: access denied", 0, 0.0))
            .unwrap_err();
        assert_eq!(e.saw, "no reviews on the page: \"RBAC: access denied\"");
    }

    #[test]
    fn takes_is_a_band() {
        let c = one("takes 5.5s..7s");
        assert!(c.verify(&outcome("", 0, 6.1)).is_ok());
        assert_eq!(
            c.verify(&outcome("", 0, 3.02)).unwrap_err().to_string(),
            "expected takes 5.5s..7s, saw 3.02s"
        );
        assert!(c.verify(&outcome("", 0, 7.5)).is_err());
        assert!(one("takes under 1s").verify(&outcome("", 0, 0.4)).is_ok());
        assert!(one("takes over 2s").verify(&outcome("", 0, 1.9)).is_err());
    }

    #[test]
    fn counts_read_uniq_c_tallies_or_lines() {
        let uniq = "     47 none\n     53 stars\n";
        assert_eq!(tally(uniq, "stars"), (53, 100));
        assert_eq!(tally("red\nred\nnone\n", "red"), (2, 3));
        assert_eq!(tally("200\n200\n503\n", "503"), (1, 3));
        let c = one("count stars 50 ± 10 of 100");
        assert!(c.verify(&outcome(uniq, 0, 0.0)).is_ok());
        let e = c
            .verify(&outcome("     70 none\n     30 stars\n", 0, 0.0))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "expected count \"stars\" 50 ± 10 of 100, saw 30 \"stars\" of 100"
        );
        assert!(
            c.verify(&outcome("     45 none\n     50 stars\n", 0, 0.0))
                .is_err(),
            "the total is checked"
        );
        assert!(
            one("count stars 100 of 100")
                .verify(&outcome("    100 stars", 0, 0.0))
                .is_ok()
        );
    }

    #[test]
    fn metrics_sum_matching_samples() {
        let text = "# TYPE istio_requests_total counter\n\
            istio_requests_total{reporter=\"source\",response_code=\"200\",destination_service_name=\"ratings\"} 90\n\
            istio_requests_total{reporter=\"source\",response_code=\"503\",destination_service_name=\"ratings\"} 4\n\
            istio_requests_total{reporter=\"destination\",response_code=\"503\",destination_service_name=\"ratings\"} 6\n";
        let c = one("metric istio_requests_total{response_code=\"503\"} == 10");
        assert!(c.verify(&outcome(text, 0, 0.0)).is_ok());
        let c = one("metric istio_requests_total{reporter=\"source\",response_code=\"503\"} 0..2");
        assert_eq!(c.verify(&outcome(text, 0, 0.0)).unwrap_err().saw, "4");
        let c = one("metric istio_requests_total{response_code=\"500\"} > 0");
        assert_eq!(
            c.verify(&outcome(text, 0, 0.0)).unwrap_err().saw,
            "no sample of istio_requests_total{response_code=\"500\"} in the output"
        );
        assert!(
            one("metric istio_requests_total{response_code=\"500\"} == 0")
                .verify(&outcome(text, 0, 0.0))
                .is_ok()
        );
    }
}
