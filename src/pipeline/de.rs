//! Deserializing values that take several forms (`64` or `[64, 48]`, `"ignore"` or an id, ...):
//! read any TOML value, then convert it with an error that states the accepted forms. serde's
//! untagged enums would only say "data did not match any variant".
use serde::de::{Deserializer, Error};
use serde::Deserialize;
use toml::Value;

pub fn any<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    Value::deserialize(d)
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
