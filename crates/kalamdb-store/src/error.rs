use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("corrupt data in the hot tier: {0}")]
    Corrupt(String),
    #[error("value cannot be used as a primary key: {0}")]
    InvalidKey(String),
    /// A version the change log refers to could not be read from the
    /// scope's files.
    #[error("reading a flushed row version: {0}")]
    Flushed(String),
}
