//! Pomerium's filter language for `DB.SYNCLATEST FILTER <json>`: `{"id": "a"}`,
//! `{"type": "t"}`, `{"$and": [..]}`, `{"$or": [..]}`; several keys in one
//! object mean AND; values are strings. Also plans how to answer a filter:
//! direct lookups when it names ids of known types.
//!
//! Every step is bounded, so that no filter a client can send holds the
//! server for more than a few milliseconds:
//! - parsing: at most [`MAX_FILTER_BYTES`] of JSON (checked before parsing,
//!   which is linear in the text), at most [`MAX_FILTER_NODES`] objects and
//!   conditions (counted while converting), at most [`MAX_DEPTH`] levels;
//! - planning: the rewrite into an OR of conjunctions stops after
//!   [`PLAN_BUDGET`] steps, counted as it works (each conjunction combined or
//!   produced is a step); past that the filter is answered by scanning;
//! - matching: an `$or` of plain ids (or types) is one hash lookup, and any
//!   filter examines at most its node count per record.

use std::collections::HashSet;

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
    /// Any of these types (an `$or` of plain `{"type": ..}`).
    Types(HashSet<String>),
    /// Any of these ids (an `$or` of plain `{"id": ..}`).
    Ids(HashSet<String>),
    /// Every sub-filter matches.
    And(Vec<Filter>),
    /// Any sub-filter matches.
    Or(Vec<Filter>),
}

/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 32;
/// Largest filter text, in bytes.
pub const MAX_FILTER_BYTES: usize = 64 * 1024;
/// Most objects plus conditions (`id`, `type`, `$and`, `$or` keys) in one filter.
pub const MAX_FILTER_NODES: usize = 4096;
/// Most steps the planner spends before falling back to a scan.
pub const PLAN_BUDGET: usize = 50_000;

fn bad(why: impl Into<String>) -> DbError {
    DbError::arg("FILTER", why)
}

impl Filter {
    /// Parses filter JSON (bounded: see the module documentation).
    pub fn parse(json: &[u8]) -> DbResult<Filter> {
        if json.len() > MAX_FILTER_BYTES {
            return Err(bad(format!(
                "is {} bytes, more than the limit of {MAX_FILTER_BYTES}",
                json.len()
            )));
        }
        let v: Value =
            serde_json::from_slice(json).map_err(|e| bad(format!("is not valid JSON: {e}")))?;
        let mut nodes = 0;
        Self::from_value(&v, 0, &mut nodes)
    }

    fn from_value(v: &Value, depth: usize, nodes: &mut usize) -> DbResult<Filter> {
        if depth > MAX_DEPTH {
            return Err(bad(format!("nests deeper than {MAX_DEPTH} levels")));
        }
        let Value::Object(obj) = v else {
            return Err(bad("must be a JSON object"));
        };
        *nodes += 1 + obj.len();
        if *nodes > MAX_FILTER_NODES {
            return Err(bad(format!(
                "has more than {MAX_FILTER_NODES} objects and conditions"
            )));
        }
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
                    let mut subs = Vec::with_capacity(items.len());
                    for i in items {
                        subs.push(Self::from_value(i, depth + 1, nodes)?);
                    }
                    if k == "$and" {
                        Filter::And(subs)
                    } else {
                        group_or(subs)
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

    /// True when a record of `(rtype, id)` matches. Examines each node at
    /// most once (sets are one lookup).
    pub fn matches(&self, rtype: &str, id: &str) -> bool {
        match self {
            Filter::All => true,
            Filter::Type(t) => t == rtype,
            Filter::Id(i) => i == id,
            Filter::Types(ts) => ts.contains(rtype),
            Filter::Ids(is) => is.contains(id),
            Filter::And(fs) => fs.iter().all(|f| f.matches(rtype, id)),
            Filter::Or(fs) => fs.iter().any(|f| f.matches(rtype, id)),
        }
    }
}

/// An `$or`: plain ids and plain types are gathered into sets (one lookup
/// each when matching); two or more of them become a set.
fn group_or(subs: Vec<Filter>) -> Filter {
    let ids = subs.iter().filter(|f| matches!(f, Filter::Id(_))).count();
    let types = subs.iter().filter(|f| matches!(f, Filter::Type(_))).count();
    if ids < 2 && types < 2 {
        return Filter::Or(subs);
    }
    let mut out = Vec::new();
    let mut id_set = HashSet::new();
    let mut type_set = HashSet::new();
    for f in subs {
        match f {
            Filter::Id(i) if ids >= 2 => {
                id_set.insert(i);
            }
            Filter::Type(t) if types >= 2 => {
                type_set.insert(t);
            }
            other => out.push(other),
        }
    }
    if !id_set.is_empty() {
        out.push(Filter::Ids(id_set));
    }
    if !type_set.is_empty() {
        out.push(Filter::Types(type_set));
    }
    if out.len() == 1 {
        out.remove(0)
    } else {
        Filter::Or(out)
    }
}

/// One conjunction of constraints: the records matching both (None = any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Conj<'a> {
    rtype: Option<&'a str>,
    id: Option<&'a str>,
}

const ANY: Conj<'static> = Conj {
    rtype: None,
    id: None,
};

