//! Building and reading [`Record`]s, and putting any prost message in them.

use std::time::SystemTime;

use prost::{Message, Name};
use prost_types::{Any, Timestamp};

use crate::pb::Record;

/// A record of `record_type` with `id` and raw `payload` bytes as its data
/// (`data.type_url` is the record type, as the module stores it).
pub fn new_record(
    record_type: impl Into<String>,
    id: impl Into<String>,
    payload: impl Into<Vec<u8>>,
) -> Record {
    let record_type = record_type.into();
    Record {
        data: Some(Any {
            type_url: record_type.clone(),
            value: payload.into(),
        }),
        r#type: record_type,
        id: id.into(),
        ..Record::default()
    }
}

/// A record holding the protobuf `message`; its type is the message's type
/// URL (`type.googleapis.com/<package>.<Name>`), as in Pomerium.
pub fn message_record<M: Name>(id: impl Into<String>, message: &M) -> Record {
    new_record(M::type_url(), id, message.encode_to_vec())
}

/// A deletion of `(record_type, id)` for [`Backend::put`](crate::Backend::put):
/// a record whose `deleted_at` is set.
pub fn tombstone(record_type: impl Into<String>, id: impl Into<String>) -> Record {
    Record {
        r#type: record_type.into(),
        id: id.into(),
        deleted_at: Some(Timestamp::from(SystemTime::now())),
        ..Record::default()
    }
}

/// Reading helpers for [`Record`].
pub trait RecordExt {
    /// The payload bytes (`data.value`), empty when there is no data.
    fn payload(&self) -> &[u8];
    /// Decodes the payload as the protobuf message `M`.
    fn message<M: Message + Default>(&self) -> Result<M, prost::DecodeError>;
    /// True for a deletion (`deleted_at` is set).
    fn is_deleted(&self) -> bool;
}

impl RecordExt for Record {
    fn payload(&self) -> &[u8] {
        self.data.as_ref().map_or(&[], |d| d.value.as_slice())
    }

    fn message<M: Message + Default>(&self) -> Result<M, prost::DecodeError> {
        M::decode(self.payload())
    }

    fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_round_trip() {
        let ts = Timestamp {
            seconds: 5,
            nanos: 6,
        };
        let r = message_record("a", &ts);
        assert_eq!(r.r#type, "type.googleapis.com/google.protobuf.Timestamp");
        assert_eq!(r.message::<Timestamp>().unwrap(), ts);
        assert!(!r.is_deleted());
        assert!(tombstone("t", "a").is_deleted());
    }
}
