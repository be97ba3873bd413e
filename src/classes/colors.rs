//! Colour-table parsers: CamVid's `label_colors.txt` (`R G B<whitespace>name`) and the
//! `class_dict.csv` family (`name,r,g,b` with a header and stray spaces). Class ids follow line order.
use super::Class;

/// Parses a colour table, choosing the dialect from the content, not the file name.
pub fn parse_color_table(text: &str) -> Result<Vec<Class>, String> {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if first.contains(',') {
        parse_class_dict_csv(text)
    } else {
        parse_label_colors_txt(text)
    }
}

/// `R G B name` per line; any whitespace between fields; names may contain spaces; `#` comments.
pub fn parse_label_colors_txt(text: &str) -> Result<Vec<Class>, String> {
    let mut classes = Vec::new();
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let mut rgb = [0u8; 3];
        for (i, slot) in rgb.iter_mut().enumerate() {
            let f = fields
                .next()
                .ok_or_else(|| format!("line {}: expected `R G B name`, found `{line}`", n + 1))?;
            *slot = parse_channel(f)
                .map_err(|e| format!("line {}: {e} ({})", n + 1, ["R", "G", "B"][i]))?;
        }
        let name = fields.collect::<Vec<_>>().join(" ");
        if name.is_empty() {
            return Err(format!("line {}: colour {rgb:?} has no class name", n + 1));
        }
        classes.push(class(classes.len(), name, rgb)?);
        lines.push(n + 1);
    }
    finish(classes, &lines)
}

/// `name,r,g,b` with a header row (detected when its colour fields are not numbers).
pub fn parse_class_dict_csv(text: &str) -> Result<Vec<Class>, String> {
    let mut classes = Vec::new();
    let mut lines = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim().trim_start_matches('\u{feff}');
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line
            .split(',')
            .map(|f| f.trim().trim_matches('"'))
            .collect();
        if fields.len() < 4 {
            return Err(format!(
                "line {}: expected `name,r,g,b`, found `{line}`",
                n + 1
            ));
        }
        if classes.is_empty() && fields[1].parse::<f64>().is_err() {
            continue; // header row
        }
        let mut rgb = [0u8; 3];
        for i in 0..3 {
            rgb[i] = parse_channel(fields[i + 1]).map_err(|e| format!("line {}: {e}", n + 1))?;
        }
        classes.push(class(classes.len(), fields[0].to_string(), rgb)?);
        lines.push(n + 1);
    }
    finish(classes, &lines)
}

fn parse_channel(field: &str) -> Result<u8, String> {
    field
        .parse::<u8>()
        .map_err(|_| format!("`{field}` is not a colour channel value 0..=255"))
}

fn class(index: usize, name: String, rgb: [u8; 3]) -> Result<Class, String> {
    let id = u16::try_from(index).map_err(|_| "more than 65536 colours".to_string())?;
    Ok(Class {
        id,
        name,
        color: Some(rgb),
    })
}

/// The table, refused when empty or when a colour is given twice: a pixel of that colour could
/// only be one of the classes, and the other would silently never occur.
fn finish(classes: Vec<Class>, lines: &[usize]) -> Result<Vec<Class>, String> {
    if classes.is_empty() {
        return Err("the colour table has no entries".to_string());
    }
    let mut first_at = std::collections::HashMap::new();
    for (c, &line) in classes.iter().zip(lines) {
        if let Some(&(earlier, name)) = first_at.get(&c.color) {
            let [r, g, b] = c.color.unwrap_or_default();
            return Err(format!(
                "line {line}: colour {r} {g} {b} (`{}`) is already the colour of `{name}` at line {earlier}; give each class its own colour",
                c.name
            ));
        }
        first_at.insert(c.color, (line, c.name.as_str()));
    }
    Ok(classes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_colors_with_tabs_spaces_and_no_final_newline() {
        let t = "64 128 64\t\tAnimal\n192 0 128 Archway\n 0 0 0\tVoid";
        let c = parse_color_table(t).unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].name, "Animal");
        assert_eq!(c[2].color, Some([0, 0, 0]));
        assert_eq!(c[2].id, 2);
    }

    #[test]
    fn class_dict_with_header_and_stray_spaces() {
        let t = "name, r, g, b\n sky , 128, 128,128\nroad,128 ,64,128\n";
        let c = parse_color_table(t).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].name, "sky");
        assert_eq!(c[1].color, Some([128, 64, 128]));
    }

    #[test]
    fn bad_channel_names_the_line() {
        let err = parse_color_table("1 2 300 x").unwrap_err();
        assert!(err.contains("line 1") && err.contains("300"), "{err}");
    }

    #[test]
    fn a_colour_given_twice_names_both_lines() {
        for (t, later, earlier) in [
            ("1 2 3 a\n4 5 6 b\n\n1 2 3 c\n", "line 4", "at line 1"),
            (
                "name,r,g,b\na,1,2,3\nb,4,5,6\n\nc,1,2,3\n",
                "line 5",
                "at line 2",
            ),
        ] {
            let err = parse_color_table(t).unwrap_err();
            assert!(
                err.starts_with(later)
                    && err.contains("`c`")
                    && err.contains(&format!("`a` {earlier}")),
                "{err}"
            );
        }
        assert!(parse_color_table("1 2 3 a\n1 2 4 b\n").is_ok());
    }

    #[test]
    fn missing_name_is_an_error() {
        assert!(parse_color_table("1 2 3\n").is_err());
    }
}
