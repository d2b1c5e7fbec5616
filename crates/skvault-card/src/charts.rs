//! Inline SVG pictures: horizontal bars, integer histograms, a line over versions, the
//! pipeline diagram. Every text that comes from a file is XML-escaped here; sizes are in a
//! `viewBox` so a picture scales to the width it is given (375 px phones to desktops).

use std::fmt::Write as _;

/// Bars shown at most; the rest are summed into one "others" line of the caption.
pub const MAX_BARS: usize = 20;

/// `&`, `<`, `>`, `"` and `'` as entities: safe in SVG/HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A label cut to `max` characters (with an ellipsis), for fixed-width chart columns.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let head: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{head}…")
    }
}

/// A number with four significant digits, as charts label values.
pub fn num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let magnitude = v.abs().log10().floor();
    if !(-4.0..6.0).contains(&magnitude) {
        return format!("{v:.3e}");
    }
    let decimals = (3.0 - magnitude).clamp(0.0, 8.0) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

fn open_svg(out: &mut String, width: u32, height: u32, title: &str, class: &str) {
    let _ = write!(
        out,
        r#"<svg class="chart {class}" viewBox="0 0 {width} {height}" role="img" aria-label="{t}" preserveAspectRatio="xMinYMin meet"><title>{t}</title>"#,
        t = escape(title)
    );
}

