//! `/metrics` read with a real parser (nom-openmetrics: a grammar for the
//! Prometheus text format, which fails on any malformed line), then checked
//! for what that parser leaves to its user and Prometheus relies on: each
//! family described and typed once, its samples named after it (`_bucket`,
//! `_sum` and `_count` for a histogram), a counter's name ending `_total`,
//! no series twice, and a histogram's buckets cumulative up to `+Inf`,
//! which equals its count.

use nom_openmetrics::{MetricDescriptor, MetricType};
use std::collections::BTreeMap;

/// What the server must answer /metrics with.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A series' labels, sorted by name.
pub type Labels = BTreeMap<String, String>;

#[derive(Debug)]
pub struct Family {
    /// As its `# TYPE` line says: counter, gauge, histogram...
    pub kind: String,
    pub help: String,
    /// Its series: sample name and labels, and value.
    pub series: BTreeMap<(String, Labels), f64>,
}

#[derive(Debug)]
pub struct Exposition {
    /// By the name in their `# TYPE` line.
    pub families: BTreeMap<String, Family>,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

fn kind_name(kind: &MetricType) -> String {
    match kind {
        MetricType::Counter => "counter".into(),
        MetricType::Gauge => "gauge".into(),
        MetricType::Summary => "summary".into(),
        MetricType::Info => "info".into(),
        MetricType::Stateset => "stateset".into(),
        MetricType::Gaugehistogram => "gaugehistogram".into(),
        MetricType::Histogram => "histogram".into(),
        // nom-openmetrics 0.3 reads "histogram" as an unknown type.
        MetricType::Unknown(other) => other.to_string(),
    }
}

impl Exposition {
    /// An HTTP response to `GET /metrics`: 200, the Prometheus text
    /// format's content type, and a body that parses and checks.
    pub fn from_response(response: &str) -> Exposition {
        let (head, body) = response
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("not an HTTP response: {response}"));
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{response}");
        let content_type = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-type")
                    .then(|| value.trim())
            })
            .unwrap_or_else(|| panic!("no content type in {head}"));
        assert_eq!(content_type, CONTENT_TYPE);
        Exposition::parse(body)
    }

    /// Parses and checks `text`; panics, saying why, when it is not a
    /// well-formed exposition.
    pub fn parse(text: &str) -> Exposition {
        let families = match nom_openmetrics::parser::prometheus(text) {
            Ok((_, families)) => families,
            Err(error) => {
                // The error quotes the rest of the input at each level: its
                // start is enough, the whole text follows.
                let why: String = format!("{error:?}").chars().take(300).collect();
                panic!("/metrics does not parse: {why}...\n{text}")
            }
        };
        let mut exposition = Exposition {
            families: BTreeMap::new(),
        };
        for family in families {
            let mut kind = None;
            let mut help = None;
            for descriptor in &family.descriptors {
                match descriptor {
                    MetricDescriptor::Type { metric, r#type } => {
                        assert!(kind.is_none(), "{metric} typed twice");
                        kind = Some((metric.to_string(), kind_name(r#type)));
                    }
                    MetricDescriptor::Help { metric, help: text } => {
                        assert!(help.is_none(), "{metric} described twice");
                        help = Some((metric.to_string(), text.clone()));
                    }
                    MetricDescriptor::Unit { metric, .. } => {
                        panic!("{metric}: no UNIT in the Prometheus text format")
                    }
                }
            }
            let (name, kind) = kind.unwrap_or_else(|| panic!("untyped family {family:?}"));
            let (described, help) = help.unwrap_or_else(|| panic!("{name} has no HELP"));
            assert_eq!(described, name, "HELP and TYPE name one family");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counter {name} lacks _total");
            }
            let mut series = BTreeMap::new();
            for sample in &family.samples {
                let sample_name = sample.name();
                let suffix = sample_name.strip_prefix(name.as_str());
                let allowed: &[&str] = if kind == "histogram" {
                    &["_bucket", "_sum", "_count"]
                } else {
                    &[""]
                };
                assert!(
                    suffix.is_some_and(|suffix| allowed.contains(&suffix)),
                    "sample {sample_name} in family {name} ({kind})"
                );
                let labels: Labels = sample
                    .labels()
                    .iter()
                    .map(|label| (label.name.to_string(), label.value.clone()))
                    .collect();
                assert_eq!(labels.len(), sample.labels().len(), "a label twice");
                if kind == "counter" {
                    assert!(sample.number() >= 0.0, "{sample_name} below zero");
                }
                let key = (sample_name.to_string(), labels);
                assert!(
                    series.insert(key.clone(), sample.number()).is_none(),
                    "{key:?} twice"
                );
            }
            let family = Family { kind, help, series };
            if family.kind == "histogram" {
                check_histogram(&name, &family);
            }
            assert!(
                exposition.families.insert(name.clone(), family).is_none(),
                "family {name} twice"
            );
        }
        exposition
    }

    /// The value of one series, if it is exposed.
    pub fn get(&self, name: &str, pairs: &[(&str, &str)]) -> Option<f64> {
        let key = (name.to_string(), labels(pairs));
        self.families
            .values()
            .find_map(|family| family.series.get(&key).copied())
    }

    /// The value of one series, a whole number (a count); panics when the
    /// series is missing.
    pub fn count(&self, name: &str, pairs: &[(&str, &str)]) -> u64 {
        let value = self
            .get(name, pairs)
            .unwrap_or_else(|| panic!("no {name}{pairs:?} in {:#?}", self.families.keys()));
        assert!(
            value >= 0.0 && value.fract() == 0.0,
            "{name}{pairs:?} = {value}, not a count"
        );
        value as u64
    }

    /// The sum of every series of sample `name` whose labels include
    /// `pairs` (the others any), and how many there are.
    pub fn sum(&self, name: &str, pairs: &[(&str, &str)]) -> (f64, usize) {
        let wanted = labels(pairs);
        self.families
            .values()
            .flat_map(|family| &family.series)
            .filter(|((sample, labels), _)| {
                sample == name && wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .fold((0.0, 0), |(sum, n), (_, value)| (sum + value, n + 1))
    }

    /// A family's type, from its `# TYPE` line.
    pub fn kind(&self, family: &str) -> &str {
        &self
            .families
            .get(family)
            .unwrap_or_else(|| panic!("no family {family}"))
            .kind
    }
}

/// Buckets never fall as `le` grows, and the `+Inf` one holds the count.
fn check_histogram(name: &str, family: &Family) {
    let count = family
        .series
        .get(&(format!("{name}_count"), Labels::new()))
        .unwrap_or_else(|| panic!("{name} has no count"));
    assert!(
        family
            .series
            .contains_key(&(format!("{name}_sum"), Labels::new())),
        "{name} has no sum"
    );
    let mut buckets: Vec<(f64, f64)> = family
        .series
        .iter()
        .filter(|((sample, _), _)| sample.ends_with("_bucket"))
        .map(|((_, labels), value)| {
            let le = labels.get("le").expect("a bucket has le");
            let bound = match le.as_str() {
                "+Inf" => f64::INFINITY,
                finite => finite.parse().expect("le is a number"),
            };
            (bound, *value)
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(
        buckets.windows(2).all(|pair| pair[0].1 <= pair[1].1),
        "{name}: buckets not cumulative: {buckets:?}"
    );
    assert_eq!(
        buckets.last(),
        Some(&(f64::INFINITY, *count)),
        "{name}: +Inf is the count"
    );
}
