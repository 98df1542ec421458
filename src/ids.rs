//! The rows' ids, one type per table, so passing a book's id where a user's is wanted is a
//! compile error. Each is the `bigint` key as diesel, serde (a bare number, so paths and JSON
//! read and write the same as before) and templates (`Display`) see it. A leaf under every
//! layer (domain, tasks, mail, web all name rows), so it imports nothing of the app.

use std::{fmt, num::ParseIntError, str::FromStr};

use diesel_derive_newtype::DieselNewType;
use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, DieselNewType, Serialize,
            Deserialize, utoipa::ToSchema,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = ParseIntError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                text.parse().map($name)
            }
        }
    };
}

id_type!(
    /// A row of `tasks`: one run (or queued run) of a program.
    TaskId
);

id_type!(
    /// A row of `books`.
    BookId
);

id_type!(
    /// A row of `users`: a customer's or a staff member's account.
    UserId
);

id_type!(
    /// A row of `orders`: one checkout.
    OrderId
);

id_type!(
    /// A row of `programs`: what a task runs.
    ProgramId
);

id_type!(
    /// A row of `authors`: a name books are credited to.
    AuthorId
);

id_type!(
    /// A row of `cart_items`: one book's line in a customer's cart.
    CartLineId
);

id_type!(
    /// A row of `api_tokens`: a staff member's token for the JSON API.
    ApiTokenId
);

id_type!(
    /// A row of `audit_events`: one recorded action.
    AuditEventId
);

id_type!(
    /// A row of `task_batches`: tasks queued together, with one callback when all have ended.
    TaskBatchId
);

id_type!(
    /// A row of `mails`: one message of the outbox.
    MailId
);

id_type!(
    /// A row of `email_confirmations`: an address waiting for its owner to open the link.
    EmailConfirmationId
);
