//! Deserializing values that take several forms (`64` or `[64, 48]`, `"ignore"` or an id, ...):
//! read any TOML value, then convert it with an error that states the accepted forms. serde's
//! untagged enums would only say "data did not match any variant".
use serde::de::{Deserializer, Error};
use serde::Deserialize;
use toml::Value;

/// Any value, from TOML or from the JSON copy of a pipeline in index.json, where an absent
/// option is written `null`: nulls inside tables are dropped (absent again).
pub fn any<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    to_toml(serde_json::Value::deserialize(d)?)
        .ok_or_else(|| D::Error::custom("expected a value, found null"))
}

fn to_toml(v: serde_json::Value) -> Option<Value> {
    use serde_json::Value as J;
    Some(match v {
        J::Null => return None,
        J::Bool(b) => Value::Boolean(b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Float(n.as_f64()?),
        },
        J::String(s) => Value::String(s),
        J::Array(a) => Value::Array(a.into_iter().map(to_toml).collect::<Option<_>>()?),
        J::Object(o) => Value::Table(
            o.into_iter()
                .filter_map(|(k, v)| to_toml(v).map(|v| (k, v)))
                .collect(),
        ),
    })
}

pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

pub fn unsigned<E: Error>(v: &Value, what: &str) -> Result<u64, E> {
    match v {
        Value::Integer(i) if *i >= 0 => Ok(*i as u64),
        other => Err(E::custom(format!(
            "{what} must be a whole number >= 0, not `{other}`"
        ))),
    }
}

pub fn expected<E: Error>(forms: &str, got: &Value) -> E {
    E::custom(format!("expected {forms}, found `{got}`"))
}

/// The closest candidate by edit distance, if it is close enough to be a plausible typo.
pub fn nearest<'a>(given: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| {
            (
                strsim::damerau_levenshtein(&given.to_lowercase(), &c.to_lowercase()),
                c,
            )
        })
        .filter(|(d, c)| *d <= (c.len().max(given.len()) / 2).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}
