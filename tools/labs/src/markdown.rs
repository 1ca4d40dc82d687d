//! Reads a lab's README: its title, and its steps in order. A step is a fenced command
//! block (`sh` or `bash`) and the `expect` block that follows it, if any.
//!
//! The info string after the language says what kind of step it is:
//! `sh` runs as written, `sh up` is the mesh the student starts in a second terminal
//! (the runner starts it on its own ports), `sh env` sets the variables the student
//! types (the runner sets them for its ports), `sh cleanup` runs at the end even when a
//! step failed (it stops what the lab started), and `sh manual` is shown but never run.
//! Fences may be indented (inside a list); their content loses that indentation.

use crate::expect::{Expect, ParseError};

/// What a command block is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Runs as written.
    Run,
    /// `meshctl up ...`, which the student runs in a second terminal.
    Up,
    /// `export NAME=value` lines naming the student's ports.
    Env,
    /// Shown to the student, never run (a browser step, Ctrl-C).
    Manual,
    /// Runs after the last step, and also after a failed one.
    Cleanup,
}

/// One step of a lab.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// 1-based, in README order.
    pub number: usize,
    /// The nearest heading above it.
    pub heading: String,
    /// README line of the opening fence.
    pub line: usize,
    /// What it is for.
    pub kind: Kind,
    /// The commands.
    pub script: String,
    /// What the `expect` block after it states (empty: exit 0).
    pub expect: Expect,
}

/// A parsed README.
#[derive(Debug, Clone, PartialEq)]
pub struct Lab {
    /// The first `# ` heading.
    pub title: String,
    /// Every step, in order.
    pub steps: Vec<Step>,
}

/// Why a README is not a runnable lab.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabError {
    /// A line of an `expect` block.
    #[error(transparent)]
    Expect(#[from] ParseError),
    /// A structural problem.
    #[error("line {line}: {message}")]
    Structure {
        /// README line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// A fenced block as found.
struct Fence {
    info: String,
    body: String,
    /// Line of the opening fence (1-based).
    line: usize,
}

/// Every fenced block and every heading, in order.
enum Item {
    Heading(String),
    Block(Fence),
}

fn items(text: &str) -> Result<Vec<Item>, LabError> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, raw)) = lines.next() {
        let indent = raw.len() - raw.trim_start().len();
        let line = raw.trim_start();
        let Some(marker) = fence_marker(line) else {
            if let Some(h) = line.strip_prefix('#') {
                let title = h.trim_start_matches('#');
                if title.starts_with(' ') {
                    out.push(Item::Heading(title.trim().to_owned()));
                }
            }
            continue;
        };
        let info = line[marker.len()..].trim().to_owned();
        let mut body = String::new();
        let mut closed = false;
        for (_, inner) in lines.by_ref() {
            let trimmed = inner.trim_start();
            if fence_marker(trimmed).is_some_and(|m| m.starts_with(marker) && trimmed.trim() == m) {
                closed = true;
                break;
            }
            let strip = inner.len() - trimmed.len();
            body.push_str(&inner[strip.min(indent)..]);
            body.push('\n');
        }
        if !closed {
            return Err(LabError::Structure {
                line: i + 1,
                message: "this fenced block is never closed".to_owned(),
            });
        }
        out.push(Item::Block(Fence {
            info,
            body,
            line: i + 1,
        }));
    }
    Ok(out)
}

/// The fence (three or more backticks or tildes) a line opens with.
fn fence_marker(line: &str) -> Option<&str> {
    for c in ['`', '~'] {
        let n = line.chars().take_while(|x| *x == c).count();
        if n >= 3 {
            return Some(&line[..n]);
        }
    }
    None
}

/// Parses a README.
pub fn parse(text: &str) -> Result<Lab, LabError> {
    let mut title = None;
    let mut heading = String::new();
    let mut steps: Vec<Step> = Vec::new();
    // Whether the last fenced block was a command block still open for an `expect`.
    let mut open = false;
    for item in items(text)? {
        let fence = match item {
            Item::Heading(h) => {
                title.get_or_insert_with(|| h.clone());
                heading = h;
                continue;
            }
            Item::Block(f) => f,
        };
        let mut words = fence.info.split_whitespace();
        let lang = words.next().unwrap_or("");
        let attrs: Vec<&str> = words.collect();
        match lang {
            "expect" => {
                let step =
                    steps
                        .last_mut()
                        .filter(|_| open)
                        .ok_or_else(|| LabError::Structure {
                            line: fence.line,
                            message: "an expect block must follow a command block (sh or bash)"
                                .to_owned(),
                        })?;
                if step.kind == Kind::Manual {
                    return Err(LabError::Structure {
                        line: fence.line,
                        message: "a manual step is never run, so it cannot have expectations"
                            .to_owned(),
                    });
                }
                step.expect = Expect::parse(&fence.body, fence.line + 1)?;
                open = false;
            }
            "sh" | "bash" => {
                let kind = match attrs.as_slice() {
                    [] => Kind::Run,
                    ["up"] => Kind::Up,
                    ["env"] => Kind::Env,
                    ["manual"] => Kind::Manual,
                    ["cleanup"] => Kind::Cleanup,
                    _ => {
                        return Err(LabError::Structure {
                            line: fence.line,
                            message: format!(
                                "unknown step kind {:?}: expected nothing, up, env, cleanup or manual",
                                attrs.join(" ")
                            ),
                        });
                    }
                };
                if kind == Kind::Up && up_args(&fence.body).is_none() {
                    return Err(LabError::Structure {
                        line: fence.line,
                        message: "an `up` step must be one `meshctl up [OPTIONS]` line".to_owned(),
                    });
                }
                steps.push(Step {
                    number: steps.len() + 1,
                    heading: heading.clone(),
                    line: fence.line,
                    kind,
                    script: fence.body,
                    expect: Expect::default(),
                });
                open = true;
            }
            // Output samples, YAML, text: for the student to read.
            _ => open = false,
        }
    }
    let title = title.ok_or(LabError::Structure {
        line: 1,
        message: "no `# ` title".to_owned(),
    })?;
    if !steps.iter().any(|s| s.kind == Kind::Up) {
        return Err(LabError::Structure {
            line: 1,
            message: "no `sh up` step: every lab starts its own `meshctl up`".to_owned(),
        });
    }
    Ok(Lab { title, steps })
}

