//! Pomerium's filter language for `DB.SYNCLATEST FILTER <json>`: `{"id": "a"}`,
//! `{"type": "t"}`, `{"$and": [..]}`, `{"$or": [..]}`; several keys in one
//! object mean AND; values are strings. Also plans how to answer a filter:
//! direct lookups when it names ids of known types.

use serde_json::Value;

use crate::error::{DbError, DbResult};

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Matches every record (`{}`).
    All,
    /// `{"type": t}`.
    Type(String),
    /// `{"id": i}`.
    Id(String),
    /// Every sub-filter matches.
    And(Vec<Filter>),
    /// Any sub-filter matches.
    Or(Vec<Filter>),
}

/// Deepest nesting accepted (keeps evaluation and planning bounded).
const MAX_DEPTH: usize = 32;

fn bad(why: impl Into<String>) -> DbError {
    DbError::arg("FILTER", why)
}

impl Filter {
    /// Parses filter JSON.
    pub fn parse(json: &[u8]) -> DbResult<Filter> {
        let v: Value =
            serde_json::from_slice(json).map_err(|e| bad(format!("is not valid JSON: {e}")))?;
        Self::from_value(&v, 0)
    }

    fn from_value(v: &Value, depth: usize) -> DbResult<Filter> {
        if depth > MAX_DEPTH {
            return Err(bad(format!("nests deeper than {MAX_DEPTH} levels")));
        }
        let Value::Object(obj) = v else {
            return Err(bad("must be a JSON object"));
        };
        let mut parts = Vec::with_capacity(obj.len());
        for (k, val) in obj {
            let part = match k.as_str() {
                "type" | "id" => {
                    let Value::String(s) = val else {
                        return Err(bad(format!("field {k:?} must be a string")));
                    };
                    if k == "type" {
                        Filter::Type(s.clone())
                    } else {
                        Filter::Id(s.clone())
                    }
                }
                "$and" | "$or" => {
                    let Value::Array(items) = val else {
                        return Err(bad(format!("{k} must be an array of objects")));
                    };
                    let subs = items
                        .iter()
                        .map(|i| Self::from_value(i, depth + 1))
                        .collect::<DbResult<Vec<_>>>()?;
                    if k == "$and" {
                        Filter::And(subs)
                    } else {
                        Filter::Or(subs)
                    }
                }
                other => {
                    return Err(bad(format!(
                        "has unknown field {other:?} (supported: id, type, $and, $or)"
                    )))
                }
            };
            parts.push(part);
        }
        Ok(match parts.len() {
            0 => Filter::All,
            1 => parts.remove(0),
            _ => Filter::And(parts),
        })
    }

    /// True when a record of `(rtype, id)` matches.
    pub fn matches(&self, rtype: &str, id: &str) -> bool {
        match self {
            Filter::All => true,
            Filter::Type(t) => t == rtype,
            Filter::Id(i) => i == id,
            Filter::And(fs) => fs.iter().all(|f| f.matches(rtype, id)),
            Filter::Or(fs) => fs.iter().any(|f| f.matches(rtype, id)),
        }
    }
}

/// One conjunction of constraints: the records matching both (None = any).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Conj {
    rtype: Option<String>,
    id: Option<String>,
}

/// Largest number of conjunctions planning keeps before falling back to a scan.
const MAX_CONJ: usize = 10_000;

/// Rewrites `f` as an OR of conjunctions (None when it grows too large).
fn dnf(f: &Filter) -> Option<Vec<Conj>> {
    match f {
        Filter::All => Some(vec![Conj {
            rtype: None,
            id: None,
        }]),
        Filter::Type(t) => Some(vec![Conj {
            rtype: Some(t.clone()),
            id: None,
        }]),
        Filter::Id(i) => Some(vec![Conj {
            rtype: None,
            id: Some(i.clone()),
        }]),
        Filter::Or(fs) => {
            let mut out = Vec::new();
            for f in fs {
                out.extend(dnf(f)?);
                if out.len() > MAX_CONJ {
                    return None;
                }
            }
            Some(out)
        }
        Filter::And(fs) => {
            let mut acc = vec![Conj {
                rtype: None,
                id: None,
            }];
            for f in fs {
                let rhs = dnf(f)?;
                let mut next = Vec::new();
                for a in &acc {
                    for b in &rhs {
                        if let Some(c) = meet(a, b) {
                            next.push(c);
                        }
                    }
                    if next.len() > MAX_CONJ {
                        return None;
                    }
                }
                acc = next;
            }
            Some(acc)
        }
    }
}

