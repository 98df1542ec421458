//! Run forms generated from a program's parameter schema (`program_functions.parameters`).

use std::collections::{BTreeMap, HashMap};

use chrono::{Days, NaiveDate, Utc};
use serde_json::{Map, Value};

use crate::tasks::{
    params::{ParamKind, ParamSpec},
    refusal::FieldProblem,
};

/// One input of a run form.
#[derive(Debug, Clone)]
pub struct ParamField {
    pub name: String,
    pub kind: ParamKind,
    pub required: bool,
    pub help: String,
    pub choices: Vec<String>,
    pub min: Option<i64>,
    pub max: Option<i64>,
    /// What the input shows: the visitor's input, else the default.
    pub value: String,
    pub error: Option<FieldProblem>,
}

impl ParamField {
    /// "failure_percent" as people read it: "Failure percent".
    pub fn label(&self) -> String {
        let words = self.name.replace('_', " ");
        let mut chars = words.chars();
        match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => String::new(),
        }
    }

    pub fn input_name(&self) -> String {
        format!("param_{}", self.name)
    }

    /// For the template: which input to draw.
    pub fn is_bool(&self) -> bool {
        self.kind == ParamKind::Bool
    }

    pub fn is_enum(&self) -> bool {
        self.kind == ParamKind::Enum
    }

    /// The `type` of a plain input.
    pub fn input_type(&self) -> &'static str {
        match self.kind {
            ParamKind::Int => "number",
            ParamKind::Date => "date",
            ParamKind::Text | ParamKind::Bool | ParamKind::Enum => "text",
        }
    }

    pub fn checked(&self) -> bool {
        self.value == "true"
    }

    pub fn is_selected(&self, choice: &str) -> bool {
        self.value == choice
    }

    /// The error as a sentence: "Seconds must be a whole number.", or a rule's own sentence.
    pub fn error_sentence(&self) -> Option<String> {
        Some(self.error.as_ref()?.sentence(&self.label()))
    }

    /// The ids of the input's help and error (`aria-describedby`), when it has either.
    pub fn described_by(&self) -> Option<String> {
        crate::web::forms::described_by(
            &self.input_name(),
            !self.help.is_empty(),
            self.error.is_some(),
        )
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// What an empty form shows: the default, or for a date `today - default_days_ago`.
fn default_of(spec: &ParamSpec, today: NaiveDate) -> String {
    match spec.default_days_ago {
        Some(days) if spec.kind == ParamKind::Date => today
            .checked_sub_days(Days::new(days.max(0).unsigned_abs()))
            .map(|day| day.to_string())
            .unwrap_or_default(),
        _ => spec.default.as_ref().map(text_of).unwrap_or_default(),
    }
}

/// The form's fields, with the submitted input (if any) and per-field errors. `schema` is
/// `program_functions.parameters` (a list of [`ParamSpec`]); anything else gives no fields.
pub fn fields(
    schema: Option<&Value>,
    input: Option<&HashMap<String, String>>,
    errors: &BTreeMap<String, FieldProblem>,
) -> Vec<ParamField> {
    let specs: Vec<ParamSpec> = schema
        .and_then(|schema| serde_json::from_value(schema.clone()).ok())
        .unwrap_or_default();
    let today = Utc::now().date_naive();
    specs
        .into_iter()
        .map(|spec| {
            let submitted = input.map(|input| {
                let value = input
                    .get(&format!("param_{}", spec.name))
                    .cloned()
                    .unwrap_or_default();
                if spec.kind == ParamKind::Bool && value.is_empty() {
                    "false".to_owned()
                } else {
                    value
                }
            });
            ParamField {
                value: submitted.unwrap_or_else(|| default_of(&spec, today)),
                error: errors.get(&spec.name).cloned(),
                required: spec.required,
                help: spec.help,
                choices: spec.choices,
                min: spec.min,
                max: spec.max,
                name: spec.name,
                kind: spec.kind,
            }
        })
        .collect()
}

/// The submitted form as the parameters object for `run_program`: every value as typed (the
/// SQL check converts "5" for an int and reports what does not fit); empty fields are left
/// out so defaults apply; an unticked checkbox is false.
pub fn parameters(schema: Option<&Value>, input: &HashMap<String, String>) -> Value {
    let mut object = Map::new();
    for field in fields(schema, Some(input), &BTreeMap::new()) {
        if !field.value.trim().is_empty() {
            object.insert(field.name, Value::String(field.value));
        }
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn forms_round_trip_through_parameters() {
        let schema = json!([
            {"name": "seconds", "type": "int", "required": false, "default": 30, "help": "How long."},
            {"name": "loud", "type": "bool", "required": false, "default": false, "help": ""},
            {"name": "per", "type": "enum", "required": false, "default": "book", "choices": ["book", "author"], "help": ""}
        ]);
        let blank = fields(Some(&schema), None, &BTreeMap::new());
        assert_eq!(blank[0].value, "30");
        assert_eq!(blank[2].choices, ["book", "author"]);
        let today = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let since: ParamSpec =
            serde_json::from_value(json!({"name": "from", "type": "date", "default_days_ago": 30}))
                .unwrap();
        assert_eq!(default_of(&since, today), "2026-01-30");
        let input = HashMap::from([
            ("param_seconds".to_owned(), "5".to_owned()),
            ("param_per".to_owned(), "author".to_owned()),
        ]);
        assert_eq!(
            parameters(Some(&schema), &input),
            json!({"seconds": "5", "loud": "false", "per": "author"})
        );
    }
}
