//! Money is integer cents everywhere; this is the one place that formats it, and the one that
//! says how a price goes into and out of an `integer` column.

use std::{fmt, num::TryFromIntError};

use diesel::{
    deserialize::{self, FromSql, FromSqlRow},
    expression::AsExpression,
    pg::{Pg, PgValue},
    serialize::{self, Output, ToSql},
    sql_types::{BigInt, Integer},
};

/// An amount in cents (US dollars). Stored in the `integer` price columns
/// (`books.price_cents`) and the `bigint` totals (`orders.total_cents`) as it is, so a row
/// holds a `Cents` rather than a raw `i32` or `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, AsExpression, FromSqlRow)]
#[diesel(sql_type = Integer)]
#[diesel(sql_type = BigInt)]
pub struct Cents(pub i64);

impl fmt::Display for Cents {
    /// `$1,234.05`; negative amounts as `-$3.00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let dollars = super::thousands(abs / 100);
        write!(f, "{sign}${dollars}.{:02}", abs % 100)
    }
}

/// A price as the `integer` columns hold it (`books.price_cents`, `order_lines.unit_price_cents`).
impl From<i32> for Cents {
    fn from(cents: i32) -> Cents {
        Cents(cents.into())
    }
}

/// For those columns: an amount past what they hold is refused, not wrapped.
impl TryFrom<Cents> for i32 {
    type Error = TryFromIntError;

    fn try_from(amount: Cents) -> Result<i32, TryFromIntError> {
        i32::try_from(amount.0)
    }
}

/// A price past what the column holds is refused (a serialization error), never wrapped: the
/// parsers keep prices far below it (`parse_dollars` at $1,000,000, starting prices at $29.99).
impl ToSql<Integer, Pg> for Cents {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        let cents = i32::try_from(*self)
            .map_err(|_| format!("{self} is more than a price column holds"))?;
        <i32 as ToSql<Integer, Pg>>::to_sql(&cents, &mut out.reborrow())
    }
}

impl FromSql<Integer, Pg> for Cents {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        <i32 as FromSql<Integer, Pg>>::from_sql(value).map(Cents::from)
    }
}

/// A total (`orders.total_cents`): the column holds every amount there is.
impl ToSql<BigInt, Pg> for Cents {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <i64 as ToSql<BigInt, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<BigInt, Pg> for Cents {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        <i64 as FromSql<BigInt, Pg>>::from_sql(value).map(Cents)
    }
}

impl Cents {
    /// Parses what people type as a price, strictly: "12", "12.5", "12.50", "12,50" (a decimal
    /// comma) and "$12.50". Never negative, at most two decimals, at most $1,000,000. What could
    /// be read two ways is refused with a question, not guessed: "1,250" (a thousand, or one
    /// and a quarter?), "1.250,00", "1,299.00".
    pub fn parse_dollars(input: &str) -> Result<Cents, String> {
        const HINT: &str = "A price looks like 12.99 (or 12,99).";
        let text = input.trim();
        let text = text.strip_prefix('$').map_or(text, str::trim_start);
        let separators: Vec<(usize, char)> = text
            .char_indices()
            .filter(|(_, c)| matches!(c, '.' | ','))
            .collect();
        let (whole, fraction) = match separators.as_slice() {
            [] => (text, ""),
            [(at, _)] => (&text[..*at], &text[at + 1..]),
            _ => {
                return Err(format!(
                    "{text:?} has more than one separator: write the price without thousands \
                     separators, like 1299.50."
                ));
            }
        };
        let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
        if !digits(whole) || !(fraction.is_empty() || digits(fraction)) {
            return Err(HINT.to_owned());
        }
        if fraction.len() == 3 {
            return Err(format!(
                "Is {text:?} {} or {}.{}? Write it without a thousands separator, or with \
                 two decimals.",
                Cents(
                    whole.parse::<i64>().unwrap_or(0).saturating_mul(100_000)
                        + fraction.parse::<i64>().unwrap_or(0) * 100
                ),
                whole,
                &fraction[..2]
            ));
        }
        if fraction.len() > 2 {
            return Err("A price has at most two decimals.".to_owned());
        }
        if whole.len() > 7 {
            return Err("A price is at most $1,000,000.".to_owned());
        }
        let cents = whole.parse::<i64>().map_err(|_| HINT.to_owned())? * 100
            + format!("{fraction:0<2}")
                .parse::<i64>()
                .map_err(|_| HINT.to_owned())?;
        if cents > 100_000_000 {
            return Err("A price is at most $1,000,000.".to_owned());
        }
        Ok(Cents(cents))
    }

    /// This unit price times a number of copies; `None` past what an amount can hold.
    pub fn times(self, quantity: i32) -> Option<Cents> {
        self.0.checked_mul(i64::from(quantity)).map(Cents)
    }

    pub fn checked_add(self, other: Cents) -> Option<Cents> {
        self.0.checked_add(other.0).map(Cents)
    }

    /// "12.99": the amount as a form field shows it.
    pub fn plain(self) -> String {
        format!("{}.{:02}", self.0 / 100, (self.0 % 100).abs())
    }
}

#[cfg(test)]
mod tests {
    use super::Cents;

    #[test]
    fn parses_typed_prices() {
        assert_eq!(Cents::parse_dollars("12"), Ok(Cents(1200)));
        assert_eq!(Cents::parse_dollars("12.50"), Ok(Cents(1250)));
        assert_eq!(
            Cents::parse_dollars("12,50"),
            Ok(Cents(1250)),
            "a decimal comma"
        );
        assert_eq!(Cents::parse_dollars(" $12.50 "), Ok(Cents(1250)));
        assert_eq!(Cents::parse_dollars("$ 12.5"), Ok(Cents(1250)));
        assert_eq!(Cents::parse_dollars("0.07"), Ok(Cents(7)));
        for bad in [
            "", "-1", "1.9999", "abc", "1.2.3", "99999999", "1,299.00", "1.250,00",
        ] {
            assert!(Cents::parse_dollars(bad).is_err(), "{bad}");
        }
        let ambiguous = Cents::parse_dollars("1,250").unwrap_err();
        assert!(
            ambiguous.contains("$1,250.00") && ambiguous.contains("1.25"),
            "{ambiguous}"
        );
        assert_eq!(Cents(1299).plain(), "12.99");
    }

    #[test]
    fn formats_dollars_and_cents() {
        assert_eq!(Cents(0).to_string(), "$0.00");
        assert_eq!(Cents(5).to_string(), "$0.05");
        assert_eq!(Cents(1299).to_string(), "$12.99");
        assert_eq!(Cents(123_456_789).to_string(), "$1,234,567.89");
        assert_eq!(Cents(-300).to_string(), "-$3.00");
    }
}
