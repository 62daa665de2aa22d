//! Figures in one consistent style: line charts (optionally log axes; a
//! legend outside the data; series told apart by colour and dash), bar
//! charts, stacked horizontal bars, a grid of MNIST digits and grids of
//! panels, rendered to SVG (strings or files) and PNG (files or bytes). A [`Figure`] also displays itself inline in an evcxr
//! notebook (`evcxr_display`).

use super::{ReportError, atomic_write, persist, temp_beside};
use plotters::coord::Shift;
use plotters::coord::combinators::IntoLogRange;
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Font family name under which the vendored DejaVu Sans is registered.
const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
static FONT_READY: OnceLock<bool> = OnceLock::new();

fn ensure_font() -> Result<(), ReportError> {
    let ok = *FONT_READY.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(ReportError::Draw {
            title: String::new(),
            detail: "the vendored DejaVu Sans font could not be loaded".into(),
        })
    }
}

/// The shared palette (colour-blind friendly, Okabe–Ito order).
pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

/// Default figure size in pixels.
const SIZE: (u32, u32) = (900, 560);

/// Largest width of a [`Figure::Grid`] in pixels.
const GRID_WIDTH: u32 = 1500;

/// One named line of a [`LineChart`].
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// Points `(x, y)`, drawn in order.
    pub points: Vec<(f64, f64)>,
    /// Text beside each point (empty: none; else one per point).
    pub labels: Vec<String>,
    /// Markers at the points instead of a line (a scatter series).
    pub scatter: bool,
}

impl Series {
    /// A series from a name and points.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            labels: Vec::new(),
            scatter: false,
        }
    }

    /// The series drawn as markers at its points, without a line.
    pub fn scatter(mut self) -> Self {
        self.scatter = true;
        self
    }

    /// The series with a text label beside each point (one per point).
    pub fn with_labels(mut self, labels: Vec<String>) -> Self {
        self.labels = labels;
        self
    }
}

/// A line chart with a title, axis labels and a legend.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LineChart {
    /// Title drawn above the plot.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the y axis.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Logarithmic x axis.
    pub log_x: bool,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// Fixed y range (otherwise fitted to the data with a margin).
    pub y_range: Option<(f64, f64)>,
    /// Fixed x range (otherwise the data's range).
    pub x_range: Option<(f64, f64)>,
}

/// A bar chart of named values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BarChart {
    /// Title drawn above the plot.
    pub title: String,
    /// Label of the y axis.
    pub y_label: String,
    /// `(category, value)` bars, drawn left to right.
    pub bars: Vec<(String, f64)>,
    /// Logarithmic y axis (values must be positive).
    pub log_y: bool,
}

/// Horizontal stacked bars: one bar per category, one coloured segment per
/// component (a legend names them), on a linear axis that starts at 0.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StackedBarChart {
    /// Title drawn above the plot.
    pub title: String,
    /// Label of the value axis.
    pub x_label: String,
    /// Component names, in stacking order (left to right).
    pub segments: Vec<String>,
    /// `(category, one value per segment)`, drawn top to bottom.
    pub bars: Vec<(String, Vec<f64>)>,
}

/// A figure that can be saved as SVG/PNG or shown in a notebook.
#[derive(Clone, Debug, PartialEq)]
pub enum Figure {
    /// A line chart.
    Line(LineChart),
    /// A bar chart.
    Bar(BarChart),
    /// A grid of grey images with captions (e.g. MNIST digits).
    Images {
        /// Title drawn above the grid.
        title: String,
        /// Images as rows of pixels in [0, 1].
        images: Vec<Vec<f32>>,
        /// Image side in pixels (images are square).
        side: usize,
        /// One caption per image.
        captions: Vec<String>,
    },
    /// Stacked horizontal bars.
    Stacked(StackedBarChart),
    /// Several figures side by side, `cols` per row, under one title.
    Grid {
        /// Title drawn above the panels (may be empty).
        title: String,
        /// The panels, row by row.
        panels: Vec<Figure>,
        /// Panels per row (at least 1).
        cols: usize,
    },
}

impl From<StackedBarChart> for Figure {
    fn from(c: StackedBarChart) -> Self {
        Figure::Stacked(c)
    }
}

impl From<LineChart> for Figure {
    fn from(c: LineChart) -> Self {
        Figure::Line(c)
    }
}

impl From<BarChart> for Figure {
    fn from(c: BarChart) -> Self {
        Figure::Bar(c)
    }
}

