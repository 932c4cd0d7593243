//! Client crate for redis-databroker (see issue: client crate).
