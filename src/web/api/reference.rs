//! The API's reference for staff (`/admin/api`), read from the OpenAPI document so that the
//! page says what the document says: each operation with its parameters, body and answers,
//! then each schema with its fields. Rendered on the server: our CSP admits no script from
//! elsewhere, and a page needs none.

use serde_json::Value;

use crate::web::api::openapi::document_of_api;

/// One operation: `GET /api/v1/tasks` and what it takes and answers.
pub struct Operation {
    pub method: String,
    pub path: String,
    pub summary: String,
    pub description: String,
    pub public: bool,
    pub parameters: Vec<Field>,
    /// The body's schema, if it takes one.
    pub body: Option<String>,
    pub responses: Vec<Answer>,
}

/// A parameter or a schema's field.
pub struct Field {
    pub name: String,
    /// `path`, `query`, or for a schema's field empty.
    pub place: String,
    pub kind: String,
    pub required: bool,
    pub description: String,
}

pub struct Answer {
    pub status: String,
    pub description: String,
    pub schema: Option<String>,
}

/// A named schema of the document's components.
pub struct Schema {
    pub name: String,
    pub description: String,
    /// What it is when it is not an object of fields (`one of: ...`, `string`).
    pub kind: String,
    pub fields: Vec<Field>,
}

pub struct Reference {
    pub title: String,
    pub description: String,
    pub version: String,
    pub operations: Vec<Operation>,
    pub schemas: Vec<Schema>,
}

/// The reference, as the document served at `/api/v1/openapi.json` has it.
pub fn reference() -> Reference {
    let doc = serde_json::to_value(document_of_api()).unwrap_or_default();
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            operations.push(Operation {
                method: method.to_uppercase(),
                path: path.clone(),
                summary: text(&operation["summary"]),
                description: text(&operation["description"]),
                public: operation["security"]
                    .as_array()
                    .is_some_and(|ways| ways.iter().all(|way| way == &serde_json::json!({}))),
                parameters: parameters(&operation["parameters"]),
                body: operation["requestBody"]["content"]["application/json"]
                    .get("schema")
                    .map(kind),
                responses: answers(&operation["responses"]),
            });
        }
    }
    let schemas = doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, schema)| Schema {
            name: name.clone(),
            description: text(&schema["description"]),
            kind: if schema["properties"].is_object() {
                String::new()
            } else {
                kind(schema)
            },
            fields: fields(schema),
        })
        .collect();
    Reference {
        title: text(&doc["info"]["title"]),
        description: text(&doc["info"]["description"]),
        version: text(&doc["info"]["version"]),
        operations,
        schemas,
    }
}

fn parameters(list: &Value) -> Vec<Field> {
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    list.as_array()
        .into_iter()
        .flatten()
        .map(|parameter| Field {
            name: text(&parameter["name"]),
            place: text(&parameter["in"]),
            kind: kind(&parameter["schema"]),
            required: parameter["required"].as_bool().unwrap_or(false),
            description: text(&parameter["description"]),
        })
        .collect()
}

fn answers(responses: &Value) -> Vec<Answer> {
    responses
        .as_object()
        .into_iter()
        .flatten()
        .map(|(status, response)| Answer {
            status: status.clone(),
            description: response["description"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            schema: response["content"]
                .as_object()
                .and_then(|content| content.values().next())
                .and_then(|media| media.get("schema"))
                .map(kind),
        })
        .collect()
}

/// The fields of an object schema (those of each part of an `allOf` too).
fn fields(schema: &Value) -> Vec<Field> {
    let mut found: Vec<Field> = schema["allOf"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(fields)
        .collect();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for (name, field) in schema["properties"].as_object().into_iter().flatten() {
        found.push(Field {
            name: name.clone(),
            place: String::new(),
            kind: kind(field),
            required: required.contains(&name.as_str()),
            description: field["description"].as_str().unwrap_or_default().to_owned(),
        });
    }
    found
}

/// A schema in a few words: `TaskRow`, `list of TaskId`, `string or null`, `any JSON`.
fn kind(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        return reference.rsplit('/').next().unwrap_or(reference).to_owned();
    }
    for (key, joiner) in [("oneOf", " or "), ("anyOf", " or "), ("allOf", " and ")] {
        if let Some(parts) = schema[key].as_array() {
            let parts: Vec<String> = parts.iter().map(kind).collect();
            return parts.join(joiner);
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values.iter().map(Value::to_string).collect();
        return format!("one of {}", values.join(", "));
    }
    let one = |name: &str| match name {
        "array" => format!("list of {}", kind(&schema["items"])),
        "object" if schema["additionalProperties"].is_object() => {
            format!("map of {}", kind(&schema["additionalProperties"]))
        }
        other => other.to_owned(),
    };
    match &schema["type"] {
        Value::String(name) => one(name),
        Value::Array(names) => {
            let names: Vec<String> = names.iter().filter_map(Value::as_str).map(one).collect();
            names.join(" or ")
        }
        _ => "any JSON".to_owned(),
    }
}
