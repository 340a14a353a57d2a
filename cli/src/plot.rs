//! Small, dependency-light plotting to PNG files: heatmaps of matrices (Jacobians) and line
//! plots (loss curves).
//!
//! Everything is drawn on a plain RGB canvas with a tiny embedded 5×7 bitmap font and written
//! with the `png` crate; no system fonts or graphics libraries are needed.
//!
//! ```
//! use eingrad_cli::plot::{heatmap_png, line_plot_png, HeatmapOptions, PlotOptions};
//! let dir = std::env::temp_dir().join(format!("eingrad-plot-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let jac = [1.0, -0.5, 0.0, 2.0, f64::NAN, -2.0];
//! heatmap_png(&dir.join("jac.png"), &jac, 2, 3, &HeatmapOptions::default()).unwrap();
//! let loss = [1.0, 0.5, 0.3, 0.2];
//! line_plot_png(&dir.join("loss.png"), &[("loss", &loss[..])], &PlotOptions::default()).unwrap();
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::path::Path;

use eingrad::{Error, Result};

/// Options for [`heatmap_png`].
///
/// ```
/// use eingrad_cli::plot::HeatmapOptions;
/// let opts = HeatmapOptions {
///     title: "∂y/∂x".into(),
///     x_label: "input j".into(),
///     y_label: "output i".into(),
///     cell_px: 0, // choose automatically
/// };
/// assert_eq!(opts.cell_px, 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeatmapOptions {
    /// Title drawn above the image (may be empty).
    pub title: String,
    /// Label under the column axis (may be empty).
    pub x_label: String,
    /// Label beside the row axis, drawn rotated (may be empty).
    pub y_label: String,
    /// Side of one matrix cell in pixels; `0` picks a size automatically (at least 8 px for
    /// small matrices). The plot area is capped at about 1024 px per axis: larger requests are
    /// shrunk, and matrices with more than 1024 rows or columns are downsampled by averaging
    /// blocks.
    pub cell_px: usize,
}

/// Options for [`line_plot_png`].
///
/// ```
/// use eingrad_cli::plot::PlotOptions;
/// let opts = PlotOptions { title: "loss".into(), log_y: true, ..Default::default() };
/// assert!(opts.x_label.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlotOptions {
    /// Title drawn above the plot (may be empty).
    pub title: String,
    /// Label under the x axis (may be empty).
    pub x_label: String,
    /// Label beside the y axis, drawn rotated (may be empty).
    pub y_label: String,
    /// Use a base-10 logarithmic y axis; values ≤ 0 are then left out.
    pub log_y: bool,
}

/// Colour of NaN cells in a heatmap.
///
/// ```
/// assert_eq!(eingrad_cli::plot::NAN_COLOR, eingrad_cli::plot::diverging_color(f64::NAN, 1.0));
/// ```
pub const NAN_COLOR: [u8; 3] = [150, 150, 150];

/// Colours given to the series of a line plot, in order (repeating after the last).
///
/// ```
/// assert_eq!(eingrad_cli::plot::SERIES_COLORS.len(), 10);
/// ```
pub const SERIES_COLORS: [[u8; 3]; 10] = [
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
];

/// Anchors of the blue–white–red map at t = -1, -0.5, 0, 0.5, 1.
const DIVERGING: [[f64; 3]; 5] = [
    [33.0, 102.0, 172.0],
    [146.0, 197.0, 222.0],
    [255.0, 255.0, 255.0],
    [244.0, 165.0, 130.0],
    [178.0, 24.0, 43.0],
];

