//! Language codes as people read them: "eng" is English, "en-US" English (US). The catalog
//! keeps the code (ISO 639-1 or -2, or a tag like en-US, as goodbooks-10k and staff type it).

/// The codes of goodbooks-10k's `language_code` column, and their other spellings (ISO 639-2
/// has bibliographic and terminology codes: fre/fra, ger/deu).
const NAMES: &[(&str, &str)] = &[
    ("en", "English"),
    ("eng", "English"),
    ("en-US", "English (US)"),
    ("en-GB", "English (UK)"),
    ("en-CA", "English (Canada)"),
    ("ar", "Arabic"),
    ("ara", "Arabic"),
    ("da", "Danish"),
    ("dan", "Danish"),
    ("de", "German"),
    ("ger", "German"),
    ("deu", "German"),
    ("es", "Spanish"),
    ("spa", "Spanish"),
    ("fa", "Persian"),
    ("per", "Persian"),
    ("fas", "Persian"),
    ("fil", "Filipino"),
    ("fr", "French"),
    ("fre", "French"),
    ("fra", "French"),
    ("id", "Indonesian"),
    ("ind", "Indonesian"),
    ("it", "Italian"),
    ("ita", "Italian"),
    ("ja", "Japanese"),
    ("jpn", "Japanese"),
    ("mul", "Several languages"),
    ("nl", "Dutch"),
    ("dut", "Dutch"),
    ("nld", "Dutch"),
    ("no", "Norwegian"),
    ("nor", "Norwegian"),
    ("pl", "Polish"),
    ("pol", "Polish"),
    ("pt", "Portuguese"),
    ("por", "Portuguese"),
    ("ro", "Romanian"),
    ("rum", "Romanian"),
    ("ron", "Romanian"),
    ("ru", "Russian"),
    ("rus", "Russian"),
    ("sv", "Swedish"),
    ("swe", "Swedish"),
    ("tr", "Turkish"),
    ("tur", "Turkish"),
    ("vi", "Vietnamese"),
    ("vie", "Vietnamese"),
];

/// The language's name, or the code itself when we do not know it (better than nothing).
pub fn name(code: &str) -> &str {
    NAMES
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(code))
        .map_or(code, |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_as_names() {
        assert_eq!(name("eng"), "English");
        assert_eq!(name("en-US"), "English (US)");
        assert_eq!(name("EN-us"), "English (US)");
        assert_eq!(name("spa"), "Spanish");
        assert_eq!(name("fre"), "French");
        assert_eq!(name("fra"), "French");
        assert_eq!(name("tlh"), "tlh");
    }

    /// Every code of the full data set has a name.
    #[test]
    fn every_goodbooks_language_has_a_name() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/goodbooks-10k/books.csv"
        );
        let mut reader = csv::Reader::from_path(path).unwrap();
        let column = reader
            .headers()
            .unwrap()
            .iter()
            .position(|header| header == "language_code")
            .unwrap();
        for record in reader.records() {
            let code = record.unwrap()[column].trim().to_owned();
            if !code.is_empty() {
                assert_ne!(name(&code), code, "no name for {code:?}");
            }
        }
    }
}
