//! Puts and deletions: checks, sealing, and one `DB.WRITE` per batch
//! (mixed puts and deletions, optional conditions, an idempotency token).

use databroker_core::MAX_NAME_LEN;
use prost_types::Timestamp;
use redis::Cmd;

use crate::cipher::Cipher;
use crate::conn::Request;
use crate::error::{Error, Result};
use crate::pb::Record;
use crate::reply;
use crate::shared::Shared;

/// What a write did: the namespace's server version, the one modification
/// time of the command, and the version given to each record in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteResult {
    /// The namespace's server version.
    pub server_version: u64,
    /// When the records were written (deleted).
    pub modified_at: Timestamp,
    /// The version of each record, in argument order.
    pub versions: Vec<u64>,
}

/// Refuses a type or id the module would refuse, before anything is sent.
pub(crate) fn check_name(what: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::InvalidArgument(format!("{what} must not be empty")));
    }
    if value.len() > MAX_NAME_LEN {
        return Err(Error::InvalidArgument(format!(
            "{what} is longer than {MAX_NAME_LEN} bytes"
        )));
    }
    Ok(())
}

fn check(record: &Record) -> Result<()> {
    check_name("type", &record.r#type)?;
    check_name("id", &record.id)?;
    if let Some(data) = &record.data {
        if !data.type_url.is_empty() && data.type_url != record.r#type {
            return Err(Error::InvalidArgument(format!(
                "{}/{}: data.type_url {:?} must be empty or the record type (the store keeps the type as the type URL)",
                record.r#type, record.id, data.type_url
            )));
        }
    }
    Ok(())
}

/// The bytes `DB.PUT` stores for `record`: its data, sealed with `cipher`.
fn payload(cipher: Option<&Cipher>, record: &Record) -> Result<Vec<u8>> {
    let plain = record.data.as_ref().map_or(&[][..], |d| d.value.as_slice());
    match cipher {
        Some(c) => c.seal(&record.r#type, &record.id, plain),
        None => Ok(plain.to_vec()),
    }
}

/// A fresh idempotency token: 128 random bits, hex.
fn new_token() -> String {
    let bits: u128 = rand::random();
    format!("{bits:032x}")
}

/// `DB.WRITE <ns> TOKEN <token> PUT <t> <id> <payload> [IF <v>] | DEL <t> <id> [IF <v>] ...`
fn command(
    namespace: &str,
    cipher: Option<&Cipher>,
    token: &str,
    records: &[Record],
    expected: Option<&[Option<u64>]>,
) -> Result<Cmd> {
    let mut cmd = redis::cmd("DB.WRITE");
    cmd.arg(namespace).arg("TOKEN").arg(token);
    for (i, r) in records.iter().enumerate() {
        if r.deleted_at.is_some() {
            cmd.arg("DEL").arg(&r.r#type).arg(&r.id);
        } else {
            cmd.arg("PUT")
                .arg(&r.r#type)
                .arg(&r.id)
                .arg(payload(cipher, r)?);
        }
        if let Some(Some(v)) = expected.and_then(|e| e.get(i)) {
            cmd.arg("IF").arg(*v);
        }
    }
    Ok(cmd)
}

/// Writes `records` (puts, and deletions where `deleted_at` is set) in order,
/// atomically, in one `DB.WRITE`; fills each record's `version` and
/// `modified_at` (and `deleted_at` of deletions). Returns the server version.
///
/// The call carries a fresh idempotency token, sent unchanged on every
/// retry, so a write whose reply was lost is applied at most once. With
/// `expected`, each record's current version must match (`Some(0)`: absent
/// or deleted; `None`: any) or nothing is written
/// ([`Error::VersionConflict`]).
pub(crate) async fn write(
    shared: &Shared,
    records: &mut [Record],
    expected: Option<&[Option<u64>]>,
) -> Result<u64> {
    records.iter().try_for_each(check)?;
    if records.is_empty() {
        return Err(Error::InvalidArgument("nothing to write".to_string()));
    }
    if let Some(e) = expected {
        if e.len() != records.len() {
            return Err(Error::InvalidArgument(format!(
                "{} expected versions for {} records",
                e.len(),
                records.len()
            )));
        }
    }
    let ns = &shared.config.namespace;
    let cipher = shared.config.cipher.as_ref();
    let cmd = command(ns, cipher, &new_token(), records, expected)?;
    let reply = reply::write_reply(shared.request(Request::Cmd(&cmd)).await?)?;
    if reply.versions.len() != records.len() {
        return Err(Error::protocol(format!(
            "{} versions for {} records",
            reply.versions.len(),
            records.len()
        )));
    }
    let at = databroker_core::record::timestamp(reply.modified_at_us);
    for (record, version) in records.iter_mut().zip(reply.versions) {
        record.version = version;
        record.modified_at = Some(at);
        if record.deleted_at.is_some() {
            record.deleted_at = Some(at);
        }
    }
    Ok(reply.server_version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{new_record, tombstone};

    #[test]
    fn one_command_in_order_with_token_and_conditions() {
        let rs = vec![
            new_record("t", "a", "1"),
            tombstone("t", "a"),
            new_record("t", "c", "3"),
        ];
        let cmd = command("{ns}", None, "tok", &rs, Some(&[Some(4), None, Some(0)])).unwrap();
        let args: Vec<String> = cmd
            .args_iter()
            .map(|a| match a {
                redis::Arg::Simple(b) => String::from_utf8_lossy(b).into_owned(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(
            args,
            [
                "DB.WRITE", "{ns}", "TOKEN", "tok", "PUT", "t", "a", "1", "IF", "4", "DEL", "t",
                "a", "PUT", "t", "c", "3", "IF", "0"
            ]
        );
        assert_ne!(new_token(), new_token());
    }

    #[test]
    fn checks() {
        assert!(check(&new_record("t", "a", "x")).is_ok());
        assert!(check(&new_record("", "a", "x")).is_err());
        assert!(check(&new_record("t", "", "x")).is_err());
        assert!(check(&new_record("t", "a".repeat(MAX_NAME_LEN + 1), "x")).is_err());
        let mut r = new_record("t", "a", "x");
        if let Some(d) = r.data.as_mut() {
            d.type_url = "other".into();
        }
        assert!(matches!(check(&r), Err(Error::InvalidArgument(_))));
    }
}