/// The heatmap colour of `value` on a scale symmetric around zero, `-scale` (blue) to `+scale`
/// (red), with white at 0. Values beyond the scale and ±infinity take the extreme colours; NaN
/// is [`NAN_COLOR`]. A `scale` that is not positive and finite is treated as 1.
///
/// ```
/// use eingrad_cli::plot::diverging_color;
/// assert_eq!(diverging_color(0.0, 2.0), [255, 255, 255]);
/// let red = diverging_color(2.0, 2.0);
/// assert!(red[0] > 150 && red[2] < 80);
/// assert_eq!(diverging_color(f64::INFINITY, 2.0), red);
/// let blue = diverging_color(-2.0, 2.0);
/// assert!(blue[2] > 150 && blue[0] < 80);
/// ```
pub fn diverging_color(value: f64, scale: f64) -> [u8; 3] {
    if value.is_nan() {
        return NAN_COLOR;
    }
    let scale = if scale.is_finite() && scale > 0.0 {
        scale
    } else {
        1.0
    };
    let t = if value.is_infinite() {
        value.signum()
    } else {
        (value / scale).clamp(-1.0, 1.0)
    };
    // Position along the anchors, 0..=4.
    let p = (t + 1.0) * 2.0;
    let i = (p.floor() as usize).min(3);
    let f = p - i as f64;
    let (a, b) = (DIVERGING[i], DIVERGING[i + 1]);
    let mut out = [0u8; 3];
    for k in 0..3 {
        out[k] = (a[k] + (b[k] - a[k]) * f).round().clamp(0.0, 255.0) as u8;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Font
// ---------------------------------------------------------------------------------------------

/// Glyph rows: 7 rows above the baseline and 2 descender rows; 5 bits each, bit 4 leftmost.
type Glyph = [u8; 9];

macro_rules! g {
    ($a:expr, $b:expr, $c:expr, $d:expr, $e:expr, $f:expr, $g:expr) => {
        [$a, $b, $c, $d, $e, $f, $g, 0, 0]
    };
    ($a:expr, $b:expr, $c:expr, $d:expr, $e:expr, $f:expr, $g:expr, $h:expr, $i:expr) => {
        [$a, $b, $c, $d, $e, $f, $g, $h, $i]
    };
}

const BOX_GLYPH: Glyph = g!(0b11111, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b11111);

/// The bitmap of one character; unsupported characters get a box.
fn glyph(c: char) -> Glyph {
    match c {
        '0' => g!(0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110),
        '1' => g!(0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110),
        '2' => g!(0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111),
        '3' => g!(0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110),
        '4' => g!(0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010),
        '5' => g!(0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110),
        '6' => g!(0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110),
        '7' => g!(0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000),
        '8' => g!(0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110),
        '9' => g!(0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100),
        'A' => g!(0b01110, 0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001),
        'B' => g!(0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110),
        'C' => g!(0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110),
        'D' => g!(0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100),
        'E' => g!(0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111),
        'F' => g!(0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000),
        'G' => g!(0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111),
        'H' => g!(0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001),
        'I' => g!(0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110),
        'J' => g!(0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100),
        'K' => g!(0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001),
        'L' => g!(0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111),
        'M' => g!(0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001),
        'N' => g!(0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001),
        'O' => g!(0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110),
        'P' => g!(0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000),
        'Q' => g!(0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101),
        'R' => g!(0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001),
        'S' => g!(0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110),
        'T' => g!(0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100),
        'U' => g!(0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110),
        'V' => g!(0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100),
        'W' => g!(0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010),
        'X' => g!(0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001),
        'Y' => g!(0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100),
        'Z' => g!(0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111),
        'a' => g!(0b00000, 0b00000, 0b01110, 0b00001, 0b01111, 0b10001, 0b01111),
        'b' => g!(0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b11110),
        'c' => g!(0b00000, 0b00000, 0b01110, 0b10000, 0b10000, 0b10001, 0b01110),
        'd' => g!(0b00001, 0b00001, 0b01101, 0b10011, 0b10001, 0b10001, 0b01111),
        'e' => g!(0b00000, 0b00000, 0b01110, 0b10001, 0b11111, 0b10000, 0b01110),
        'f' => g!(0b00110, 0b01001, 0b01000, 0b11100, 0b01000, 0b01000, 0b01000),
        'g' => g!(0b00000, 0b00000, 0b01111, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110),
        'h' => g!(0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001),
        'i' => g!(0b00100, 0b00000, 0b01100, 0b00100, 0b00100, 0b00100, 0b01110),
        'j' => g!(0b00010, 0b00000, 0b00110, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100),
        'k' => g!(0b10000, 0b10000, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010),
        'l' => g!(0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110),
        'm' => g!(0b00000, 0b00000, 0b11010, 0b10101, 0b10101, 0b10001, 0b10001),
        'n' => g!(0b00000, 0b00000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001),
        'o' => g!(0b00000, 0b00000, 0b01110, 0b10001, 0b10001, 0b10001, 0b01110),
        'p' => g!(0b00000, 0b00000, 0b11110, 0b10001, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000),
        'q' => g!(0b00000, 0b00000, 0b01111, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b00001),
        'r' => g!(0b00000, 0b00000, 0b10110, 0b11001, 0b10000, 0b10000, 0b10000),
        's' => g!(0b00000, 0b00000, 0b01111, 0b10000, 0b01110, 0b00001, 0b11110),
        't' => g!(0b01000, 0b01000, 0b11100, 0b01000, 0b01000, 0b01001, 0b00110),
        'u' => g!(0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b10011, 0b01101),
        'v' => g!(0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100),
        'w' => g!(0b00000, 0b00000, 0b10001, 0b10001, 0b10101, 0b10101, 0b01010),
        'x' => g!(0b00000, 0b00000, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001),
        'y' => g!(0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110),
        'z' => g!(0b00000, 0b00000, 0b11111, 0b00010, 0b00100, 0b01000, 0b11111),
        ' ' => [0; 9],
        '.' => g!(0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100),
        ',' => g!(0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b00100, 0b01000, 0b00000),
        ':' => g!(0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000),
        ';' => g!(0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b00100, 0b01000, 0b00000, 0b00000),
        '-' | '−' | '–' => g!(0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000),
        '+' => g!(0b00000, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0b00000),
        '×' => g!(0b00000, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b00000),
        '*' => g!(0b00000, 0b00100, 0b10101, 0b01110, 0b10101, 0b00100, 0b00000),
        '∂' => g!(0b01100, 0b00010, 0b00001, 0b01111, 0b10001, 0b10001, 0b01110),
        '/' => g!(0b00001, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b10000),
        '\\' => g!(0b10000, 0b10000, 0b01000, 0b00100, 0b00010, 0b00001, 0b00001),
        '(' => g!(0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010),
        ')' => g!(0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000),
        '[' => g!(0b01110, 0b01000, 0b01000, 0b01000, 0b01000, 0b01000, 0b01110),
        ']' => g!(0b01110, 0b00010, 0b00010, 0b00010, 0b00010, 0b00010, 0b01110),
        '=' => g!(0b00000, 0b00000, 0b11111, 0b00000, 0b11111, 0b00000, 0b00000),
        '_' => g!(0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b11111, 0b00000),
        '|' => g!(0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100),
        '\'' => g!(0b00100, 0b00100, 0b01000, 0b00000, 0b00000, 0b00000, 0b00000),
        '"' => g!(0b01010, 0b01010, 0b01010, 0b00000, 0b00000, 0b00000, 0b00000),
        '^' => g!(0b00100, 0b01010, 0b10001, 0b00000, 0b00000, 0b00000, 0b00000),
        '<' => g!(0b00010, 0b00100, 0b01000, 0b10000, 0b01000, 0b00100, 0b00010),
        '>' => g!(0b01000, 0b00100, 0b00010, 0b00001, 0b00010, 0b00100, 0b01000),
        '%' => g!(0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011),
        '!' => g!(0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000, 0b00100),
        '?' => g!(0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b00000, 0b00100),
        '#' => g!(0b01010, 0b01010, 0b11111, 0b01010, 0b11111, 0b01010, 0b01010),
        '·' => g!(0b00000, 0b00000, 0b00000, 0b01100, 0b01100, 0b00000, 0b00000),
        '±' => g!(0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0b00000, 0b11111),
        '∞' => g!(0b00000, 0b00000, 0b01010, 0b10101, 0b10101, 0b01010, 0b00000),
        _ => BOX_GLYPH,
    }
}

/// Text scale used everywhere (each font pixel is a `SCALE`×`SCALE` block).
const SCALE: usize = 2;
/// Horizontal advance of one character.
const CHAR_W: usize = 6 * SCALE;
/// Height of capitals and digits.
const CAP_H: usize = 7 * SCALE;
/// Height of a line of text including descenders.
const LINE_H: usize = 9 * SCALE;

/// Width in pixels of `text` drawn at [`SCALE`].
fn text_width(text: &str) -> usize {
    let n = text.chars().count();
    if n == 0 {
        0
    } else {
        n * CHAR_W - SCALE
    }
}

/// `text` cut (with a trailing "..") so that it is at most `max_w` pixels wide.
fn fit_text(text: &str, max_w: usize) -> String {
    if text_width(text) <= max_w {
        return text.to_string();
    }
    let max_chars = (max_w + SCALE) / CHAR_W;
    if max_chars <= 2 {
        return String::new();
    }
    let mut s: String = text.chars().take(max_chars - 2).collect();
    s.push_str("..");
    s
}

// ---------------------------------------------------------------------------------------------
// Canvas
// ---------------------------------------------------------------------------------------------

type Rgb = [u8; 3];

const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];
const GRID: Rgb = [225, 225, 225];
const LEGEND_EDGE: Rgb = [170, 170, 170];

struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Self {
        Canvas {
            w,
            h,
            px: vec![255; w * h * 3],
        }
    }

    fn set(&mut self, x: i64, y: i64, c: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = (y as usize * self.w + x as usize) * 3;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    fn blend(&mut self, x: i64, y: i64, c: Rgb, alpha: f64) {
        if alpha <= 0.0 {
            return;
        }
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = (y as usize * self.w + x as usize) * 3;
            let a = alpha.min(1.0);
            for (p, &new) in self.px[i..i + 3].iter_mut().zip(c.iter()) {
                let old = *p as f64;
                *p = (old + (new as f64 - old) * a).round() as u8;
            }
        }
    }

    fn fill_rect(&mut self, x: i64, y: i64, w: usize, h: usize, c: Rgb) {
        let x0 = x.max(0);
        let y0 = y.max(0);
        let x1 = (x + w as i64).min(self.w as i64);
        let y1 = (y + h as i64).min(self.h as i64);
        for yy in y0..y1 {
            for xx in x0..x1 {
                self.set(xx, yy, c);
            }
        }
    }

    /// A one-pixel rectangle outline whose outer edge is the given box.
    fn rect_outline(&mut self, x: i64, y: i64, w: usize, h: usize, c: Rgb) {
        if w == 0 || h == 0 {
            return;
        }
        self.fill_rect(x, y, w, 1, c);
        self.fill_rect(x, y + h as i64 - 1, w, 1, c);
        self.fill_rect(x, y, 1, h, c);
        self.fill_rect(x + w as i64 - 1, y, 1, h, c);
    }

    /// Draws `text` with its top-left corner at (x, y).
    fn text(&mut self, x: i64, y: i64, text: &str, c: Rgb) {
        let s = SCALE as i64;
        for (n, ch) in text.chars().enumerate() {
            let gl = glyph(ch);
            let gx = x + n as i64 * CHAR_W as i64;
            for (row, bits) in gl.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0b10000 >> col) != 0 {
                        let px = gx + col as i64 * s;
                        let py = y + row as i64 * s;
                        self.fill_rect(px, py, SCALE, SCALE, c);
                    }
                }
            }
        }
    }

    /// Draws `text` rotated 90° counter-clockwise (reading upwards); (x, y) is where the top of
    /// the first glyph's baseline-side begins: the text occupies x..x+LINE_H and runs upwards
    /// from y.
    fn text_up(&mut self, x: i64, y: i64, text: &str, c: Rgb) {
        let s = SCALE as i64;
        for (n, ch) in text.chars().enumerate() {
            let gl = glyph(ch);
            let along = n as i64 * CHAR_W as i64;
            for (row, bits) in gl.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0b10000 >> col) != 0 {
                        let tx = along + col as i64 * s; // along the text
                        let ty = row as i64 * s; // across the text, downwards in glyph space
                        self.fill_rect(x + ty, y - tx - s, SCALE, SCALE, c);
                    }
                }
            }
        }
    }

    /// An anti-aliased segment of the given width, drawn only inside `clip` (x0, y0, x1, y1).
    fn segment(&mut self, a: (f64, f64), b: (f64, f64), width: f64, c: Rgb, clip: [i64; 4]) {
        let r = width / 2.0 + 0.5;
        let xmin = ((a.0.min(b.0) - r).floor() as i64).max(clip[0]);
        let xmax = ((a.0.max(b.0) + r).ceil() as i64).min(clip[2]);
        let ymin = ((a.1.min(b.1) - r).floor() as i64).max(clip[1]);
        let ymax = ((a.1.max(b.1) + r).ceil() as i64).min(clip[3]);
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len2 = dx * dx + dy * dy;
        for y in ymin..=ymax {
            for x in xmin..=xmax {
                let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
                let t = if len2 > 0.0 {
                    (((px - a.0) * dx + (py - a.1) * dy) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let (qx, qy) = (a.0 + t * dx - px, a.1 + t * dy - py);
                let d = (qx * qx + qy * qy).sqrt();
                let cov = (width / 2.0 + 0.5 - d).clamp(0.0, 1.0);
                if cov > 0.0 {
                    self.blend(x, y, c, cov);
                }
            }
        }
    }

    /// Writes the PNG atomically ([`eingrad::io::write_atomic`]): a run stopped while writing
    /// leaves the previous file whole. An OS failure is an [`Error::Io`] (of the same kind)
    /// whose message names the file.
    fn save(&self, path: &Path) -> Result<()> {
        let io = |e: Error| match e {
            Error::File { op, path, error } => Error::Io(std::io::Error::new(
                error.kind(),
                format!("{op}: {}: {error}", path.display()),
            )),
            e => e,
        };
        eingrad::io::write_atomic(path, |w| {
            let mut enc = png::Encoder::new(w, self.w as u32, self.h as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut writer = enc.write_header().map_err(png_err)?;
            writer.write_image_data(&self.px).map_err(png_err)?;
            writer.finish().map_err(png_err)?;
            Ok(())
        })
        .map_err(io)
    }
}

/// An [`Error::InvalidArgument`] naming the plot function and the argument at fault.
fn arg_error(op: &'static str, arg: &'static str, msg: impl Into<String>) -> Error {
    Error::InvalidArgument {
        op,
        arg,
        msg: msg.into(),
    }
}

fn png_err(e: png::EncodingError) -> Error {
    match e {
        png::EncodingError::IoError(e) => Error::Io(e),
        other => Error::Io(std::io::Error::other(other.to_string())),
    }
}

// ---------------------------------------------------------------------------------------------
// Number formatting and ticks
// ---------------------------------------------------------------------------------------------

/// Trims trailing zeros of a decimal mantissa: "1.500" → "1.5", "2.00" → "2".
fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

fn sci(v: f64, decimals: usize) -> String {
    let s = format!("{:.*e}", decimals, v);
    match s.split_once('e') {
        Some((m, e)) => format!("{}e{}", trim_zeros(m), e),
        None => s,
    }
}

/// A number with about three significant digits.
fn fmt_num(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if (1e-3..1e5).contains(&a) {
        let decimals = (2 - a.log10().floor() as i64).clamp(0, 6) as usize;
        let s = trim_zeros(&format!("{:.*}", decimals, v));
        if s == "-0" {
            "0".into()
        } else {
            s
        }
    } else {
        sci(v, 2)
    }
}

/// A tick value on an axis whose ticks are `step` apart.
fn fmt_tick(v: f64, step: f64) -> String {
    if v.abs() >= 1e5 || step < 1e-4 {
        return if v.abs() < step * 1e-9 {
            "0".into()
        } else {
            sci(v, 2)
        };
    }
    let decimals = (-(step.log10() + 1e-9).floor()).max(0.0) as usize;
    // Snap values that are zero up to rounding, so that no "-0.0" appears.
    let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
    format!("{:.*}", decimals, v)
}

/// The smallest of 1, 2, 5 × 10^k that is at least `x` (x > 0).
fn nice_step(x: f64) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(x.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * mag >= x * (1.0 - 1e-9) {
            return m * mag;
        }
    }
    10.0 * mag
}

/// About `target` nicely rounded ticks inside [lo, hi], and their spacing.
fn nice_ticks(lo: f64, hi: f64, target: usize, min_step: f64) -> (Vec<f64>, f64) {
    let span = hi - lo;
    let step = nice_step(span / target.max(1) as f64).max(min_step);
    let mut ticks = Vec::new();
    let mut k = (lo / step - 1e-9).ceil();
    while ticks.len() < 100 {
        let t = k * step;
        if t > hi + step * 1e-9 {
            break;
        }
        ticks.push(t);
        k += 1.0;
    }
    (ticks, step)
}

/// Ticks for a log10 axis spanning [lo, hi] (exponents): 1, 2, 5 × 10^k when that gives at
/// most 10 ticks, else powers of ten at a stride, else (under a factor of ~2.5) linear ticks.
fn log_ticks(lo: f64, hi: f64) -> Vec<(f64, String)> {
    let (e0, e1) = (lo.floor() as i64, hi.ceil() as i64);
    let mut cands = Vec::new();
    if e1 - e0 <= 12 {
        for e in e0..=e1 {
            for m in [1.0, 2.0, 5.0] {
                let v = m * 10f64.powi(e as i32);
                let t = v.log10();
                if t >= lo - 1e-12 && t <= hi + 1e-12 {
                    cands.push((t, fmt_num(v)));
                }
            }
        }
    }
    if (2..=10).contains(&cands.len()) {
        return cands;
    }
    let (p0, p1) = (lo.ceil() as i64, hi.floor() as i64);
    if p1 > p0 {
        let stride = ((p1 - p0) as usize).div_ceil(8).max(1);
        return (p0..=p1)
            .step_by(stride)
            .map(|e| (e as f64, fmt_num(10f64.powi(e as i32))))
            .collect();
    }
    let (a, b) = (10f64.powf(lo), 10f64.powf(hi));
    let (ticks, step) = nice_ticks(a, b, 5, 0.0);
    ticks
        .into_iter()
        .filter(|&t| t > 0.0)
        .map(|t| (t.log10(), fmt_tick(t, step)))
        .collect()
}

/// The smallest stride from 1, 2, 5, 10, 20, 50, … that is at least `x`.
fn index_stride(x: f64) -> usize {
    if x <= 1.0 {
        1
    } else {
        nice_step(x).round().max(1.0) as usize
    }
}

// ---------------------------------------------------------------------------------------------
// Heatmap
// ---------------------------------------------------------------------------------------------

/// Largest extent of the heatmap's cell area along one axis, in pixels.
const MAX_PLOT: usize = 1024;
/// Smallest extent of the heatmap's cell area along one axis, in pixels.
const MIN_EXTENT: usize = 48;
/// Largest automatic cell size.
const MAX_AUTO_CELL: usize = 48;
const MARGIN: usize = 16;
const TICK_LEN: usize = 5;
/// Widest image, in pixels.
const MAX_WIDTH: usize = 1600;

/// Writes `values` (a row-major `rows`×`cols` matrix) to `path` as a PNG heatmap.
///
/// Colours are blue–white–red, symmetric around 0 with the scale set by the largest finite
/// |value| (see [`diverging_color`]); NaN is grey and ±infinity take the extreme colours. The
/// image has a title, row and column index ticks at a readable stride, axis labels, and a
/// colour bar labelled with its minimum, 0 and maximum. Matrices with more than 1024 rows or
/// columns are downsampled by averaging blocks.
///
/// Errors: `rows` or `cols` zero, or `values.len() != rows * cols`, give
/// [`Error::InvalidArgument`] naming the argument; failures to create or write the file give
/// [`Error::Io`].
///
/// ```
/// use eingrad_cli::plot::{heatmap_png, HeatmapOptions};
/// let path = std::env::temp_dir().join(format!("eingrad-doc-jac-{}.png", std::process::id()));
/// let opts = HeatmapOptions { title: "∂y/∂x".into(), ..Default::default() };
/// heatmap_png(&path, &[1.0, -1.0, 0.5, 0.0], 2, 2, &opts).unwrap();
/// assert!(heatmap_png(&path, &[1.0], 2, 2, &opts).is_err()); // 1 value for a 2×2 matrix
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn heatmap_png(
    path: &Path,
    values: &[f64],
    rows: usize,
    cols: usize,
    opts: &HeatmapOptions,
) -> Result<()> {
    const OP: &str = "heatmap_png";
    if rows == 0 {
        return Err(arg_error(OP, "rows", "must be at least 1"));
    }
    if cols == 0 {
        return Err(arg_error(OP, "cols", "must be at least 1"));
    }
    match rows.checked_mul(cols) {
        Some(n) if n == values.len() => {}
        _ => {
            return Err(arg_error(
                OP,
                "values",
                format!(
                    "has {} elements but rows × cols = {} × {}",
                    values.len(),
                    rows,
                    cols
                ),
            ))
        }
    }
    let canvas = render_heatmap(values, rows, cols, opts);
    canvas.save(path)
}

/// Block size, displayed count along one axis.
fn axis_blocks(n: usize) -> (usize, usize) {
    if n > MAX_PLOT {
        let b = n.div_ceil(MAX_PLOT);
        (b, n.div_ceil(b))
    } else {
        (1, n)
    }
}

fn render_heatmap(values: &[f64], rows: usize, cols: usize, opts: &HeatmapOptions) -> Canvas {
    // Scale: largest finite magnitude.
    let mut scale = 0.0f64;
    let mut has_nan = false;
    for &v in values {
        if v.is_finite() {
            scale = scale.max(v.abs());
        } else if v.is_nan() {
            has_nan = true;
        }
    }

    // Downsampling and cell size.
    let (br, dr) = axis_blocks(rows);
    let (bc, dc) = axis_blocks(cols);
    let dmax = dr.max(dc);
    let mut cell = if opts.cell_px > 0 {
        opts.cell_px
    } else if dmax * 8 <= MAX_PLOT {
        (768 / dmax).clamp(8, MAX_AUTO_CELL)
    } else {
        (768 / dmax).max(1)
    };
    if dmax.saturating_mul(cell) > MAX_PLOT {
        cell = (MAX_PLOT / dmax).max(1);
    }
    let cell_x = cell.max(MIN_EXTENT.div_ceil(dc));
    let cell_y = cell.max(MIN_EXTENT.div_ceil(dr));
    let plot_w = dc * cell_x;
    let plot_h = dr * cell_y;

    // Displayed (possibly block-averaged) values.
    let disp: Vec<f64> = if br == 1 && bc == 1 {
        values.to_vec()
    } else {
        let mut d = vec![0.0; dr * dc];
        for (bi, drow) in d.chunks_mut(dc).enumerate() {
            let r0 = bi * br;
            let r1 = (r0 + br).min(rows);
            for (bj, out) in drow.iter_mut().enumerate() {
                let c0 = bj * bc;
                let c1 = (c0 + bc).min(cols);
                let n = ((r1 - r0) * (c1 - c0)) as f64;
                let mut s = 0.0;
                for r in r0..r1 {
                    for &v in &values[r * cols + c0..r * cols + c1] {
                        s += v / n;
                    }
                }
                *out = s;
            }
        }
        d
    };

    // Ticks (original indices) along each axis.
    let row_px_per_index = cell_y as f64 / br as f64;
    let col_px_per_index = cell_x as f64 / bc as f64;
    let row_stride = index_stride((CAP_H + 14) as f64 / row_px_per_index);
    let col_label_w = text_width(&(cols - 1).to_string());
    let col_stride = index_stride((col_label_w + 14) as f64 / col_px_per_index);
    let row_ticks: Vec<usize> = (0..rows).step_by(row_stride).collect();
    let col_ticks: Vec<usize> = (0..cols).step_by(col_stride).collect();
    let row_label_w = row_ticks
        .iter()
        .map(|i| text_width(&i.to_string()))
        .max()
        .unwrap_or(0);

    // Colour bar labels.
    let cb_labels = [fmt_num(scale), "0".to_string(), fmt_num(-scale)];
    let cb_label_w = cb_labels.iter().map(|s| text_width(s)).max().unwrap_or(0);
    let cb_w = 18usize;
    let cb_h = plot_h.max(160);

    // Layout.
    let title_h = if opts.title.is_empty() {
        0
    } else {
        LINE_H + 12
    };
    let ylab_w = if opts.y_label.is_empty() {
        0
    } else {
        LINE_H + 10
    };
    let xlab_h = if opts.x_label.is_empty() {
        0
    } else {
        LINE_H + 8
    };
    let plot_x = MARGIN + ylab_w + row_label_w + 6 + TICK_LEN;
    let plot_y = MARGIN + title_h;
    let cb_x = plot_x + plot_w + 28;
    let cb_text_x = cb_x + cb_w + 4 + 6;
    let mut legend_lines = Vec::new();
    if has_nan {
        legend_lines.push(("NaN", NAN_COLOR));
    }
    if values.contains(&f64::INFINITY) {
        legend_lines.push(("+inf", diverging_color(f64::INFINITY, 1.0)));
    }
    if values.contains(&f64::NEG_INFINITY) {
        legend_lines.push(("-inf", diverging_color(f64::NEG_INFINITY, 1.0)));
    }
    let legend_w = legend_lines
        .iter()
        .map(|(s, _)| 22 + text_width(s))
        .max()
        .unwrap_or(0);
    let mut width = (cb_text_x + cb_label_w).max(cb_x + legend_w) + MARGIN;
    let plot_bottom = plot_y + plot_h + TICK_LEN + 4 + CAP_H + 10 + xlab_h + MARGIN;
    let cb_bottom = plot_y + cb_h + CAP_H / 2 + legend_lines.len() * (LINE_H + 4) + 8 + MARGIN;
    let height = plot_bottom.max(cb_bottom);
    let want_w = |s: &str| text_width(s) + 2 * MARGIN;
    width = width
        .max(want_w(&opts.title).min(MAX_WIDTH))
        .max(want_w(&opts.x_label).min(MAX_WIDTH));

    let mut cv = Canvas::new(width, height);

    // Title, centred on the image.
    if !opts.title.is_empty() {
        let t = fit_text(&opts.title, width - 2 * MARGIN);
        let x = (width - text_width(&t)) / 2;
        cv.text(x as i64, MARGIN as i64, &t, BLACK);
    }

    // Cells.
    for i in 0..dr {
        for j in 0..dc {
            let c = diverging_color(disp[i * dc + j], scale);
            cv.fill_rect(
                (plot_x + j * cell_x) as i64,
                (plot_y + i * cell_y) as i64,
                cell_x,
                cell_y,
                c,
            );
        }
    }
    // Frame just outside the cells.
    cv.rect_outline(
        plot_x as i64 - 1,
        plot_y as i64 - 1,
        plot_w + 2,
        plot_h + 2,
        BLACK,
    );

    // Row ticks (left).
    for &i in &row_ticks {
        let y = plot_y as f64 + (i as f64 + 0.5) * row_px_per_index;
        let y = y.floor() as i64;
        cv.fill_rect((plot_x - 1 - TICK_LEN) as i64, y, TICK_LEN, 1, BLACK);
        let s = i.to_string();
        let x = plot_x - 1 - TICK_LEN - 4 - text_width(&s);
        cv.text(x as i64, y - (CAP_H / 2) as i64, &s, BLACK);
    }
    // Column ticks (bottom).
    let ticks_y = plot_y + plot_h + 1;
    for &j in &col_ticks {
        let x = plot_x as f64 + (j as f64 + 0.5) * col_px_per_index;
        let x = x.floor() as i64;
        cv.fill_rect(x, ticks_y as i64, 1, TICK_LEN, BLACK);
        let s = j.to_string();
        let tx = x - (text_width(&s) / 2) as i64;
        cv.text(tx, (ticks_y + TICK_LEN + 4) as i64, &s, BLACK);
    }

    // Axis labels.
    if !opts.x_label.is_empty() {
        let t = fit_text(&opts.x_label, width - 2 * MARGIN);
        let tw = text_width(&t);
        let centre = plot_x + plot_w / 2;
        let x = centre
            .saturating_sub(tw / 2)
            .clamp(MARGIN, width - MARGIN - tw);
        let y = ticks_y + TICK_LEN + 4 + CAP_H + 10;
        cv.text(x as i64, y as i64, &t, BLACK);
    }
    if !opts.y_label.is_empty() {
        let t = fit_text(&opts.y_label, height - 2 * MARGIN);
        let tw = text_width(&t);
        let centre = plot_y + plot_h / 2;
        // The text runs upwards from its start.
        let start = (centre + tw / 2).clamp(MARGIN + tw, height - MARGIN);
        cv.text_up(MARGIN as i64, start as i64, &t, BLACK);
    }

    // Colour bar: +scale at the top, -scale at the bottom.
    for y in 0..cb_h {
        let t = 1.0 - 2.0 * (y as f64 + 0.5) / cb_h as f64;
        let c = diverging_color(t, 1.0);
        cv.fill_rect(cb_x as i64, (plot_y + y) as i64, cb_w, 1, c);
    }
    cv.rect_outline(
        cb_x as i64 - 1,
        plot_y as i64 - 1,
        cb_w + 2,
        cb_h + 2,
        BLACK,
    );
    for (k, s) in cb_labels.iter().enumerate() {
        let y = match k {
            0 => plot_y,
            1 => plot_y + cb_h / 2,
            _ => plot_y + cb_h - 1,
        };
        cv.fill_rect((cb_x + cb_w + 1) as i64, y as i64, 4, 1, BLACK);
        let ty = (y as i64 - (CAP_H / 2) as i64).max(0);
        cv.text(cb_text_x as i64, ty, s, BLACK);
    }
    // Legend for the special values, under the bar.
    let mut ly = plot_y + cb_h + CAP_H / 2 + 12;
    for (s, c) in &legend_lines {
        cv.fill_rect(cb_x as i64, ly as i64, 14, CAP_H, *c);
        cv.rect_outline(cb_x as i64, ly as i64, 14, CAP_H, BLACK);
        cv.text((cb_x + 22) as i64, ly as i64, s, BLACK);
        ly += LINE_H + 4;
    }
    cv
}

// ---------------------------------------------------------------------------------------------
// Line plot
// ---------------------------------------------------------------------------------------------

const PLOT_W: usize = 960;
const PLOT_H: usize = 600;

/// Writes a line plot of `series` (each a name and its y values at x = 0, 1, 2, …) to `path`
/// as a PNG.
///
/// Each series gets its own colour from [`SERIES_COLORS`]; the image has a title, axes with
/// tick numbers and light grid lines, axis labels, and a legend in the top-right corner.
/// Non-finite values (and, with [`PlotOptions::log_y`], values ≤ 0) are left out and break the
/// line. Short series (at most 40 points) are also drawn with dots.
///
/// Errors: an empty `series`, or a series with no values, gives
/// [`Error::InvalidArgument`] naming `series`; failures to create or write the file give
/// [`Error::Io`].
///
/// ```
/// use eingrad_cli::plot::{line_plot_png, PlotOptions};
/// let path = std::env::temp_dir().join(format!("eingrad-doc-loss-{}.png", std::process::id()));
/// let train = [1.0, 0.6, 0.4, 0.3];
/// let valid = [1.1, 0.8, 0.7, 0.65];
/// let opts = PlotOptions { title: "loss".into(), x_label: "step".into(), ..Default::default() };
/// line_plot_png(&path, &[("train", &train[..]), ("valid", &valid[..])], &opts).unwrap();
/// assert!(line_plot_png(&path, &[], &opts).is_err());
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn line_plot_png(path: &Path, series: &[(&str, &[f64])], opts: &PlotOptions) -> Result<()> {
    const OP: &str = "line_plot_png";
    if series.is_empty() {
        return Err(arg_error(OP, "series", "is empty: nothing to plot"));
    }
    if let Some((i, (name, _))) = series.iter().enumerate().find(|(_, (_, v))| v.is_empty()) {
        return Err(arg_error(
            OP,
            "series",
            format!("series {i} (\"{name}\") has no values"),
        ));
    }
    let xy: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(n, v)| {
            (
                *n,
                v.iter().enumerate().map(|(i, &y)| (i as f64, y)).collect(),
            )
        })
        .collect();
    let canvas = render_line_plot(&xy, opts);
    canvas.save(path)
}

