//! File bytes kept in memory, in aligned blocks.
//!
//! A cold point lookup reads a few small pages of a file. Left to the
//! operating system's page cache, those reads are as fast as memory only
//! while the kernel keeps the pages: on a host that reclaims page cache
//! eagerly, a lookup of 4 KiB waited tens of milliseconds for the disk,
//! and on S3 every read is a request. So the readers of the lookup path
//! keep what they fetched: blocks of [`BLOCK_BYTES`] aligned in the file,
//! fetched whole (neighbouring missing blocks in one request), evicted by
//! a clock (second chance) once the budget is used. Files never change
//! once written and their names are never reused, so a block never goes
//! stale.

use crate::clock_cache::ClockCache;
use bytes::{Bytes, BytesMut};
use object_store::path::Path;
use object_store::ObjectStore;
use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;

/// Bytes per block: a few pages of a typical file, one request's worth.
pub const BLOCK_BYTES: u64 = 64 * 1024;

/// A block: which file (storage-qualified path and length) and where.
type BlockKey = (Arc<str>, u64, u64);

/// Blocks of files, at most `budget` bytes of them.
#[derive(Debug)]
pub struct BlockCache {
    blocks: ClockCache<BlockKey, Bytes>,
}

impl BlockCache {
    pub fn new(budget: usize) -> Self {
        Self {
            blocks: ClockCache::new(budget),
        }
    }

    /// `ranges` of file `path` (`size` bytes long; `file` names it in the
    /// cache), from the cache where it holds them and from `store` for the
    /// rest.
    pub(crate) async fn get_ranges(
        &self,
        store: &dyn ObjectStore,
        file: &Arc<str>,
        path: &Path,
        size: u64,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        if !self.blocks.is_enabled() {
            return store.get_ranges(path, ranges).await;
        }
        let mut found: HashMap<u64, Bytes> = HashMap::new();
        let mut missing: Vec<u64> = Vec::new();
        for index in block_indexes(ranges) {
            match self.blocks.get(&(file.clone(), size, index)) {
                Some(block) => {
                    found.insert(index, block);
                }
                None => missing.push(index),
            }
        }
        if !missing.is_empty() {
            // Runs of neighbouring missing blocks, one request each.
            let mut runs: Vec<Range<u64>> = Vec::new();
            for &index in &missing {
                match runs.last_mut() {
                    Some(run) if run.end == index => run.end = index + 1,
                    _ => runs.push(index..index + 1),
                }
            }
            let requests: Vec<Range<u64>> = runs
                .iter()
                .map(|run| run.start * BLOCK_BYTES..(run.end * BLOCK_BYTES).min(size))
                .collect();
            let fetched = store.get_ranges(path, &requests).await?;
            for (run, bytes) in runs.iter().zip(fetched) {
                for index in run.clone() {
                    let from = ((index - run.start) * BLOCK_BYTES) as usize;
                    let to = (from + BLOCK_BYTES as usize).min(bytes.len());
                    if from >= to {
                        return Err(short_read(path, size));
                    }
                    // A copy per block: a slice would keep the whole
                    // request's buffer alive after its neighbours go.
                    let block = Bytes::copy_from_slice(&bytes[from..to]);
                    self.blocks
                        .insert((file.clone(), size, index), block.clone(), block.len());
                    found.insert(index, block);
                }
            }
        }
        ranges
            .iter()
            .map(|range| assemble(&found, range).ok_or_else(|| short_read(path, size)))
            .collect()
    }

    /// `ranges` of the file if the cache holds every byte of them.
    pub(crate) fn get_cached(
        &self,
        file: &Arc<str>,
        size: u64,
        ranges: &[Range<u64>],
    ) -> Option<Vec<Bytes>> {
        let mut found: HashMap<u64, Bytes> = HashMap::new();
        for index in block_indexes(ranges) {
            found.insert(index, self.blocks.get(&(file.clone(), size, index))?);
        }
        ranges.iter().map(|range| assemble(&found, range)).collect()
    }

    /// Blocks found here and blocks fetched, so far.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        self.blocks.hits_and_misses()
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.blocks.bytes()
    }
}

/// The blocks `ranges` touch, each once, in file order.
fn block_indexes(ranges: &[Range<u64>]) -> BTreeSet<u64> {
    ranges
        .iter()
        .filter(|r| r.start < r.end)
        .flat_map(|r| r.start / BLOCK_BYTES..=(r.end - 1) / BLOCK_BYTES)
        .collect()
}

/// `range` out of the blocks that cover it.
fn assemble(blocks: &HashMap<u64, Bytes>, range: &Range<u64>) -> Option<Bytes> {
    if range.start >= range.end {
        return Some(Bytes::new());
    }
    let (first, last) = (range.start / BLOCK_BYTES, (range.end - 1) / BLOCK_BYTES);
    let offset = |at: u64, index: u64| (at - index * BLOCK_BYTES) as usize;
    if first == last {
        let block = blocks.get(&first)?;
        let (from, to) = (offset(range.start, first), offset(range.end, first));
        return (to <= block.len()).then(|| block.slice(from..to));
    }
    let mut out = BytesMut::with_capacity((range.end - range.start) as usize);
    for index in first..=last {
        let block = blocks.get(&index)?;
        let from = if index == first {
            offset(range.start, index)
        } else {
            0
        };
        let to = if index == last {
            offset(range.end, index)
        } else {
            block.len()
        };
        out.extend_from_slice(block.get(from..to)?);
    }
    Some(out.freeze())
}

