//! Puts and deletions: checks, sealing, and batching a mixed batch into
//! `DB.PUT` / `DB.DELETE` runs inside one MULTI/EXEC.

use std::ops::Range;

use databroker_core::MAX_NAME_LEN;
use prost_types::Timestamp;
use redis::{Cmd, Value};

use crate::cipher::Cipher;
use crate::conn::Request;
use crate::error::{Error, Result};
use crate::pb::Record;
use crate::reply::{self, WriteReply};
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

/// Consecutive records that are all puts or all deletions.
fn runs(records: &[Record]) -> Vec<(bool, Range<usize>)> {
    let mut out: Vec<(bool, Range<usize>)> = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let deleted = r.deleted_at.is_some();
        match out.last_mut() {
            Some((d, range)) if *d == deleted => range.end = i + 1,
            _ => out.push((deleted, i..i + 1)),
        }
    }
    out
}

fn command(
    namespace: &str,
    cipher: Option<&Cipher>,
    deleted: bool,
    records: &[Record],
) -> Result<Cmd> {
    let mut cmd = redis::cmd(if deleted { "DB.DELETE" } else { "DB.PUT" });
    cmd.arg(namespace);
    for r in records {
        cmd.arg(&r.r#type).arg(&r.id);
        if !deleted {
            cmd.arg(payload(cipher, r)?);
        }
    }
    Ok(cmd)
}

/// Writes `records` (puts, and deletions where `deleted_at` is set) in order,
/// atomically; fills each record's `version` and `modified_at` (and
/// `deleted_at` of deletions). Returns the server version.
pub(crate) async fn write(shared: &Shared, records: &mut [Record]) -> Result<u64> {
    records.iter().try_for_each(check)?;
    let ns = &shared.config.namespace;
    let cipher = shared.config.cipher.as_ref();
    let runs = runs(records);
    let replies: Vec<WriteReply> = match runs.as_slice() {
        [] => return Err(Error::InvalidArgument("nothing to write".to_string())),
        [(deleted, range)] => {
            let cmd = command(ns, cipher, *deleted, &records[range.clone()])?;
            vec![reply::write_reply(
                shared.request(Request::Cmd(&cmd)).await?,
            )?]
        }
        _ => {
            let mut pipe = redis::pipe();
            pipe.atomic();
            for (deleted, range) in &runs {
                pipe.add_command(command(ns, cipher, *deleted, &records[range.clone()])?);
            }
            let value = shared.request(Request::Pipe(&pipe)).await?;
            reply::array(value, "EXEC reply")?
                .into_iter()
                .map(|v| match v {
                    Value::ServerError(e) => Err(Error::from_redis(e.into())),
                    v => reply::write_reply(v),
                })
                .collect::<Result<_>>()?
        }
    };
    let mut server_version = 0;
    for ((deleted, range), reply) in runs.iter().zip(replies) {
        if reply.versions.len() != range.len() {
            return Err(Error::protocol(format!(
                "{} versions for {} records",
                reply.versions.len(),
                range.len()
            )));
        }
        let at = databroker_core::record::timestamp(reply.modified_at_us);
        for (record, version) in records[range.clone()].iter_mut().zip(reply.versions) {
            record.version = version;
            record.modified_at = Some(at);
            if *deleted {
                record.deleted_at = Some(at);
            }
        }
        server_version = reply.server_version;
    }
    Ok(server_version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{new_record, tombstone};

    #[test]
    fn runs_keep_order() {
        let rs = vec![
            new_record("t", "a", "1"),
            new_record("t", "b", "2"),
            tombstone("t", "a"),
            new_record("t", "c", "3"),
        ];
        assert_eq!(runs(&rs), vec![(false, 0..2), (true, 2..3), (false, 3..4)]);
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
