//! ISBNs as people type them: "0-439-55493-4", "978 0439554930", "043955493x".
//!
//! The catalog stores an ISBN without dashes, as imported (mostly ISBN-10). A book shows one
//! form, a shopper may type the other: every ISBN-10 has an ISBN-13 ("978" + its first nine
//! digits + a new check digit), so a lookup tries both.

use std::fmt;

use diesel::{
    deserialize::{self, FromSql, FromSqlRow},
    expression::AsExpression,
    pg::{Pg, PgValue},
    serialize::{self, Output, ToSql},
    sql_types::Text,
};

/// A well-formed ISBN-10 or ISBN-13, dashes and spaces removed. The check digit is not
/// verified: a book page may show a misprinted ISBN from the data, and typing it must still
/// find the book. Stored in `books.isbn` in this compact form.
#[derive(Debug, Clone, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub struct Isbn(String);

impl fmt::Display for Isbn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ToSql<Text, Pg> for Isbn {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <str as ToSql<Text, Pg>>::to_sql(&self.0, out)
    }
}

/// The column's CHECK admits only the compact shapes `parse` returns, so a stored ISBN reads
/// back as it was written.
impl FromSql<Text, Pg> for Isbn {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Pg>>::from_sql(value)?;
        Isbn::parse(&text).ok_or_else(|| format!("{text:?} in books.isbn is not an ISBN").into())
    }
}

impl Isbn {
    /// `None` unless `text` has the shape of an ISBN: a title like "1984" is a search.
    pub fn parse(text: &str) -> Option<Isbn> {
        let compact: String = text
            .chars()
            .filter(|c| !matches!(c, '-' | ' '))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let valid = compact.is_ascii()
            && match compact.len() {
                10 => {
                    digits(&compact[..9]).is_some()
                        && compact.ends_with(|c: char| c.is_ascii_digit() || c == 'X')
                }
                13 => digits(&compact).is_some(),
                _ => false,
            };
        valid.then_some(Isbn(compact))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This ISBN in each form the catalog may have stored it.
    pub fn stored_forms(&self) -> Vec<String> {
        let mut forms = vec![self.0.clone()];
        if self.0.len() == 10 {
            let body = format!("978{}", &self.0[..9]);
            if let Some(check) = isbn13_check(&body) {
                forms.push(format!("{body}{check}"));
            }
        } else if let Some(body) = self.0.strip_prefix("978").map(|rest| &rest[..9])
            && let Some(check) = isbn10_check(body)
        {
            forms.push(format!("{body}{check}"));
        }
        forms
    }
}

/// The check character of an ISBN-10 from its first nine digits.
fn isbn10_check(body: &str) -> Option<char> {
    let digits = digits(body)?;
    let sum: u32 = digits
        .iter()
        .zip((2..=10).rev())
        .map(|(digit, weight)| digit * weight)
        .sum();
    match (11 - sum % 11) % 11 {
        10 => Some('X'),
        check => char::from_digit(check, 10),
    }
}

/// The check digit of an ISBN-13 from its first twelve digits.
fn isbn13_check(body: &str) -> Option<char> {
    let digits = digits(body)?;
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, digit)| if i % 2 == 0 { *digit } else { digit * 3 })
        .sum();
    char::from_digit((10 - sum % 10) % 10, 10)
}

fn digits(text: &str) -> Option<Vec<u32>> {
    text.chars().map(|c| c.to_digit(10)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_of_a_real_isbn_find_each_other() {
        // Harry Potter and the Sorcerer's Stone.
        let ten = Isbn::parse("0-439-55493-4").unwrap();
        assert_eq!(ten.stored_forms(), ["0439554934", "9780439554930"]);
        let thirteen = Isbn::parse("978 0439554930").unwrap();
        assert_eq!(thirteen.stored_forms(), ["9780439554930", "0439554934"]);
        assert_eq!(Isbn::parse("044117271x").unwrap().as_str(), "044117271X");
    }

    #[test]
    fn numbers_that_are_not_isbns_stay_searches() {
        for text in ["1984", "043955493ü", "", "abcdefghij", "97804395549X"] {
            assert_eq!(Isbn::parse(text), None, "{text}");
        }
    }
}