/// Spends one planning step; false when the budget is gone.
fn spend(budget: &mut usize, n: usize) -> bool {
    if *budget < n {
        *budget = 0;
        return false;
    }
    *budget -= n;
    true
}

/// Rewrites `f` as an OR of conjunctions, spending `budget` as it works
/// (None when the budget runs out).
fn dnf<'a>(f: &'a Filter, budget: &mut usize) -> Option<Vec<Conj<'a>>> {
    if !spend(budget, 1) {
        return None;
    }
    match f {
        Filter::All => Some(vec![ANY]),
        Filter::Type(t) => Some(vec![Conj {
            rtype: Some(t),
            id: None,
        }]),
        Filter::Id(i) => Some(vec![Conj {
            rtype: None,
            id: Some(i),
        }]),
        Filter::Types(ts) => {
            if !spend(budget, ts.len()) {
                return None;
            }
            Some(
                ts.iter()
                    .map(|t| Conj {
                        rtype: Some(t),
                        id: None,
                    })
                    .collect(),
            )
        }
        Filter::Ids(is) => {
            if !spend(budget, is.len()) {
                return None;
            }
            Some(
                is.iter()
                    .map(|i| Conj {
                        rtype: None,
                        id: Some(i),
                    })
                    .collect(),
            )
        }
        Filter::Or(fs) => {
            let mut out = Vec::new();
            for f in fs {
                let sub = dnf(f, budget)?;
                if !spend(budget, sub.len()) {
                    return None;
                }
                out.extend(sub);
            }
            Some(out)
        }
        Filter::And(fs) => {
            let mut acc = vec![ANY];
            for f in fs {
                let rhs = dnf(f, budget)?;
                let mut next = Vec::new();
                for a in &acc {
                    // Every pair costs a step, kept or not: this is the work.
                    if !spend(budget, rhs.len()) {
                        return None;
                    }
                    next.extend(rhs.iter().filter_map(|b| meet(a, b)));
                }
                acc = next;
            }
            Some(acc)
        }
    }
}

fn meet<'a>(a: &Conj<'a>, b: &Conj<'a>) -> Option<Conj<'a>> {
    fn one<'a>(x: Option<&'a str>, y: Option<&'a str>) -> Option<Option<&'a str>> {
        match (x, y) {
            (Some(x), Some(y)) if x != y => None,
            (Some(x), _) | (None, Some(x)) => Some(Some(x)),
            (None, None) => Some(None),
        }
    }
    Some(Conj {
        rtype: one(a.rtype, b.rtype)?,
        id: one(a.id, b.id)?,
    })
}

