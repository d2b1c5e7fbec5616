//! A compare-and-swap cell built from conditional create alone.
//!
//! A cell is a folder of numbered entries `<seq>.json` (20 digits). Its value is the entry
//! with the highest number. Writing means creating entry `seq + 1`, where `seq` is the
//! entry read: if another writer got there first, the create fails and the write is a
//! lost compare-and-swap. `object_store`'s `LocalFileSystem` does not implement
//! `PutMode::Update`, but every backend implements `PutMode::Create`, so this works the
//! same on a folder and on S3, keeps the history, and a writer killed at any point leaves
//! either the old value or the new one.

use bytes::Bytes;

use crate::error::Result;
use crate::store::{Created, Store};

pub(crate) fn entry_key(prefix: &str, seq: u64) -> String {
    format!("{prefix}{seq:020}.json")
}

/// Parses the sequence number of a listed key under `prefix`.
pub(crate) fn entry_seq(prefix: &str, key: &str) -> Option<u64> {
    let name = key.strip_prefix(prefix)?.strip_suffix(".json")?;
    if name.len() != 20 || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// The highest entry number under `prefix`, from a listing.
pub(crate) async fn head_seq(store: &Store, prefix: &str) -> Result<Option<u64>> {
    Ok(store
        .list(prefix)
        .await?
        .iter()
        .filter_map(|m| entry_seq(prefix, m.location.as_ref()))
        .max())
}

/// The current entry: its number and bytes.
pub(crate) async fn read(store: &Store, prefix: &str) -> Result<Option<(u64, Bytes)>> {
    // Entries are never removed while the cell is in use, so the listed head stays readable;
    // the loop only covers a cell removed together with its version.
    for _ in 0..3 {
        let Some(seq) = head_seq(store, prefix).await? else {
            return Ok(None);
        };
        if let Some((bytes, _)) = store.get(&entry_key(prefix, seq)).await? {
            return Ok(Some((seq, bytes)));
        }
    }
    Ok(None)
}

/// Writes `value` as the entry after `seen` (the head that was read, `None` for an empty
/// cell). Returns `false` when another writer moved the cell first.
pub(crate) async fn swap(
    store: &Store,
    prefix: &str,
    seen: Option<u64>,
    value: Bytes,
) -> Result<bool> {
    let seq = seen.map_or(0, |s| s.saturating_add(1));
    Ok(store.create(&entry_key(prefix, seq), value).await? == Created::Yes)
}
