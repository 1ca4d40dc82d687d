//! The per-request log (`loadgen --outcomes FILE`): one line per request, for analyses that
//! need finer than the per-second series, such as attributing failures to faults injected
//! at known instants and timing the first good answer after each (`soak-report`).
//!
//! JSON Lines. The first line is a [`LogHeader`] (the wall-clock start, the mix's entry
//! names and degraded texts); each further line is one request as an array
//! `[intended_us, sent_us, done_us, entry, answer, degraded_texts]`: microseconds since the
//! start, the mix entry's index, the answer (`"200"`, an error kind such as `"connect"`,
//! or `"dropped"`) and the bit set of degraded texts found (0 for none).

use std::io::Write;

use serde::{Deserialize, Serialize};

use super::stats::ErrorKind;

/// What became of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A response with this status and no degraded text.
    Status(u16),
    /// A 200 response containing degraded texts (bit `i`: text `i` of the mix).
    Degraded { status: u16, texts: u32 },
    /// No response.
    Error(ErrorKind),
    /// Never sent: too late when a connection freed up (open model).
    Dropped,
}

impl Answer {
    /// A 200 answer with no degraded text.
    pub fn is_good(self) -> bool {
        self == Answer::Status(200)
    }

    /// Not a 200 response: another status, no response, or never sent.
    pub fn is_failed(self) -> bool {
        match self {
            Answer::Status(code) | Answer::Degraded { status: code, .. } => code != 200,
            Answer::Error(_) | Answer::Dropped => true,
        }
    }

    /// The degraded texts found in a 200 answer (0 for none).
    pub fn degraded_texts(self) -> u32 {
        match self {
            Answer::Degraded { status: 200, texts } => texts,
            _ => 0,
        }
    }

    /// `200`, `503`, an error kind (`connect`), or `dropped`.
    pub fn label(self) -> String {
        match self {
            Answer::Status(code) | Answer::Degraded { status: code, .. } => code.to_string(),
            Answer::Error(kind) => kind.as_str().to_string(),
            Answer::Dropped => "dropped".to_string(),
        }
    }

    fn parse(label: &str, texts: u32) -> Option<Self> {
        let kinds = [
            ErrorKind::Connect,
            ErrorKind::Timeout,
            ErrorKind::Io,
            ErrorKind::Protocol,
            ErrorKind::Login,
        ];
        if label == "dropped" {
            return Some(Answer::Dropped);
        }
        if let Some(kind) = kinds.into_iter().find(|k| k.as_str() == label) {
            return Some(Answer::Error(kind));
        }
        let status = label.parse::<u16>().ok()?;
        Some(if texts == 0 {
            Answer::Status(status)
        } else {
            Answer::Degraded { status, texts }
        })
    }
}

/// One request, times in microseconds since the start of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutcomeRecord {
    /// When the schedule wanted it sent.
    pub intended_us: u64,
    /// When it went on the wire (for a dropped request: when it was dropped).
    pub sent_us: u64,
    /// When the answer was complete, or the request failed or was dropped.
    pub done_us: u64,
    /// Index of the mix entry.
    pub entry: u16,
    pub answer: Answer,
}

/// The first line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogHeader {
    /// Wall-clock time of the run's start, milliseconds since the Unix epoch.
    pub start_unix_ms: u64,
    /// Names of the mix entries, by index.
    pub entries: Vec<String>,
    /// The degraded texts, by bit.
    pub degraded_texts: Vec<String>,
}

/// A log line as JSON.
type Line = (u64, u64, u64, u16, String, u32);

/// Writes the log.
pub fn write(
    out: &mut impl Write,
    header: &LogHeader,
    records: &[OutcomeRecord],
) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, header)?;
    out.write_all(b"\n")?;
    for r in records {
        let line: Line = (
            r.intended_us,
            r.sent_us,
            r.done_us,
            r.entry,
            r.answer.label(),
            r.answer.degraded_texts(),
        );
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Why a log could not be read; names the line.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the outcome log is empty (no header line)")]
    Empty,
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
}

/// Parses a whole log.
pub fn read(text: &str) -> Result<(LogHeader, Vec<OutcomeRecord>), ReadError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, first) = lines.next().ok_or(ReadError::Empty)?;
    let header: LogHeader = serde_json::from_str(first).map_err(|e| ReadError::Line {
        line: 1,
        reason: format!("not a loadgen outcome log header: {e}"),
    })?;
    let mut records = Vec::new();
    for (i, line) in lines {
        let bad = |reason: String| ReadError::Line {
            line: i + 1,
            reason,
        };
        let (intended_us, sent_us, done_us, entry, label, texts): Line =
            serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        let answer =
            Answer::parse(&label, texts).ok_or_else(|| bad(format!("unknown answer {label:?}")))?;
        records.push(OutcomeRecord {
            intended_us,
            sent_us,
            done_us,
            entry,
            answer,
        });
    }
    Ok((header, records))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors_name_the_line() {
        let header = LogHeader {
            start_unix_ms: 1_700_000_000_000,
            entries: vec!["productpage".into()],
            degraded_texts: vec!["Error fetching product details".into()],
        };
        let answers = [
            Answer::Status(200),
            Answer::Status(503),
            Answer::Degraded {
                status: 200,
                texts: 1,
            },
            Answer::Error(ErrorKind::Connect),
            Answer::Dropped,
        ];
        let records: Vec<OutcomeRecord> = answers
            .iter()
            .enumerate()
            .map(|(i, a)| OutcomeRecord {
                intended_us: i as u64 * 10,
                sent_us: i as u64 * 10 + 1,
                done_us: i as u64 * 10 + 5,
                entry: 0,
                answer: *a,
            })
            .collect();
        let mut out = Vec::new();
        write(&mut out, &header, &records).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.lines().nth(2).unwrap() == r#"[10,11,15,0,"503",0]"#,
            "{text}"
        );
        let (h, r) = read(&text).unwrap();
        assert_eq!((h, r), (header, records));
        assert!(answers[0].is_good() && !answers[2].is_good());
        let failed: Vec<bool> = answers.iter().map(|a| a.is_failed()).collect();
        assert_eq!(failed, [false, true, false, true, true]);

        assert!(matches!(read(""), Err(ReadError::Empty)));
        let e = read("{}").unwrap_err().to_string();
        assert!(
            e.starts_with("line 1: not a loadgen outcome log header"),
            "{e}"
        );
        let bad = format!("{}\n[1,2,3,0,\"teapot\",0]\n", text.lines().next().unwrap());
        let e = read(&bad).unwrap_err().to_string();
        assert_eq!(e, "line 2: unknown answer \"teapot\"");
    }
}