/// The options of the `meshctl up` line of an `up` step (comments and blank lines
/// aside), or `None` if the block is anything else.
pub fn up_args(script: &str) -> Option<Vec<String>> {
    let mut commands = script
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let line = commands.next()?;
    if commands.next().is_some() {
        return None;
    }
    let mut words = line.split_whitespace();
    (words.next()? == "meshctl" && words.next()? == "up")
        .then(|| words.map(str::to_owned).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect::Check;

    const LAB: &str = r#"# Lab 99: a test

Some prose.

## Before you begin

In a second terminal:

```sh up
# the whole mesh
meshctl up --workloads productpage,details,reviews-v1,ratings
```

```sh env
export GATEWAY_URL=127.0.0.1:8080
```

## Look at the page

1. Fetch it:

   ```sh
   curl -s "http://$GATEWAY_URL/productpage"
   ```

   ```expect
   contains "Book Details"
   stars none
   ```

```text
sample output, not run
```

````bash
echo '```'
````

```sh manual
open http://127.0.0.1:8080/productpage
```

```sh cleanup
rm -f cookies.txt
```
"#;

    #[test]
    fn steps_come_in_order_with_their_headings_and_expectations() {
        let lab = parse(LAB).unwrap();
        assert_eq!(lab.title, "Lab 99: a test");
        let kinds: Vec<Kind> = lab.steps.iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::Up,
                Kind::Env,
                Kind::Run,
                Kind::Run,
                Kind::Manual,
                Kind::Cleanup
            ]
        );
        let fetch = &lab.steps[2];
        assert_eq!(
            (fetch.number, fetch.line, fetch.heading.as_str()),
            (3, 22, "Look at the page")
        );
        assert_eq!(
            fetch.script,
            "curl -s \"http://$GATEWAY_URL/productpage\"\n"
        );
        assert_eq!(fetch.expect.checks.len(), 2);
        assert_eq!(
            fetch.expect.checks[0],
            Check::Contains("Book Details".to_owned())
        );
        assert_eq!(
            lab.steps[3].script, "echo '```'\n",
            "a longer fence holds a shorter one"
        );
        assert_eq!(
            up_args(&lab.steps[0].script).unwrap(),
            ["--workloads", "productpage,details,reviews-v1,ratings"]
        );
    }

    #[test]
    fn structural_mistakes_are_named_with_their_line() {
        let no_up = "# t\n```sh\necho\n```\n";
        assert!(
            parse(no_up)
                .unwrap_err()
                .to_string()
                .contains("no `sh up` step")
        );
        let orphan =
            "# t\n```sh up\nmeshctl up\n```\ntext\n```text\nx\n```\n```expect\nstatus 200\n```\n";
        assert_eq!(
            parse(orphan).unwrap_err().to_string(),
            "line 9: an expect block must follow a command block (sh or bash)"
        );
        let unclosed = "# t\n```sh up\nmeshctl up\n";
        assert_eq!(
            parse(unclosed).unwrap_err().to_string(),
            "line 2: this fenced block is never closed"
        );
        let bad_up = "# t\n```sh up\nscripts/up.sh\n```\n";
        assert!(
            parse(bad_up)
                .unwrap_err()
                .to_string()
                .contains("meshctl up")
        );
        let bad_kind = "# t\n```sh later\necho\n```\n";
        assert!(
            parse(bad_kind)
                .unwrap_err()
                .to_string()
                .contains("unknown step kind")
        );
        let bad_expect = "# t\n```sh up\nmeshctl up\n```\n```expect\nstatus 200\nstatus ok\n```\n";
        assert_eq!(
            parse(bad_expect).unwrap_err().to_string(),
            "line 7: expected an HTTP status such as 200: \"status ok\""
        );
    }
}
