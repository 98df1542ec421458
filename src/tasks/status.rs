//! A task's status. The database keeps it as text (psql shows it, the `task_*` functions set
//! it, a CHECK constraint allows only these six); Rust sees this enum.

use std::{fmt, io::Write, str::FromStr};

use diesel::{
    deserialize::{self, FromSql, FromSqlRow},
    expression::AsExpression,
    pg::{Pg, PgValue},
    serialize::{self, IsNull, Output, ToSql},
    sql_types::Text,
};
use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    AsExpression,
    FromSqlRow,
    utoipa::ToSchema,
)]
#[diesel(sql_type = Text)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Waits for the tasks it was queued after (`run_program(.., after => ..)`); queued once
    /// they have all finished, cancelled when one fails.
    Pending,
    /// Queued, waiting to be claimed (or waiting out a retry's backoff).
    Scheduled,
    /// Claimed by a worker: waiting in its local queue or running.
    Running,
    Finished,
    /// Failed with its attempts spent, or failed in a way not worth retrying.
    Error,
    Cancelled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 6] = [
        TaskStatus::Pending,
        TaskStatus::Scheduled,
        TaskStatus::Running,
        TaskStatus::Finished,
        TaskStatus::Error,
        TaskStatus::Cancelled,
    ];
    /// The statuses a task never leaves.
    pub const ENDED: [TaskStatus; 3] = [
        TaskStatus::Finished,
        TaskStatus::Error,
        TaskStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Scheduled => "scheduled",
            TaskStatus::Running => "running",
            TaskStatus::Finished => "finished",
            TaskStatus::Error => "error",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_running(self) -> bool {
        self == TaskStatus::Running
    }

    /// Pending, scheduled or running: it may still change.
    pub fn is_active(self) -> bool {
        !TaskStatus::ENDED.contains(&self)
    }

    /// "pending, scheduled, running, finished, error, cancelled", for messages.
    pub fn list() -> String {
        TaskStatus::ALL.map(TaskStatus::as_str).join(", ")
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "{0:?} is not a task status (use one of: pending, scheduled, running, finished, error, cancelled)"
)]
pub struct UnknownStatus(pub String);

impl FromStr for TaskStatus {
    type Err = UnknownStatus;

    fn from_str(text: &str) -> Result<TaskStatus, UnknownStatus> {
        TaskStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| UnknownStatus(text.to_owned()))
    }
}

impl ToSql<Text, Pg> for TaskStatus {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        out.write_all(self.as_str().as_bytes())?;
        Ok(IsNull::No)
    }
}

impl FromSql<Text, Pg> for TaskStatus {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Pg>>::from_sql(value)?;
        Ok(text.parse()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_from_its_text() {
        for status in TaskStatus::ALL {
            assert_eq!(status.as_str().parse::<TaskStatus>().unwrap(), status);
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::json!(status.as_str())
            );
        }
        assert!("done".parse::<TaskStatus>().is_err());
    }
}
