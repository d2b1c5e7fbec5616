//! Plain objects under an `s3://bucket/prefix` URI, read by byte ranges: the Parquet input of
//! streaming `skvault predict`. Not registry entries: nothing here reads or writes the
//! registry's layout. The S3 client is configured exactly as a registry's (`AWS_*`
//! environment, object_store options overriding it).

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::error::{RegistryError, Result};
use crate::store::{s3_client, Location};

/// One object: its key (from the bucket's root) and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEntry {
    pub key: String,
    pub size: u64,
}

/// The objects of one bucket, with a small runtime of their own (the methods block).
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    rt: tokio::runtime::Runtime,
    bucket: String,
    prefix: String,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Objects(s3://{}/{})", self.bucket, self.prefix)
    }
}

impl Objects {
    /// Opens `s3://bucket[/prefix]`; `options` as [`crate::Registry::open_with_options`].
    pub fn open(uri: &str, options: &[(String, String)]) -> Result<Objects> {
        let Location::S3 { bucket, prefix } = Location::parse(uri)? else {
            return Err(RegistryError::InvalidUri {
                uri: uri.to_string(),
                message: "not an s3:// URI".into(),
            });
        };
        let rt = crate::registry::runtime()?;
        let store = {
            let _guard = rt.enter();
            s3_client(&bucket, options)?
        };
        Ok(Objects {
            store: Arc::new(store),
            rt,
            bucket,
            prefix,
        })
    }

    /// `s3://bucket/key`, for messages.
    pub fn uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// Every object under the prefix (as a folder: `s3://b/data` lists `data/...`, not
    /// `data2/...`), recursively, sorted by key. A prefix naming one object lists it alone.
    pub fn list(&self) -> Result<Vec<ObjectEntry>> {
        let path = Path::from(self.prefix.as_str());
        let err = |e| RegistryError::store(self.uri(&self.prefix), e);
        self.rt.block_on(async {
            let mut listed: Vec<ObjectEntry> = self
                .store
                .list(Some(&path))
                .map_ok(|meta| ObjectEntry {
                    key: meta.location.as_ref().to_string(),
                    size: meta.size,
                })
                .try_collect()
                .await
                .map_err(err)?;
            if listed.is_empty() && !self.prefix.is_empty() {
                match self.store.head(&path).await {
                    Ok(meta) => listed.push(ObjectEntry {
                        key: meta.location.as_ref().to_string(),
                        size: meta.size,
                    }),
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(err(e)),
                }
            }
            listed.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(listed)
        })
    }

    /// The bytes of each range of the object at `key` (nearby ranges are fetched together).
    pub fn get_ranges(&self, key: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.rt
            .block_on(self.store.get_ranges(&Path::from(key), ranges))
            .map_err(|e| RegistryError::store(self.uri(key), e))
    }
}