/// Save every figure as `dir/<stem>.svg` and `.png`, then show them inline
/// in an evcxr notebook as one grid of `cols` columns (evcxr keeps only one
/// image per cell, so a cell that showed them one by one would show the
/// last one only).
pub fn save_and_show_grid(
    figures: &[(String, Figure)],
    dir: &Path,
    title: &str,
    cols: usize,
) -> Result<(), ReportError> {
    for (stem, f) in figures {
        f.save(dir, stem)?;
    }
    Figure::Grid {
        title: title.to_string(),
        panels: figures.iter().map(|(_, f)| f.clone()).collect(),
        cols,
    }
    .evcxr_display();
    Ok(())
}

/// A figure showing the given images (each `side*side` pixels in [0, 1]) in a
/// row-wrapped grid, with one caption under each.
pub fn digits_grid(
    title: impl Into<String>,
    images: Vec<Vec<f32>>,
    side: usize,
    captions: Vec<String>,
) -> Figure {
    Figure::Images {
        title: title.into(),
        images,
        side,
        captions,
    }
}

impl Figure {
    /// The figure's title.
    pub fn title(&self) -> &str {
        match self {
            Figure::Line(c) => &c.title,
            Figure::Bar(c) => &c.title,
            Figure::Images { title, .. } => title,
            Figure::Stacked(c) => &c.title,
            Figure::Grid { title, .. } => title,
        }
    }

    fn validate(&self) -> Result<(), ReportError> {
        let bad = |detail: &str| ReportError::InvalidData {
            title: self.title().to_string(),
            detail: detail.to_string(),
        };
        match self {
            Figure::Line(c) => {
                let pts: Vec<&(f64, f64)> = c.series.iter().flat_map(|s| &s.points).collect();
                if pts.is_empty() {
                    return Err(bad("no points to draw"));
                }
                if pts.iter().any(|(x, y)| !x.is_finite() || !y.is_finite()) {
                    return Err(bad("non-finite point"));
                }
                if c.log_x && pts.iter().any(|(x, _)| *x <= 0.0) {
                    return Err(bad("log x axis needs positive x"));
                }
                if c.log_y && pts.iter().any(|(_, y)| *y <= 0.0) {
                    return Err(bad("log y axis needs positive y"));
                }
                if let Some(s) = c
                    .series
                    .iter()
                    .find(|s| !s.labels.is_empty() && s.labels.len() != s.points.len())
                {
                    return Err(bad(&format!(
                        "series '{}' has {} labels for {} points",
                        s.name,
                        s.labels.len(),
                        s.points.len()
                    )));
                }
            }
            Figure::Bar(c) => {
                if c.bars.is_empty() {
                    return Err(bad("no bars to draw"));
                }
                if c.bars.iter().any(|(_, v)| !v.is_finite()) {
                    return Err(bad("non-finite bar"));
                }
                if c.log_y && c.bars.iter().any(|(_, v)| *v <= 0.0) {
                    return Err(bad("log y axis needs positive values"));
                }
            }
            Figure::Images {
                images,
                side,
                captions,
                ..
            } => {
                if images.is_empty() || *side == 0 {
                    return Err(bad("no images"));
                }
                if images.iter().any(|im| im.len() != side * side) {
                    return Err(bad("an image does not have side*side pixels"));
                }
                if captions.len() != images.len() {
                    return Err(bad("one caption per image is needed"));
                }
            }
            Figure::Stacked(c) => {
                if c.bars.is_empty() || c.segments.is_empty() {
                    return Err(bad("no bars or no segments to draw"));
                }
                if let Some((name, v)) = c.bars.iter().find(|(_, v)| v.len() != c.segments.len()) {
                    return Err(bad(&format!(
                        "bar '{name}' has {} values for {} segments",
                        v.len(),
                        c.segments.len()
                    )));
                }
                if c.bars
                    .iter()
                    .flat_map(|(_, v)| v)
                    .any(|v| !v.is_finite() || *v < 0.0)
                {
                    return Err(bad("stacked values must be finite and non-negative"));
                }
            }
            Figure::Grid { panels, cols, .. } => {
                if panels.is_empty() || *cols == 0 {
                    return Err(bad("a grid needs at least one panel and one column"));
                }
                for p in panels {
                    p.validate()?;
                }
            }
        }
        Ok(())
    }

