//! Storage definitions (rows of `system.storages`) and opening them as an
//! `object_store`.
//!
//! A storage is where a table's Parquet files go: a directory on the local
//! filesystem or an S3-compatible bucket (with an optional key prefix). All
//! file paths the cold tier records are relative to the storage, so a
//! storage's credentials or endpoint may change without touching manifests.

use crate::template::{PathTemplate, TemplateKind};
use crate::FileStoreError;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The built-in storage: files under `<data>/storage`.
pub const LOCAL_STORAGE: &str = "local";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageType {
    Filesystem,
    S3,
}

impl StorageType {
    pub fn parse(text: &str) -> Result<Self, FileStoreError> {
        match text.to_ascii_lowercase().as_str() {
            "filesystem" | "local" => Ok(Self::Filesystem),
            "s3" => Ok(Self::S3),
            _ => Err(invalid(format!(
                "unknown storage type '{text}': expected 'filesystem' or 's3'"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Filesystem => "filesystem",
            Self::S3 => "s3",
        }
    }
}

/// One storage as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageDef {
    pub id: String,
    pub storage_type: StorageType,
    pub name: String,
    pub description: Option<String>,
    /// Filesystem: the directory (absolute, or relative to the data
    /// directory). S3: the key prefix inside the bucket ("" for none).
    pub base_directory: String,
    pub bucket: Option<String>,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub shared_tables_template: String,
    pub user_tables_template: String,
    /// JSON text (see [`Credentials`]); shown to admins only.
    pub credentials: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The credentials a storage's `CREDENTIALS '{json}'` may carry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    #[serde(alias = "aws_access_key_id", alias = "accessKeyId")]
    pub access_key_id: Option<String>,
    #[serde(alias = "aws_secret_access_key", alias = "secretAccessKey")]
    pub secret_access_key: Option<String>,
    #[serde(alias = "aws_session_token", alias = "sessionToken")]
    pub session_token: Option<String>,
}

fn invalid(reason: String) -> FileStoreError {
    FileStoreError::InvalidStorage(reason)
}

impl StorageDef {
    /// The built-in `local` storage.
    pub fn local(now: i64) -> Self {
        Self {
            id: LOCAL_STORAGE.to_string(),
            storage_type: StorageType::Filesystem,
            name: "Local storage".to_string(),
            description: Some("Parquet files under <data>/storage".to_string()),
            base_directory: "storage".to_string(),
            bucket: None,
            region: None,
            endpoint: None,
            shared_tables_template: PathTemplate::DEFAULT_SHARED.to_string(),
            user_tables_template: PathTemplate::DEFAULT_USER.to_string(),
            credentials: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Checks everything that can be checked without contacting the
    /// storage: templates, the settings its type needs, credentials JSON and
    /// that an object store can be built from it.
    pub fn validate(&self) -> Result<(), FileStoreError> {
        let (user, shared) = self.templates()?;
        user.check_distinct(TemplateKind::User)?;
        shared.check_distinct(TemplateKind::Shared)?;
        if let Some(text) = &self.credentials {
            self.parsed_credentials(text)?;
        }
        match self.storage_type {
            StorageType::Filesystem => {
                if std::path::Path::new(&self.base_directory)
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
                {
                    return Err(invalid(format!(
                        "PATH '{}' may not contain '..'; give an absolute directory instead",
                        self.base_directory
                    )));
                }
                if self.base_directory.trim().is_empty() {
                    return Err(invalid(
                        "a filesystem storage needs PATH '<directory>'".to_string(),
                    ));
                }
                if self.bucket.is_some() || self.endpoint.is_some() {
                    return Err(invalid(
                        "BUCKET and ENDPOINT apply to s3 storages only".to_string(),
                    ));
                }
            }
            StorageType::S3 => {
                if self.bucket.as_deref().is_none_or(str::is_empty) {
                    return Err(invalid("an s3 storage needs BUCKET '<name>'".to_string()));
                }
                if let Some(endpoint) = &self.endpoint {
                    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                        return Err(invalid(format!(
                            "ENDPOINT '{endpoint}' must start with http:// or https://"
                        )));
                    }
                }
                if !self.base_directory.is_empty() {
                    Path::parse(self.base_directory.trim_matches('/'))
                        .map_err(|e| invalid(format!("bad PATH '{}': {e}", self.base_directory)))?;
                }
                self.s3_builder()?.build()?;
            }
        }
        Ok(())
    }

    /// The (user, shared) path templates.
    pub fn templates(&self) -> Result<(PathTemplate, PathTemplate), FileStoreError> {
        Ok((
            PathTemplate::parse(&self.user_tables_template, TemplateKind::User)?,
            PathTemplate::parse(&self.shared_tables_template, TemplateKind::Shared)?,
        ))
    }

    fn parsed_credentials(&self, text: &str) -> Result<Credentials, FileStoreError> {
        serde_json::from_str(text).map_err(|e| {
            invalid(format!(
                "CREDENTIALS must be a JSON object with access_key_id, secret_access_key \
                 and optional session_token: {e}"
            ))
        })
    }

    fn s3_builder(&self) -> Result<AmazonS3Builder, FileStoreError> {
        // Environment credentials (AWS_*) apply when none are given here.
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(self.bucket.clone().unwrap_or_default())
            .with_region(self.region.as_deref().unwrap_or("us-east-1"))
            .with_virtual_hosted_style_request(false)
            // Fail within seconds when the storage is down: a flush that
            // cannot write keeps its rows hot and is retried as a whole.
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
                max_retries: 3,
                retry_timeout: Duration::from_secs(20),
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(60)),
            );
        if let Some(endpoint) = &self.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(text) = &self.credentials {
            let credentials = self.parsed_credentials(text)?;
            if let Some(key) = credentials.access_key_id {
                builder = builder.with_access_key_id(key);
            }
            if let Some(secret) = credentials.secret_access_key {
                builder = builder.with_secret_access_key(secret);
            }
            if let Some(token) = credentials.session_token {
                builder = builder.with_token(token);
            }
        }
        Ok(builder)
    }

    /// Opens the storage. `data_dir` anchors relative filesystem paths.
    pub fn open(&self, data_dir: &std::path::Path) -> Result<Arc<dyn ObjectStore>, FileStoreError> {
        match self.storage_type {
            StorageType::Filesystem => {
                let dir = data_dir.join(&self.base_directory);
                std::fs::create_dir_all(&dir)
                    .map_err(|e| invalid(format!("cannot create {}: {e}", dir.display())))?;
                Ok(Arc::new(LocalFileSystem::new_with_prefix(&dir)?))
            }
            StorageType::S3 => {
                let store = self.s3_builder()?.build()?;
                let prefix = self.base_directory.trim_matches('/');
                if prefix.is_empty() {
                    Ok(Arc::new(store))
                } else {
                    Ok(Arc::new(PrefixStore::new(
                        store,
                        Path::parse(prefix)
                            .map_err(|e| invalid(format!("bad PATH '{prefix}': {e}")))?,
                    )))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3() -> StorageDef {
        StorageDef {
            id: "s3_main".into(),
            storage_type: StorageType::S3,
            name: "Main".into(),
            description: None,
            base_directory: "kalam/prod".into(),
            bucket: Some("bucket".into()),
            region: None,
            endpoint: Some("http://127.0.0.1:9".into()),
            credentials: Some(r#"{"access_key_id":"a","secret_access_key":"b"}"#.into()),
            ..StorageDef::local(0)
        }
    }

    #[test]
    fn valid_definitions_pass() {
        StorageDef::local(0).validate().unwrap();
        s3().validate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        s3().open(dir.path()).unwrap();
        StorageDef::local(0).open(dir.path()).unwrap();
        assert!(dir.path().join("storage").is_dir());
    }

    #[test]
    fn bad_definitions_say_why() {
        let cases = [
            StorageDef {
                bucket: None,
                ..s3()
            },
            StorageDef {
                endpoint: Some("ftp://x".into()),
                ..s3()
            },
            StorageDef {
                credentials: Some("{\"password\":\"x\"}".into()),
                ..s3()
            },
            StorageDef {
                credentials: Some("not json".into()),
                ..s3()
            },
            StorageDef {
                user_tables_template: "{namespace}/{tableName}".into(),
                ..s3()
            },
            StorageDef {
                base_directory: String::new(),
                ..StorageDef::local(0)
            },
            StorageDef {
                bucket: Some("b".into()),
                ..StorageDef::local(0)
            },
            StorageDef {
                base_directory: "../../etc".into(),
                ..StorageDef::local(0)
            },
        ];
        for def in cases {
            assert!(def.validate().is_err(), "{def:?} accepted");
        }
        assert!(StorageType::parse("ftp").is_err());
        assert_eq!(StorageType::parse("S3").unwrap(), StorageType::S3);
    }
}
