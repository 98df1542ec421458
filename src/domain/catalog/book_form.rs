//! The staff's book form: the fields as typed ([`BookFields`]) and the book that passed
//! validation ([`BookInput`]), with a message per bad field.

use serde::Deserialize;

use crate::domain::{
    catalog::{Book, BookDetail, author_names, isbn::Isbn},
    collapse_spaces,
    money::Cents,
};

/// The book form as typed (all text, so a bad field can be shown back as it was).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BookFields {
    pub title: String,
    /// Comma-separated, in cover order.
    pub authors: String,
    pub year: String,
    pub isbn: String,
    pub language: String,
    pub description: String,
    /// Dollars: "12.99".
    pub price: String,
    pub stock: String,
    /// The stock when the edit form was opened: a save is refused if checkouts changed it
    /// meanwhile (otherwise the form would put sold copies back).
    pub stock_was: String,
    /// The price (as `Cents::plain`) the form last showed as its reading of a price typed with
    /// a comma: saving again with the same price confirms it.
    pub price_confirmed: String,
}

impl BookFields {
    /// How the typed price reads, when it has a comma to confirm ("12,50" reads "12.50").
    pub fn price_reading(&self) -> Option<String> {
        if !self.price.contains(',') {
            return None;
        }
        Cents::parse_dollars(&self.price).ok().map(Cents::plain)
    }
}

/// A book that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct BookInput {
    pub book: Book,
    /// In cover order, no duplicates, at least one.
    pub authors: Vec<String>,
    /// The stock the form was opened with (see [`BookFields::stock_was`]).
    pub stock_was: Option<i32>,
}

impl BookFields {
    /// The validated book, or a message per bad field.
    pub fn parse(&self) -> Result<BookInput, Vec<(&'static str, String)>> {
        let mut errors = Vec::new();
        let title = collapse_spaces(&self.title);
        if title.is_empty() || title.chars().count() > 500 {
            errors.push(("title", "A title has 1 to 500 characters.".to_owned()));
        }
        let authors = author_names(&self.authors);
        if authors.is_empty() {
            errors.push((
                "authors",
                "Name at least one author (separate several with commas).".to_owned(),
            ));
        } else if authors.iter().any(|name| name.chars().count() > 200) {
            errors.push((
                "authors",
                "An author name has at most 200 characters.".to_owned(),
            ));
        }
        let year = match self.year.trim() {
            "" => None,
            text => match text.parse::<i32>() {
                Ok(year) if (-5000..=3000).contains(&year) => Some(year),
                _ => {
                    errors.push((
                        "year",
                        "A year is a whole number like 1997 (negative for BC).".to_owned(),
                    ));
                    None
                }
            },
        };
        let isbn = match self.isbn.trim() {
            "" => None,
            text => match Isbn::parse(text) {
                Some(isbn) => Some(isbn),
                None => {
                    errors.push((
                        "isbn",
                        "An ISBN has 10 characters (the last may be X) or 13 digits.".to_owned(),
                    ));
                    None
                }
            },
        };
        let language = match self.language.trim() {
            "" => None,
            code if is_language_code(code) => Some(code.to_owned()),
            _ => {
                errors.push((
                    "language",
                    "Use a language code: two or three letters (en, eng) or a tag like en-US."
                        .to_owned(),
                ));
                None
            }
        };
        let description = self.description.trim().to_owned();
        if description.chars().count() > 5000 {
            errors.push((
                "description",
                "A description has at most 5,000 characters.".to_owned(),
            ));
        }
        let price = Cents::parse_dollars(&self.price)
            .and_then(|price| match i32::try_from(price) {
                Ok(_) => Ok(price),
                Err(_) => Err("That price is too high.".to_owned()),
            })
            .map_err(|message| errors.push(("price", message)))
            .ok();
        // A decimal comma is read as cents ("12,50" is $12.50), which surprises anyone who meant
        // a thousands separator: the form says how it read the price and asks to save again.
        if let Some(price) = price
            && self.price.contains(',')
            && self.price_confirmed.trim() != price.plain()
        {
            errors.push((
                "price",
                format!("Read as {price}. Save again to keep that price, or correct it."),
            ));
        }
        let stock = match self.stock.trim().parse::<i32>() {
            Ok(stock) if (0..=1_000_000).contains(&stock) => Some(stock),
            _ => {
                errors.push((
                    "stock",
                    "Stock is a whole number from 0 to 1,000,000.".to_owned(),
                ));
                None
            }
        };
        match (price, stock, errors.is_empty()) {
            (Some(price), Some(stock), true) => Ok(BookInput {
                book: Book {
                    title,
                    year,
                    isbn,
                    language,
                    description,
                    price,
                    stock,
                },
                authors,
                stock_was: self.stock_was.trim().parse().ok(),
            }),
            _ => Err(errors),
        }
    }
}

