//! The HTML pages: askama templates plus the view models built from upstream JSON.
//!
//! Upstream JSON is read leniently (a missing field renders empty rather than failing
//! the page), and every upstream string is HTML-escaped by askama. The only unescaped
//! HTML is our own product description.

use askama::Template;
use serde_json::Value;

use crate::products::Product;

/// Most filled stars drawn for one review. Reviews never sends more than 5, but a
/// hostile or broken upstream must not make us render millions of SVGs.
const MAX_STARS: u64 = 100;

/// Stars on a full rating; a rating of N draws N filled and `5 - N` outline stars.
const FULL_RATING: u64 = 5;

/// `/` and `/index.html`.
#[derive(Template)]
#[template(path = "index.html")]
pub struct LandingPage {
    /// Base URL of details as configured.
    pub details_url: String,
    /// Base URL of reviews as configured.
    pub reviews_url: String,
    /// Base URL of ratings as configured.
    pub ratings_url: String,
}

/// `/productpage`.
#[derive(Template)]
#[template(path = "productpage.html")]
pub struct ProductPage<'a> {
    /// Signed-in user, if any.
    pub user: Option<&'a str>,
    /// The book.
    pub product: &'a Product,
    /// The details card.
    pub details: DetailsView,
    /// The reviews card.
    pub reviews: ReviewsView,
}

/// The details card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetailsView {
    /// details answered.
    Ok(BookDetails),
    /// details failed: the card shows the unavailable message.
    Failed,
}

/// Fields of the details table, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookDetails {
    /// `ISBN-10`.
    pub isbn10: String,
    /// `publisher`.
    pub publisher: String,
    /// `pages`.
    pub pages: String,
    /// `type` (paperback, ...).
    pub kind: String,
    /// `language`.
    pub language: String,
    /// `author`.
    pub author: String,
    /// `year`.
    pub year: String,
}

impl BookDetails {
    /// Reads the details JSON; details v2 sends `year` as a string, v1 as a number,
    /// so every field is rendered as text whatever its JSON type.
    pub fn from_json(v: &Value) -> Self {
        let field = |k: &str| text(v.get(k));
        Self {
            isbn10: field("ISBN-10"),
            publisher: field("publisher"),
            pages: field("pages"),
            kind: field("type"),
            language: field("language"),
            author: field("author"),
            year: field("year"),
        }
    }
}

/// The reviews card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewsView {
    /// reviews answered.
    Ok(ReviewList),
    /// reviews failed: the card shows the unavailable message.
    Failed,
}

/// What reviews returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewList {
    /// Pod (host) that served the reviews: shows which version answered.
    pub podname: String,
    /// Cluster name, `None` when reviews reports the string `"null"`.
    pub clustername: Option<String>,
    /// Which reviews version served the page, when it can be told.
    pub version: Option<Version>,
    /// The reviews.
    pub reviews: Vec<Review>,
}

/// One review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// Reviewer name.
    pub reviewer: String,
    /// Review text.
    pub text: String,
    /// The rating line.
    pub rating: Rating,
}

/// The rating line of a review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rating {
    /// `stars` ≥ 1: a row of stars in `color`.
    Stars(Stars),
    /// reviews could not reach ratings.
    Error(String),
    /// No rating (reviews v1) or zero stars: nothing is drawn.
    Nothing,
}

/// A row of stars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stars {
    /// Filled stars.
    pub filled: u64,
    /// Colour name from reviews (`black`, `red`), used in the `text-{color}-500` class.
    pub color: String,
}

impl Stars {
    /// Indices of filled stars, for template loops.
    pub fn filled_range(&self) -> std::ops::Range<u64> {
        0..self.filled
    }

    /// Indices of outline stars (none above a full rating).
    pub fn empty_range(&self) -> std::ops::Range<u64> {
        0..FULL_RATING.saturating_sub(self.filled)
    }

    /// Accessible description of the row.
    pub fn label(&self) -> String {
        format!("{} out of {FULL_RATING} stars", self.filled)
    }
}

/// The reviews version behind a page, for the badge in the reviews card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// No ratings.
    V1,
    /// Black stars.
    V2,
    /// Red stars.
    V3,
}

impl Version {
    /// Short name (`v1` ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
            Self::V3 => "v3",
        }
    }

    /// What this version shows, for people new to the demo.
    pub fn hint(self) -> &'static str {
        match self {
            Self::V1 => "no ratings",
            Self::V2 => "black stars",
            Self::V3 => "red stars",
        }
    }
}

impl ReviewList {
    /// Reads the reviews JSON.
    pub fn from_json(v: &Value) -> Self {
        let reviews: Vec<Review> = v
            .get("reviews")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(Review::from_json).collect())
            .unwrap_or_default();
        let podname = text(v.get("podname"));
        let clustername = Some(text(v.get("clustername"))).filter(|c| c != "null" && !c.is_empty());
        let version = version_from_podname(&podname).or_else(|| version_from_reviews(v));
        Self {
            podname,
            clustername,
            version,
            reviews,
        }
    }
}

