//! `remap`: changes class ids through a lookup table built (and checked) before any pixel is read.
//!
//! Image: untouched. Label: every id goes through the table; ids become the ignore index where asked.
//!
//! Keys are class names, ids, or id ranges `a-b`; values are a class name, an id, `"ignore"`, or for a
//! range key a range of the same length (`"1-150" = "0-149"`, ADE20K's reduce_zero_label).
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::geometry::GeometryStep;
use super::{AtInference, BuildContext, SampleAt, StageOps};
use crate::classes::{Class, ClassSet};

use crate::de::nearest;
use crate::sample::{ImagePart, LabelPart, Sample};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RemapConfig {
    pub map: RemapTable,
    /// What happens to declared classes the map does not mention.
    #[serde(default)]
    pub unmapped: Unmapped,
    /// Names of the output ids (index = new id), e.g. Cityscapes' 19 train classes.
    pub classes: Option<Vec<String>>,
    /// Renumber the surviving classes 0..n-1 in id order.
    #[serde(default)]
    pub compact: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unmapped {
    #[default]
    Keep,
    Ignore,
    Error,
}

/// Sentinel in the lookup table for values that are not declared classes.
const UNDECLARED: u32 = u32::MAX;

#[derive(Debug, Clone)]
pub struct Remap {
    /// Indexed by input id (all 65536 u16 values), so lookup never goes out of bounds.
    table: Vec<u32>,
    /// (input id, output id or ignore) for the manifest.
    pairs: Vec<(u16, u16)>,
}

/// The input → output id pairs and the classes they lead to.
struct Resolved {
    pairs: Vec<(u16, u16)>,
    output: ClassSet,
}

#[derive(Clone)]
enum Target {
    Ignore,
    Id(u16),
    Name(String),
    Shift(i64),
}

impl RemapConfig {
    pub fn build(&self, ctx: &mut BuildContext) -> Result<Remap, Vec<String>> {
        let input = &ctx.classes;
        let mut problems = Vec::new();
        let mut assigned: BTreeMap<u16, (Target, String)> = BTreeMap::new();
        for (key, value) in &self.map {
            match self.expand_key(key, value, input) {
                Ok(entries) => {
                    for (id, target) in entries {
                        if let Some((_, other)) = assigned.get(&id) {
                            problems.push(format!(
                                "remap: class id {id} is mapped by both `{other}` and `{key}`"
                            ));
                        } else {
                            assigned.insert(id, (target, key.clone()));
                        }
                    }
                }
                Err(p) => problems.push(format!("remap: {p}")),
            }
        }
        let unmapped: Vec<&Class> = input
            .classes
            .iter()
            .filter(|c| !assigned.contains_key(&c.id))
            .collect();
        if self.unmapped == Unmapped::Error && !unmapped.is_empty() {
            let names: Vec<String> = unmapped
                .iter()
                .map(|c| format!("{} ({})", c.name, c.id))
                .collect();
            problems.push(format!(
                "remap: unmapped = \"error\" but these classes are not mapped: {}",
                names.join(", ")
            ));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        for c in unmapped {
            let t = match self.unmapped {
                Unmapped::Ignore => Target::Ignore,
                _ => Target::Id(c.id),
            };
            assigned.insert(c.id, (t, String::new()));
        }
        let Resolved { pairs, output } = self.resolve_targets(&assigned, input)?;
        let mut table = vec![UNDECLARED; 1 << 16];
        for &(from, to) in &pairs {
            table[from as usize] = to as u32;
        }
        table[input.ignore_index as usize] = output.ignore_index as u32;
        ctx.classes = output;
        Ok(Remap { table, pairs })
    }

    /// Which declared input ids a key covers, each with its target.
    fn expand_key(
        &self,
        key: &str,
        value: &toml::Value,
        input: &ClassSet,
    ) -> Result<Vec<(u16, Target)>, String> {
        if let Some((lo, hi)) = parse_range(key) {
            let ids: Vec<u16> = input
                .classes
                .iter()
                .map(|c| c.id)
                .filter(|id| (lo..=hi).contains(id))
                .collect();
            if ids.is_empty() {
                return Err(format!("range `{key}` covers no declared class id"));
            }
            let target = parse_target(value, Some((lo, hi)))?;
            return Ok(ids.into_iter().map(|id| (id, target.clone())).collect());
        }
        let id = match key.parse::<u16>() {
            Ok(id) if input.contains(id) => id,
            Ok(id) => return Err(format!("class id {id} is not declared")),
            Err(_) => match input.by_name(key) {
                Some(c) => c.id,
                None => {
                    let hint = nearest(key, input.names())
                        .map(|n| format!("; did you mean `{n}`?"))
                        .unwrap_or_default();
                    return Err(format!("no class is named `{key}`{hint}"));
                }
            },
        };
        Ok(vec![(id, parse_target(value, None)?)])
    }

    /// Turns targets into output ids and the output class set.
    fn resolve_targets(
        &self,
        assigned: &BTreeMap<u16, (Target, String)>,
        input: &ClassSet,
    ) -> Result<Resolved, Vec<String>> {
        let ignore = input.ignore_index;
        let mut problems = Vec::new();
        let mut pairs = Vec::new();
        // output id -> (name, colour, how sure we are of the name: lower is better)
        let mut named: BTreeMap<u16, (String, Option<[u8; 3]>, u8)> = BTreeMap::new();
        for (&from, (target, _)) in assigned {
            let src = input.by_id(from).expect("assigned ids are declared");
            let (to, name_rank, name) = match target {
                Target::Ignore => {
                    pairs.push((from, ignore));
                    continue;
                }
                Target::Id(t) => (*t as i64, if *t == from { 1 } else { 3 }, src.name.clone()),
                Target::Shift(s) => (from as i64 + s, 3, src.name.clone()),
                Target::Name(n) => match self.name_to_id(n, input) {
                    Some(id) => (id as i64, 0, n.clone()),
                    None => {
                        problems.push(format!("remap: target class `{n}` is neither a declared class nor in remap.classes"));
                        continue;
                    }
                },
            };
            let Ok(to) = u16::try_from(to) else {
                problems.push(format!(
                    "remap: class {} would get id {to}, outside 0..=65535",
                    src.name
                ));
                continue;
            };
            if to == ignore {
                problems.push(format!("remap: class {} would get id {to}, which is the ignore index; map it to \"ignore\" instead", src.name));
                continue;
            }
            pairs.push((from, to));
            let entry = named
                .entry(to)
                .or_insert((name.clone(), src.color, name_rank));
            if name_rank < entry.2 {
                *entry = (name, src.color, name_rank);
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut classes: Vec<Class> = named
            .into_iter()
            .map(|(id, (name, color, _))| Class { id, name, color })
            .collect();
        if let Some(names) = &self.classes {
            for c in &mut classes {
                match names.get(c.id as usize) {
                    Some(n) => c.name = n.clone(),
                    None => problems.push(format!(
                        "remap: output id {} has no name in remap.classes ({} names given)",
                        c.id,
                        names.len()
                    )),
                }
            }
        }
        if self.compact {
            let renumber: BTreeMap<u16, u16> = classes
                .iter()
                .enumerate()
                .map(|(i, c)| (c.id, i as u16))
                .collect();
            for p in &mut pairs {
                if let Some(&n) = renumber.get(&p.1) {
                    p.1 = n;
                }
            }
            for c in &mut classes {
                c.id = renumber[&c.id];
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let output = ClassSet::new(classes, ignore).map_err(|p| {
            p.into_iter()
                .map(|m| format!("remap: {m}"))
                .collect::<Vec<_>>()
        })?;
        Ok(Resolved { pairs, output })
    }

    fn name_to_id(&self, name: &str, input: &ClassSet) -> Option<u16> {
        if let Some(names) = &self.classes {
            if let Some(i) = names.iter().position(|n| n == name) {
                return u16::try_from(i).ok();
            }
        }
        input.by_name(name).map(|c| c.id)
    }
}

fn parse_range(text: &str) -> Option<(u16, u16)> {
    let (a, b) = text.split_once('-')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some((a, b))
}

fn parse_target(value: &toml::Value, key_range: Option<(u16, u16)>) -> Result<Target, String> {
    match value {
        toml::Value::Integer(i) => u16::try_from(*i)
            .map(Target::Id)
            .map_err(|_| format!("target id {i} is outside 0..=65535")),
        toml::Value::String(s) if s == "ignore" => Ok(Target::Ignore),
        toml::Value::String(s) => {
            if let Some((lo, hi)) = parse_range(s) {
                let (klo, khi) =
                    key_range.ok_or_else(|| format!("target range `{s}` needs a range key"))?;
                if hi - lo != khi - klo {
                    return Err(format!(
                        "range {klo}-{khi} and target range `{s}` differ in length"
                    ));
                }
                return Ok(Target::Shift(lo as i64 - klo as i64));
            }
            match s.parse::<u16>() {
                Ok(id) => Ok(Target::Id(id)),
                Err(_) => Ok(Target::Name(s.clone())),
            }
        }
        other => Err(format!(
            "target `{other}` must be a class name, an id, or \"ignore\""
        )),
    }
}

impl Remap {
    /// Where one id goes; `None` for a value that is not a declared class.
    pub fn map_id(&self, id: u16) -> Option<u16> {
        let to = self.table[id as usize];
        (to != UNDECLARED).then_some(to as u16)
    }
}

impl StageOps for Remap {
    type Plan = ();

    fn name(&self) -> &'static str {
        "remap"
    }

    fn copies(&self, _split: &str) -> Vec<u32> {
        vec![0]
    }

    fn plan(&self, _at: SampleAt) -> Result<(), String> {
        Ok(())
    }

    /// Image: untouched.
    fn apply_image(&self, _plan: &(), _part: ImagePart) -> Result<(), String> {
        Ok(())
    }

    /// Label: each id through the table; an id the table does not know is an error.
    fn apply_label(&self, _plan: &(), part: LabelPart) -> Result<(), String> {
        for id in part.label.ids.iter_mut() {
            let to = self.table[*id as usize];
            if to == UNDECLARED {
                return Err(format!("label value {id} is not a declared class"));
            }
            *id = to as u16;
        }
        Ok(())
    }

    /// One sample in, one out: no copy to derive.
    fn derive(&self, _plan: &(), _sample: &Sample) -> Result<Option<Sample>, String> {
        Ok(None)
    }

    fn drawn(&self, _plan: &()) -> Option<String> {
        None
    }

    /// Labels only: a model's input does not change.
    fn at_inference(&self) -> AtInference {
        AtInference::Skipped
    }

    fn geometry(&self, _w: u32, _h: u32) -> Result<Vec<GeometryStep>, String> {
        Ok(Vec::new())
    }

    fn describe(&self) -> serde_json::Value {
        let map: BTreeMap<String, u16> = self
            .pairs
            .iter()
            .map(|(f, t)| (f.to_string(), *t))
            .collect();
        serde_json::json!({ "stage": "remap", "ids": map })
    }
}

/// Remap tables keep their keys sorted so the pipeline hash does not depend on writing order.
pub type RemapTable = BTreeMap<String, toml::Value>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classes::Class;

    fn set(n: u16) -> ClassSet {
        let classes = (0..n)
            .map(|id| Class {
                id,
                name: format!("c{id}"),
                color: None,
            })
            .collect();
        ClassSet::new(classes, 255).unwrap()
    }

    fn cfg(toml_text: &str) -> RemapConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn ade20k_reduce_zero_label_is_one_line() {
        let mut ctx = BuildContext { classes: set(151) };
        let r = cfg("map = { 0 = \"ignore\", 1-150 = \"0-149\" }")
            .build(&mut ctx)
            .unwrap();
        assert_eq!(r.table[0], 255);
        assert_eq!(r.table[1], 0);
        assert_eq!(r.table[150], 149);
        assert_eq!(r.table[255], 255);
        assert_eq!(ctx.classes.classes.len(), 150);
        assert_eq!(ctx.classes.by_id(0).unwrap().name, "c1");
    }

    #[test]
    fn names_many_to_one_and_keep() {
        let mut ctx = BuildContext { classes: set(4) };
        let r = cfg("map = { c3 = \"c1\", c0 = \"ignore\" }")
            .build(&mut ctx)
            .unwrap();
        assert_eq!(
            (r.table[0], r.table[1], r.table[2], r.table[3]),
            (255, 1, 2, 1)
        );
        let names: Vec<_> = ctx.classes.names().collect();
        assert_eq!(names, ["c1", "c2"]);
    }

    #[test]
    fn compact_renumbers() {
        let mut ctx = BuildContext { classes: set(4) };
        let r = cfg("map = { c0 = \"ignore\" }\ncompact = true")
            .build(&mut ctx)
            .unwrap();
        assert_eq!((r.table[1], r.table[2], r.table[3]), (0, 1, 2));
    }

    #[test]
    fn unmapped_error_lists_classes_before_any_pixel() {
        let mut ctx = BuildContext { classes: set(3) };
        let err = cfg("map = { c0 = 0 }\nunmapped = \"error\"")
            .build(&mut ctx)
            .unwrap_err();
        assert!(
            err[0].contains("c1 (1)") && err[0].contains("c2 (2)"),
            "{err:?}"
        );
    }

    #[test]
    fn unknown_name_gets_a_hint() {
        let mut ctx = BuildContext { classes: set(3) };
        let err = cfg("map = { cc1 = \"ignore\" }")
            .build(&mut ctx)
            .unwrap_err();
        assert!(err[0].contains("did you mean `c1`"), "{err:?}");
    }

    #[test]
    fn cityscapes_style_ids_with_ignore_for_the_rest() {
        let mut ctx = BuildContext { classes: set(34) };
        let r = cfg("map = { 7 = 0, 8 = 1, 26 = 13 }\nunmapped = \"ignore\"\nclasses = [\"road\", \"sidewalk\"]")
            .build(&mut ctx);
        // 13 has no name in a 2-name list: an error, not a silent class_13
        assert!(r.is_err());
        let mut ctx = BuildContext { classes: set(34) };
        let r = cfg(
            "map = { 7 = 0, 8 = 1 }\nunmapped = \"ignore\"\nclasses = [\"road\", \"sidewalk\"]",
        )
        .build(&mut ctx)
        .unwrap();
        assert_eq!(
            (r.table[7], r.table[8], r.table[0], r.table[33]),
            (0, 1, 255, 255)
        );
        assert_eq!(ctx.classes.by_id(1).unwrap().name, "sidewalk");
    }
}