/// How `DB.SYNCLATEST` reads the records a query can match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Nothing can match.
    Nothing,
    /// Look up exactly these `(type, id)` pairs (every one matches the filter).
    Lookup(Vec<(String, String)>),
    /// Scan the live ids of one type (`<ns>.changes.<type>`).
    ScanType(String),
    /// Scan all records.
    ScanAll,
}

/// Chooses the cheapest plan for `TYPE rtype` (if given) AND `filter`,
/// within [`PLAN_BUDGET`] steps.
pub fn plan(rtype: Option<&str>, filter: &Filter) -> Plan {
    let mut budget = PLAN_BUDGET;
    let fallback = || rtype.map_or(Plan::ScanAll, |t| Plan::ScanType(t.to_string()));
    let Some(conj) = dnf(filter, &mut budget) else {
        return fallback();
    };
    let want = Conj { rtype, id: None };
    let conj: Vec<Conj<'_>> = conj.iter().filter_map(|c| meet(&want, c)).collect();
    if conj.is_empty() {
        return Plan::Nothing;
    }
    if conj.iter().all(|c| c.rtype.is_some() && c.id.is_some()) {
        let mut pairs: Vec<(String, String)> = conj
            .into_iter()
            .filter_map(|c| Some((c.rtype?.to_string(), c.id?.to_string())))
            .collect();
        pairs.sort();
        pairs.dedup();
        return Plan::Lookup(pairs);
    }
    match conj[0].rtype {
        Some(t) if conj.iter().all(|c| c.rtype == Some(t)) => Plan::ScanType(t.to_string()),
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

    /// The filter of the issue's report: small, but its rewrite into
    /// conjunctions is 10^8 steps per `$and` member.
    pub(crate) fn bomb(copies: usize) -> String {
        let e = |n: usize| format!("{{\"$or\":[{}]}}", vec!["{}"; n].join(","));
        let a = format!("{{\"$and\":[{{\"id\":\"x\"}},{},{}]}}", e(100), e(100));
        let b = format!(
            "{{\"$or\":[{{\"id\":\"x\"}},{{\"$and\":[{{\"id\":\"y\"}},{},{}]}}]}}",
            e(99),
            e(101)
        );
        format!("{{\"$and\":[{a},{}]}}", vec![b; copies].join(","))
    }

    /// Adversarial filters within the limits: wide, deep, nested `$and` of
    /// `$or` (the DNF explodes), and many distinct conditions.
    pub(crate) fn adversarial() -> Vec<(&'static str, String)> {
        let mut out = vec![("bomb", bomb(40)), ("small-bomb", bomb(18))];
        // $and of 2-way $ors: 2^k conjunctions.
        let pair = r#"{"$or":[{"id":"a"},{"type":"b"}]}"#;
        out.push((
            "and-of-ors",
            format!("{{\"$and\":[{}]}}", vec![pair; 680].join(",")),
        ));
        // Deep: 32 levels of $and/$or alternating, each with a few conditions.
        let mut deep = String::from(r#"{"id":"z"}"#);
        for level in 0..MAX_DEPTH - 2 {
            let op = if level % 2 == 0 { "$and" } else { "$or" };
            deep = format!(
                "{{\"{op}\":[{deep},{{\"$or\":[{{\"id\":\"{level}\"}},{{\"type\":\"t{level}\"}}]}},{{}}]}}"
            );
        }
        out.push(("deep", deep));
        // Wide: many distinct (type, id) pairs, answered by lookups.
        let pairs: Vec<String> = (0..1300)
            .map(|i| format!("{{\"type\":\"t{}\",\"id\":\"i{i}\"}}", i % 7))
            .collect();
        out.push(("wide-pairs", format!("{{\"$or\":[{}]}}", pairs.join(","))));
        // Wide ids: the Go backend's favourite shape.
        let ids: Vec<String> = (0..2040).map(|i| format!("{{\"id\":\"{i}\"}}")).collect();
        out.push(("wide-ids", format!("{{\"$or\":[{}]}}", ids.join(","))));
        // Worst matching: $or of $ands that each need two lookups per record.
        let ands: Vec<String> = (0..400)
            .map(|i| format!("{{\"$and\":[{{\"type\":\"t{i}\"}},{{\"$or\":[{{\"id\":\"a{i}\"}},{{\"type\":\"u\"}}]}}]}}"))
            .collect();
        out.push((
            "or-of-ands",
            format!(
                "{{\"$and\":[{pair},{pair},{{\"$or\":[{}]}}]}}",
                ands.join(",")
            ),
        ));
        out
    }

    #[test]
    fn adversarial_filters_are_refused_or_cheap() {
        // Within limits: parse + plan + matching a page of 256 records, bounded.
        // (Debug builds are ~10x slower than release; the bound is for debug.)
        let limit = if cfg!(debug_assertions) { 80 } else { 8 };
        for (name, json) in adversarial() {
            assert!(
                json.len() <= MAX_FILTER_BYTES,
                "{name}: {} bytes",
                json.len()
            );
            let t = std::time::Instant::now();
            let outcome = Filter::parse(json.as_bytes()).map(|f| {
                let pl = plan(Some("t1"), &f);
                let n = (0..256)
                    .filter(|i| f.matches("t1", &format!("i{i}")))
                    .count();
                (pl, n)
            });
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            eprintln!(
                "{name}: {} bytes, {ms:.2} ms, {}",
                json.len(),
                match &outcome {
                    Ok((Plan::Lookup(p), _)) => format!("lookup of {} pairs", p.len()),
                    Ok((p, _)) => format!("{p:?}"),
                    Err(e) => e.to_string(),
                }
            );
            assert!(ms < limit as f64, "{name} took {ms:.1} ms");
        }
    }

    #[test]
    fn the_bomb_plans_within_budget_and_falls_back_to_a_scan() {
        assert!(Filter::parse(bomb(40).as_bytes()).is_err());
        let f = p(&bomb(18));
        assert_eq!(plan(None, &f), Plan::ScanAll);
        assert_eq!(plan(Some("t"), &f), Plan::ScanType("t".into()));
        // It still filters exactly: id must be x.
        assert!(f.matches("t", "x") && !f.matches("t", "y"));
    }

    #[test]
    fn limits_are_refused_with_a_clear_error() {
        let e = |s: &str| Filter::parse(s.as_bytes()).unwrap_err().to_string();
        let big = format!("{{\"id\":\"{}\"}}", "x".repeat(MAX_FILTER_BYTES));
        assert!(
            e(&big).contains("more than the limit of 65536"),
            "{}",
            e(&big)
        );
        let many = format!("{{\"$or\":[{}]}}", vec!["{}"; MAX_FILTER_NODES].join(","));
        assert!(
            e(&many).starts_with("ERR FILTER has more than 4096"),
            "{}",
            e(&many)
        );
        let ok = format!(
            "{{\"$or\":[{}]}}",
            vec!["{}"; MAX_FILTER_NODES - 2].join(",")
        );
        assert!(Filter::parse(ok.as_bytes()).is_ok());
    }

    #[test]
    fn sets_match_like_the_ors_they_replace() {
        let f = p(
            r#"{"$or":[{"id":"a"},{"id":"b"},{"type":"t"},{"type":"u"},{"$and":[{"id":"c"},{"type":"v"}]}]}"#,
        );
        for (t, i, want) in [
            ("x", "a", true),
            ("x", "b", true),
            ("t", "z", true),
            ("u", "z", true),
            ("v", "c", true),
            ("w", "c", false),
            ("x", "z", false),
        ] {
            assert_eq!(f.matches(t, i), want, "{t}/{i}");
        }
        let ids = p(r#"{"$or":[{"id":"a"},{"id":"b"}]}"#);
        assert_eq!(
            plan(Some("t"), &ids),
            Plan::Lookup(vec![("t".into(), "a".into()), ("t".into(), "b".into())])
        );
    }
}
