//! Filters for [`Backend::sync_latest`](crate::Backend::sync_latest), in
//! Pomerium's filter language.

use serde_json::{json, Value};

/// A filter expression: selects records by id and type.
///
/// ```
/// use databroker_client::Filter;
/// let f = Filter::and([Filter::record_type("t"), Filter::or([Filter::id("a"), Filter::id("b")])]);
/// assert_eq!(f.to_json(), r#"{"$and":[{"type":"t"},{"$or":[{"id":"a"},{"id":"b"}]}]}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Records with this id.
    Id(String),
    /// Records of this type.
    Type(String),
    /// Records every sub-filter selects.
    And(Vec<Filter>),
    /// Records any sub-filter selects.
    Or(Vec<Filter>),
}

impl Filter {
    /// `{"id": id}`.
    pub fn id(id: impl Into<String>) -> Filter {
        Filter::Id(id.into())
    }

    /// `{"type": record_type}`.
    pub fn record_type(record_type: impl Into<String>) -> Filter {
        Filter::Type(record_type.into())
    }

    /// `{"$and": [...]}`.
    pub fn and(filters: impl IntoIterator<Item = Filter>) -> Filter {
        Filter::And(filters.into_iter().collect())
    }

    /// `{"$or": [...]}`.
    pub fn or(filters: impl IntoIterator<Item = Filter>) -> Filter {
        Filter::Or(filters.into_iter().collect())
    }

    fn to_value(&self) -> Value {
        match self {
            Filter::Id(id) => json!({ "id": id }),
            Filter::Type(t) => json!({ "type": t }),
            Filter::And(fs) => {
                json!({ "$and": fs.iter().map(Filter::to_value).collect::<Vec<_>>() })
            }
            Filter::Or(fs) => json!({ "$or": fs.iter().map(Filter::to_value).collect::<Vec<_>>() }),
        }
    }

    /// The JSON text sent as `FILTER`.
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }
}
