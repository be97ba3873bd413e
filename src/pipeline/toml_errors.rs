//! Turns serde/toml errors into messages a person can act on: file:line:column, the offending
//! key, the section it sits in, and the nearest valid name.
use std::path::Path;

pub fn describe(file: &Path, text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim().to_string();
    let location = err
        .span()
        .map(|span| {
            let (line, col) = line_col(text, span.start);
            let section = enclosing_section(text, span.start)
                .map(|s| format!(" in [{s}]"))
                .unwrap_or_default();
            (format!("{}:{line}:{col}", file.display()), section)
        })
        .unwrap_or_else(|| (file.display().to_string(), String::new()));
    let hint = unknown_name_hint(&message)
        .or_else(|| stage_shape_hint(&message))
        .unwrap_or_default();
    format!("{}{}: {message}{hint}", location.0, location.1)
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// serde's message for a `[[stage]]` table with several keys (e.g. `type = "resize"` + options).
fn stage_shape_hint(message: &str) -> Option<String> {
    message.contains("wanted exactly 1 element").then(|| {
        "; each [[stage]] holds exactly one stage, written as `resize = { size = [512, 512] }` (see `segprep init`)".to_string()
    })
}

/// The `[table]` or `[[array]]` header above an offset (or on its line).
fn enclosing_section(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let before = &text[..line_end];
    before.lines().rev().find_map(|line| {
        let l = line.trim();
        l.starts_with('[').then(|| {
            l.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
    })
}

/// For "unknown field `x`, expected one of `a`, `b`" (and the same for variants), suggests the closest name.
fn unknown_name_hint(message: &str) -> Option<String> {
    let at = message
        .find("unknown field")
        .or_else(|| message.find("unknown variant"))?;
    let names: Vec<&str> = message[at..].split('`').skip(1).step_by(2).collect();
    let (given, valid) = names.split_first()?;
    let best = crate::de::nearest(given, valid.iter().copied())?;
    Some(format!("; did you mean `{best}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hint_picks_the_closest_field() {
        let msg = "unknown field `labl_suffix`, expected one of `images`, `labels`, `label_suffix`";
        assert_eq!(
            unknown_name_hint(msg).as_deref(),
            Some("; did you mean `label_suffix`?")
        );
    }

    #[test]
    fn no_hint_for_far_names() {
        let msg = "unknown field `zzzzzzzzzz`, expected one of `images`, `labels`";
        assert_eq!(unknown_name_hint(msg), None);
    }

    #[test]
    fn line_and_column_are_one_based() {
        assert_eq!(line_col("a\nbc\nd", 3), (2, 2));
        assert_eq!(line_col("abc", 0), (1, 1));
    }
}
