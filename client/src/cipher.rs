//! Payload encryption: AES-256-GCM in a small versioned envelope.
//!
//! Envelope (all integers big-endian):
//!
//! | bytes | content |
//! |---|---|
//! | 1 | format version, `1` |
//! | 4 | key id |
//! | 12 | random nonce |
//! | n + 16 | ciphertext and GCM tag |
//!
//! The associated data is the 5-byte header, then the record's type length
//! (4 bytes), type and id, so a ciphertext copied to another record, or with a
//! changed header, fails to open. The key id picks the key on open, so data
//! sealed before a key rotation still opens while the old key is kept.

use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Nonce, Payload};
use aes_gcm::Aes256Gcm;

use crate::error::{Error, Result};
use crate::pb::Record;

/// Envelope format version written by this crate.
const FORMAT_V1: u8 = 1;
const HEADER_LEN: usize = 5;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Length of a key in bytes (AES-256).
pub const KEY_LEN: usize = 32;

/// Seals and opens payloads. Holds one current key (used to seal) and any
/// number of older keys (only used to open), each with a numeric id stored in
/// the envelope.
///
/// ```
/// use databroker_client::Cipher;
/// let old = Cipher::generate_key();
/// let new = Cipher::generate_key();
/// let before = Cipher::new(1, &old).unwrap();
/// let sealed = before.seal("type", "id", b"secret").unwrap();
/// let after = Cipher::new(2, &new).unwrap().with_old_key(1, &old).unwrap();
/// assert_eq!(after.open("type", "id", &sealed).unwrap(), b"secret");
/// ```
#[derive(Clone)]
pub struct Cipher {
    current: u32,
    keys: Arc<Vec<(u32, Aes256Gcm)>>,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<u32> = self.keys.iter().map(|(id, _)| *id).collect();
        f.debug_struct("Cipher")
            .field("current_key_id", &self.current)
            .field("key_ids", &ids)
            .finish()
    }
}

fn aes(key: &[u8]) -> Result<Aes256Gcm> {
    if key.len() != KEY_LEN {
        return Err(Error::Config(format!(
            "an AES-256 key has {KEY_LEN} bytes, not {}",
            key.len()
        )));
    }
    Aes256Gcm::new_from_slice(key).map_err(|e| Error::Config(format!("bad key: {e}")))
}

fn associated_data(header: &[u8], record_type: &str, id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + 4 + record_type.len() + id.len());
    aad.extend_from_slice(header);
    // Lengths fit: types are at most 1024 bytes (checked before sealing).
    aad.extend_from_slice(&(record_type.len() as u32).to_be_bytes());
    aad.extend_from_slice(record_type.as_bytes());
    aad.extend_from_slice(id.as_bytes());
    aad
}

impl Cipher {
    /// A cipher that seals with `key` (32 bytes) under `key_id`.
    pub fn new(key_id: u32, key: &[u8]) -> Result<Cipher> {
        Ok(Cipher {
            current: key_id,
            keys: Arc::new(vec![(key_id, aes(key)?)]),
        })
    }

    /// Also opens payloads sealed with an older `key` under `key_id` (after a
    /// key rotation). Refuses an id that is already in use.
    pub fn with_old_key(self, key_id: u32, key: &[u8]) -> Result<Cipher> {
        if self.keys.iter().any(|(id, _)| *id == key_id) {
            return Err(Error::Config(format!("key id {key_id} is used twice")));
        }
        let mut keys = self.keys.as_ref().clone();
        keys.push((key_id, aes(key)?));
        Ok(Cipher {
            current: self.current,
            keys: Arc::new(keys),
        })
    }

    /// A new random 256-bit key.
    pub fn generate_key() -> [u8; KEY_LEN] {
        rand::random()
    }

    /// The id of the key new payloads are sealed with.
    pub fn current_key_id(&self) -> u32 {
        self.current
    }

    fn key(&self, key_id: u32) -> Option<&Aes256Gcm> {
        self.keys
            .iter()
            .find(|(id, _)| *id == key_id)
            .map(|(_, k)| k)
    }