    fn size(&self) -> (u32, u32) {
        match self {
            Figure::Images { images, .. } => {
                let cols = images.len().min(10) as u32;
                let rows = images.len().div_ceil(10) as u32;
                (cols * 90 + 20, rows * 110 + 50)
            }
            // Horizontal bar charts grow with the number of bars (16 px each)
            // so that their labels never overlap.
            Figure::Bar(c) if bars_horizontal(c) => {
                (SIZE.0, SIZE.1.max(90 + 16 * c.bars.len() as u32))
            }
            Figure::Stacked(c) => (SIZE.0, (110 + 26 * c.bars.len() as u32).max(260)),
            Figure::Grid {
                title,
                panels,
                cols,
            } => {
                let (w, h) = panels.iter().fold((0, 0), |(w, h), p| {
                    let (pw, ph) = p.size();
                    (w.max(pw), h.max(ph))
                });
                let cols = (*cols).clamp(1, panels.len());
                let rows = panels.len().div_ceil(cols) as u32;
                let head = if title.is_empty() { 0 } else { 40 };
                // At most GRID_WIDTH wide: panels shrink (their text does not).
                let pw = w.min(GRID_WIDTH / cols as u32);
                let ph = h * pw / w.max(1);
                (pw * cols as u32, ph * rows + head)
            }
            _ => SIZE,
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), ReportError> {
        let err = |e: String| ReportError::Draw {
            title: self.title().to_string(),
            detail: e,
        };
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        match self {
            Figure::Line(c) => draw_line(&root, c).map_err(err)?,
            Figure::Bar(c) => draw_bar(&root, c).map_err(err)?,
            Figure::Images {
                title,
                images,
                side,
                captions,
            } => draw_images(&root, title, images, *side, captions).map_err(err)?,
            Figure::Stacked(c) => draw_stacked(&root, c).map_err(err)?,
            Figure::Grid {
                title,
                panels,
                cols,
            } => {
                let area = if title.is_empty() {
                    root.clone()
                } else {
                    root.titled(title, (FONT, 26))
                        .map_err(|e| err(e.to_string()))?
                };
                let cols = (*cols).clamp(1, panels.len());
                let cells = area.split_evenly((panels.len().div_ceil(cols), cols));
                for (cell, p) in cells.into_iter().zip(panels) {
                    p.draw(cell)?;
                }
            }
        }
        root.present().map_err(|e| err(e.to_string()))
    }

    /// Render as an SVG document.
    pub fn to_svg(&self) -> Result<String, ReportError> {
        ensure_font()?;
        self.validate()?;
        let mut s = String::new();
        {
            let root = SVGBackend::with_string(&mut s, self.size()).into_drawing_area();
            self.draw(root)?;
        }
        Ok(s)
    }

    /// Write an SVG file (atomically).
    pub fn save_svg(&self, path: &Path) -> Result<(), ReportError> {
        atomic_write(path, self.to_svg()?.as_bytes())
    }

    /// Write a PNG file (atomically).
    pub fn save_png(&self, path: &Path) -> Result<(), ReportError> {
        ensure_font()?;
        self.validate()?;
        let tmp = temp_beside(path)?;
        {
            let root = BitMapBackend::new(&tmp, self.size()).into_drawing_area();
            self.draw(root)?;
        }
        persist(tmp, path)
    }

    /// Render as PNG bytes (RGB, the figure's size), in memory.
    pub fn to_png(&self) -> Result<Vec<u8>, ReportError> {
        ensure_font()?;
        self.validate()?;
        let (w, h) = self.size();
        let mut rgb = vec![0u8; 3 * w as usize * h as usize];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
            self.draw(root)?;
        }
        let mut png = Vec::new();
        use image::ImageEncoder as _;
        // Best compression: these PNGs are stored inside the notebooks.
        use image::codecs::png::{CompressionType, FilterType, PngEncoder};
        PngEncoder::new_with_quality(&mut png, CompressionType::Best, FilterType::Adaptive)
            .write_image(&rgb, w, h, image::ColorType::Rgb8)
            .map_err(|e| ReportError::Draw {
                title: self.title().to_string(),
                detail: format!("encoding a {w}x{h} PNG: {e}"),
            })?;
        Ok(png)
    }

    /// Write `dir/stem.svg` and `dir/stem.png`; returns both paths.
    pub fn save(&self, dir: &Path, stem: &str) -> Result<(PathBuf, PathBuf), ReportError> {
        let svg = dir.join(format!("{stem}.svg"));
        let png = dir.join(format!("{stem}.png"));
        self.save_svg(&svg)?;
        self.save_png(&png)?;
        Ok((svg, png))
    }

    /// Save the figure as `dir/stem.svg` and `dir/stem.png`, then show it
    /// inline in an evcxr notebook (the notebooks' figures land in
    /// `results/notebooks/` this way).
    pub fn save_and_show(&self, dir: &Path, stem: &str) -> Result<(), ReportError> {
        self.save(dir, stem)?;
        self.evcxr_display();
        Ok(())
    }

