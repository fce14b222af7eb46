//! `AppError`: the one error type server functions return, carried to the
//! browser as JSON and shown to users as its `Display` text. Both builds.
//!
//! Internals (database errors and the like) are logged on the server and
//! reach the client only as `Internal`.

use crate::protocol::ErrorCode;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// Read in one pass (`protocol::read`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(
    tag = "code",
    content = "message",
    rename_all = "snake_case",
    try_from = "crate::protocol::read::AppErrorWire"
)]
pub enum AppError {
    /// The input was refused; the text says why.
    #[error("{0}")]
    Validation(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// No signed-in account, or invalid credentials; the text says which.
    #[error("{0}")]
    Unauthenticated(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A limit was reached; the text says which.
    #[error("{0}")]
    Limit(String),
    #[error("the server had a problem; please try again")]
    Internal,
    /// The request never got a proper answer (network down, server restarting).
    #[error("could not reach the server: {0}")]
    Transport(String),
}

impl AppError {
    /// The refusal for a request that needs an account.
    pub fn sign_in() -> Self {
        AppError::Unauthenticated("sign in first".into())
    }

    /// Whether retrying the same request (with the same client id) may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, AppError::Transport(_) | AppError::Internal)
    }

    /// The HTTP status a server function answers with for this error.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Validation(_) => 400,
            AppError::Unauthenticated(_) => 401,
            AppError::NotFound(_) => 404,
            AppError::Conflict(_) => 409,
            AppError::Forbidden(_) => 403,
            AppError::Limit(_) => 429,
            AppError::Internal | AppError::Transport(_) => 500,
        }
    }

    /// The error a WebSocket `error` frame stands for, by its code (its
    /// message is already a sentence for people).
    pub fn from_frame(code: ErrorCode, message: String) -> Self {
        match code {
            ErrorCode::Unauthenticated => AppError::Unauthenticated(message),
            ErrorCode::Internal => AppError::Internal,
            ErrorCode::Forbidden => AppError::Forbidden(message),
            ErrorCode::Conflict => AppError::Conflict(message),
            ErrorCode::Limit => AppError::Limit(message),
            ErrorCode::BadFrame
            | ErrorCode::UnknownType
            | ErrorCode::TooLarge
            | ErrorCode::InvalidTopic
            | ErrorCode::NotFound
            | ErrorCode::Validation
            | ErrorCode::Unknown => AppError::Validation(message),
        }
    }

    /// The WebSocket error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::Validation(_) => ErrorCode::Validation,
            AppError::NotFound(_) => ErrorCode::NotFound,
            AppError::Conflict(_) => ErrorCode::Conflict,
            AppError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            AppError::Forbidden(_) => ErrorCode::Forbidden,
            AppError::Limit(_) => ErrorCode::Limit,
            AppError::Internal | AppError::Transport(_) => ErrorCode::Internal,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // The request's arguments could not be read. The details name
            // parser internals: they are logged, not sent.
            ServerFnErrorErr::Args(m) | ServerFnErrorErr::MissingArg(m) => malformed(m),
            // On the server, an unreadable request; in the browser, an
            // unreadable answer.
            ServerFnErrorErr::Deserialization(m) if cfg!(feature = "ssr") => malformed(m),
            ServerFnErrorErr::Request(m) | ServerFnErrorErr::Deserialization(m) => {
                AppError::Transport(m)
            }
            other => AppError::Transport(other.to_string()),
        }
    }
}

/// A request whose arguments could not be read: a generic 400.
fn malformed(details: String) -> AppError {
    tracing::debug!(%details, "malformed server-function arguments");
    AppError::Validation("bad request: malformed or missing arguments".into())
}