/// An ISO 639 code (two or three lower-case letters), optionally with a region: "en", "eng",
/// "en-US", "es-419" (the forms the goodbooks data and browsers use).
fn is_language_code(text: &str) -> bool {
    let (language, region) = match text.split_once('-') {
        Some((language, region)) => (language, Some(region)),
        None => (text, None),
    };
    let language_ok =
        (2..=3).contains(&language.len()) && language.chars().all(|c| c.is_ascii_lowercase());
    let region_ok = region.is_none_or(|region| {
        (region.len() == 2 && region.chars().all(|c| c.is_ascii_alphabetic()))
            || (region.len() == 3 && region.chars().all(|c| c.is_ascii_digit()))
    });
    language_ok && region_ok
}

impl From<&BookDetail> for BookFields {
    fn from(detail: &BookDetail) -> Self {
        let book = &detail.book;
        BookFields {
            title: book.title.clone(),
            authors: detail.authors_field(),
            year: book.year.map(|y| y.to_string()).unwrap_or_default(),
            isbn: book.isbn.as_ref().map(Isbn::to_string).unwrap_or_default(),
            language: book.language.clone().unwrap_or_default(),
            description: book.description.clone(),
            price: book.price.plain(),
            stock: book.stock.to_string(),
            stock_was: book.stock.to_string(),
            price_confirmed: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_codes_are_iso_639_or_a_tag() {
        for good in ["en", "eng", "en-US", "en-GB", "es-419", "fre"] {
            assert!(is_language_code(good), "{good}");
        }
        for bad in ["e", "english", "EN", "en_US", "en-USA", "12", "en-", "ü"] {
            assert!(!is_language_code(bad), "{bad}");
        }
    }

    #[test]
    fn an_isbn_with_a_multibyte_character_is_refused_not_a_panic() {
        for text in ["ü", "123456789ü", "12345678901ü", "X"] {
            assert!(Isbn::parse(text).is_none(), "{text}");
        }
        assert!(Isbn::parse("044117271X").is_some() && Isbn::parse("9780441172719").is_some());
    }

    fn fields() -> BookFields {
        BookFields {
            title: " Dune ".into(),
            authors: "Frank Herbert,  ".into(),
            year: "1965".into(),
            isbn: "0-441-17271-7".into(),
            language: "eng".into(),
            description: "Spice.".into(),
            price: "9.99".into(),
            stock: "3".into(),
            stock_was: String::new(),
            price_confirmed: String::new(),
        }
    }

    #[test]
    fn a_good_book_parses() {
        let book = fields().parse().unwrap();
        assert_eq!(book.book.title, "Dune");
        assert_eq!(book.authors, ["Frank Herbert"]);
        assert_eq!(
            book.book.isbn.as_ref().map(Isbn::as_str),
            Some("0441172717")
        );
        assert_eq!(book.book.price, Cents(999));
    }

    #[test]
    fn every_bad_field_is_named() {
        let bad = BookFields {
            title: "".into(),
            authors: " , ".into(),
            year: "nineteen".into(),
            isbn: "123".into(),
            price: "-1".into(),
            stock: "lots".into(),
            ..fields()
        };
        let fields: Vec<&str> = bad
            .parse()
            .unwrap_err()
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(
            fields,
            ["title", "authors", "year", "isbn", "price", "stock"]
        );
    }

    #[test]
    fn a_price_with_a_comma_is_shown_as_read_before_it_is_saved() {
        let typed = BookFields {
            price: "12,50".into(),
            ..fields()
        };
        assert_eq!(typed.price_reading().as_deref(), Some("12.50"));
        let errors = typed.parse().unwrap_err();
        assert_eq!(errors[0].0, "price");
        assert!(
            errors[0].1.starts_with("Read as $12.50."),
            "{}",
            errors[0].1
        );
        let confirmed = BookFields {
            price_confirmed: "12.50".into(),
            ..typed.clone()
        };
        assert_eq!(confirmed.parse().unwrap().book.price, Cents(1250));
        // Changed after the reading was shown: read again.
        let changed = BookFields {
            price: "13,50".into(),
            ..confirmed
        };
        assert!(changed.parse().is_err());
        assert_eq!(fields().price_reading(), None, "9.99 needs no confirming");
    }
}
