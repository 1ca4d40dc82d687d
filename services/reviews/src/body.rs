//! The reviews JSON, spelled exactly as the original builds it by hand.
//!
//! The original concatenates strings, so its spacing is irregular (`{"id": "0","podname"`,
//! two spaces before `"reviewer"`), `id` is a *string*, and a missing env value prints
//! as the string `"null"`. Scripts and golden files compare this text, so we produce
//! the same bytes. Unlike the original, values are JSON-escaped, so an odd pod name can
//! never break the document.

/// The two reviews of the book.
const REVIEWS: [(&str, &str); 2] = [
    (
        "Reviewer1",
        "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!",
    ),
    (
        "Reviewer2",
        "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.",
    ),
];

/// Ratings as far as reviews knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ratings {
    /// v1: ratings are not part of the answer at all.
    Disabled,
    /// Stars per reviewer; `None` means that reviewer's rating is unavailable.
    Stars([Option<i64>; 2]),
}

/// What the text says when a rating could not be had (no trailing period).
pub const RATINGS_UNAVAILABLE: &str = "Ratings service is currently unavailable";

fn quoted(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// Renders the answer for `product_id`.
pub fn render(
    product_id: i32,
    podname: &str,
    clustername: &str,
    ratings: Ratings,
    color: &str,
) -> String {
    let mut out = String::with_capacity(640);
    out.push_str(&format!(
        "{{\"id\": \"{product_id}\",\"podname\": {},\"clustername\": {},\"reviews\": [",
        quoted(podname),
        quoted(clustername)
    ));
    for (i, (reviewer, text)) in REVIEWS.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            "{{  \"reviewer\": \"{reviewer}\",  \"text\": \"{text}\""
        ));
        if let Ratings::Stars(stars) = ratings {
            match stars[i] {
                Some(n) => out.push_str(&format!(
                    ", \"rating\": {{\"stars\": {n}, \"color\": {}}}",
                    quoted(color)
                )),
                None => out.push_str(&format!(
                    ", \"rating\": {{\"error\": \"{RATINGS_UNAVAILABLE}\"}}"
                )),
            }
        }
        out.push('}');
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_text_matches_the_original_byte_for_byte() {
        let got = render(
            0,
            "reviews-v2-xxxxx",
            "null",
            Ratings::Stars([Some(5), Some(4)]),
            "black",
        );
        let want = r#"{"id": "0","podname": "reviews-v2-xxxxx","clustername": "null","reviews": [{  "reviewer": "Reviewer1",  "text": "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!", "rating": {"stars": 5, "color": "black"}},{  "reviewer": "Reviewer2",  "text": "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.", "rating": {"stars": 4, "color": "black"}}]}"#;
        assert_eq!(got, want);
        serde_json::from_str::<serde_json::Value>(&got).unwrap();
    }

    #[test]
    fn v1_has_no_rating_key_and_errors_are_per_reviewer() {
        let v1 = render(3, "p", "c", Ratings::Disabled, "black");
        assert!(!v1.contains("rating"));
        assert!(v1.starts_with(r#"{"id": "3","podname": "p","clustername": "c""#));
        let partial = render(0, "p", "null", Ratings::Stars([Some(1), None]), "red");
        let v: serde_json::Value = serde_json::from_str(&partial).unwrap();
        assert_eq!(v["reviews"][0]["rating"]["stars"], 1);
        assert_eq!(v["reviews"][1]["rating"]["error"], RATINGS_UNAVAILABLE);
        let odd = render(0, "pod\"with\\quote", "null", Ratings::Disabled, "black");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&odd).unwrap()["podname"],
            "pod\"with\\quote"
        );
    }
}