/// Writes a line plot of `series`, each a name and its `(x, y)` points (x increasing), to
/// `path` as a PNG: as [`line_plot_png`], for series sampled at different x (a training loss
/// at every step beside a validation loss every 250 steps). Points with a non-finite x or y
/// are left out and break the line.
///
/// Errors: an empty `series`, or a series with no points, gives [`Error::InvalidArgument`]
/// naming `series`.
///
/// ```
/// use eingrad_cli::plot::{line_plot_xy_png, PlotOptions};
/// let path = std::env::temp_dir().join(format!("eingrad-doc-xy-{}.png", std::process::id()));
/// let train: Vec<(f64, f64)> = (1..=100).map(|i| (i as f64, 3.0 / (i as f64).sqrt())).collect();
/// let val = [(0.0, 3.2), (50.0, 0.6), (100.0, 0.4)];
/// line_plot_xy_png(&path, &[("train", &train[..]), ("val", &val[..])], &PlotOptions::default())
///     .unwrap();
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn line_plot_xy_png(
    path: &Path,
    series: &[(&str, &[(f64, f64)])],
    opts: &PlotOptions,
) -> Result<()> {
    const OP: &str = "line_plot_xy_png";
    if series.is_empty() {
        return Err(arg_error(OP, "series", "is empty: nothing to plot"));
    }
    if let Some((i, (name, _))) = series.iter().enumerate().find(|(_, (_, v))| v.is_empty()) {
        return Err(arg_error(
            OP,
            "series",
            format!("series {i} (\"{name}\") has no points"),
        ));
    }
    let xy: Vec<(&str, Vec<(f64, f64)>)> = series.iter().map(|(n, v)| (*n, v.to_vec())).collect();
    render_line_plot(&xy, opts).save(path)
}

