//! Who may use a server, and how much: tenants with a bearer token each and
//! a quota of bundles and bytes.
//!
//! Without a tokens file a server is *open*: one tenant, `public`, needs no
//! token (a loopback or a trusted network). With one
//! (`slaf-he serve --tokens FILE`) every `POST /v1/keys`, `GET`/`DELETE
//! /v1/keys/{id}` and `POST /v1/infer/{id}` must carry
//! `Authorization: Bearer TOKEN`, and a tenant's bundles are its own: its
//! key ids are looked up in its own namespace, its quota evicts only its
//! own oldest bundles, and no other tenant's registrations can push them
//! out.
//!
//! The file holds SHA-256 digests of the tokens, never the tokens
//! (`slaf-he token` makes a token and its entry):
//!
//! ```toml
//! [[tenant]]
//! name = "alice"                 # 1-64 of a-z 0-9 _ -
//! token_sha256 = "64 hex digits"
//! max_bundles = 4                # optional: the server's --max-bundles
//! max_bundle_mib = 512           # optional: the server's --tenant-mib
//! ```
//!
//! Invariants: names and digests are unique; a presented token is hashed
//! and looked up by digest, so no token is ever compared byte by byte or
//! logged.

use super::ServiceError;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The name of the one tenant of an open server.
pub const OPEN_TENANT: &str = "public";

/// A tenant and its quota.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    /// Its name (a storage path segment: 1-64 of `a-z 0-9 _ -`).
    pub name: String,
    /// Most bundles it may have registered; one more evicts its oldest.
    pub max_bundles: usize,
    /// Most bundle bytes (as uploaded) it may have registered; more evicts
    /// its oldest, and one bundle larger than this is refused (403).
    pub max_bytes: usize,
}

/// Default quotas of tenants that do not name their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// Bundles per tenant.
    pub max_bundles: usize,
    /// Bundle bytes per tenant.
    pub max_bytes: usize,
}