/// Horizontal bars, largest first (at most `MAX_BARS`), each labelled with its value.
pub fn bars(title: &str, items: &[(String, f64)]) -> String {
    let mut sorted: Vec<&(String, f64)> = items.iter().filter(|(_, v)| v.is_finite()).collect();
    sorted.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    sorted.truncate(MAX_BARS);
    let max = sorted.iter().map(|(_, v)| v.abs()).fold(0.0_f64, f64::max);
    // A 440-unit wide picture keeps 12-unit labels readable once scaled to a phone's width.
    let (label_w, bar_w, row_h) = (140.0, 230.0, 22.0);
    let height = 10 + (sorted.len().max(1) as u32) * 22;
    let mut out = String::new();
    open_svg(&mut out, 440, height, title, "bars");
    for (i, (label, value)) in sorted.iter().enumerate() {
        let y = 5.0 + i as f64 * row_h;
        let w = if max > 0.0 {
            value.abs() / max * bar_w
        } else {
            0.0
        };
        let _ = write!(
            out,
            r##"<g class="bar"><text x="{lx}" y="{ty}" text-anchor="end" font-size="12">{label}</text><rect x="{bx}" y="{y}" width="{w:.2}" height="16" fill="#3b6ea8" data-label="{full}" data-value="{exact}"><title>{full}: {val}</title></rect><text x="{vx:.2}" y="{ty}" font-size="11">{val}</text></g>"##,
            lx = label_w - 6.0,
            ty = y + 12.5,
            label = escape(&clip(label, 20)),
            full = escape(label),
            bx = label_w,
            vx = label_w + w + 4.0,
            val = num(*value),
            exact = value,
        );
    }
    if sorted.is_empty() {
        out.push_str(r#"<text x="10" y="20" font-size="12">no values</text>"#);
    }
    out.push_str("</svg>");
    out
}

/// A histogram of small integers (tree depths, leaf counts): one bar per value, or per
/// range of values when there are more than 24 distinct ones.
pub fn histogram(title: &str, values: &[u64], x_label: &str) -> String {
    let (Some(lo), Some(hi)) = (values.iter().min(), values.iter().max()) else {
        return bars(title, &[]);
    };
    let span = hi - lo + 1;
    let width = span.div_ceil(24).max(1);
    let n_bins = usize::try_from(span.div_ceil(width)).unwrap_or(1);
    let mut counts = vec![0u64; n_bins];
    for v in values {
        if let Some(c) = usize::try_from((v - lo) / width)
            .ok()
            .and_then(|i| counts.get_mut(i))
        {
            *c += 1;
        }
    }
    let peak = counts.iter().copied().max().unwrap_or(1).max(1);
    let (left, plot_w, plot_h) = (40.0, 390.0, 140.0);
    let bin_w = plot_w / n_bins as f64;
    let mut out = String::new();
    open_svg(&mut out, 440, 200, title, "histogram");
    let _ = write!(
        out,
        r##"<line x1="{left}" y1="{base}" x2="{right}" y2="{base}" stroke="#555"/><text x="4" y="16" font-size="11">{peak}</text><text x="{cx}" y="196" text-anchor="middle" font-size="12">{xl}</text>"##,
        base = 10.0 + plot_h,
        right = left + plot_w,
        cx = left + plot_w / 2.0,
        xl = escape(x_label),
    );
    for (i, count) in counts.iter().enumerate() {
        let h = *count as f64 / peak as f64 * plot_h;
        let x = left + i as f64 * bin_w;
        let from = lo + i as u64 * width;
        let label = if width == 1 {
            from.to_string()
        } else {
            format!("{from}-{}", from + width - 1)
        };
        let _ = write!(
            out,
            r##"<rect x="{x:.2}" y="{y:.2}" width="{w:.2}" height="{h:.2}" fill="#5a8f5a" data-label="{label}" data-value="{count}"><title>{label}: {count}</title></rect>"##,
            y = 10.0 + plot_h - h,
            w = (bin_w - 2.0).max(1.0),
        );
        if n_bins <= 12 || i % 2 == 0 {
            let _ = write!(
                out,
                r#"<text x="{tx:.2}" y="{ty}" text-anchor="middle" font-size="10">{label}</text>"#,
                tx = x + bin_w / 2.0,
                ty = 24.0 + plot_h,
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// A metric over versions: one point per version, in the order given.
pub fn line(title: &str, points: &[(String, f64)]) -> String {
    let finite: Vec<&(String, f64)> = points.iter().filter(|(_, v)| v.is_finite()).collect();
    let lo = finite.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = finite.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let (left, plot_w, plot_h) = (50.0, 370.0, 150.0);
    let range = if hi > lo { hi - lo } else { 1.0 };
    let step = plot_w / (finite.len().max(2) - 1) as f64;
    let pos = |i: usize, v: f64| {
        (
            left + i as f64 * step,
            10.0 + plot_h - (v - lo) / range * plot_h,
        )
    };
    let mut out = String::new();
    open_svg(&mut out, 440, 200, title, "line");
    if finite.is_empty() {
        out.push_str(r#"<text x="10" y="20" font-size="12">no values</text></svg>"#);
        return out;
    }
    let _ = write!(
        out,
        r##"<line x1="{left}" y1="{b}" x2="{r}" y2="{b}" stroke="#555"/><text x="4" y="16" font-size="11">{hi}</text><text x="4" y="{b}" font-size="11">{lo}</text>"##,
        b = 10.0 + plot_h,
        r = left + plot_w,
        hi = num(hi),
        lo = num(lo),
    );
    let path: Vec<String> = finite
        .iter()
        .enumerate()
        .map(|(i, (_, v))| {
            let (x, y) = pos(i, *v);
            format!("{x:.2},{y:.2}")
        })
        .collect();
    let _ = write!(
        out,
        r##"<polyline points="{}" fill="none" stroke="#3b6ea8" stroke-width="2"/>"##,
        path.join(" ")
    );
    for (i, (label, v)) in finite.iter().enumerate() {
        let (x, y) = pos(i, *v);
        let _ = write!(
            out,
            r##"<circle cx="{x:.2}" cy="{y:.2}" r="4" fill="#3b6ea8"><title>{l}: {val}</title></circle><text x="{x:.2}" y="{ty}" text-anchor="middle" font-size="10">{lc}</text>"##,
            l = escape(label),
            lc = escape(&clip(label, 10)),
            val = num(*v),
            ty = 26.0 + plot_h,
        );
    }
    out.push_str("</svg>");
    out
}

/// One box of the pipeline diagram: a step, and the transformers inside it (a
/// ColumnTransformer's or FeatureUnion's), drawn side by side within its box.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    pub name: String,
    pub class: String,
    /// The columns a ColumnTransformer gives this member (empty elsewhere).
    pub columns: String,
    pub children: Vec<Step>,
}

fn short(class: &str) -> &str {
    class.rsplit('.').next().unwrap_or(class)
}

/// The steps from top to bottom with arrows between them: a vertical flow reads at 375 px.
pub fn pipeline(title: &str, steps: &[Step]) -> String {
    let (width, box_h, child_h, gap) = (360.0, 44.0, 40.0, 26.0);
    let heights: Vec<f64> = steps
        .iter()
        .map(|s| {
            if s.children.is_empty() {
                box_h
            } else {
                box_h + child_h + 8.0
            }
        })
        .collect();
    let total: f64 = heights.iter().sum::<f64>() + gap * (steps.len().max(1) - 1) as f64 + 8.0;
    let mut out = String::new();
    open_svg(
        &mut out,
        width as u32,
        total.ceil() as u32,
        title,
        "pipeline",
    );
    out.push_str(r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>"##);
    let mut y = 4.0;
    for (i, (step, h)) in steps.iter().zip(&heights).enumerate() {
        let _ = write!(
            out,
            r##"<g class="step"><rect x="4" y="{y}" width="{w}" height="{h}" rx="6" fill="#eef3f9" stroke="#3b6ea8"/><text x="14" y="{t1}" font-size="13" font-weight="bold">{name}</text><text x="14" y="{t2}" font-size="11" fill="#333">{class}</text>"##,
            w = width - 8.0,
            t1 = y + 18.0,
            t2 = y + 34.0,
            name = escape(&clip(&step.name, 40)),
            class = escape(&clip(short(&step.class), 48)),
        );
        if !step.children.is_empty() {
            let n = step.children.len().min(4);
            let cw = (width - 28.0 - 6.0 * (n as f64 - 1.0)) / n as f64;
            for (j, child) in step.children.iter().take(n).enumerate() {
                let cx = 14.0 + j as f64 * (cw + 6.0);
                let cy = y + box_h;
                let more = if j == n - 1 && step.children.len() > n {
                    format!(" +{}", step.children.len() - n)
                } else {
                    String::new()
                };
                let chars = (cw / 7.0) as usize;
                let _ = write!(
                    out,
                    r##"<rect x="{cx:.2}" y="{cy}" width="{cw:.2}" height="{child_h}" rx="4" fill="#fff" stroke="#7a9cc6"/><text x="{tx:.2}" y="{t1}" font-size="11" font-weight="bold">{name}</text><text x="{tx:.2}" y="{t2}" font-size="10">{class}</text>"##,
                    tx = cx + 5.0,
                    t1 = cy + 16.0,
                    t2 = cy + 31.0,
                    name = escape(&clip(&format!("{}{more}", child.name), chars)),
                    class = escape(&clip(short(&child.class), chars)),
                );
            }
        }
        out.push_str("</g>");
        y += h;
        if i + 1 < steps.len() {
            let _ = write!(
                out,
                r##"<line x1="{x}" y1="{y1}" x2="{x}" y2="{y2}" stroke="#555" stroke-width="2" marker-end="url(#arrow)"/>"##,
                x = width / 2.0,
                y1 = y + 2.0,
                y2 = y + gap - 4.0,
            );
            y += gap;
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_files_is_escaped_in_every_picture() {
        let evil = "<script>alert(1)</script>&\"'";
        let svgs = [
            bars(evil, &[(evil.to_string(), 1.0)]),
            histogram(evil, &[1, 2, 2, 3], evil),
            line(evil, &[(evil.to_string(), 0.5), ("b".into(), 0.7)]),
            pipeline(
                evil,
                &[Step {
                    name: evil.into(),
                    class: evil.into(),
                    columns: String::new(),
                    children: vec![Step {
                        name: evil.into(),
                        class: evil.into(),
                        columns: evil.into(),
                        children: vec![],
                    }],
                }],
            ),
        ];
        for svg in svgs {
            assert!(!svg.contains("<script"), "{svg}");
            assert!(svg.contains("&lt;script&gt;"), "{svg}");
        }
    }

    #[test]
    fn histograms_of_many_values_group_them_into_ranges() {
        let values: Vec<u64> = (0..100).collect();
        let svg = histogram("leaves", &values, "leaves per tree");
        assert_eq!(svg.matches("<rect").count(), 20);
        assert!(svg.contains(">0-4<") && svg.contains("data-label=\"95-99\""));
    }

    #[test]
    fn numbers_keep_four_significant_digits() {
        assert_eq!(num(0.123456), "0.1235");
        assert_eq!(num(1234.5678), "1235");
        assert_eq!(num(1.0), "1");
        assert_eq!(num(1e-7), "1.000e-7");
    }
}
