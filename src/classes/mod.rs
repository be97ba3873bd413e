//! Classes: ids, names and (optionally) display colours. The set evolves through `remap` stages.
pub mod colors;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Class {
    pub id: u16,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<[u8; 3]>,
}

/// `background` (0), then one class per name (1, 2, ...): the classes of mask datasets.
pub fn background_and(names: impl IntoIterator<Item = impl Into<String>>) -> Vec<Class> {
    std::iter::once("background".to_string())
        .chain(names.into_iter().map(Into::into))
        .enumerate()
        .map(|(id, name)| Class {
            id: id as u16,
            name,
            color: None,
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassSet {
    /// Sorted by id, ids unique.
    pub classes: Vec<Class>,
    pub ignore_index: u16,
}

impl ClassSet {
    /// Builds a set, reporting duplicate ids or names and a clash with the ignore index.
    pub fn new(mut classes: Vec<Class>, ignore_index: u16) -> Result<Self, Vec<String>> {
        classes.sort_by_key(|c| c.id);
        let mut problems = Vec::new();
        for w in classes.windows(2) {
            if w[0].id == w[1].id {
                problems.push(format!(
                    "class id {} is declared twice (`{}` and `{}`)",
                    w[0].id, w[0].name, w[1].name
                ));
            }
        }
        let mut names: Vec<&str> = classes.iter().map(|c| c.name.as_str()).collect();
        names.sort_unstable();
        for w in names.windows(2) {
            if w[0] == w[1] {
                problems.push(format!("class name `{}` is declared twice", w[0]));
            }
        }
        if let Some(c) = classes.iter().find(|c| c.id == ignore_index) {
            problems.push(format!(
                "class `{}` has id {ignore_index}, which is the ignore index; set labels.ignore_index to an unused value",
                c.name
            ));
        }
        if classes.is_empty() {
            problems.push("no classes are declared".to_string());
        }
        if problems.is_empty() {
            Ok(ClassSet {
                classes,
                ignore_index,
            })
        } else {
            Err(problems)
        }
    }

    pub fn by_name(&self, name: &str) -> Option<&Class> {
        self.classes.iter().find(|c| c.name == name)
    }

    pub fn by_id(&self, id: u16) -> Option<&Class> {
        self.classes
            .binary_search_by_key(&id, |c| c.id)
            .ok()
            .map(|i| &self.classes[i])
    }

    pub fn contains(&self, id: u16) -> bool {
        self.by_id(id).is_some()
    }

    /// The largest value a label may hold: the largest class id or the ignore index.
    pub fn max_value(&self) -> u16 {
        self.classes
            .iter()
            .map(|c| c.id)
            .max()
            .unwrap_or(0)
            .max(self.ignore_index)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.classes.iter().map(|c| c.name.as_str())
    }
}

/// Tab20-like colours for classes declared without one.
const PALETTE: [[u8; 3]; 20] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
    [174, 199, 232],
    [255, 187, 120],
    [152, 223, 138],
    [255, 152, 150],
    [197, 176, 213],
    [196, 156, 148],
    [247, 182, 210],
    [199, 199, 199],
    [219, 219, 141],
    [158, 218, 229],
];

/// The colour of each class id (declared colours first, else the palette by position): what
/// `preview` draws and `restore` paints.
pub fn display_colours(classes: &[Class]) -> Vec<(u16, [u8; 3])> {
    classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id, c.color.unwrap_or(PALETTE[i % PALETTE.len()])))
        .collect()
}
