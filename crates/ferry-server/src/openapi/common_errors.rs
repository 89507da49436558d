//! The refusals every operation can answer whatever its handler does, added to the document
//! so that it lists every status a caller can get: 401 where a credential is needed, 400
//! where a path, a query or a body can be malformed, 413 where a body can be too large (408
//! where it arrives too slowly), 422 where a path or query parameter is text (names and
//! versions are checked against their patterns). What else a handler refuses (403, 404, 409, 422 for a body) its own
//! annotation says.

use serde_json::Value;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder, Schema};
use utoipa::ToSchema;

use ferry_api::ErrorBody;

/// Adds the common refusals to every operation of `openapi` that can answer them.
pub fn add(openapi: &mut OpenApi) {
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            add_to(operation);
        }
    }
}

fn add_to(operation: &mut Operation) {
    let has_parameters = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let has_body = operation.request_body.is_some();
    let takes_text = operation
        .parameters
        .iter()
        .flatten()
        .any(|parameter| parameter.schema.as_ref().is_some_and(is_text));
    // An operation without `security` of its own takes the document's: a bearer token.
    let needs_credential = !operation
        .security
        .as_ref()
        .is_some_and(|r| open_to_anyone(r));
    let refusals = [
        (
            needs_credential,
            "401",
            "no credential, or one that is unknown or revoked",
        ),
        (
            has_parameters || has_body,
            "400",
            "a malformed path, query string or body",
        ),
        (has_body, "413", "a body larger than the operation accepts"),
        (has_body, "408", "a body that arrived too slowly"),
        (takes_text, "422", "a name or version outside its pattern"),
    ];
    for (applies, status, description) in refusals {
        if applies {
            operation
                .responses
                .responses
                .entry(status.to_owned())
                .or_insert_with(|| error_response(description));
        }
    }
}

/// `security(())` (an empty requirement, met without a credential) or no requirement at all.
fn open_to_anyone(requirements: &[SecurityRequirement]) -> bool {
    requirements.is_empty() || requirements.contains(&SecurityRequirement::default())
}

/// A schema of type `string`, or `["string", "null"]` for an optional parameter.
fn is_text(schema: &RefOr<Schema>) -> bool {
    let json = serde_json::to_value(schema).unwrap_or_default();
    match &json["type"] {
        Value::String(one) => one == "string",
        Value::Array(several) => several.iter().any(|t| t == "string"),
        _ => false,
    }
}

fn error_response(description: &str) -> RefOr<Response> {
    let schema = Ref::from_schema_name(ErrorBody::name());
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(schema)).build(),
        )
        .build()
        .into()
}
