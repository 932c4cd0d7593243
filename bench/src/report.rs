//! Results: sections of markdown, the checks against the targets,
//! `bench/results.md` and `bench/chart.svg`.

use std::path::Path;

use crate::util::{x, Spread};

/// One figure judged against a target.
#[derive(Debug, Clone)]
pub struct Check {
    /// What is compared, e.g. "DB.PUT ÷ HSET, 1 per call".
    pub name: String,
    /// The measured figure (a ratio, or milliseconds).
    pub value: Spread,
    /// The target.
    pub target: f64,
    /// True when bigger is better (ratios of throughput).
    pub higher_is_better: bool,
    /// "x" or "ms".
    pub unit: &'static str,
    /// The absolute numbers behind it.
    pub evidence: String,
}

impl Check {
    /// A throughput ratio that must reach `target`.
    pub fn higher(name: &str, value: Spread, target: f64, evidence: &str) -> Check {
        Check {
            name: name.into(),
            value,
            target,
            higher_is_better: true,
            unit: "x",
            evidence: evidence.into(),
        }
    }

    /// A figure that must stay at or below `target` (unit "ms" or "x").
    pub fn lower(
        name: &str,
        value: Spread,
        target: f64,
        unit: &'static str,
        evidence: &str,
    ) -> Check {
        Check {
            name: name.into(),
            value,
            target,
            higher_is_better: false,
            unit,
            evidence: evidence.into(),
        }
    }

    /// Met, missed, or not measured.
    pub fn met(&self) -> Option<bool> {
        if !self.value.valid() {
            return None;
        }
        Some(if self.higher_is_better {
            self.value.median >= self.target
        } else {
            self.value.median <= self.target
        })
    }

    fn fmt(&self, v: f64) -> String {
        match self.unit {
            "x" => x(v),
            u => format!("{v:.3} {u}"),
        }
    }

    /// "≥ 0.6x" / "≤ 1 ms".
    pub fn target_text(&self) -> String {
        let op = if self.higher_is_better { "≥" } else { "≤" };
        match self.unit {
            "x" => format!("{op} {}x", self.target),
            u => format!("{op} {} {u}", self.target),
        }
    }

    /// The figure with its spread.
    pub fn value_text(&self) -> String {
        crate::util::show(&self.value, |v| self.fmt(v))
    }

    /// How far from the target (≥ 1 means met), for the chart.
    pub fn score(&self) -> f64 {
        let v = self.value.median;
        if self.higher_is_better {
            v / self.target
        } else if v <= 0.0 {
            100.0
        } else {
            self.target / v
        }
    }
}

/// Everything one run measured.
#[derive(Default)]
pub struct Report {
    /// Machine and run facts (markdown).
    pub header: String,
    /// Titled markdown sections, in order.
    pub sections: Vec<(String, String)>,
    /// Checks against the targets.
    pub checks: Vec<Check>,
    /// Notes on missing parts (e.g. commands not available).
    pub notes: Vec<String>,
}

impl Report {
    /// Adds a section.
    pub fn section(&mut self, title: &str, body: String) {
        self.sections.push((title.to_string(), body));
    }

    /// The summary table of every check.
    pub fn summary(&self) -> String {
        let mut md = String::from("| figure | measured: median (min–max) | target | met | absolute |\n|---|---|---|---|---|\n");
        for c in &self.checks {
            let met = match c.met() {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "not measured",
            };
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                c.name,
                c.value_text(),
                c.target_text(),
                met,
                c.evidence
            ));
        }
        md
    }

    /// The whole results.md.
    pub fn markdown(&self) -> String {
        let mut md = String::from("# redis-databroker benchmarks\n\n");
        md.push_str("Written by `make bench` (bench/src). Every figure is measured in this run, on this machine, \
            with its baseline measured back to back (interleaved rounds); ratios are module ÷ baseline \
            (for memory: module ÷ plain hash, lower is better).\n\n");
        md.push_str(&self.header);
        md.push_str("\n## Summary against the targets\n\n");
        md.push_str(&self.summary());
        md.push_str("\n![chart](chart.svg)\n");
        for n in &self.notes {
            md.push_str(&format!("\n> {n}\n"));
        }
        for (title, body) in &self.sections {
            md.push_str(&format!("\n## {title}\n\n{body}"));
        }
        md
    }

    /// Writes results.md and chart.svg into `dir`.
    pub fn write(&self, dir: &Path) {
        let md = dir.join("results.md");
        std::fs::write(&md, self.markdown())
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", md.display()));
        let svg = dir.join("chart.svg");
        crate::chart::draw(&self.checks, &svg);
        println!("\nwrote {} and {}", md.display(), svg.display());
    }
}