fn meet(a: &Conj, b: &Conj) -> Option<Conj> {
    fn one(x: &Option<String>, y: &Option<String>) -> Option<Option<String>> {
        match (x, y) {
            (Some(x), Some(y)) if x != y => None,
            (Some(x), _) | (None, Some(x)) => Some(Some(x.clone())),
            (None, None) => Some(None),
        }
    }
    Some(Conj {
        rtype: one(&a.rtype, &b.rtype)?,
        id: one(&a.id, &b.id)?,
    })
}

/// How `DB.SYNCLATEST` reads the records a query can match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing can match.
    Nothing,
    /// Look up exactly these `(type, id)` pairs.
    Lookup(Vec<(String, String)>),
    /// Scan the live ids of one type (`<ns>.changes.<type>`).
    ScanType(String),
    /// Scan all records.
    ScanAll,
}

/// Chooses the cheapest plan for `TYPE rtype` (if given) AND `filter`.
pub fn plan(rtype: Option<&str>, filter: &Filter) -> Plan {
    let f = match rtype {
        Some(t) => Filter::And(vec![Filter::Type(t.to_string()), filter.clone()]),
        None => filter.clone(),
    };
    let Some(conj) = dnf(&f) else {
        return rtype.map_or(Plan::ScanAll, |t| Plan::ScanType(t.to_string()));
    };
    if conj.is_empty() {
        return Plan::Nothing;
    }
    if conj.iter().all(|c| c.rtype.is_some() && c.id.is_some()) {
        let mut pairs: Vec<(String, String)> = conj
            .into_iter()
            .filter_map(|c| Some((c.rtype?, c.id?)))
            .collect();
        pairs.sort();
        pairs.dedup();
        return Plan::Lookup(pairs);
    }
    let first = conj[0].rtype.clone();
    match first {
        Some(t) if conj.iter().all(|c| c.rtype.as_deref() == Some(t.as_str())) => Plan::ScanType(t),
        _ => Plan::ScanAll,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Filter {
        Filter::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn forms() {
        assert_eq!(p("{}"), Filter::All);
        assert_eq!(p(r#"{"id":"a"}"#), Filter::Id("a".into()));
        assert_eq!(p(r#"{"type":"t"}"#), Filter::Type("t".into()));
        let f = p(r#"{"type":"t","id":"a"}"#);
        assert!(f.matches("t", "a") && !f.matches("t", "b") && !f.matches("u", "a"));
        let f = p(r#"{"$or":[{"id":"a"},{"$and":[{"type":"u"},{"id":"b"}]}]}"#);
        assert!(f.matches("x", "a") && f.matches("u", "b") && !f.matches("t", "b"));
    }

    #[test]
    fn errors_name_the_problem() {
        let e = |s: &str| Filter::parse(s.as_bytes()).unwrap_err().to_string();
        assert!(e("{").contains("not valid JSON"));
        assert!(e("[]").contains("must be a JSON object"));
        assert!(e(r#"{"$index":"10.0.0.0/8"}"#).contains("\"$index\""));
        assert!(e(r#"{"name":"x"}"#).contains("\"name\""));
        assert!(e(r#"{"id":5}"#).contains("\"id\" must be a string"));
        assert!(e(r#"{"$or":{"id":"a"}}"#).contains("$or must be an array"));
        let deep = format!("{}{}", r#"{"$and":["#.repeat(40), "]}".repeat(40));
        assert!(e(&deep).contains("nests deeper"));
    }

    #[test]
    fn plans() {
        assert_eq!(plan(None, &p("{}")), Plan::ScanAll);
        assert_eq!(plan(Some("t"), &p("{}")), Plan::ScanType("t".into()));
        assert_eq!(
            plan(None, &p(r#"{"type":"t"}"#)),
            Plan::ScanType("t".into())
        );
        assert_eq!(plan(None, &p(r#"{"id":"a"}"#)), Plan::ScanAll);
        assert_eq!(
            plan(Some("t"), &p(r#"{"id":"a"}"#)),
            Plan::Lookup(vec![("t".into(), "a".into())])
        );
        assert_eq!(
            plan(
                None,
                &p(
                    r#"{"$or":[{"type":"t","id":"b"},{"type":"u","id":"a"},{"type":"t","id":"b"}]}"#
                )
            ),
            Plan::Lookup(vec![("t".into(), "b".into()), ("u".into(), "a".into())])
        );
        assert_eq!(plan(Some("u"), &p(r#"{"type":"t"}"#)), Plan::Nothing);
        assert_eq!(
            plan(None, &p(r#"{"$or":[{"type":"t"},{"type":"u"}]}"#)),
            Plan::ScanAll
        );
        assert_eq!(plan(None, &p(r#"{"$or":[]}"#)), Plan::Nothing);
        assert_eq!(plan(None, &p(r#"{"$and":[]}"#)), Plan::ScanAll);
    }
}
