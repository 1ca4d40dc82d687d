//! The book and its JSON.

use serde_json::{Map, Value};

use crate::id::ProductId;

/// Details of a book, in the order the JSON keys are written.
#[derive(Debug, Clone, PartialEq)]
pub struct BookDetails {
    /// First author.
    pub author: Value,
    /// Publication year: a number for the built-in book, a string from the books API.
    pub year: Value,
    /// `paperback` or `unknown`.
    pub kind: Value,
    /// Page count.
    pub pages: Value,
    /// Publisher.
    pub publisher: Value,
    /// `English` or `unknown`.
    pub language: Value,
    /// ISBN-10.
    pub isbn10: Value,
    /// ISBN-13.
    pub isbn13: Value,
}

impl BookDetails {
    /// The one book Bookinfo knows (every id returns it).
    pub fn comedy_of_errors() -> Self {
        Self {
            author: "William Shakespeare".into(),
            year: 1595.into(),
            kind: "paperback".into(),
            pages: 200.into(),
            publisher: "PublisherA".into(),
            language: "English".into(),
            isbn10: "1234567890".into(),
            isbn13: "123-1234567890".into(),
        }
    }

    /// Compact JSON with the original key order:
    /// `{"id":0,"author":...,"year":...,"type":...,"pages":...,"publisher":...,
    /// "language":...,"ISBN-10":...,"ISBN-13":...}`.
    pub fn to_json(&self, id: &ProductId) -> String {
        let mut m = Map::new();
        m.insert("author".into(), self.author.clone());
        m.insert("year".into(), self.year.clone());
        m.insert("type".into(), self.kind.clone());
        m.insert("pages".into(), self.pages.clone());
        m.insert("publisher".into(), self.publisher.clone());
        m.insert("language".into(), self.language.clone());
        m.insert("ISBN-10".into(), self.isbn10.clone());
        m.insert("ISBN-13".into(), self.isbn13.clone());
        let rest = Value::Object(m).to_string();
        // The id is spliced in as number text because ids may exceed 64 bits (the
        // original echoes any integer), which serde_json numbers cannot hold.
        format!("{{\"id\":{},{}", id.as_json(), &rest[1..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_json_of_the_built_in_book() {
        let id = crate::id::parse("0").unwrap();
        assert_eq!(
            BookDetails::comedy_of_errors().to_json(&id),
            r#"{"id":0,"author":"William Shakespeare","year":1595,"type":"paperback","pages":200,"publisher":"PublisherA","language":"English","ISBN-10":"1234567890","ISBN-13":"123-1234567890"}"#
        );
    }
}