fn short_read(path: &Path, size: u64) -> object_store::Error {
    object_store::Error::Generic {
        store: "file cache",
        source: format!("{path} is shorter than its recorded {size} bytes").into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faulty::{Faults, FaultyStore};
    use object_store::memory::InMemory;
    use object_store::ObjectStoreExt;
    use std::sync::atomic::Ordering;

    /// A file of `len` bytes whose every byte tells its offset, in a store
    /// that counts the bytes fetched.
    async fn file(len: u64) -> (Arc<dyn ObjectStore>, Arc<Faults>, Path, Vec<u8>) {
        let inner = Arc::new(InMemory::new());
        let path = Path::from("s/f.parquet");
        let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        inner.put(&path, content.clone().into()).await.unwrap();
        let faults = Arc::new(Faults::default());
        let store: Arc<dyn ObjectStore> = Arc::new(FaultyStore::new(inner, faults.clone()));
        (store, faults, path, content)
    }

    fn fetched(faults: &Faults) -> u64 {
        faults.bytes_read.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn ranges_read_through_the_cache_are_the_files_bytes_and_fetched_once() {
        let len = 5 * BLOCK_BYTES + 123;
        let (store, faults, path, content) = file(len).await;
        let cache = BlockCache::new(usize::MAX);
        let name: Arc<str> = "local/s/f.parquet".into();
        let b = BLOCK_BYTES;
        let ranges = vec![
            0..10,
            b - 5..b + 5,           // across a block boundary
            2 * b..2 * b,           // empty
            b + 1..4 * b + 7,       // across several
            len - 100..len,         // the short last block
            3 * b + 17..3 * b + 18, // inside one
        ];
        for round in 0..2 {
            let before = fetched(&faults);
            let got = cache
                .get_ranges(store.as_ref(), &name, &path, len, &ranges)
                .await
                .unwrap();
            for (range, bytes) in ranges.iter().zip(&got) {
                assert_eq!(
                    bytes.as_ref(),
                    &content[range.start as usize..range.end as usize],
                    "{range:?}"
                );
            }
            let this_round = fetched(&faults) - before;
            if round == 0 {
                // Every block touched, each once: 0..=4 and the last.
                assert_eq!(this_round, len, "blocks 0 to 5 fetched whole");
            } else {
                assert_eq!(this_round, 0, "the second round is served from memory");
            }
        }
        assert_eq!(cache.bytes() as u64, len);
        // Another file of the same path but another length is another file.
        let other = cache
            .get_ranges(
                store.as_ref(),
                &name,
                &path,
                len + 1,
                std::slice::from_ref(&(0..4)),
            )
            .await;
        assert_eq!(other.unwrap()[0].as_ref(), &content[..4]);
        assert_eq!(cache.hits_and_misses().1, 7);
    }

    #[tokio::test]
    async fn the_budget_holds_and_blocks_in_use_stay_longest() {
        let len = 16 * BLOCK_BYTES;
        let (store, faults, path, _) = file(len).await;
        let cache = BlockCache::new(4 * BLOCK_BYTES as usize);
        let name: Arc<str> = "local/s/f.parquet".into();
        let block = |i: u64| i * BLOCK_BYTES..i * BLOCK_BYTES + 1;
        // Block 0 is read between every other block: it stays.
        for i in 1..16 {
            for range in [block(0), block(i)] {
                cache
                    .get_ranges(store.as_ref(), &name, &path, len, &[range])
                    .await
                    .unwrap();
                assert!(cache.bytes() <= 4 * BLOCK_BYTES as usize);
            }
        }
        let before = fetched(&faults);
        cache
            .get_ranges(store.as_ref(), &name, &path, len, &[block(0)])
            .await
            .unwrap();
        assert_eq!(fetched(&faults), before, "block 0 was never evicted");
        // A budget of 0 keeps nothing and still reads.
        let none = BlockCache::new(0);
        let got = none
            .get_ranges(store.as_ref(), &name, &path, len, &[block(3)])
            .await
            .unwrap();
        assert_eq!(got[0].len(), 1);
        assert_eq!(none.bytes(), 0);
    }

    #[tokio::test]
    async fn a_file_shorter_than_its_recorded_length_is_an_error() {
        let (store, _, path, _) = file(100).await;
        let cache = BlockCache::new(usize::MAX);
        let name: Arc<str> = "local/s/f.parquet".into();
        let result = cache
            .get_ranges(
                store.as_ref(),
                &name,
                &path,
                2 * BLOCK_BYTES,
                std::slice::from_ref(&(0..BLOCK_BYTES + 1)),
            )
            .await;
        assert!(result.is_err());
    }
}