impl Review {
    fn from_json(v: &Value) -> Self {
        Self {
            reviewer: text(v.get("reviewer")),
            text: text(v.get("text")),
            rating: Rating::from_json(v.get("rating")),
        }
    }
}

impl Rating {
    /// The original's rule: stars when `rating.stars` is truthy, else the error when
    /// there is one, else nothing. Zero stars is falsy and draws nothing.
    fn from_json(rating: Option<&Value>) -> Self {
        let Some(rating) = rating else {
            return Self::Nothing;
        };
        let stars = rating.get("stars").and_then(|s| {
            s.as_u64()
                .or_else(|| s.as_f64().map(|f| f.max(0.0).floor() as u64))
        });
        if let Some(n) = stars.filter(|n| *n > 0) {
            return Self::Stars(Stars {
                filled: n.min(MAX_STARS),
                color: text(rating.get("color")),
            });
        }
        match rating.get("error") {
            Some(e) if !e.is_null() && e != "" => Self::Error(text(Some(e))),
            _ => Self::Nothing,
        }
    }
}

/// `reviews-v2-5b64f47978-x9z7k` → v2.
fn version_from_podname(podname: &str) -> Option<Version> {
    let rest = &podname[podname.find("reviews-v")? + "reviews-v".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    match digits.as_str() {
        "1" => Some(Version::V1),
        "2" => Some(Version::V2),
        "3" => Some(Version::V3),
        _ => None,
    }
}

/// Guess from the content when the pod name does not tell: v1 sends no `rating`
/// keys, v2 rates in black, v3 in red.
fn version_from_reviews(v: &Value) -> Option<Version> {
    let reviews = v.get("reviews")?.as_array()?;
    if reviews.is_empty() {
        return None;
    }
    if reviews.iter().all(|r| r.get("rating").is_none()) {
        return Some(Version::V1);
    }
    let color = reviews
        .iter()
        .find_map(|r| r.get("rating")?.get("color")?.as_str())?;
    match color {
        "black" => Some(Version::V2),
        "red" => Some(Version::V3),
        _ => None,
    }
}

/// A JSON value as display text: strings as-is, numbers and booleans printed, null
/// and missing values empty.
fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ratings_follow_the_truthiness_rule() {
        let r = |v: Value| Rating::from_json(Some(&v));
        assert_eq!(
            r(json!({"stars": 5, "color": "black"})),
            Rating::Stars(Stars {
                filled: 5,
                color: "black".into()
            })
        );
        assert_eq!(r(json!({"stars": 0, "color": "red"})), Rating::Nothing);
        assert_eq!(
            r(json!({"error": "Ratings service is currently unavailable"})),
            Rating::Error("Ratings service is currently unavailable".into())
        );
        assert_eq!(
            r(json!({"stars": 1_000_000, "color": "red"})),
            Rating::Stars(Stars {
                filled: MAX_STARS,
                color: "red".into()
            })
        );
        assert_eq!(Rating::from_json(None), Rating::Nothing);
        let seven = Stars {
            filled: 7,
            color: "red".into(),
        };
        assert_eq!(
            (seven.filled_range().count(), seven.empty_range().count()),
            (7, 0)
        );
        let four = Stars {
            filled: 4,
            color: "black".into(),
        };
        assert_eq!(
            (four.filled_range().count(), four.empty_range().count()),
            (4, 1)
        );
    }

    #[test]
    fn version_comes_from_the_pod_name_or_the_colours() {
        let list = |v: Value| ReviewList::from_json(&v).version;
        assert_eq!(
            list(json!({"podname": "reviews-v3-7d99fd7f58-abcde", "reviews": []})),
            Some(Version::V3)
        );
        assert_eq!(
            list(json!({"podname": "laptop", "reviews": [{"reviewer": "a", "text": "b"}]})),
            Some(Version::V1)
        );
        assert_eq!(
            list(
                json!({"podname": "laptop", "reviews": [{"rating": {"error": "x"}}, {"rating": {"stars": 4, "color": "red"}}]})
            ),
            Some(Version::V3)
        );
        assert_eq!(
            list(json!({"podname": "reviews-v9-x", "reviews": []})),
            None
        );
    }

    #[test]
    fn clustername_null_is_hidden_and_fields_render_as_text() {
        let l = ReviewList::from_json(&json!({"podname": "p", "clustername": "null"}));
        assert_eq!(l.clustername, None);
        let l = ReviewList::from_json(&json!({"podname": "p", "clustername": "east"}));
        assert_eq!(l.clustername.as_deref(), Some("east"));
        let d = BookDetails::from_json(&json!({"pages": 200, "year": "1595", "publisher": null}));
        assert_eq!(
            (d.pages.as_str(), d.year.as_str(), d.publisher.as_str()),
            ("200", "1595", "")
        );
    }
}
