//! What a mail is about and where it is. The database keeps both as text (psql shows them, a
//! CHECK constraint allows only these values); Rust reads and writes these enums, so no
//! query or page compares strings.

use std::{fmt, io::Write, str::FromStr};

use diesel::{
    deserialize::{self, FromSql, FromSqlRow},
    expression::AsExpression,
    pg::{Pg, PgValue},
    serialize::{self, IsNull, Output, ToSql},
    sql_types::Text,
};

/// What a mail is about; each kind has its templates and its way of filling them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub enum MailKind {
    OrderConfirmation,
    PasswordReset,
    EmailConfirmation,
    LowStock,
}

impl MailKind {
    pub const ALL: [MailKind; 4] = [
        MailKind::OrderConfirmation,
        MailKind::PasswordReset,
        MailKind::EmailConfirmation,
        MailKind::LowStock,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::OrderConfirmation => "order_confirmation",
            MailKind::PasswordReset => "password_reset",
            MailKind::EmailConfirmation => "email_confirmation",
            MailKind::LowStock => "low_stock",
        }
    }

    /// How the staff's mail page names it.
    pub fn label(self) -> &'static str {
        match self {
            MailKind::OrderConfirmation => "Order confirmation",
            MailKind::PasswordReset => "Password reset",
            MailKind::EmailConfirmation => "Address confirmation",
            MailKind::LowStock => "Low-stock digest",
        }
    }
}

/// Where a mail is: waiting (or retrying), sent, or given up on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
#[diesel(sql_type = Text)]
pub enum MailStatus {
    Queued,
    Sent,
    Failed,
}

impl MailStatus {
    pub const ALL: [MailStatus; 3] = [MailStatus::Queued, MailStatus::Sent, MailStatus::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            MailStatus::Queued => "queued",
            MailStatus::Sent => "sent",
            MailStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{text:?} is not a mail {what}")]
pub struct Unknown {
    what: &'static str,
    text: String,
}

/// `Display`, `FromStr` and the text conversions diesel needs, from `ALL` and `as_str`.
macro_rules! text_enum {
    ($type:ident, $what:literal) => {
        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $type {
            type Err = Unknown;

            fn from_str(text: &str) -> Result<$type, Unknown> {
                $type::ALL
                    .into_iter()
                    .find(|value| value.as_str() == text)
                    .ok_or_else(|| Unknown {
                        what: $what,
                        text: text.to_owned(),
                    })
            }
        }

        impl ToSql<Text, Pg> for $type {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                out.write_all(self.as_str().as_bytes())?;
                Ok(IsNull::No)
            }
        }

        impl FromSql<Text, Pg> for $type {
            fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
                let text = <String as FromSql<Text, Pg>>::from_sql(value)?;
                Ok(text.parse()?)
            }
        }
    };
}

text_enum!(MailKind, "kind");
text_enum!(MailStatus, "status");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_and_status_reads_back_from_its_text() {
        for kind in MailKind::ALL {
            assert_eq!(kind.as_str().parse::<MailKind>().unwrap(), kind);
        }
        for status in MailStatus::ALL {
            assert_eq!(status.as_str().parse::<MailStatus>().unwrap(), status);
        }
        assert!("bounced".parse::<MailStatus>().is_err());
        assert!("newsletter".parse::<MailKind>().is_err());
    }
}
