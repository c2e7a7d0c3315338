use thiserror::Error;

#[derive(Debug, Error)]
pub enum FileStoreError {
    #[error("invalid path template '{template}': {reason}")]
    InvalidTemplate { template: String, reason: String },
    #[error("invalid storage: {0}")]
    InvalidStorage(String),
    #[error("cannot build a storage path: {0}")]
    InvalidPath(String),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("batch has no '{0}' BIGINT column")]
    MissingSeq(&'static str),
}