    /// Show the figure inline in an evcxr (Rust Jupyter) notebook, as a
    /// PNG: every viewer renders it (JupyterLab shows no SVG from an
    /// untrusted notebook), and it is smaller than an SVG of many marks.
    pub fn evcxr_display(&self) {
        use base64::Engine as _;
        match self.to_png() {
            Ok(png) => println!(
                "EVCXR_BEGIN_CONTENT image/png\n{}\nEVCXR_END_CONTENT",
                base64::engine::general_purpose::STANDARD.encode(png)
            ),
            Err(e) => eprintln!("figure could not be drawn: {e}"),
        }
    }
}

fn bounds(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if log {
        let (lo, hi) = if lo == hi {
            (lo / 2.0, hi * 2.0)
        } else {
            (lo, hi)
        };
        (lo / 1.2, hi * 1.2)
    } else {
        let span = if hi > lo { hi - lo } else { lo.abs().max(1.0) };
        (lo - 0.05 * span, hi + 0.05 * span)
    }
}

fn draw_line<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &LineChart,
) -> Result<(), String> {
    let pts = || c.series.iter().flat_map(|s| s.points.iter().copied());
    let (x0, x1) = bounds(pts().map(|p| p.0), c.log_x);
    let (x0, x1) = if let Some(r) = c.x_range {
        r
    } else if c.log_x {
        (x0, x1)
    } else {
        let (lo, hi) = bounds(pts().map(|p| p.0), false);
        let pad = (hi - lo) / 1.1 * 0.05;
        (lo + pad, hi - pad)
    };
    let (y0, y1) = c
        .y_range
        .unwrap_or_else(|| bounds(pts().map(|p| p.1), c.log_y));
    match (c.log_x, c.log_y) {
        (false, false) => plot_xy(root, c, x0..x1, y0..y1),
        (true, false) => plot_xy(root, c, (x0..x1).log_scale(), y0..y1),
        (false, true) => plot_xy(root, c, x0..x1, (y0..y1).log_scale()),
        (true, true) => plot_xy(root, c, (x0..x1).log_scale(), (y0..y1).log_scale()),
    }
}