    /// Seals `plaintext` for the record `(record_type, id)` with the current
    /// key and a fresh random nonce.
    pub fn seal(&self, record_type: &str, id: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let key = self
            .key(self.current)
            .ok_or_else(|| Error::Config("the current key is missing".to_string()))?;
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(FORMAT_V1);
        out.extend_from_slice(&self.current.to_be_bytes());
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        out.extend_from_slice(&nonce_bytes);
        let aad = associated_data(&out[..HEADER_LEN], record_type, id);
        let nonce = Nonce::<Aes256Gcm>::from(nonce_bytes);
        let sealed = key
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| {
                Error::InvalidArgument(format!(
                    "payload of {record_type}/{id} is too large to seal"
                ))
            })?;
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens an envelope sealed for `(record_type, id)`, with whichever key
    /// its key id names. Fails with [`Error::Decrypt`] when the envelope was
    /// changed, belongs to another record, or names an unknown key.
    pub fn open(&self, record_type: &str, id: &str, envelope: &[u8]) -> Result<Vec<u8>> {
        let fail = |reason: &str| Error::Decrypt {
            record_type: record_type.to_string(),
            id: id.to_string(),
            reason: reason.to_string(),
        };
        if envelope.len() < HEADER_LEN + NONCE_LEN + TAG_LEN {
            return Err(fail("too short to be a sealed payload"));
        }
        let (header, rest) = envelope.split_at(HEADER_LEN);
        if header[0] != FORMAT_V1 {
            return Err(fail(&format!("unknown envelope format {}", header[0])));
        }
        let key_id = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
        let key = self
            .key(key_id)
            .ok_or_else(|| fail(&format!("no key with id {key_id}")))?;
        let (nonce_bytes, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::<Aes256Gcm>::try_from(nonce_bytes).map_err(|_| fail("bad nonce"))?;
        let aad = associated_data(header, record_type, id);
        key.decrypt(
            &nonce,
            Payload {
                msg: sealed,
                aad: &aad,
            },
        )
        .map_err(|_| {
            fail("authentication failed (wrong key, tampered, or sealed for another record)")
        })
    }
}

impl Cipher {
    /// Opens the payload of a record read from the store in place (its
    /// `data.value`); records without data are returned unchanged.
    pub fn open_record(&self, mut record: Record) -> Result<Record> {
        if let Some(data) = record.data.as_mut() {
            data.value = self.open(&record.r#type, &record.id, &data.value)?;
        }
        Ok(record)
    }
}

/// Opens `record` with `cipher` when there is one.
pub(crate) fn open_with(cipher: Option<&Cipher>, record: Record) -> Result<Record> {
    match cipher {
        Some(c) => c.open_record(record),
        None => Ok(record),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let c = Cipher::new(7, &[1u8; 32]).unwrap();
        let s = c.seal("t", "a", b"hello").unwrap();
        assert_eq!(s.len(), HEADER_LEN + NONCE_LEN + 5 + TAG_LEN);
        assert_eq!(c.open("t", "a", &s).unwrap(), b"hello");
        assert!(matches!(c.open("t", "b", &s), Err(Error::Decrypt { .. })));
        assert!(matches!(c.open("ta", "", &s), Err(Error::Decrypt { .. })));
        // type/id boundary is bound: ("t", "a") != ("", "ta")
        assert!(matches!(c.open("", "ta", &s), Err(Error::Decrypt { .. })));
        let mut header = s.clone();
        header[0] = 2;
        assert!(matches!(
            c.open("t", "a", &header),
            Err(Error::Decrypt { .. })
        ));
        assert!(matches!(
            c.open("t", "a", b"plain"),
            Err(Error::Decrypt { .. })
        ));
    }

    #[test]
    fn nonces_differ() {
        let c = Cipher::new(1, &[2u8; 32]).unwrap();
        assert_ne!(
            c.seal("t", "a", b"x").unwrap(),
            c.seal("t", "a", b"x").unwrap()
        );
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(matches!(Cipher::new(1, &[0u8; 16]), Err(Error::Config(_))));
        let c = Cipher::new(1, &[0u8; 32]).unwrap();
        assert!(matches!(
            c.with_old_key(1, &[1u8; 32]),
            Err(Error::Config(_))
        ));
    }
}
