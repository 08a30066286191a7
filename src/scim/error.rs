//! Why a SCIM request is refused: one variant per RFC 7644 §3.12 answer,
//! each with its status and `scimType`. `http::respond` writes the body.

use crate::session::store::StoreError;

/// A refused SCIM request. Bad input is always a 4xx, never a 500.
#[derive(Debug, thiserror::Error)]
pub enum ScimError {
    /// The body is not JSON, or not the JSON this endpoint takes.
    #[error("{0}")]
    InvalidSyntax(String),
    /// A `filter` this service provider does not evaluate.
    #[error("{0}")]
    InvalidFilter(String),
    /// A required value is missing, or a value has the wrong type or form.
    #[error("{0}")]
    InvalidValue(String),
    /// A PATCH `path` that does not parse or names nothing of the schema.
    #[error("{0}")]
    InvalidPath(String),
    /// A PATCH `path` whose filter matches no value.
    #[error("{0}")]
    NoTarget(String),
    /// A change to a read-only attribute (`id`, `meta`, a user's `groups`).
    #[error("{0}")]
    Mutability(String),
    /// Another resource already holds this `userName`, `externalId` or `displayName`.
    #[error("{0}")]
    Uniqueness(String),
    /// The directory holds as many resources as it may.
    #[error("{0}")]
    TooMany(String),
    /// No resource with this id.
    #[error("{0}")]
    NotFound(String),
    /// A method the endpoint does not answer (the discovery endpoints: GET only).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A request this service provider does not implement (`/.search`).
    #[error("{0}")]
    NotImplemented(String),
    /// `If-Match` names another version.
    #[error("{0}")]
    PreconditionFailed(String),
    /// The body is larger than the service provider takes.
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// No bearer token, or not the configured one.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// The store cannot answer now: nothing changed.
    #[error("the directory's store is unavailable: {0}")]
    Store(#[from] StoreError),
}

impl ScimError {
    /// The HTTP status (RFC 7644 §3.12).
    pub fn status(&self) -> u16 {
        match self {
            ScimError::InvalidSyntax(_)
            | ScimError::InvalidFilter(_)
            | ScimError::InvalidValue(_)
            | ScimError::InvalidPath(_)
            | ScimError::NoTarget(_)
            | ScimError::Mutability(_)
            | ScimError::TooMany(_) => 400,
            ScimError::Unauthorized => 401,
            ScimError::NotFound(_) => 404,
            ScimError::MethodNotAllowed(_) => 405,
            ScimError::NotImplemented(_) => 501,
            ScimError::Uniqueness(_) => 409,
            ScimError::PreconditionFailed(_) => 412,
            ScimError::TooLarge(_) => 413,
            ScimError::Store(_) => 503,
        }
    }

    /// The `scimType` of a 400 or 409, as RFC 7644 §3.12 names it.
    pub fn scim_type(&self) -> Option<&'static str> {
        Some(match self {
            ScimError::InvalidSyntax(_) => "invalidSyntax",
            ScimError::InvalidFilter(_) => "invalidFilter",
            ScimError::InvalidValue(_) => "invalidValue",
            ScimError::InvalidPath(_) => "invalidPath",
            ScimError::NoTarget(_) => "noTarget",
            ScimError::Mutability(_) => "mutability",
            ScimError::Uniqueness(_) => "uniqueness",
            ScimError::TooMany(_) => "tooMany",
            _ => return None,
        })
    }

    /// The `detail` for the client: the store's own reason stays in the log.
    pub fn detail(&self) -> String {
        match self {
            ScimError::Store(_) => "the directory is unavailable; try again later".into(),
            other => other.to_string(),
        }
    }
}