fn plot_xy<DB, X, Y>(root: &DrawingArea<DB, Shift>, c: &LineChart, x: X, y: Y) -> Result<(), String>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y::CoordDescType: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    // Named series get a legend outside the data, in a column on the right.
    let named = c.series.len() > 1 || c.series.iter().any(|s| !s.name.is_empty());
    let (plot, legend) = if named {
        let widest = c.series.iter().map(|s| s.name.chars().count()).max();
        let lw = (widest.unwrap_or(0) as u32 * 8 + 56).min(320);
        let (w, _) = root.dim_in_pixel();
        let (a, b) = root.split_horizontally(w.saturating_sub(lw));
        (a, Some(b))
    } else {
        (root.clone(), None)
    };
    let mut chart = ChartBuilder::on(&plot)
        .caption(&c.title, (FONT, caption_size(&c.title, &plot, 24)))
        .margin(14)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x, y)
        .map_err(|e| e.to_string())?;
    let (lx, ly) = (c.log_x, c.log_y);
    let fx = move |v: &f64| tick_label(*v, lx);
    let fy = move |v: &f64| tick_label(*v, ly);
    // Fewer x ticks on narrow panels, so that their labels never touch.
    let x_ticks = (plot.dim_in_pixel().0 / 90).clamp(5, 10) as usize;
    chart
        .configure_mesh()
        .x_labels(x_ticks)
        .x_desc(&c.x_label)
        .y_desc(&c.y_label)
        .x_label_formatter(&fx)
        .y_label_formatter(&fy)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| e.to_string())?;
    let styles: Vec<(RGBColor, Dash)> = (0..c.series.len())
        .map(|i| series_style(&c.series, i))
        .collect();
    for (s, &(color, dash)) in c.series.iter().zip(&styles) {
        let style = color.stroke_width(2);
        // With a fixed y range, a line leaving it is cut at the border
        // (plotters would pin it to the border instead).
        let runs = match c.y_range {
            _ if s.scatter => vec![],
            Some((lo, hi)) => clip_runs(&s.points, lo, hi),
            None => vec![s.points.clone()],
        };
        for pts in runs {
            match dash {
                Dash::Solid => chart.draw_series(LineSeries::new(pts, style)).map(|_| ()),
                Dash::Dashed => chart
                    .draw_series(DashedLineSeries::new(pts, 9, 5, style))
                    .map(|_| ()),
                Dash::Dotted => chart
                    .draw_series(DashedLineSeries::new(pts, 2, 4, style))
                    .map(|_| ()),
            }
            .map_err(|e| e.to_string())?;
        }
        if s.scatter {
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 5, color.filled())))
                .map_err(|e| e.to_string())?;
        }
        for (&p, label) in s.points.iter().zip(&s.labels) {
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at(p)
                        + Text::new(label.clone(), (7, -7), (FONT, 12).into_font().color(&color)),
                ))
                .map_err(|e| e.to_string())?;
        }
    }
    if let Some(area) = legend {
        for (i, s) in c.series.iter().enumerate() {
            let y = 52 + 22 * i as i32;
            let (color, dash) = styles[i];
            let style = color.stroke_width(3);
            let seg = vec![(6, y), (34, y)];
            if s.scatter {
                area.draw(&Circle::new((20, y), 5, color.filled()))
                    .map_err(|e| e.to_string())?;
                area.draw(&Text::new(s.name.clone(), (42, y - 8), (FONT, 15)))
                    .map_err(|e| e.to_string())?;
                continue;
            }
            match dash {
                Dash::Solid => area.draw(&PathElement::new(seg, style)),
                Dash::Dashed => area.draw(&DashedPathElement::new(seg, 8, 4, style)),
                Dash::Dotted => area.draw(&DashedPathElement::new(seg, 2, 4, style)),
            }
            .map_err(|e| e.to_string())?;
            area.draw(&Text::new(s.name.clone(), (42, y - 8), (FONT, 15)))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The caption's font size: `max`, or smaller so that the title fits the
/// area's width (DejaVu Sans averages about 0.56 em per character).
fn caption_size<DB: DrawingBackend>(title: &str, area: &DrawingArea<DB, Shift>, max: u32) -> u32 {
    let chars = title.chars().count().max(1) as f64;
    let width = f64::from(area.dim_in_pixel().0) * 0.94;
    ((width / (0.56 * chars)).floor() as u32).clamp(12, max)
}

/// How a line is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dash {
    Solid,
    Dashed,
    Dotted,
}

/// Series `i`'s colour and dash: the palette's 8 colours solid, then
/// dashed, then dotted, so 24 series stay distinct.
fn line_style(i: usize) -> (RGBColor, Dash) {
    let dash = match (i / PALETTE.len()) % 3 {
        0 => Dash::Solid,
        1 => Dash::Dashed,
        _ => Dash::Dotted,
    };
    (PALETTE[i % PALETTE.len()], dash)
}

/// Series `i`'s style: [`line_style`], except that a solid line which
/// repeats most of an earlier series' points (SLAF-R's ReLU epochs, say) is
/// dashed so that both stay visible.
fn series_style(series: &[Series], i: usize) -> (RGBColor, Dash) {
    let (color, dash) = line_style(i);
    let pts = &series[i].points;
    let repeats = series[..i].iter().any(|e| {
        let same = pts.iter().filter(|p| e.points.contains(p)).count();
        !pts.is_empty() && 2 * same >= pts.len()
    });
    if repeats && dash == Dash::Solid {
        (color, Dash::Dashed)
    } else {
        (color, dash)
    }
}

/// The parts of a polyline inside `lo <= y <= hi`, each cut exactly at the
/// border it crosses.
fn clip_runs(points: &[(f64, f64)], lo: f64, hi: f64) -> Vec<Vec<(f64, f64)>> {
    let inside = |y: f64| (lo..=hi).contains(&y);
    let cut = |(x0, y0): (f64, f64), (x1, y1): (f64, f64), y: f64| {
        (x0 + (x1 - x0) * (y - y0) / (y1 - y0), y)
    };
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut cur: Vec<(f64, f64)> = Vec::new();
    for (k, &p) in points.iter().enumerate() {
        let prev = k.checked_sub(1).map(|j| points[j]);
        match (prev, inside(p.1)) {
            (_, true) if cur.is_empty() => {
                // Entering: start at the border crossed, if any.
                if let Some(q) = prev.filter(|q| !inside(q.1)) {
                    cur.push(cut(q, p, if q.1 < lo { lo } else { hi }));
                }
                cur.push(p);
            }
            (_, true) => cur.push(p),
            (Some(q), false) if inside(q.1) => {
                cur.push(cut(q, p, if p.1 < lo { lo } else { hi }));
                runs.push(std::mem::take(&mut cur));
            }
            (Some(q), false) if (q.1 < lo && p.1 > hi) || (q.1 > hi && p.1 < lo) => {
                // Crossing the whole range between two points.
                let (a, b) = if q.1 < lo { (lo, hi) } else { (hi, lo) };
                runs.push(vec![cut(q, p, a), cut(q, p, b)]);
            }
            _ => {}
        }
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    runs
}

/// Ten distinct colours for stacked segments (Tableau 10).
const STACK_PALETTE: [RGBColor; 10] = [
    RGBColor(78, 121, 167),
    RGBColor(242, 142, 43),
    RGBColor(225, 87, 89),
    RGBColor(118, 183, 178),
    RGBColor(89, 161, 79),
    RGBColor(237, 201, 72),
    RGBColor(176, 122, 161),
    RGBColor(255, 157, 167),
    RGBColor(156, 117, 95),
    RGBColor(186, 176, 172),
];

fn draw_stacked<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &StackedBarChart,
) -> Result<(), String> {
    let n = c.bars.len();
    let widest = c.bars.iter().map(|(s, _)| s.chars().count()).max();
    let seg_w = c.segments.iter().map(|s| s.chars().count()).max();
    let lw = (seg_w.unwrap_or(0) as u32 * 8 + 48).min(240);
    let (w, _) = root.dim_in_pixel();
    let (plot, legend) = root.split_horizontally(w.saturating_sub(lw));
    let total = c
        .bars
        .iter()
        .map(|(_, v)| v.iter().sum::<f64>())
        .fold(0.0f64, f64::max);
    let hi = if total > 0.0 { total * 1.05 } else { 1.0 };
    let names: Vec<String> = c.bars.iter().rev().map(|(s, _)| s.clone()).collect();
    let fmt = move |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
            names[i as usize].clone()
        } else {
            String::new()
        }
    };
    let mut chart = ChartBuilder::on(&plot)
        .caption(&c.title, (FONT, caption_size(&c.title, &plot, 22)))
        .margin(14)
        .x_label_area_size(50)
        .y_label_area_size((widest.unwrap_or(0) as u32 * 8 + 20).min(360))
        .build_cartesian_2d(0.0..hi, -0.5..(n as f64 - 0.5))
        .map_err(|e| e.to_string())?;
    let fx = |v: &f64| tick_label(*v, false);
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&fmt)
        .x_label_formatter(&fx)
        .x_labels(8)
        .x_desc(&c.x_label)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (_, vals)) in c.bars.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        let mut x0 = 0.0;
        for (j, v) in vals.iter().enumerate() {
            let color = STACK_PALETTE[j % STACK_PALETTE.len()];
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x0, y - 0.34), (x0 + v, y + 0.34)],
                    color.filled(),
                )))
                .map_err(|e| e.to_string())?;
            x0 += v;
        }
    }
    for (j, name) in c.segments.iter().enumerate() {
        let y = 48 + 22 * j as i32;
        let color = STACK_PALETTE[j % STACK_PALETTE.len()];
        legend
            .draw(&Rectangle::new([(6, y - 7), (26, y + 7)], color.filled()))
            .map_err(|e| e.to_string())?;
        legend
            .draw(&Text::new(name.clone(), (34, y - 8), (FONT, 15)))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A tick label: powers of ten as `1e-5` on log axes, otherwise up to four
/// significant digits without a negative zero.
fn tick_label(v: f64, log: bool) -> String {
    if log {
        let e = v.log10();
        if (e - e.round()).abs() < 1e-6 {
            return format!("1e{}", e.round() as i32);
        }
        return format!("{v:.1e}");
    }
    if v.abs() < 1e-12 {
        return "0".into();
    }
    let s = super::table::format_float(v, 4);
    if s.contains('.') && !s.contains('e') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Whether a bar chart is drawn with horizontal bars: when its labels
/// would not fit side by side under vertical ones.
fn bars_horizontal(c: &BarChart) -> bool {
    c.bars
        .iter()
        .map(|(s, _)| s.chars().count() + 2)
        .sum::<usize>()
        > 90
}

fn draw_bar<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, c: &BarChart) -> Result<(), String> {
    let n = c.bars.len();
    let mut names: Vec<String> = c.bars.iter().map(|(n, _)| n.clone()).collect();
    // Long or many labels do not fit under vertical bars: draw horizontal bars
    // (first bar on top) with the names on the y axis instead.
    let widest = names.iter().map(|s| s.chars().count()).max().unwrap_or(0);
    let horizontal = bars_horizontal(c);
    if horizontal {
        names.reverse();
    }
    let vals = || c.bars.iter().map(|(_, v)| *v);
    let cat = -0.5..(n as f64 - 0.5);
    let fmt = move |v: &f64| {
        let i = v.round();
        if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
            names[i as usize].clone()
        } else {
            String::new()
        }
    };
    let draw = |y0: f64, y1: f64, base: f64, log: bool| -> Result<(), String> {
        macro_rules! body {
            ($vr:expr) => {{
                if horizontal {
                    let mut chart = ChartBuilder::on(root)
                        .caption(&c.title, (FONT, caption_size(&c.title, root, 24)))
                        .margin(14)
                        .x_label_area_size(50)
                        .y_label_area_size((widest as u32 * 8 + 20).min(420))
                        .build_cartesian_2d($vr, cat.clone())
                        .map_err(|e| e.to_string())?;
                    chart
                        .configure_mesh()
                        .disable_y_mesh()
                        .y_labels(n)
                        .y_label_formatter(&fmt)
                        .x_desc(&c.y_label)
                        .label_style((FONT, 13))
                        .axis_desc_style((FONT, 17))
                        .light_line_style(RGBColor(235, 235, 235))
                        .draw()
                        .map_err(|e| e.to_string())?;
                    chart
                        .draw_series(c.bars.iter().enumerate().map(|(i, (_, v))| {
                            let color = PALETTE[i % PALETTE.len()];
                            Rectangle::new(
                                [
                                    (base, (n - 1 - i) as f64 - 0.35),
                                    (*v, (n - 1 - i) as f64 + 0.35),
                                ],
                                color.filled(),
                            )
                        }))
                        .map_err(|e| e.to_string())?;
                } else {
                    let mut chart = ChartBuilder::on(root)
                        .caption(&c.title, (FONT, caption_size(&c.title, root, 24)))
                        .margin(14)
                        .x_label_area_size(60)
                        .y_label_area_size(80)
                        .build_cartesian_2d(cat.clone(), $vr)
                        .map_err(|e| e.to_string())?;
                    chart
                        .configure_mesh()
                        .disable_x_mesh()
                        .x_labels(n)
                        .x_label_formatter(&fmt)
                        .y_desc(&c.y_label)
                        .label_style((FONT, 13))
                        .axis_desc_style((FONT, 17))
                        .light_line_style(RGBColor(235, 235, 235))
                        .draw()
                        .map_err(|e| e.to_string())?;
                    chart
                        .draw_series(c.bars.iter().enumerate().map(|(i, (_, v))| {
                            let color = PALETTE[i % PALETTE.len()];
                            Rectangle::new(
                                [(i as f64 - 0.35, base), (i as f64 + 0.35, *v)],
                                color.filled(),
                            )
                        }))
                        .map_err(|e| e.to_string())?;
                }
            }};
        }
        if log {
            body!((y0..y1).log_scale());
        } else {
            body!(y0..y1);
        }
        Ok(())
    };
    if c.log_y {
        let (lo, hi) = bounds(vals(), true);
        draw(lo, hi, lo, true)
    } else {
        let (lo, hi) = bounds(vals().chain([0.0]), false);
        draw(lo.min(0.0), hi, 0.0, false)
    }
}

