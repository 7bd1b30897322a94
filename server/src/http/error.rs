//! [`ApiError`]: every failure of a route as an HTTP status and OpenAI's error body
//! (`{"error": {"message", "type", "code"}}`), so OpenAI clients show the message.
//!
//! provdb's errors map by their kind (`crate::error_kind`, which the exit codes read too): an
//! unknown (or unreadable) Datanet or record, or an epoch proof that does not exist, is 404,
//! a forbidden act 403, a price above the caller's `max_fee_wei` or a caller without an
//! account 402 (`payment_required`), a short balance 402 (`insufficient_funds`),
//! an input over a size limit 413 (by its variant, `provdb::Error::TooLarge`), any other user
//! error 400, everything else 500. A private Datanet's name therefore meets the same 404 as a
//! name that does not exist.

use std::fmt::Display;

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use provdb::storage::StorageError;

use crate::error_kind::{Classify, ErrorKind};

/// A failed request.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    retry_after_s: Option<u64>,
    /// The error type of a 402: `payment_required` or `insufficient_funds`.
    payment_type: Option<&'static str>,
    /// Headers sent with it (an x402 402's payment requirements or failed receipt).
    headers: Vec<(&'static str, String)>,
}

/// Result of a route.
pub(crate) type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after_s: None,
            payment_type: None,
            headers: Vec::new(),
        }
    }

    /// 402 with its error type.
    pub(crate) fn payment(message: impl Into<String>, payment_type: &'static str) -> Self {
        Self {
            payment_type: Some(payment_type),
            ..Self::new(StatusCode::PAYMENT_REQUIRED, message)
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// 500, or 507 when the cause is a full disk (the client may retry once there is room).
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        if is_disk_full(&message) {
            return Self::new(
                StatusCode::INSUFFICIENT_STORAGE,
                format!(
                    "the server's disk is full; nothing of this request was stored ({message})"
                ),
            );
        }
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// 429 with `Retry-After: seconds`.
    pub(crate) fn too_many(message: impl Into<String>, retry_after_s: u64) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: message.into(),
            retry_after_s: Some(retry_after_s.max(1)),
            payment_type: None,
            headers: Vec::new(),
        }
    }

    /// The same error with header `name: value` (a lowercase name; a value that is not a
    /// valid header value is dropped).
    pub(crate) fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The same error with `text` cut out of its message (a server path, say).
    pub(crate) fn without(mut self, text: &str) -> Self {
        if !text.is_empty() {
            self.message = self.message.replace(text, "");
        }
        self
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    fn kind(&self) -> &'static str {
        match self.status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::FORBIDDEN => "permission_error",
            StatusCode::NOT_FOUND => "not_found_error",
            StatusCode::PAYMENT_REQUIRED => self.payment_type.unwrap_or("payment_required"),
            StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
            StatusCode::INSUFFICIENT_STORAGE => "insufficient_storage_error",
            s if s.is_server_error() => "server_error",
            _ => "invalid_request_error",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": {
                "message": self.message,
                "type": self.kind(),
                "code": self.status.as_u16(),
            }
        });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static(name), value);
            }
        }
        response
    }
}

/// Whether an error's text names a full disk or an exceeded file-size or disk quota (RocksDB
/// passes the OS error on as text).
fn is_disk_full(message: &str) -> bool {
    [
        "No space left on device",
        "File too large",
        "Disk quota exceeded",
    ]
    .iter()
    .any(|cause| message.contains(cause))
}

impl ApiError {
    /// The status of `error`'s kind; internal errors are logged on stderr.
    fn classified(error: &(impl Classify + Display)) -> Self {
        match error.kind() {
            ErrorKind::NotFound => Self::not_found(error.to_string()),
            ErrorKind::Forbidden => Self::forbidden(error.to_string()),
            ErrorKind::PaymentRequired => Self::payment(error.to_string(), "payment_required"),
            ErrorKind::InsufficientFunds => Self::payment(error.to_string(), "insufficient_funds"),
            ErrorKind::Invalid => Self::bad_request(error.to_string()),
            ErrorKind::Internal => {
                eprintln!("provdb serve: internal error: {error}");
                Self::internal(error.to_string())
            }
        }
    }
}

impl From<provdb::Error> for ApiError {
    /// An input over a size limit is 413 (the message names the limit and its setting);
    /// everything else answers by its kind.
    fn from(error: provdb::Error) -> Self {
        if matches!(error, provdb::Error::TooLarge { .. }) {
            return Self::new(StatusCode::PAYLOAD_TOO_LARGE, error.to_string());
        }
        Self::classified(&error)
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        Self::classified(&error)
    }
}

impl From<provdb::inference::InferenceError> for ApiError {
    fn from(error: provdb::inference::InferenceError) -> Self {
        Self::classified(&error)
    }
}

impl From<provdb::query::QueryError> for ApiError {
    fn from(error: provdb::query::QueryError) -> Self {
        Self::classified(&error)
    }
}

/// Runs blocking work (RocksDB, indexes, models) on tokio's blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("a worker task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_error_kind() {
        let status = |error: provdb::Error| ApiError::from(error).status();
        assert_eq!(
            status(StorageError::UnknownDatanet("secret".into()).into()),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(provdb::Error::NotFound("no epoch is closed yet".into())),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(StorageError::Invalid("no closed epoch 9".into()).into()),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(provdb::Error::Internal("bug".into())),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            ApiError::from(StorageError::UnknownRecord("0x01".into())).status(),
            StatusCode::NOT_FOUND,
            "a storage error converted directly answers as through provdb::Error"
        );
    }

    #[test]
    fn an_input_over_a_size_limit_is_413() {
        let error = provdb::Error::TooLarge {
            source_name: "bomb.parquet".into(),
            location: provdb::Location::Whole,
            reason: "over the limit".into(),
        };
        assert_eq!(
            ApiError::from(error).status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }

    #[test]
    fn a_full_disk_is_507() {
        let full = provdb::Error::Internal("write failed: No space left on device".into());
        assert_eq!(
            ApiError::from(full).status(),
            StatusCode::INSUFFICIENT_STORAGE
        );
    }
}
