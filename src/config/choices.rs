//! Settings that are one of a few words: how much demo data a start loads, how logs are
//! written.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `BOOKSTORE_SEED_DEMO`: what an empty database gets at start. `true` and `false` keep
/// their old meaning (the demo catalog, or nothing); `small` is for tests that want speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedDemo {
    /// No demo data: anywhere real.
    Off,
    /// The first 300 goodbooks books and the demo accounts.
    Small,
    /// All 10,000 goodbooks books and the demo accounts: the shop at its real size.
    Full,
}

impl SeedDemo {
    /// How many books of the goodbooks file to load (`None`: all of them).
    pub fn book_limit(self) -> Option<usize> {
        match self {
            SeedDemo::Small => Some(300),
            SeedDemo::Off | SeedDemo::Full => None,
        }
    }
}

/// Written as in the environment: `true`, `false` or `small` (a boolean where it is one).
impl Serialize for SeedDemo {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            SeedDemo::Off => serializer.serialize_bool(false),
            SeedDemo::Full => serializer.serialize_bool(true),
            SeedDemo::Small => serializer.serialize_str("small"),
        }
    }
}

impl<'de> Deserialize<'de> for SeedDemo {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Figment reads `true` as a boolean and `small` as a string.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Flag(bool),
            Word(String),
        }
        match Written::deserialize(deserializer)? {
            Written::Flag(true) => Ok(SeedDemo::Full),
            Written::Flag(false) => Ok(SeedDemo::Off),
            Written::Word(word) => match word.to_ascii_lowercase().as_str() {
                "true" => Ok(SeedDemo::Full),
                "false" => Ok(SeedDemo::Off),
                "small" => Ok(SeedDemo::Small),
                _ => Err(serde::de::Error::custom(format!(
                    "{word:?} is not one of true, small, false"
                ))),
            },
        }
    }
}

/// `BOOKSTORE_LOG_FORMAT`: how each log line is written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For a person at a terminal: colours only when stderr is one.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields, spans): for a log
    /// collector.
    Json,
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail closures return its large error type
mod tests {
    use figment::{Jail, providers::Env};

    use super::*;

    #[derive(Deserialize)]
    struct Only {
        seed_demo: SeedDemo,
    }

    #[test]
    fn seed_demo_reads_true_small_and_false_as_the_environment_writes_them() {
        for (written, expected) in [
            ("true", SeedDemo::Full),
            ("small", SeedDemo::Small),
            ("SMALL", SeedDemo::Small),
            ("false", SeedDemo::Off),
        ] {
            Jail::expect_with(|jail| {
                jail.set_env("BOOKSTORE_SEED_DEMO", written);
                let read: Only = figment::Figment::from(Env::prefixed("BOOKSTORE_"))
                    .extract()
                    .unwrap();
                assert_eq!(read.seed_demo, expected, "{written}");
                Ok(())
            });
        }
        assert_eq!(SeedDemo::Small.book_limit(), Some(300));
        assert_eq!(SeedDemo::Full.book_limit(), None);
    }
}
