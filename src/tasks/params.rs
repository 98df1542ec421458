//! A program's parameters are a Rust struct (`#[derive(Deserialize, JsonSchema)]`): the one
//! place where their names, types, help (doc comments), defaults (`#[serde(default)]`) and
//! limits (`#[schemars(range(..))]`, `#[schemars(length(..))]`) are written. The parameter list
//! that the run form, the API and `task_parameters_check` in SQL use is derived from it here.
//! A date the run form should start at "today minus N days" (UTC) says so with
//! `#[schemars(extend("x-default-days-ago" = N))]`: a default that moves with the calendar,
//! for forms only (the API and psql still give the date).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamKind {
    Text,
    Int,
    Bool,
    Date,
    Enum,
}

/// One parameter, as stored in `program_functions.parameters` (and read back from there by
/// the run form; a SQL program's list is empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ParamKind,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(default)]
    pub help: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    /// For a date: the run form starts at today (UTC) minus this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_days_ago: Option<i64>,
}

/// The schema keyword for [`ParamSpec::default_days_ago`].
const DEFAULT_DAYS_AGO: &str = "x-default-days-ago";

/// The parameters of `T`, in the order its fields are declared.
///
/// # Panics
/// On a field type programs cannot take (a bug in a built-in, caught by the unit tests).
pub fn specs_of<T>() -> Vec<ParamSpec>
where
    T: for<'de> Deserialize<'de> + JsonSchema,
{
    let schema = schemars::schema_for!(T);
    let root = schema.as_value();
    let required: Vec<&str> = root
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let properties = root.get("properties").and_then(Value::as_object);
    declared_fields::<T>()
        .iter()
        .map(|name| {
            let property = properties
                .and_then(|p| p.get(*name))
                .unwrap_or_else(|| panic!("parameter {name} has no schema"));
            spec(name, property, root, required.contains(name))
        })
        .collect()
}

/// `T`'s field names in declaration order (the schema's properties come sorted by name). serde's
/// derive hands them to the deserializer with `deserialize_struct`; this one keeps them and
/// stops there.
fn declared_fields<T>() -> &'static [&'static str]
where
    T: for<'de> Deserialize<'de>,
{
    use serde::de::{Deserializer, Error as _, Visitor, value::Error};

    struct FieldNames(&'static [&'static str]);

    impl<'de> Deserializer<'de> for &mut FieldNames {
        type Error = Error;

        fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
            Err(Error::custom("parameters are a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Error> {
            self.0 = fields;
            Err(Error::custom("only the field names were wanted"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }

    let mut names = FieldNames(&[]);
    // Always an error: the names are what we came for.
    let _ = T::deserialize(&mut names);
    names.0
}

fn spec(name: &str, property: &Value, root: &Value, required: bool) -> ParamSpec {
    // An enum's variants sit in "$defs", referenced from the property.
    let target = property
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|reference| reference.strip_prefix('#'))
        .and_then(|pointer| root.pointer(pointer))
        .unwrap_or(property);
    let get = |key: &str| property.get(key).or_else(|| target.get(key));
    let choices: Vec<String> = target
        .get("enum")
        .and_then(Value::as_array)
        .map(|values| {
            values
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let json_type = match target.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        // Option<T>: ["integer", "null"].
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|kind| *kind != "null")
            .unwrap_or("null"),
        _ => "none",
    };
    let kind = match (json_type, get("format").and_then(Value::as_str)) {
        _ if !choices.is_empty() => ParamKind::Enum,
        ("string", Some("date")) => ParamKind::Date,
        ("string", _) => ParamKind::Text,
        ("integer", _) => ParamKind::Int,
        ("boolean", _) => ParamKind::Bool,
        (other, _) => panic!("parameter {name}: programs cannot take a {other}"),
    };
    ParamSpec {
        name: name.to_owned(),
        kind,
        required,
        default: property.get("default").cloned(),
        help: get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        choices,
        min: get("minimum").and_then(Value::as_i64),
        max: get("maximum").and_then(Value::as_i64),
        max_length: get("maxLength").and_then(Value::as_u64),
        default_days_ago: (kind == ParamKind::Date)
            .then(|| property.get(DEFAULT_DAYS_AGO).and_then(Value::as_i64))
            .flatten(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Grouping for the example.
    #[derive(Debug, Default, Deserialize, Serialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    enum Per {
        #[default]
        Book,
        Author,
    }

    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Example {
        /// First day.
        #[schemars(extend("x-default-days-ago" = 7))]
        from: chrono::NaiveDate,
        /// Group by book or by author.
        #[serde(default)]
        per: Per,
        /// How long to work.
        #[serde(default = "thirty")]
        #[schemars(range(min = 1, max = 3600))]
        seconds: i64,
        /// Optional.
        idle_minutes: Option<i64>,
        /// A name.
        #[schemars(length(max = 20))]
        name: String,
        /// A flag.
        #[serde(default)]
        dry_run: bool,
    }

    fn thirty() -> i64 {
        30
    }

    #[test]
    fn the_struct_is_the_schema() {
        let specs = serde_json::to_value(specs_of::<Example>()).unwrap();
        assert_eq!(
            specs,
            json!([
                {"name": "from", "type": "date", "required": true, "help": "First day.",
                 "default_days_ago": 7},
                {"name": "per", "type": "enum", "required": false, "default": "book",
                 "help": "Group by book or by author.", "choices": ["book", "author"]},
                {"name": "seconds", "type": "int", "required": false, "default": 30,
                 "help": "How long to work.", "min": 1, "max": 3600},
                {"name": "idle_minutes", "type": "int", "required": false, "help": "Optional."},
                {"name": "name", "type": "text", "required": true, "help": "A name.",
                 "max_length": 20},
                {"name": "dry_run", "type": "bool", "required": false, "default": false,
                 "help": "A flag."},
            ])
        );
    }
}
