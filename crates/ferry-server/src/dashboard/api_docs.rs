//! `/api/docs`: the HTTP API's reference, rendered from the OpenAPI document the server
//! serves at `/api/v1/openapi.json` (made from the handlers' annotations, so it cannot
//! drift from them): every operation by tag with its parameters, body and answers, then
//! every schema with its fields. Read once, when the page is first asked for.

use std::sync::{Arc, OnceLock};

use askama::Template;
use axum::response::Response;
use serde_json::Value;

use super::page::{html, Frame, PageError, Section};
use super::session::Viewer;

/// The API's reference, ready to render.
struct ApiReference {
    version: String,
    tags: Vec<Tag>,
    schemas: Vec<SchemaView>,
}

struct Tag {
    name: String,
    operations: Vec<Operation>,
}

struct Operation {
    method: String,
    path: String,
    anchor: String,
    summary: String,
    parameters: Vec<Field>,
    body: Option<String>,
    answers: Vec<Answer>,
}

/// A parameter of an operation, or a field of a schema.
struct Field {
    name: String,
    /// `query`, `path`; a field's type.
    kind: String,
    required: bool,
    description: String,
}

struct Answer {
    status: String,
    description: String,
    body: Option<String>,
}

struct SchemaView {
    name: String,
    description: String,
    fields: Vec<Field>,
    /// For a schema that is not an object of fields: what it is (`one of: …`).
    shape: Option<String>,
}

#[derive(Template)]
#[template(path = "api_docs.html")]
struct ApiDocsPage<'a> {
    frame: Frame,
    api: &'a ApiReference,
}

/// The OpenAPI document as served, and its reference once read.
#[derive(Clone)]
pub struct Reference {
    document: axum::body::Bytes,
    read: Arc<OnceLock<ApiReference>>,
}

impl Reference {
    /// The reference of the OpenAPI `document` (JSON), read when first asked for.
    pub fn of(document: axum::body::Bytes) -> Reference {
        Reference {
            document,
            read: Arc::default(),
        }
    }

    fn get(&self) -> &ApiReference {
        self.read.get_or_init(|| {
            ApiReference::of(&serde_json::from_slice(&self.document).unwrap_or_default())
        })
    }
}

/// `GET /api/docs`.
pub async fn page(viewer: Viewer, reference: Reference) -> Result<Response, PageError> {
    html(&ApiDocsPage {
        frame: Frame::of(&viewer, Section::Api),
        api: reference.get(),
    })
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

impl ApiReference {
    /// The reference of the OpenAPI `document`.
    fn of(document: &Value) -> ApiReference {
        let mut tags: Vec<Tag> = Vec::new();
        let paths = document["paths"].as_object().cloned().unwrap_or_default();
        for (path, item) in &paths {
            for method in METHODS {
                let Some(op) = item.get(method) else {
                    continue;
                };
                let tag = op["tags"][0].as_str().unwrap_or("other").to_owned();
                let operation = Operation {
                    method: method.to_uppercase(),
                    path: path.clone(),
                    anchor: format!("{method}-{}", path.replace(['/', '{', '}'], "-")),
                    summary: text(&op["description"])
                        .or_else(|| text(&op["summary"]))
                        .unwrap_or_default(),
                    parameters: op["parameters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|p| Field {
                            name: text(&p["name"]).unwrap_or_default(),
                            kind: text(&p["in"]).unwrap_or_default(),
                            required: p["required"].as_bool().unwrap_or(false),
                            description: text(&p["description"]).unwrap_or_default(),
                        })
                        .collect(),
                    body: content_type(&op["requestBody"]["content"]),
                    answers: op["responses"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(status, answer)| Answer {
                            status: status.clone(),
                            description: text(&answer["description"]).unwrap_or_default(),
                            body: content_type(&answer["content"]),
                        })
                        .collect(),
                };
                match tags.iter_mut().find(|t| t.name == tag) {
                    Some(t) => t.operations.push(operation),
                    None => tags.push(Tag {
                        name: tag,
                        operations: vec![operation],
                    }),
                }
            }
        }
        tags.sort_by(|a, b| a.name.cmp(&b.name));
        let schemas = document["components"]["schemas"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, schema)| schema_view(name, schema))
            .collect();
        ApiReference {
            version: text(&document["info"]["version"]).unwrap_or_default(),
            tags,
            schemas,
        }
    }
}

fn schema_view(name: &str, schema: &Value) -> SchemaView {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let fields: Vec<Field> = schema["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(field, value)| Field {
            name: field.clone(),
            kind: type_of(value),
            required: required.contains(&field.as_str()),
            description: text(&value["description"]).unwrap_or_default(),
        })
        .collect();
    let shape = fields.is_empty().then(|| type_of(schema));
    SchemaView {
        name: name.to_owned(),
        description: text(&schema["description"]).unwrap_or_default(),
        fields,
        shape,
    }
}

/// A schema as a short type: `string`, `Deployment`, `[Target]`, `one of: a, b`.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        return reference.rsplit('/').next().unwrap_or(reference).to_owned();
    }
    for (key, joiner) in [
        ("oneOf", "one of"),
        ("anyOf", "any of"),
        ("allOf", "all of"),
    ] {
        if let Some(options) = schema[key].as_array() {
            let options: Vec<String> = options.iter().map(type_of).collect();
            return format!("{joiner}: {}", options.join(", "));
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values
            .iter()
            .map(|v| v.to_string().replace('"', ""))
            .collect();
        return values.join(" | ");
    }
    let kind = match &schema["type"] {
        Value::String(kind) => kind.clone(),
        // `["string", "null"]`: an optional value.
        Value::Array(kinds) => kinds
            .iter()
            .filter_map(Value::as_str)
            .filter(|k| *k != "null")
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "object".to_owned(),
    };
    match kind.as_str() {
        "array" => format!("[{}]", type_of(&schema["items"])),
        _ => kind,
    }
}

/// The schema of the first content of a body or an answer, as a type.
fn content_type(content: &Value) -> Option<String> {
    let (media, body) = content.as_object()?.iter().next()?;
    let schema = &body["schema"];
    Some(match schema.is_null() {
        true => media.clone(),
        false => format!("{} ({media})", type_of(schema)),
    })
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_read_as_people_write_them() {
        for (schema, expected) in [
            (serde_json::json!({ "type": "string" }), "string"),
            (
                serde_json::json!({ "type": ["integer", "null"] }),
                "integer",
            ),
            (
                serde_json::json!({ "$ref": "#/components/schemas/Target" }),
                "Target",
            ),
            (
                serde_json::json!({ "type": "array", "items": { "$ref": "#/components/schemas/Target" } }),
                "[Target]",
            ),
            (
                serde_json::json!({ "enum": ["low", "critical"] }),
                "low | critical",
            ),
            (
                serde_json::json!({ "oneOf": [{ "type": "string" }, { "type": "integer" }] }),
                "one of: string, integer",
            ),
        ] {
            assert_eq!(type_of(&schema), expected, "{schema}");
        }
    }
}
