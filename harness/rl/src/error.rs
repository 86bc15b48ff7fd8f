//! Errors of harness-rl.
use std::path::PathBuf;

/// What can go wrong in training: files, tensors, the model folder, settings, checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum RlError {
    /// A file could not be read or written.
    #[error("{path}: {cause}", path = .path.display())]
    Io { path: PathBuf, cause: std::io::Error },
    /// libtorch refused an operation (reading or writing safetensors, ...).
    #[error("{path}: {cause}", path = .path.display())]
    Tensor { path: PathBuf, cause: tch::TchError },
    /// The policy's model folder.
    #[error(transparent)]
    Policy(#[from] harness_policy::PolicyError),
    /// A config file or built-in config name.
    #[error("{origin}: {cause}")]
    Config { origin: String, cause: String },
    /// A checkpoint that does not fit this trainer (missing tensors, other shapes or kinds).
    #[error("checkpoint {path}: {cause}", path = .path.display())]
    Checkpoint { path: PathBuf, cause: String },
}

impl RlError {
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> RlError + '_ {
        move |cause| RlError::Io { path: path.to_path_buf(), cause }
    }

    pub(crate) fn tensor(path: &std::path::Path) -> impl FnOnce(tch::TchError) -> RlError + '_ {
        move |cause| RlError::Tensor { path: path.to_path_buf(), cause }
    }
}
