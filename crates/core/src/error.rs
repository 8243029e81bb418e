//! Stable API error codes. A client branches on `code` and `data.reason`; `message` is for people.

use serde::Serialize;

/// JSON-RPC error codes of the Fiber Link API. They never change meaning once published.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ErrorCode {
    /// -32700: the body is not valid JSON.
    ParseError,
    /// -32600: valid JSON but not a JSON-RPC 2.0 request.
    InvalidRequest,
    /// -32601: no such method.
    MethodNotFound,
    /// -32602: a parameter is missing or invalid.
    InvalidParams,
    /// -32603: the service failed; nothing the client did.
    Internal,
    /// -32001: the request is not authenticated (headers, timestamp, nonce, signature, app).
    Unauthorized,
    /// -32002: the object does not exist for this app.
    NotFound,
    /// -32003: an idempotency key was reused with other parameters.
    Conflict,
    /// -32004: the request body is larger than allowed.
    PayloadTooLarge,
    /// -32005: the hub did not answer; retry with the same idempotency key.
    HubUnavailable,
    /// -32009: the object is not in a state that allows this.
    InvalidState,
    /// -32010: refused by the app's policy (withdrawal rules).
    Refused,
    /// -32011: the operator has paused this (tips or withdrawals); retry later.
    Paused,
    /// -32029: a rate limit was hit; retry later.
    RateLimited,
}

impl ErrorCode {
    pub fn code(self) -> i64 {
        match self {
            ErrorCode::ParseError => -32700,
            ErrorCode::InvalidRequest => -32600,
            ErrorCode::MethodNotFound => -32601,
            ErrorCode::InvalidParams => -32602,
            ErrorCode::Internal => -32603,
            ErrorCode::Unauthorized => -32001,
            ErrorCode::NotFound => -32002,
            ErrorCode::Conflict => -32003,
            ErrorCode::PayloadTooLarge => -32004,
            ErrorCode::HubUnavailable => -32005,
            ErrorCode::InvalidState => -32009,
            ErrorCode::Refused => -32010,
            ErrorCode::Paused => -32011,
            ErrorCode::RateLimited => -32029,
        }
    }

    /// The HTTP status the REST endpoints answer with (JSON-RPC over `/rpc` answers 200 unless the
    /// request could not be authenticated or read).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::ParseError | ErrorCode::InvalidRequest | ErrorCode::InvalidParams => 400,
            ErrorCode::MethodNotFound | ErrorCode::NotFound => 404,
            ErrorCode::Internal => 500,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Conflict | ErrorCode::InvalidState => 409,
            ErrorCode::Refused => 422,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::HubUnavailable | ErrorCode::Paused => 503,
            ErrorCode::RateLimited => 429,
        }
    }
}

/// An error as the API reports it: code, a stable machine-readable reason, and a sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub reason: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
        }
    }

    pub fn invalid(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParams, reason, message)
    }

    pub fn unauthorized(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, reason, message)
    }

    pub fn internal() -> Self {
        Self::new(
            ErrorCode::Internal,
            "internal",
            "the service failed; the request can be retried",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code.code(),
            self.reason,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}
