//! The class-share bar chart as SVG: one group per class, one bar per split, share of labelled
//! pixels on a log scale (so a 0.1% class is as visible as a 60% one), class names under the axis.
//! Written by hand: a few dozen elements do not need a plotting library.
use std::fmt::Write;

use super::report::Report;

const COLOURS: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
];
const PLOT_H: f64 = 300.0;
const TOP: f64 = 40.0;
const LEFT: f64 = 70.0;
const BAR_W: f64 = 12.0;
const GAP: f64 = 10.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn svg(r: &Report) -> String {
    let classes: Vec<&str> = r
        .splits
        .first()
        .map(|s| s.classes.iter().map(|c| c.name.as_str()).collect())
        .unwrap_or_default();
    let n_splits = r.splits.len().max(1);
    let group = n_splits as f64 * BAR_W + GAP;
    let min_share = r
        .splits
        .iter()
        .flat_map(|s| s.classes.iter().map(|c| c.share))
        .filter(|s| *s > 0.0)
        .fold(1.0f64, f64::min);
    // at least a third of a decade below the rarest present class, so its bar is a bar (a share
    // just above a power of ten would sit on the axis, a fraction of a pixel high)
    let lowest = (min_share.log10() - 1.0 / 3.0).floor().clamp(-10.0, -1.0);
    let y = |share: f64| TOP + PLOT_H * (share.log10() / lowest);
    let longest = classes.iter().map(|c| c.chars().count()).max().unwrap_or(4) as f64;
    let bottom = 30.0 + longest.min(40.0) * 5.0;
    let width = LEFT + classes.len() as f64 * group + 160.0;
    let height = TOP + PLOT_H + bottom;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="20" font-size="14" font-weight="bold">Class share of labelled pixels per split (log scale)</text>"#
    );
    for decade in 0..=(-lowest as i32) {
        let share = 10f64.powi(-decade);
        let yy = y(share);
        let label = if decade <= 2 {
            format!("{}%", 100.0 * share)
        } else {
            format!("{:.*}%", (decade - 2) as usize, 100.0 * share)
        };
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"##,
            width - 160.0,
            LEFT - 6.0,
            yy + 4.0
        );
    }
    for (i, name) in classes.iter().enumerate() {
        let x0 = LEFT + i as f64 * group + GAP / 2.0;
        for (j, split) in r.splits.iter().enumerate() {
            let share = split.classes.get(i).map_or(0.0, |c| c.share);
            if share <= 0.0 {
                absent_mark(&mut s, x0 + j as f64 * BAR_W, &split.split, name);
                continue;
            }
            let (x, top) = (x0 + j as f64 * BAR_W, y(share));
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} · {}: {:.4}%</title></rect>"#,
                BAR_W - 1.0,
                TOP + PLOT_H - top,
                COLOURS[j % COLOURS.len()],
                escape(&split.split),
                escape(name),
                share * 100.0
            );
        }
        let (lx, ly) = (x0 + n_splits as f64 * BAR_W / 2.0, TOP + PLOT_H + 12.0);
        let _ = writeln!(
            s,
            r#"<text x="{lx:.1}" y="{ly:.1}" text-anchor="end" transform="rotate(-45 {lx:.1} {ly:.1})">{}</text>"#,
            escape(name)
        );
    }
    let _ = writeln!(
        s,
        r#"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="black"/>"#,
        TOP + PLOT_H,
        width - 160.0,
        TOP + PLOT_H
    );
    for (j, split) in r.splits.iter().enumerate() {
        let (lx, ly) = (width - 140.0, TOP + 10.0 + j as f64 * 18.0);
        let _ = writeln!(
            s,
            r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{ly:.1}">{} ({} samples)</text>"#,
            ly - 10.0,
            COLOURS[j % COLOURS.len()],
            lx + 18.0,
            escape(&split.split),
            split.samples
        );
    }
    let note_y = TOP + 10.0 + r.splits.len() as f64 * 18.0 + 8.0;
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{note_y:.1}" fill="{ABSENT}">× absent (no pixels)</text>"##,
        width - 140.0
    );
    s.push_str("</svg>\n");
    s
}

/// Colour of the mark of a class absent from a split.
const ABSENT: &str = "#d62728";

/// A class with no pixels in a split: a cross on the axis where its bar would stand.
fn absent_mark(s: &mut String, x: f64, split: &str, class: &str) {
    let (cx, y) = (x + (BAR_W - 1.0) / 2.0, TOP + PLOT_H - 2.0);
    let _ = writeln!(
        s,
        r#"<text x="{cx:.1}" y="{y:.1}" text-anchor="middle" font-weight="bold" fill="{ABSENT}" class="absent">×<title>{} · {}: absent</title></text>"#,
        escape(split),
        escape(class)
    );
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::stats::counts::{ClassCount, SplitCounts};
    use crate::stats::report::{split_reports, ReportOptions};

    fn counts(pixels: &[u64]) -> SplitCounts {
        let classes = pixels
            .iter()
            .enumerate()
            .map(|(i, &n)| ClassCount {
                id: i as u16,
                name: format!("c{i}"),
                pixels: n,
                images: u64::from(n > 0),
                image_pixels: n,
            })
            .collect();
        SplitCounts {
            samples: 1,
            labelled_pixels: pixels.iter().sum(),
            classes,
            ..Default::default()
        }
    }

    fn plot(splits: BTreeMap<String, SplitCounts>) -> String {
        let options = ReportOptions {
            rare: 0.01,
            beta: 0.999,
        };
        svg(&Report {
            source: String::new(),
            ignore_index: 255,
            rare_threshold: 0.01,
            effective_number_beta: 0.999,
            splits: split_reports(&splits, options),
            before_remap: None,
            quality: Default::default(),
            recompute_differences: None,
            warnings: Vec::new(),
        })
    }

    /// (height, title) of every bar.
    fn bars(svg: &str) -> Vec<(f64, String)> {
        svg.lines()
            .filter(|l| l.starts_with("<rect x=") && l.contains("<title>"))
            .map(|l| {
                let height = l
                    .split("height=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap();
                let title = l
                    .split("<title>")
                    .nth(1)
                    .unwrap()
                    .split("</title>")
                    .next()
                    .unwrap();
                (height.parse().unwrap(), title.to_string())
            })
            .collect()
    }

    #[test]
    fn the_rarest_class_is_a_visible_bar_even_just_above_a_power_of_ten() {
        // c1's share is 1.0001e-4: floor(log10) alone put it a hundredth of a pixel above the axis
        let splits = BTreeMap::from([("train".to_string(), counts(&[99_990_000, 10_001]))]);
        let drawn = bars(&plot(splits));
        assert_eq!(drawn.len(), 2);
        let rarest = drawn.iter().find(|(_, t)| t.contains("c1")).unwrap();
        assert!(rarest.0 >= PLOT_H / 30.0, "{rarest:?}");
    }

    #[test]
    fn absent_classes_are_marked_per_split() {
        let splits = BTreeMap::from([
            ("train".to_string(), counts(&[900, 90, 10])),
            ("val".to_string(), counts(&[900, 0, 100])),
        ]);
        let svg = plot(splits);
        let marks: Vec<&str> = svg
            .lines()
            .filter(|l| l.contains("class=\"absent\""))
            .collect();
        assert_eq!(marks.len(), 1, "{svg}");
        assert!(marks[0].contains("val · c1: absent"), "{}", marks[0]);
        assert_eq!(bars(&svg).len(), 5);
        assert!(svg.contains("× absent"));
    }
}
