//! The bundle store replicas share: registered key bundles as objects
//! `bundles/TENANT/KEY_ID.bundle` in any [`object_store::ObjectStore`] (a
//! local folder in tests and on one host, an S3-compatible store in a
//! deployment), so a client registered on one replica is served by every
//! other.
//!
//! Invariants: an object's name is the SHA-256 of its bytes (checked again
//! on every read, with the size bounded before the read); the store is
//! called only from blocking threads (each call runs to completion on the
//! store's own small runtime); a failure is logged with the object's path
//! and surfaces as [`ServiceError::Storage`], which names no path.

use super::ServiceError;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::sync::Arc;

/// A stored bundle as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBundle {
    /// Its key id.
    pub key_id: String,
    /// Its size in bytes.
    pub bytes: usize,
    /// When it was written (milliseconds since the Unix epoch).
    pub written_ms: i64,
}

/// Registered bundles in an object store.
pub struct BundleStore {
    store: Arc<dyn ObjectStore>,
    rt: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for BundleStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BundleStore({})", self.store)
    }
}

impl Drop for BundleStore {
    fn drop(&mut self) {
        // Dropping a runtime may happen on an async thread: never block there.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn failed(what: &'static str, path: &ObjectPath, e: impl std::fmt::Display) -> ServiceError {
    // The operator's log names the object; the client's answer does not.
    tracing::error!(object = %path, error = %e, "bundle store: cannot {what}");
    ServiceError::Storage { what }
}

impl BundleStore {
    /// Bundles in `store`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Result<Self, ServiceError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ServiceError::Io {
                path: "the bundle store's runtime".into(),
                detail: e.to_string(),
            })?;
        Ok(Self {
            store,
            rt: Some(rt),
        })
    }

    /// Bundles in the local folder `dir` (created if missing).
    pub fn local(dir: &std::path::Path) -> Result<Self, ServiceError> {
        let io = |e: &dyn std::fmt::Display| ServiceError::Io {
            path: dir.display().to_string(),
            detail: format!("cannot use as the bundle folder: {e}"),
        };
        std::fs::create_dir_all(dir).map_err(|e| io(&e))?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(|e| io(&e))?;
        Self::new(Arc::new(fs))
    }

    fn run<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        match &self.rt {
            Some(rt) => rt.block_on(f),
            // Only Drop takes the runtime.
            None => futures::executor::block_on(f),
        }
    }

    fn path(tenant: &str, key_id: &str) -> ObjectPath {
        ObjectPath::from(format!("bundles/{tenant}/{key_id}.bundle"))
    }

    /// Write a bundle (atomically: readers see all of it or nothing).
    pub fn put(&self, tenant: &str, key_id: &str, bytes: &[u8]) -> Result<(), ServiceError> {
        let path = Self::path(tenant, key_id);
        let payload = PutPayload::from(bytes.to_vec());
        self.run(self.store.put(&path, payload))
            .map(|_| ())
            .map_err(|e| failed("store the bundle", &path, e))
    }

    /// Whether a bundle is stored.
    pub fn exists(&self, tenant: &str, key_id: &str) -> Result<bool, ServiceError> {
        let path = Self::path(tenant, key_id);
        match self.run(self.store.head(&path)) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(failed("look up a stored bundle", &path, e)),
        }
    }

    /// A stored bundle (None: not stored), refused unread when larger than
    /// `max_bytes` and refused when its SHA-256 is not its name.
    pub fn get(
        &self,
        tenant: &str,
        key_id: &str,
        max_bytes: usize,
    ) -> Result<Option<Vec<u8>>, ServiceError> {
        let path = Self::path(tenant, key_id);
        const WHAT: &str = "reload a stored bundle";
        let got = self.run(async {
            let r = match self.store.get(&path).await {
                Ok(r) => r,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(e.to_string()),
            };
            if usize::try_from(r.meta.size).map_or(true, |s| s > max_bytes) {
                return Err(format!(
                    "{} bytes, more than a bundle of this plan ({max_bytes})",
                    r.meta.size
                ));
            }
            r.bytes()
                .await
                .map(|b| Some(b.to_vec()))
                .map_err(|e| e.to_string())
        });
        match got {
            Ok(Some(bytes)) if super::key_id(&bytes) != key_id => {
                Err(failed(WHAT, &path, "its SHA-256 is not its name"))
            }
            Ok(b) => Ok(b),
            Err(e) => Err(failed(WHAT, &path, e)),
        }
    }

    /// A tenant's stored bundles, oldest first.
    pub fn list(&self, tenant: &str) -> Result<Vec<StoredBundle>, ServiceError> {
        let prefix = ObjectPath::from(format!("bundles/{tenant}"));
        let metas: Vec<object_store::ObjectMeta> = self
            .run(self.store.list(Some(&prefix)).try_collect())
            .map_err(|e| failed("list the stored bundles", &prefix, e))?;
        let mut out: Vec<StoredBundle> = metas
            .into_iter()
            .filter_map(|m| {
                let name = m.location.filename()?;
                let id = name.strip_suffix(".bundle")?;
                super::is_key_id(id).then(|| StoredBundle {
                    key_id: id.to_string(),
                    bytes: usize::try_from(m.size).unwrap_or(usize::MAX),
                    written_ms: m.last_modified.timestamp_millis(),
                })
            })
            .collect();
        out.sort_by(|a, b| (a.written_ms, &a.key_id).cmp(&(b.written_ms, &b.key_id)));
        Ok(out)
    }

    /// Delete a bundle (deleting one that is gone is not an error).
    pub fn delete(&self, tenant: &str, key_id: &str) -> Result<(), ServiceError> {
        let path = Self::path(tenant, key_id);
        match self.run(self.store.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(failed("delete a stored bundle", &path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn bundles_round_trip_list_oldest_first_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let s = BundleStore::local(dir.path()).unwrap();
        let (a, b) = (b"first bundle".to_vec(), b"second".to_vec());
        let (ia, ib) = (super::super::key_id(&a), super::super::key_id(&b));
        s.put("t1", &ia, &a).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        s.put("t1", &ib, &b).unwrap();
        assert!(s.exists("t1", &ia).unwrap() && !s.exists("t2", &ia).unwrap());
        assert_eq!(s.get("t1", &ia, 100).unwrap(), Some(a.clone()));
        assert_eq!(s.get("t2", &ia, 100).unwrap(), None);
        // Bounded before the read.
        assert_eq!(s.get("t1", &ia, 3).unwrap_err().status(), 500);
        let l = s.list("t1").unwrap();
        assert_eq!(
            l.iter()
                .map(|x| (x.key_id.clone(), x.bytes))
                .collect::<Vec<_>>(),
            vec![(ia.clone(), a.len()), (ib.clone(), b.len())]
        );
        assert!(s.list("t2").unwrap().is_empty());
        s.delete("t1", &ia).unwrap();
        s.delete("t1", &ia).unwrap();
        assert!(!s.exists("t1", &ia).unwrap());
        // A file whose content is not its name is refused, naming no path.
        std::fs::write(
            dir.path().join("bundles/t1").join(format!("{ia}.bundle")),
            &b,
        )
        .unwrap();
        let e = s.get("t1", &ia, 100).unwrap_err().to_string();
        assert!(!e.contains(&dir.path().display().to_string()), "{e}");
    }
}
