//! What is wrong with one field of a refused operation, in the shape its message reads in.
//! Most messages say what is wrong after the field's name ("is required" under "Seconds"); a
//! rule across fields says a sentence of its own ("The start date 2026-12-31 is after the end
//! date 2026-01-01."). The code that refuses says which; the code that shows it matches on
//! that, and never guesses from the text.

/// One field's problem, as its refusal made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldProblem {
    /// Read after the field's name: "is not a file" shows as "Path is not a file.". Our SQL
    /// functions' field messages are all of this shape.
    AfterName(String),
    /// A sentence of its own, shown as it is: what a rule across fields says.
    Sentence(String),
}

impl FieldProblem {
    /// The message as the refusal gave it (the API's `fields` show it so).
    pub fn text(&self) -> &str {
        match self {
            FieldProblem::AfterName(text) | FieldProblem::Sentence(text) => text,
        }
    }

    /// The problem as a sentence under the field's `label`: "Seconds must be a whole number.",
    /// or a rule's own sentence.
    pub fn sentence(&self, label: &str) -> String {
        match self {
            FieldProblem::AfterName(text) => format!("{label} {text}."),
            FieldProblem::Sentence(sentence) => sentence.clone(),
        }
    }
}

/// A program's refusal of its parameters before they are queued (see
/// `programs::check_before_queueing`): the parameter it concerns, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamRefusal {
    pub param: &'static str,
    pub problem: FieldProblem,
}

impl ParamRefusal {
    /// A problem with this parameter's own value, read after its name.
    pub fn after_name(param: &'static str, text: impl Into<String>) -> ParamRefusal {
        ParamRefusal {
            param,
            problem: FieldProblem::AfterName(text.into()),
        }
    }

    /// A rule across parameters, as a sentence of its own; `param` is the one the form marks.
    pub fn sentence(param: &'static str, sentence: impl Into<String>) -> ParamRefusal {
        ParamRefusal {
            param,
            problem: FieldProblem::Sentence(sentence.into()),
        }
    }

    /// The operation's message: "invalid parameters: path is not a file", or the rule's own
    /// sentence.
    pub fn message(&self) -> String {
        match &self.problem {
            FieldProblem::AfterName(text) => format!("invalid parameters: {} {text}", self.param),
            FieldProblem::Sentence(sentence) => sentence.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_shape_reads_as_its_refusal_made_it() {
        let own = ParamRefusal::after_name("path", "is not a regular file");
        assert_eq!(
            own.message(),
            "invalid parameters: path is not a regular file"
        );
        assert_eq!(own.problem.sentence("Path"), "Path is not a regular file.");
        let rule = ParamRefusal::sentence("from", "The start date is after the end date.");
        assert_eq!(rule.message(), "The start date is after the end date.");
        assert_eq!(
            rule.problem.sentence("From"),
            "The start date is after the end date."
        );
        // The shape is what the refusal said, whatever letter the text starts with.
        let capital = FieldProblem::AfterName("NULL is not a number".into());
        assert_eq!(
            capital.sentence("Threshold"),
            "Threshold NULL is not a number."
        );
    }
}
