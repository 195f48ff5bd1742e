//! Grouped horizontal bar charts as standalone SVG text (no dependency).

/// One bar colour per system, in the order the series are given.
const COLORS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// A chart: one group of bars per category, one bar per series.
#[derive(Debug)]
pub struct Chart<'a> {
    pub title: &'a str,
    pub unit: &'a str,
    pub categories: Vec<String>,
    /// (series name, one value per category).
    pub series: Vec<(&'a str, Vec<Option<f64>>)>,
    /// Log-scale x axis (for values spanning decades).
    pub log: bool,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A short number: 3 significant digits.
pub fn short(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1e9 {
        format!("{:.3}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.3}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

impl Chart<'_> {
    pub fn render(&self) -> String {
        let label_w = 40.0 + 6.5 * self.categories.iter().map(|c| c.chars().count()).max().unwrap_or(10).min(70) as f64;
        let plot_w = 520.0;
        let bar_h = 11.0;
        let group_h = bar_h * self.series.len() as f64 + 8.0;
        let top = 50.0;
        let height = top + group_h * self.categories.len() as f64 + 40.0;
        let width = label_w + plot_w + 80.0;
        let values = self.series.iter().flat_map(|(_, v)| v.iter().flatten().copied()).filter(|v| v.is_finite());
        let max = values.clone().fold(0.0f64, f64::max);
        let min_pos = values.filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
        let (lo, hi) = if self.log && min_pos.is_finite() {
            ((min_pos.log10()).floor(), (max.log10()).ceil().max(min_pos.log10().floor() + 1.0))
        } else {
            (0.0, if max > 0.0 { max * 1.05 } else { 1.0 })
        };
        let x = |v: f64| -> f64 {
            let f = if self.log { (v.max(10f64.powf(lo)).log10() - lo) / (hi - lo) } else { v / hi };
            label_w + plot_w * f.clamp(0.0, 1.0)
        };
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
             font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
            esc(self.title)
        );
        // Legend.
        let mut lx = label_w;
        for (i, (name, _)) in self.series.iter().enumerate() {
            s.push_str(&format!(
                "<rect x=\"{lx:.0}\" y=\"30\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{:.0}\" y=\"39\">{}</text>\n",
                COLORS[i % COLORS.len()],
                lx + 14.0,
                esc(name)
            ));
            lx += 30.0 + 7.0 * name.len() as f64;
        }
        // Grid.
        let ticks: Vec<f64> = if self.log {
            (lo as i32..=hi as i32).map(|e| 10f64.powi(e)).collect()
        } else {
            (0..=4).map(|i| hi * i as f64 / 4.0).collect()
        };
        let bottom = height - 30.0;
        for t in ticks {
            let tx = x(t);
            s.push_str(&format!(
                "<line x1=\"{tx:.1}\" y1=\"{top:.0}\" x2=\"{tx:.1}\" y2=\"{bottom:.0}\" stroke=\"#ddd\"/>\
                 <text x=\"{tx:.1}\" y=\"{:.0}\" text-anchor=\"middle\" fill=\"#555\">{}</text>\n",
                bottom + 14.0,
                short(t)
            ));
        }
        s.push_str(&format!(
            "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"middle\" fill=\"#555\">{}</text>\n",
            label_w + plot_w / 2.0,
            bottom + 27.0,
            esc(self.unit)
        ));
        for (ci, cat) in self.categories.iter().enumerate() {
            let gy = top + group_h * ci as f64;
            let shown: String = cat.chars().take(70).collect();
            s.push_str(&format!(
                "<text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
                label_w - 6.0,
                gy + group_h / 2.0,
                esc(&shown)
            ));
            for (si, (_, vals)) in self.series.iter().enumerate() {
                let y = gy + 4.0 + bar_h * si as f64;
                match vals.get(ci).copied().flatten() {
                    Some(v) if v.is_finite() => {
                        let w = (x(v) - label_w).max(0.5);
                        s.push_str(&format!(
                            "<rect x=\"{label_w:.0}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{}\"/>\
                             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\">{}</text>\n",
                            bar_h - 1.0,
                            COLORS[si % COLORS.len()],
                            label_w + w + 3.0,
                            y + bar_h - 2.5,
                            short(v)
                        ));
                    }
                    _ => s.push_str(&format!(
                        "<text x=\"{:.0}\" y=\"{:.1}\" font-size=\"9\" fill=\"#999\">n/a</text>\n",
                        label_w + 3.0,
                        y + bar_h - 2.5
                    )),
                }
            }
        }
        s.push_str("</svg>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_numbers() {
        for (v, want) in
            [(0.0, "0"), (0.0123, "0.012"), (1.5, "1.50"), (42.0, "42.0"), (4.2e6, "4.200M"), (12345.0, "12.3k")]
        {
            assert_eq!(short(v), want, "{v}");
        }
    }

    #[test]
    fn renders_bars_and_missing_values() {
        let chart = Chart {
            title: "t <x>",
            unit: "ms",
            categories: vec!["a".into(), "b".into()],
            series: vec![("one", vec![Some(1.0), None]), ("two", vec![Some(2.0), Some(0.5)])],
            log: false,
        };
        let svg = chart.render();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("t &lt;x&gt;"));
        assert_eq!(svg.matches("<rect x=\"").count(), 2 + 3, "legend swatches + bars");
        assert!(svg.contains("n/a"));
    }
}