fn draw_images<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    images: &[Vec<f32>],
    side: usize,
    captions: &[String],
) -> Result<(), String> {
    let area = root.titled(title, (FONT, 22)).map_err(|e| e.to_string())?;
    let cols = images.len().min(10);
    let rows = images.len().div_ceil(10);
    let cells = area.split_evenly((rows, cols));
    for ((cell, img), cap) in cells.iter().zip(images).zip(captions) {
        let (w, h) = cell.dim_in_pixel();
        let px = ((w.min(h.saturating_sub(22))) as usize / side).max(1) as i32;
        let off_x = (w as i32 - px * side as i32) / 2;
        for (k, &v) in img.iter().enumerate() {
            let (r, c) = ((k / side) as i32, (k % side) as i32);
            let g = (255.0 * (1.0 - v.clamp(0.0, 1.0))) as u8;
            cell.draw(&Rectangle::new(
                [
                    (off_x + c * px, r * px),
                    (off_x + (c + 1) * px, (r + 1) * px),
                ],
                RGBColor(g, g, g).filled(),
            ))
            .map_err(|e| e.to_string())?;
        }
        cell.draw(&Text::new(
            cap.clone(),
            (off_x, px * side as i32 + 4),
            (FONT, 14),
        ))
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> LineChart {
        LineChart {
            title: "sign and p".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![
                Series::new("sign", vec![(-1.0, -1.0), (0.0, 0.0), (1.0, 1.0)]),
                Series::new("p", vec![(-1.0, -0.9), (1.0, 0.9)]),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn lines_leaving_a_fixed_range_are_cut_at_the_border() {
        let pts = [
            (0.0, 5.0),
            (1.0, 15.0),
            (2.0, 5.0),
            (3.0, -5.0),
            (4.0, 15.0),
        ];
        let runs = clip_runs(&pts, 0.0, 10.0);
        assert_eq!(
            runs,
            vec![
                vec![(0.0, 5.0), (0.5, 10.0)],
                vec![(1.5, 10.0), (2.0, 5.0), (2.5, 0.0)],
                vec![(3.25, 0.0), (3.75, 10.0)],
            ]
        );
        assert_eq!(clip_runs(&pts[..1], 0.0, 10.0), vec![vec![(0.0, 5.0)]]);
        assert!(clip_runs(&[(0.0, 20.0), (1.0, 30.0)], 0.0, 10.0).is_empty());
    }

    #[test]
    fn a_repeated_series_is_dashed_and_stacked_bars_validate() {
        let a = Series::new("relu", vec![(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)]);
        let b = Series::new("slaf-r", vec![(1.0, 1.0), (2.0, 2.0), (3.0, 0.5)]);
        assert_eq!(series_style(&[a.clone(), b.clone()], 1).1, Dash::Dashed);
        assert_eq!(series_style(&[a, b], 0).1, Dash::Solid);
        let mut c = StackedBarChart {
            title: "t".into(),
            x_label: "ms".into(),
            segments: vec!["enc".into(), "conv".into()],
            bars: vec![("m".into(), vec![1.0, 2.0])],
        };
        let grid = Figure::Grid {
            title: "g".into(),
            panels: vec![Figure::from(c.clone()), Figure::from(line())],
            cols: 2,
        };
        assert!(grid.to_svg().expect("grid").contains("conv"));
        c.bars[0].1.pop();
        let err = Figure::from(c).to_svg().unwrap_err().to_string();
        assert!(err.contains("1 values for 2 segments"), "{err}");
    }

    #[test]
    fn line_chart_svg_has_title_and_legend() {
        let svg = Figure::from(line()).to_svg().expect("svg");
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("sign and p"));
        // Legend entries are text elements of their own.
        assert!(svg.contains(">\np\n</text>"), "legend entry 'p' missing");
        assert!(
            svg.contains(">\nsign\n</text>"),
            "legend entry 'sign' missing"
        );
    }

    #[test]
    fn log_axes_and_bars_render_and_png_is_png() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut c = line();
        c.series = vec![Series::new(
            "loss",
            vec![(1e-6, 2.3), (1e-3, 1.0), (1.0, 5.0)],
        )];
        c.log_x = true;
        let fig = Figure::from(c);
        let (svg, png) = fig.save(dir.path(), "lr").expect("save");
        assert!(std::fs::read_to_string(svg).expect("svg").contains("<svg"));
        let bytes = std::fs::read(png).expect("png");
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        // The in-memory PNG (notebook display) decodes to the figure's size.
        let mem = fig.to_png().expect("png bytes");
        let img = image::load_from_memory(&mem).expect("decodes");
        assert_eq!((img.width(), img.height()), fig.size());
        let bars = BarChart {
            title: "time".into(),
            y_label: "ms".into(),
            bars: vec![("a".into(), 3.0), ("b".into(), 30.0)],
            log_y: true,
        };
        assert!(Figure::from(bars).to_svg().expect("bars").contains("time"));
    }

    #[test]
    fn many_long_bars_make_a_taller_horizontal_chart() {
        let bars = |n: usize| BarChart {
            title: "stages".into(),
            y_label: "ms".into(),
            bars: (0..n)
                .map(|i| (format!("cnn2-slaf per-image stage {i}"), 1.0 + i as f64))
                .collect(),
            log_y: false,
        };
        let height = |svg: &str| -> u32 {
            let h = svg.split("height=\"").nth(1).expect("height attribute");
            h[..h.find('"').expect("quote")].parse().expect("number")
        };
        let few = Figure::from(bars(4)).to_svg().expect("svg");
        let many = Figure::from(bars(56)).to_svg().expect("svg");
        assert_eq!(height(&few), 560);
        assert_eq!(height(&many), 90 + 16 * 56);
    }

    #[test]
    fn bad_data_is_an_error_not_a_panic() {
        let mut c = line();
        c.series[0].points.push((f64::NAN, 1.0));
        assert!(matches!(
            Figure::from(c).to_svg(),
            Err(ReportError::InvalidData { .. })
        ));
        let empty = LineChart::default();
        assert!(Figure::from(empty).to_svg().is_err());
        let imgs = digits_grid("d", vec![vec![0.0; 3]], 2, vec!["x".into()]);
        assert!(imgs.to_svg().is_err());
    }

    #[test]
    fn tick_labels_are_readable() {
        assert_eq!(tick_label(1e-5 * (1.0 + 1e-12), true), "1e-5");
        assert_eq!(tick_label(100.0, true), "1e2");
        assert_eq!(tick_label(-0.0, false), "0");
        assert_eq!(tick_label(0.25, false), "0.25");
        assert_eq!(tick_label(140.0, false), "140");
    }

    #[test]
    fn digit_grid_renders() {
        let imgs = digits_grid(
            "digits",
            vec![vec![0.5; 16], vec![1.0; 16]],
            4,
            vec!["7".into(), "2".into()],
        );
        assert!(imgs.to_svg().expect("svg").contains("digits"));
    }
}
