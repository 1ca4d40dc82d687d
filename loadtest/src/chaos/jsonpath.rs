//! A small JSONPath subset for `jsonpath` tolerances: `$`, `.name`, `['name']`, `[n]`
//! (negative counts from the end), `[*]` / `.*` and recursive descent `..name` / `..*`.
//! Filter expressions are refused with a clear error rather than silently mis-evaluated.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Child(String),
    Index(i64),
    Wildcard,
    Descend(Option<String>),
}

/// Why a JSONPath was refused: what is wrong, with the path as written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JsonPathError {
    #[error("JSONPath {0:?} must start with '$'")]
    NoRoot(String),
    #[error("JSONPath {0:?}: '..' needs a name or '*'")]
    DescendWithoutName(String),
    #[error("JSONPath {0:?}: empty name after '.'")]
    EmptyName(String),
    #[error("JSONPath {0:?}: '[' without ']'")]
    Unclosed(String),
    #[error("JSONPath {0:?}: filter and script expressions are not supported")]
    Filter(String),
    #[error("JSONPath {text:?}: [{inner}] is not an index, '*' or a quoted name")]
    Index { text: String, inner: String },
    #[error("JSONPath {text:?}: unexpected {c:?}")]
    Unexpected { text: String, c: char },
}

/// A compiled path.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    segments: Vec<Segment>,
}

impl JsonPath {
    /// Compiles `text`; the error says what is wrong and where.
    pub fn parse(text: &str) -> Result<Self, JsonPathError> {
        let chars: Vec<char> = text.trim().chars().collect();
        if chars.first() != Some(&'$') {
            return Err(JsonPathError::NoRoot(text.to_string()));
        }
        let mut segments = Vec::new();
        let mut i = 1;
        let name_end = |from: usize| {
            let mut j = from;
            while j < chars.len() && chars[j] != '.' && chars[j] != '[' {
                j += 1;
            }
            j
        };
        while i < chars.len() {
            match chars[i] {
                '.' if chars.get(i + 1) == Some(&'.') => {
                    let end = name_end(i + 2);
                    let name: String = chars[i + 2..end].iter().collect();
                    if name.is_empty() {
                        return Err(JsonPathError::DescendWithoutName(text.to_string()));
                    }
                    segments.push(Segment::Descend((name != "*").then_some(name)));
                    i = end;
                }
                '.' => {
                    let end = name_end(i + 1);
                    let name: String = chars[i + 1..end].iter().collect();
                    match name.as_str() {
                        "" => return Err(JsonPathError::EmptyName(text.to_string())),
                        "*" => segments.push(Segment::Wildcard),
                        _ => segments.push(Segment::Child(name)),
                    }
                    i = end;
                }
                '[' => {
                    let close = chars[i..]
                        .iter()
                        .position(|&c| c == ']')
                        .map(|p| p + i)
                        .ok_or_else(|| JsonPathError::Unclosed(text.to_string()))?;
                    let inner: String = chars[i + 1..close].iter().collect();
                    let inner = inner.trim();
                    if inner == "*" {
                        segments.push(Segment::Wildcard);
                    } else if inner.starts_with('?') || inner.starts_with('(') {
                        return Err(JsonPathError::Filter(text.to_string()));
                    } else if let Some(quoted) = inner
                        .strip_prefix('\'')
                        .and_then(|s| s.strip_suffix('\''))
                        .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                    {
                        segments.push(Segment::Child(quoted.to_string()));
                    } else {
                        let n: i64 = inner.parse().map_err(|_| JsonPathError::Index {
                            text: text.to_string(),
                            inner: inner.to_string(),
                        })?;
                        segments.push(Segment::Index(n));
                    }
                    i = close + 1;
                }
                c => {
                    return Err(JsonPathError::Unexpected {
                        text: text.to_string(),
                        c,
                    });
                }
            }
        }
        Ok(JsonPath { segments })
    }

    /// Every value the path matches, in document order.
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        let mut current = vec![root];
        for segment in &self.segments {
            let mut next = Vec::new();
            for v in current {
                match segment {
                    Segment::Child(name) => next.extend(v.get(name.as_str())),
                    Segment::Index(n) => {
                        if let Value::Array(items) = v {
                            let len = items.len() as i64;
                            let at = if *n < 0 { len + n } else { *n };
                            if (0..len).contains(&at) {
                                next.push(&items[at as usize]);
                            }
                        }
                    }
                    Segment::Wildcard => next.extend(children(v)),
                    Segment::Descend(name) => descend(v, name.as_deref(), &mut next),
                }
            }
            current = next;
        }
        current
    }
}

fn children(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        Value::Object(map) => map.values().collect(),
        _ => Vec::new(),
    }
}

fn descend<'a>(v: &'a Value, name: Option<&str>, out: &mut Vec<&'a Value>) {
    match name {
        Some(n) => out.extend(v.get(n).filter(|_| v.is_object())),
        None => out.extend(children(v)),
    }
    for child in children(v) {
        descend(child, name, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn find(path: &str, v: &Value) -> Vec<Value> {
        JsonPath::parse(path)
            .unwrap()
            .find(v)
            .into_iter()
            .cloned()
            .collect()
    }

    #[test]
    fn children_indexes_and_wildcards() {
        let doc = json!({"a": {"b": [1, 2, 3]}, "c": "x"});
        assert_eq!(find("$.a.b[0]", &doc), vec![json!(1)]);
        assert_eq!(find("$.a.b[-1]", &doc), vec![json!(3)]);
        assert_eq!(
            find("$['a']['b'][*]", &doc),
            vec![json!(1), json!(2), json!(3)]
        );
        assert_eq!(find("$.c", &doc), vec![json!("x")]);
        assert!(find("$.missing", &doc).is_empty());
        assert_eq!(find("$", &doc), vec![doc.clone()]);
    }

    #[test]
    fn recursive_descent_finds_nested_names() {
        let doc = json!({"reviews": [{"rating": {"stars": 5}}, {"rating": {"stars": 4}}]});
        assert_eq!(find("$..stars", &doc), vec![json!(5), json!(4)]);
    }

    #[test]
    fn bad_paths_are_explained() {
        assert!(
            JsonPath::parse("a.b")
                .unwrap_err()
                .to_string()
                .contains("must start with '$'")
        );
        assert!(
            JsonPath::parse("$[?(@.a)]")
                .unwrap_err()
                .to_string()
                .contains("not supported")
        );
        assert!(
            JsonPath::parse("$[x]")
                .unwrap_err()
                .to_string()
                .contains("not an index")
        );
        assert!(
            JsonPath::parse("$.a[")
                .unwrap_err()
                .to_string()
                .contains("without ']'")
        );
    }
}
