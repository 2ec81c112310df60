//! The agent's error type. API errors keep the server's status code and message; runtime errors
//! keep the runtime's wording (it ends up in pod statuses as it is).

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server answered with an error status.
    #[error("{method} {path}: {code} {reason}: {message}")]
    Api { method: String, path: String, code: u16, reason: String, message: String },
    /// The API server could not be reached or the connection broke.
    #[error("talking to the API server ({path}): {source}")]
    Http {
        path: String,
        #[source]
        source: reqwest::Error,
    },
    #[error(transparent)]
    Runtime(#[from] runtime::Error),
    /// A pod spec the agent cannot run; the message names the field.
    #[error("{0}")]
    Spec(String),
    /// Agent configuration (flags, kubeconfig, certificates) that cannot be used.
    #[error("{0}")]
    Config(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { context: context.into(), source }
    }

    /// HTTP status of an API error (0 for everything else).
    pub fn code(&self) -> u16 {
        match self {
            Error::Api { code, .. } => *code,
            _ => 0,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == 404
    }

    pub fn is_conflict(&self) -> bool {
        self.code() == 409
    }
}
