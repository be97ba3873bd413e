//! What the benches share: the fixture pipeline head (relative to `out/`, where they write their
//! pipeline files).
pub const QUINTAL_HEAD: &str = r#"
[input]
images = "../fixtures/quintal/stills"
labels = "../fixtures/quintal/labelsRGB"
label_suffix = "_L"
[labels]
format = "rgb"
colors = "../fixtures/quintal/label_colors.txt"
[output]
dir = "bench"
"#;
