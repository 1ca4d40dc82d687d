//! The catalogue: one book, exactly as the original serves it.

/// A product as listed by `/api/v1/products`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// Product id, passed to details, reviews and ratings.
    pub id: u32,
    /// Title.
    pub title: &'static str,
    /// Description, trusted HTML (rendered unescaped).
    pub description_html: &'static str,
}

/// The only book.
pub const COMEDY_OF_ERRORS: Product = Product {
    id: 0,
    title: "The Comedy of Errors",
    description_html: "<a href=\"https://en.wikipedia.org/wiki/The_Comedy_of_Errors\">Wikipedia Summary</a>: The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his shortest and one of his most farcical comedies, with a major part of the humour coming from slapstick and mistaken identity, in addition to puns and word play.",
};

/// `/api/v1/products` body, byte for byte as the original sends it (Python's
/// separators and key order), so scripts comparing text keep working.
pub fn list_json() -> Result<String, serde_json::Error> {
    let list = serde_json::json!([{
        "id": COMEDY_OF_ERRORS.id,
        "title": COMEDY_OF_ERRORS.title,
        "descriptionHtml": COMEDY_OF_ERRORS.description_html,
    }]);
    bookinfo_common::json::to_python_json(&list)
}

#[cfg(test)]
mod tests {
    #[test]
    fn list_matches_the_original_text() {
        let expected = r#"[{"id": 0, "title": "The Comedy of Errors", "descriptionHtml": "<a href=\"https://en.wikipedia.org/wiki/The_Comedy_of_Errors\">Wikipedia Summary</a>: The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his shortest and one of his most farcical comedies, with a major part of the humour coming from slapstick and mistaken identity, in addition to puns and word play."}]"#;
        assert_eq!(super::list_json().unwrap(), expected);
    }
}