fn render_line_plot(series: &[(&str, Vec<(f64, f64)>)], opts: &PlotOptions) -> Canvas {
    let tf = |v: f64| -> Option<f64> {
        if opts.log_y {
            (v > 0.0 && v.is_finite()).then(|| v.log10())
        } else {
            v.is_finite().then_some(v)
        }
    };
    let n_max = series.iter().map(|(_, v)| v.len()).max().unwrap_or(1);
    let xs = || {
        series
            .iter()
            .flat_map(|(_, v)| v.iter().map(|p| p.0))
            .filter(|x| x.is_finite())
    };
    let x_min = xs().fold(f64::INFINITY, f64::min);
    let x_min = if x_min.is_finite() { x_min } else { 0.0 };
    let x_max = xs().fold(x_min, f64::max);

    // Data ranges (y in transformed space).
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for (_, vals) in series {
        for &(_, v) in vals.iter() {
            if let Some(t) = tf(v) {
                lo = lo.min(t);
                hi = hi.max(t);
            }
        }
    }
    if !(lo.is_finite() && hi.is_finite()) {
        lo = 0.0;
        hi = 1.0;
    }
    if hi - lo <= hi.abs().max(lo.abs()) * 1e-12 {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        lo -= pad;
        hi += pad;
    } else {
        let pad = (hi - lo) * 0.05;
        lo -= pad;
        hi += pad;
    }
    // x from the first to the last point, padded a little so that end points are not hidden
    // by the frame.
    let x_span = (x_max - x_min).max(1.0);
    let x_last = x_min + x_span;
    let (x_lo, x_hi) = (x_min - 0.02 * x_span, x_min + 1.02 * x_span);

    // Y ticks: (position in transformed space, label).
    let y_ticks: Vec<(f64, String)> = if opts.log_y {
        log_ticks(lo, hi)
    } else {
        let (ticks, step) = nice_ticks(lo, hi, 6, 0.0);
        ticks.into_iter().map(|t| (t, fmt_tick(t, step))).collect()
    };
    let (x_ticks, x_step) = nice_ticks(x_min, x_last, 8, 1.0);

    // Layout.
    let title_h = if opts.title.is_empty() {
        0
    } else {
        LINE_H + 12
    };
    let ylab_w = if opts.y_label.is_empty() {
        0
    } else {
        LINE_H + 10
    };
    let xlab_h = if opts.x_label.is_empty() {
        0
    } else {
        LINE_H + 8
    };
    let ytick_w = y_ticks
        .iter()
        .map(|(_, s)| text_width(s))
        .max()
        .unwrap_or(0);
    let px0 = MARGIN + ylab_w + ytick_w + 6 + TICK_LEN;
    let py0 = MARGIN + title_h + CAP_H / 2;
    let px1 = PLOT_W - MARGIN - text_width(&fmt_tick(x_last, x_step)) / 2;
    let py1 = PLOT_H - MARGIN - xlab_h - 10 - CAP_H - 4 - TICK_LEN;
    let (pw, ph) = ((px1 - px0) as f64, (py1 - py0) as f64);
    let to_x = |x: f64| px0 as f64 + (x - x_lo) / (x_hi - x_lo) * pw;
    let to_y = |y: f64| py1 as f64 - (y - lo) / (hi - lo) * ph;

    let mut cv = Canvas::new(PLOT_W, PLOT_H);

    if !opts.title.is_empty() {
        let t = fit_text(&opts.title, PLOT_W - 2 * MARGIN);
        let x = (PLOT_W - text_width(&t)) / 2;
        cv.text(x as i64, MARGIN as i64, &t, BLACK);
    }

    // Grid and ticks.
    for (t, s) in &y_ticks {
        let y = to_y(*t).round() as i64;
        cv.fill_rect(px0 as i64, y, px1 - px0, 1, GRID);
        cv.fill_rect((px0 - TICK_LEN) as i64, y, TICK_LEN, 1, BLACK);
        let x = px0 - TICK_LEN - 4 - text_width(s);
        cv.text(x as i64, y - (CAP_H / 2) as i64, s, BLACK);
    }
    for &t in &x_ticks {
        let x = to_x(t).round() as i64;
        cv.fill_rect(x, py0 as i64, 1, py1 - py0, GRID);
        cv.fill_rect(x, py1 as i64, 1, TICK_LEN, BLACK);
        let s = fmt_tick(t, x_step);
        let tx = x - (text_width(&s) / 2) as i64;
        cv.text(tx, (py1 + TICK_LEN + 4) as i64, &s, BLACK);
    }

    // Series.
    let clip = [px0 as i64, py0 as i64, px1 as i64 - 1, py1 as i64 - 1];
    let dots = n_max <= 40;
    for (k, (_, vals)) in series.iter().enumerate() {
        let c = SERIES_COLORS[k % SERIES_COLORS.len()];
        let mut prev: Option<(f64, f64)> = None;
        for &(x, v) in vals.iter() {
            match tf(v).filter(|_| x.is_finite()) {
                Some(t) => {
                    let p = (to_x(x), to_y(t));
                    if let Some(q) = prev {
                        cv.segment(q, p, 2.0, c, clip);
                    } else if vals.len() == 1 || !dots {
                        // An isolated point still shows.
                        cv.segment(p, p, 3.0, c, clip);
                    }
                    if dots {
                        cv.segment(p, p, 6.0, c, clip);
                    }
                    prev = Some(p);
                }
                None => prev = None,
            }
        }
    }

    // Axes frame.
    cv.rect_outline(px0 as i64, py0 as i64, px1 - px0 + 1, py1 - py0 + 1, BLACK);

    // Axis labels.
    if !opts.x_label.is_empty() {
        let t = fit_text(&opts.x_label, PLOT_W - 2 * MARGIN);
        let tw = text_width(&t);
        let x = ((px0 + px1) / 2)
            .saturating_sub(tw / 2)
            .clamp(MARGIN, PLOT_W - MARGIN - tw);
        cv.text(x as i64, (PLOT_H - MARGIN - LINE_H) as i64, &t, BLACK);
    }
    if !opts.y_label.is_empty() {
        let t = fit_text(&opts.y_label, PLOT_H - 2 * MARGIN);
        let tw = text_width(&t);
        let start = ((py0 + py1) / 2 + tw / 2).clamp(MARGIN + tw, PLOT_H - MARGIN);
        cv.text_up(MARGIN as i64, start as i64, &t, BLACK);
    }

    // Legend, top-right inside the axes.
    let names: Vec<String> = series
        .iter()
        .enumerate()
        .map(|(i, (n, _))| {
            if n.is_empty() {
                format!("series {i}")
            } else {
                n.to_string()
            }
        })
        .collect();
    let max_rows = ((py1 - py0).saturating_sub(20) / (LINE_H + 4)).max(1);
    let shown = names.len().min(max_rows);
    let name_w = names[..shown]
        .iter()
        .map(|n| text_width(&fit_text(n, 300)))
        .max()
        .unwrap_or(0);
    let lw = 10 + 28 + 8 + name_w + 10;
    let lh = 8 + shown * (LINE_H + 4) + 4;
    let lx = px1.saturating_sub(lw + 10).max(px0 + 1);
    let ly = py0 + 10;
    cv.fill_rect(lx as i64, ly as i64, lw, lh, WHITE);
    cv.rect_outline(lx as i64, ly as i64, lw, lh, LEGEND_EDGE);
    for (k, name) in names[..shown].iter().enumerate() {
        let c = SERIES_COLORS[k % SERIES_COLORS.len()];
        let row_y = ly + 8 + k * (LINE_H + 4);
        let mid = (row_y + CAP_H / 2) as f64;
        let a = ((lx + 10) as f64, mid);
        let b = ((lx + 38) as f64, mid);
        cv.fill_rect(
            lx as i64 + 10,
            row_y as i64 + (CAP_H / 2) as i64 - 1,
            28,
            2,
            c,
        );
        if dots {
            let m = ((a.0 + b.0) / 2.0, mid);
            cv.segment(m, m, 6.0, c, [0, 0, PLOT_W as i64, PLOT_H as i64]);
        }
        cv.text((lx + 46) as i64, row_y as i64, &fit_text(name, 300), BLACK);
    }
    cv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(1.5), "1.5");
        assert_eq!(fmt_num(-2.0), "-2");
        assert_eq!(fmt_num(123.456), "123");
        assert_eq!(fmt_num(0.012345), "0.0123");
        assert_eq!(fmt_num(1.5e-7), "1.5e-7");
        assert_eq!(fmt_num(2.0e6), "2e6");
        assert_eq!(fmt_tick(0.5, 0.5), "0.5");
        assert_eq!(fmt_tick(10.0, 5.0), "10");
        assert_eq!(fmt_tick(-1e-17, 0.2), "0.0");
        assert_eq!(fmt_tick(0.0, 5.0), "0");
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(index_stride(3.2), 5);
        assert_eq!(index_stride(0.5), 1);
    }

    #[test]
    fn fitting_text() {
        assert_eq!(fit_text("abc", 1000), "abc");
        let t = fit_text(&"x".repeat(100), 120);
        assert!(text_width(&t) <= 120 && t.ends_with(".."));
    }
}
