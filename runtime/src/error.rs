//! The runtime's one error type. Messages name the input that was wrong (an image reference, a
//! container id, a path) so the agent can put them in a pod's status as they are.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A registry refused or failed a request (auth, missing manifest, bad digest...).
    #[error("{0}")]
    Registry(String),
    /// An image reference, manifest, config or layer that cannot be used.
    #[error("{0}")]
    Image(String),
    /// The image is not in the local store and the pull policy forbids pulling it.
    #[error("image {0} is not present on this node and imagePullPolicy is Never")]
    ImageNotPresent(String),
    /// Creating, starting, signalling or deleting a container failed.
    #[error("{0}")]
    Container(String),
    /// No container with this id is known to the runtime.
    #[error("no container {0} on this node")]
    ContainerNotFound(String),
    /// A CNI plugin, a namespace or a route could not be set up.
    #[error("{0}")]
    Network(String),
    /// A spec or option the runtime cannot honour (the message says which field).
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {message}")]
    Path { path: PathBuf, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { context: context.into(), source }
    }
}

/// `result.ctx("reading x")?` for io results.
pub trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::io(context(), e))
    }
}