/// The tenants of a server.
#[derive(Clone, Debug)]
pub struct Tenants {
    by_digest: HashMap<[u8; 32], Arc<Tenant>>,
    open: Option<Arc<Tenant>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    name: String,
    token_sha256: String,
    max_bundles: Option<usize>,
    max_bundle_mib: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tenant: Vec<FileEntry>,
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tenants {
    /// An open server: one tenant, [`OPEN_TENANT`], no token.
    pub fn open(quota: Quota) -> Self {
        Self {
            by_digest: HashMap::new(),
            open: Some(Arc::new(Tenant {
                name: OPEN_TENANT.into(),
                max_bundles: quota.max_bundles.max(1),
                max_bytes: quota.max_bytes,
            })),
        }
    }

    /// Tenants from a tokens file's text (`what` names it in errors);
    /// tenants without their own quota get `quota`.
    pub fn from_toml(text: &str, what: &str, quota: Quota) -> Result<Self, ServiceError> {
        let bad = |detail: String| ServiceError::Io {
            path: what.to_string(),
            detail,
        };
        let file: File =
            toml::from_str(text).map_err(|e| bad(format!("not a tokens file: {e}")))?;
        if file.tenant.is_empty() {
            return Err(bad("no [[tenant]] entry".into()));
        }
        let mut by_digest = HashMap::new();
        let mut names = std::collections::HashSet::new();
        for e in file.tenant {
            if !valid_name(&e.name) {
                return Err(bad(format!(
                    "tenant name {:?}: 1-64 characters of a-z, 0-9, _ and -",
                    e.name.chars().take(80).collect::<String>()
                )));
            }
            let d = parse_digest(&e.token_sha256).ok_or_else(|| {
                bad(format!(
                    "tenant {}: token_sha256 must be 64 hex digits (slaf-he token makes one)",
                    e.name
                ))
            })?;
            if e.max_bundles == Some(0) || e.max_bundle_mib == Some(0) {
                return Err(bad(format!(
                    "tenant {}: a quota of 0 admits nothing",
                    e.name
                )));
            }
            if !names.insert(e.name.clone()) {
                return Err(bad(format!("tenant {} is listed twice", e.name)));
            }
            let tenant = Tenant {
                max_bundles: e.max_bundles.unwrap_or(quota.max_bundles),
                max_bytes: e.max_bundle_mib.map_or(quota.max_bytes, |m| m << 20),
                name: e.name,
            };
            if by_digest.insert(d, Arc::new(tenant)).is_some() {
                return Err(bad("two tenants share one token".into()));
            }
        }
        Ok(Self {
            by_digest,
            open: None,
        })
    }

    /// Tenants from a tokens file.
    pub fn from_file(path: &Path, quota: Quota) -> Result<Self, ServiceError> {
        let text = std::fs::read_to_string(path).map_err(|e| ServiceError::Io {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        Self::from_toml(&text, &path.display().to_string(), quota)
    }

    /// Whether requests need a token.
    pub fn requires_token(&self) -> bool {
        self.open.is_none()
    }

    /// Every tenant (the open one, or the file's).
    pub fn all(&self) -> Vec<Arc<Tenant>> {
        match &self.open {
            Some(t) => vec![Arc::clone(t)],
            None => self.by_digest.values().cloned().collect(),
        }
    }

    /// The tenant of a request, from its `Authorization` header value.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Arc<Tenant>, ServiceError> {
        if let Some(open) = &self.open {
            return Ok(Arc::clone(open));
        }
        let unauthorized = |detail: &str| ServiceError::Unauthorized {
            detail: detail.to_string(),
        };
        let value = authorization.ok_or_else(|| {
            unauthorized("this server needs an Authorization: Bearer TOKEN header")
        })?;
        let token = value
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("the Authorization header is not Bearer TOKEN"))?;
        self.by_digest
            .get(&digest(token))
            .cloned()
            .ok_or_else(|| unauthorized("unknown token"))
    }
}

/// A new random token (`slaf_` then 64 hex digits from the OS CSPRNG) and
/// the hex SHA-256 the tokens file stores.
pub fn new_token() -> Result<(String, String), ServiceError> {
    use rand::TryRngCore;
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng
        .try_fill_bytes(bytes.as_mut())
        .map_err(|e| ServiceError::Io {
            path: "the OS random generator".into(),
            detail: e.to_string(),
        })?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let token = format!("slaf_{hex}");
    let d: String = digest(&token).iter().map(|b| format!("{b:02x}")).collect();
    Ok((token, d))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const Q: Quota = Quota {
        max_bundles: 3,
        max_bytes: 10 << 20,
    };

    #[test]
    fn tokens_authenticate_their_tenant_only() {
        let (ta, da) = new_token().unwrap();
        let (tb, db) = new_token().unwrap();
        assert!(ta.starts_with("slaf_") && ta.len() == 69 && ta != tb);
        let text = format!(
            "[[tenant]]\nname = \"alice\"\ntoken_sha256 = \"{da}\"\nmax_bundles = 1\n\n[[tenant]]\nname = \"bob\"\ntoken_sha256 = \"{db}\"\nmax_bundle_mib = 2\n"
        );
        let t = Tenants::from_toml(&text, "tokens.toml", Q).unwrap();
        assert!(t.requires_token());
        let a = t.authenticate(Some(&format!("Bearer {ta}"))).unwrap();
        assert_eq!(
            (a.name.as_str(), a.max_bundles, a.max_bytes),
            ("alice", 1, 10 << 20)
        );
        let b = t.authenticate(Some(&format!("Bearer {tb}"))).unwrap();
        assert_eq!(
            (b.name.as_str(), b.max_bundles, b.max_bytes),
            ("bob", 3, 2 << 20)
        );
        for bad in [
            None,
            Some("Bearer "),
            Some("Basic abc"),
            Some("Bearer slaf_00"),
        ] {
            let e = t.authenticate(bad).unwrap_err();
            assert_eq!(e.status(), 401, "{bad:?}: {e}");
        }
        assert_eq!(t.all().len(), 2);
    }

    #[test]
    fn bad_tokens_files_are_refused_with_the_reason() {
        let (_, d) = new_token().unwrap();
        for (text, want) in [
            ("", "no [[tenant]]"),
            (
                "[[tenant]]\nname = \"A\"\ntoken_sha256 = \"00\"",
                "tenant name",
            ),
            (
                "[[tenant]]\nname = \"a\"\ntoken_sha256 = \"00\"",
                "64 hex digits",
            ),
            (
                &format!("[[tenant]]\nname = \"a\"\ntoken_sha256 = \"{d}\"\nmax_bundles = 0"),
                "quota of 0",
            ),
            (
                &format!(
                    "[[tenant]]\nname = \"a\"\ntoken_sha256 = \"{d}\"\n[[tenant]]\nname = \"b\"\ntoken_sha256 = \"{d}\""
                ),
                "share one token",
            ),
            (
                &format!("[[tenant]]\nname = \"a\"\ntoken_sha256 = \"{d}\"\nsecret = 1"),
                "unknown field",
            ),
        ] {
            let e = Tenants::from_toml(text, "t.toml", Q)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want) && e.starts_with("t.toml"), "{text}: {e}");
        }
    }

    #[test]
    fn an_open_server_has_one_tenant_and_needs_no_token() {
        let t = Tenants::open(Q);
        assert!(!t.requires_token());
        assert_eq!(t.authenticate(None).unwrap().name, OPEN_TENANT);
    }
}
