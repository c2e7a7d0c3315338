//! An object store wrapper that injects faults, for testing what the cold
//! tier does when storage misbehaves: failing writes, a write that lands but
//! reports failure, a write that lands and then times out, failing reads
//! and deletes, and latency.
//! Faults are armed per operation count, so tests are deterministic.

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result, UploadPart,
};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What to inject next. Counters say how many of the next operations of a
/// kind are affected.
#[derive(Debug, Default)]
pub struct Faults {
    /// Writes (put, multipart start) that fail without writing anything.
    pub fail_writes: AtomicU32,
    /// Writes that store the object and then report an error.
    pub fail_after_write: AtomicU32,
    /// Writes that store the object, then hang for `timeout` and report a
    /// timeout (the caller cannot know the write succeeded).
    pub timeout_after_write: AtomicU32,
    /// How long a timed-out write hangs first, in milliseconds.
    pub timeout_ms: AtomicU64,
    /// Reads (get, head) that fail.
    pub fail_reads: AtomicU32,
    /// Deletes that fail.
    pub fail_deletes: AtomicU32,
    /// Added to every operation.
    pub latency_ms: AtomicU64,
    /// How many faults were injected so far.
    pub injected: AtomicU64,
    /// Bytes that reads returned (whole objects or ranges), to check that a
    /// reader fetches only what it needs.
    pub bytes_read: AtomicU64,
}

impl Faults {
    fn take(&self, counter: &AtomicU32) -> bool {
        let taken = counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if taken {
            self.injected.fetch_add(1, Ordering::SeqCst);
        }
        taken
    }

    /// After a successful write: the armed failure, if any.
    async fn after_write(&self) -> Result<()> {
        if self.take(&self.fail_after_write) {
            return Err(injected("error after a successful write"));
        }
        if self.take(&self.timeout_after_write) {
            let ms = self.timeout_ms.load(Ordering::SeqCst);
            #[expect(clippy::disallowed_methods, reason = "an injected stall is this fault")]
            tokio::time::sleep(Duration::from_millis(ms)).await;
            return Err(injected("timed out after a successful write"));
        }
        Ok(())
    }

    async fn delay(&self) {
        let ms = self.latency_ms.load(Ordering::SeqCst);
        if ms > 0 {
            #[expect(clippy::disallowed_methods, reason = "injected latency is this fault")]
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }
}

fn injected(what: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "faulty",
        source: format!("injected fault: {what}").into(),
    }
}

#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    pub faults: Arc<Faults>,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>, faults: Arc<Faults>) -> Self {
        Self { inner, faults }
    }
}

impl std::fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.faults.delay().await;
        if self.faults.take(&self.faults.fail_writes) {
            return Err(injected("write refused"));
        }
        let result = self.inner.put_opts(location, payload, opts).await?;
        self.faults.after_write().await?;
        Ok(result)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.faults.delay().await;
        if self.faults.take(&self.faults.fail_writes) {
            return Err(injected("multipart upload refused"));
        }
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(FaultyUpload {
            inner,
            faults: self.faults.clone(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.faults.delay().await;
        if self.faults.take(&self.faults.fail_reads) {
            return Err(injected("read failed"));
        }
        let result = self.inner.get_opts(location, options).await?;
        self.faults
            .bytes_read
            .fetch_add(result.range.end - result.range.start, Ordering::SeqCst);
        Ok(result)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        if self.faults.take(&self.faults.fail_deletes) {
            return Box::pin(futures::stream::once(async {
                Err(injected("delete failed"))
            }));
        }
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[derive(Debug)]
struct FaultyUpload {
    inner: Box<dyn MultipartUpload>,
    faults: Arc<Faults>,
}

#[async_trait]
impl MultipartUpload for FaultyUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> Result<PutResult> {
        let result = self.inner.complete().await?;
        self.faults.after_write().await?;
        Ok(result)
    }

    async fn abort(&mut self) -> Result<()> {
        self.inner.abort().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::ObjectStoreExt;

    #[tokio::test]
    async fn faults_fire_as_armed() {
        let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let faults = Arc::new(Faults::default());
        let store = FaultyStore::new(inner.clone(), faults.clone());
        let path = Path::from("a/b");
        faults.fail_writes.store(1, Ordering::SeqCst);
        assert!(store.put(&path, PutPayload::from("x")).await.is_err());
        assert!(
            inner.head(&path).await.is_err(),
            "a refused write writes nothing"
        );
        faults.fail_after_write.store(1, Ordering::SeqCst);
        assert!(store.put(&path, PutPayload::from("x")).await.is_err());
        assert!(inner.head(&path).await.is_ok(), "the write landed anyway");
        let other = Path::from("a/c");
        faults.timeout_after_write.store(1, Ordering::SeqCst);
        faults.timeout_ms.store(20, Ordering::SeqCst);
        #[expect(
            clippy::disallowed_methods,
            reason = "checks the injected stall's length"
        )]
        let started = std::time::Instant::now();
        assert!(store.put(&other, PutPayload::from("y")).await.is_err());
        assert!(started.elapsed() >= Duration::from_millis(20));
        assert!(inner.head(&other).await.is_ok());
        faults.fail_reads.store(1, Ordering::SeqCst);
        assert!(store.get(&path).await.is_err());
        assert!(store.get(&path).await.is_ok());
        assert_eq!(faults.injected.load(Ordering::SeqCst), 4);
    }
}
