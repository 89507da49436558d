//! Request bodies and parameters whose rejections are API errors: a body over the limit is
//! 413, malformed JSON is 400 naming the field that is wrong.

use std::time::Duration;

use axum::body::Bytes;
use axum::body::HttpBody;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The largest JSON body most endpoints accept.
pub const MAX_JSON_BODY: usize = 1024 * 1024;

/// How slowly a body may arrive: a minute, plus a second for every 64 KiB it may hold.
/// A client that sends slower is cut off (408), so it cannot hold a request open forever.
fn body_deadline(limit: usize) -> Duration {
    Duration::from_secs(60 + (limit / (64 * 1024)) as u64)
}

/// Reads a whole request body of at most `limit` bytes; past it, 413 (at once when the
/// body's declared length is past it); slower than [`body_deadline`], 408.
pub async fn read_body(body: axum::body::Body, limit: usize) -> Result<Bytes, ApiError> {
    let deadline = body_deadline(limit);
    tokio::time::timeout(deadline, read_body_whole(body, limit))
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the request body did not arrive within {} seconds: send it faster, or \
                     in smaller requests",
                    deadline.as_secs()
                ),
            ))
        })
}

async fn read_body_whole(body: axum::body::Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    };
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        let inner = error.into_inner();
        let over_limit = inner.is::<http_body_util::LengthLimitError>()
            || inner
                .source()
                .is_some_and(|e| e.is::<http_body_util::LengthLimitError>());
        if over_limit {
            too_large()
        } else {
            ApiError::bad_request("could not read the request body")
        }
    })
}

/// A JSON request body of at most `LIMIT` bytes.
pub struct Body<T, const LIMIT: usize = MAX_JSON_BODY>(pub T);

impl<T: DeserializeOwned, S: Send + Sync, const LIMIT: usize> FromRequest<S> for Body<T, LIMIT> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        LaterBody::<LIMIT>(request.into_body())
            .json()
            .await
            .map(Body)
    }
}

/// A request body of at most `LIMIT` bytes, not read yet: for endpoints that take large
/// bodies, so that the caller's permission is checked before a byte of the body is read.
pub struct LaterBody<const LIMIT: usize>(axum::body::Body);

impl<S: Send + Sync, const LIMIT: usize> FromRequest<S> for LaterBody<LIMIT> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        Ok(LaterBody(request.into_body()))
    }
}

impl<const LIMIT: usize> LaterBody<LIMIT> {
    /// The body, as JSON.
    pub async fn json<T: DeserializeOwned>(self) -> Result<T, ApiError> {
        parse_json(&self.bytes().await?)
    }

    /// The body, as bytes.
    pub async fn bytes(self) -> Result<Bytes, ApiError> {
        read_body(self.0, LIMIT).await
    }
}

/// Parses a JSON document, naming the path of the field that is wrong. Every body ferry
/// takes is an object: serde would also read a struct from an array of its fields' values
/// in order (`[null, null]`), which no client means.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.trim_ascii_start().first() == Some(&b'[') {
        return Err(ApiError::bad_request(
            "malformed JSON body: send an object `{...}`, not an array",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if matches!(path.as_str(), "" | "." | "?") {
            ApiError::bad_request(format!("malformed JSON body: {inner}"))
        } else {
            ApiError::bad_request(format!("malformed JSON body: field `{path}`: {inner}"))
        }
    })?;
    // Whatever follows the document is a client's mistake, not something to ignore.
    deserializer.end().map_err(|error| {
        ApiError::bad_request(format!(
            "malformed JSON body: {error}: send one JSON object and nothing after it"
        ))
    })?;
    Ok(value)
}

/// A path parameter.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// Query parameters.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Change {
        approvals: Option<u32>,
        nested: Option<Vec<Inner>>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Inner {
        team: String,
    }

    fn check(body: &str, expected: &str) {
        let error = parse_json::<Change>(body.as_bytes()).unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert!(
            error.message.contains(expected),
            "{body}: {}",
            error.message
        );
    }

    #[test]
    fn errors_name_the_field() {
        check(
            r#"{"approvals": "two"}"#,
            "field `approvals`: invalid type: string \"two\"",
        );
        check(r#"{"approvals": -1}"#, "field `approvals`");
        check(r#"{"nested": [{"team": 1}]}"#, "field `nested[0].team`");
        check(r#"{"approvls": 1}"#, "unknown field `approvls`");
        check(r#"{"approvals": 1"#, "malformed JSON body: EOF");
        check("", "malformed JSON body");
        check("[]", "malformed JSON body: send an object");
        check(" [null, null]", "malformed JSON body: send an object");
        check(r#"{"approvals": 1} {}"#, "trailing characters");
        check(r#"{"approvals": 1}x"#, "nothing after it");
        assert!(parse_json::<Change>(b"{\"approvals\": 1}\n").is_ok());
    }
}
