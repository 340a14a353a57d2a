//! PNG plots: write heatmaps and line plots, decode them again and check pixels.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use eingrad::Error;
use eingrad_cli::plot::{
    diverging_color, heatmap_png, line_plot_png, HeatmapOptions, PlotOptions, NAN_COLOR,
    SERIES_COLORS,
};

/// A fresh directory under the system temp dir, unique to this process and call.
fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "eingrad-plot-{tag}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Image {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Image {
    fn at(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.w + x) * 3;
        [self.px[i], self.px[i + 1], self.px[i + 2]]
    }
    /// Bounding box (x0, y0, x1, y1), inclusive, of the pixels equal to `c`, and their count.
    fn bbox_of(&self, c: [u8; 3]) -> Option<((usize, usize, usize, usize), usize)> {
        let mut bb: Option<(usize, usize, usize, usize)> = None;
        let mut n = 0;
        for y in 0..self.h {
            for x in 0..self.w {
                if self.at(x, y) == c {
                    n += 1;
                    bb = Some(match bb {
                        None => (x, y, x, y),
                        Some((a, b, cc, d)) => (a.min(x), b.min(y), cc.max(x), d.max(y)),
                    });
                }
            }
        }
        bb.map(|b| (b, n))
    }
    fn count(&self, c: [u8; 3]) -> usize {
        self.px.chunks(3).filter(|p| *p == c).count()
    }
}

fn read_png(path: &Path) -> Image {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    buf.truncate(info.buffer_size());
    Image {
        w: info.width as usize,
        h: info.height as usize,
        px: buf,
    }
}

fn redish(c: [u8; 3]) -> bool {
    c[0] > 150 && c[1] < 80 && c[2] < 80
}
fn blueish(c: [u8; 3]) -> bool {
    c[2] > 150 && c[0] < 80 && c[0] < c[2]
}
fn whiteish(c: [u8; 3]) -> bool {
    c.iter().all(|&v| v > 240)
}

#[test]
fn heatmap_cells_have_the_expected_colours() {
    let dir = temp_dir("heat");
    let path = dir.join("jac.png");
    // [ max, 0 ]
    // [ NaN, min ]
    let values = [3.0, 0.0, f64::NAN, -3.0];
    let opts = HeatmapOptions {
        title: "∂y/∂x (2×2)".into(),
        x_label: "input j".into(),
        y_label: "output i".into(),
        cell_px: 0,
    };
    heatmap_png(&path, &values, 2, 2, &opts).unwrap();
    let img = read_png(&path);
    assert!(img.w >= 100 && img.w <= 1600, "width {}", img.w);
    assert!(img.h >= 100 && img.h <= 1600, "height {}", img.h);

    // The NaN cell is the first grey area in reading order (the grey "NaN" legend swatch
    // sits below the colour bar): its top-left pixel and run give the cell.
    let first = (0..img.w * img.h)
        .find(|&k| img.at(k % img.w, k / img.w) == NAN_COLOR)
        .expect("a grey NaN cell");
    let (x0, y0) = (first % img.w, first / img.w);
    let cell = (x0..img.w)
        .take_while(|&x| img.at(x, y0) == NAN_COLOR)
        .count();
    let cell_h = (y0..img.h)
        .take_while(|&y| img.at(x0, y) == NAN_COLOR)
        .count();
    assert!(cell >= 8, "cell {cell}");
    assert_eq!(cell, cell_h, "square cells");
    let (cx, cy) = (x0 + cell / 2, y0 + cell / 2);
    assert_eq!(img.at(cx, cy), NAN_COLOR);
    let top_left = img.at(cx, cy - cell);
    let top_right = img.at(cx + cell, cy - cell);
    let bottom_right = img.at(cx + cell, cy);
    assert!(redish(top_left), "max cell {top_left:?}");
    assert_eq!(top_left, diverging_color(3.0, 3.0));
    assert!(whiteish(top_right), "zero cell {top_right:?}");
    assert!(blueish(bottom_right), "min cell {bottom_right:?}");
    assert_eq!(bottom_right, diverging_color(-3.0, 3.0));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn heatmap_infinities_take_the_extreme_colours() {
    let dir = temp_dir("inf");
    let path = dir.join("inf.png");
    let values = [f64::INFINITY, 1.0, f64::NEG_INFINITY, 0.5];
    let opts = HeatmapOptions {
        cell_px: 30,
        ..Default::default()
    };
    heatmap_png(&path, &values, 1, 4, &opts).unwrap();
    let img = read_png(&path);
    // +inf and 1.0 share the extreme red, so the red count covers two cells at least.
    let red = diverging_color(1.0, 1.0);
    let blue = diverging_color(-1.0, 1.0);
    assert!(redish(red) && blueish(blue));
    let cell_area = 30 * 48; // one row is stretched to the minimum height of 48 px
    assert!(img.count(red) >= 2 * cell_area, "{}", img.count(red));
    assert!(img.count(blue) >= cell_area);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn large_heatmap_is_downsampled_and_bounded() {
    let dir = temp_dir("large");
    let path = dir.join("large.png");
    let (rows, cols) = (2500, 1300);
    let values: Vec<f64> = (0..rows * cols)
        .map(|k| ((k / cols) as f64 - (k % cols) as f64) / 100.0)
        .collect();
    heatmap_png(&path, &values, rows, cols, &HeatmapOptions::default()).unwrap();
    let img = read_png(&path);
    assert!(img.w <= 1600 && img.h <= 1600, "{}×{}", img.w, img.h);
    assert!(img.w >= 400 && img.h >= 600, "{}×{}", img.w, img.h);

    // A user cell size that would be huge is capped too.
    let path2 = dir.join("big-cells.png");
    let opts = HeatmapOptions {
        cell_px: 500,
        ..Default::default()
    };
    heatmap_png(&path2, &[1.0; 100], 10, 10, &opts).unwrap();
    let img = read_png(&path2);
    assert!(img.w <= 1600 && img.h <= 1600, "{}×{}", img.w, img.h);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn heatmap_all_zero_and_single_cell() {
    let dir = temp_dir("zero");
    let path = dir.join("zero.png");
    heatmap_png(&path, &[0.0; 6], 2, 3, &HeatmapOptions::default()).unwrap();
    let img = read_png(&path);
    assert!(img.w > 0 && img.h > 0);
    let path = dir.join("one.png");
    heatmap_png(&path, &[-7.0], 1, 1, &HeatmapOptions::default()).unwrap();
    let img = read_png(&path);
    assert!(img.count(diverging_color(-1.0, 1.0)) >= 48 * 48);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn heatmap_bad_inputs_are_errors() {
    let dir = temp_dir("bad");
    let path = dir.join("bad.png");
    let opts = HeatmapOptions::default();
    let err = heatmap_png(&path, &[1.0, 2.0, 3.0], 2, 2, &opts).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { arg: "values", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("values"));
    let err = heatmap_png(&path, &[], 0, 2, &opts).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { arg: "rows", .. }),
        "{err}"
    );
    let err = heatmap_png(&path, &[], 2, 0, &opts).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { arg: "cols", .. }),
        "{err}"
    );
    let err = heatmap_png(&path, &[1.0], usize::MAX, 2, &opts).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { arg: "values", .. }),
        "{err}"
    );
    assert!(!path.exists());
    // A file that cannot be created is an io error.
    let missing = dir.join("no-such-dir").join("x.png");
    let err = heatmap_png(&missing, &[1.0], 1, 1, &opts).unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn line_plot_draws_series_in_distinct_colours() {
    let dir = temp_dir("line");
    let path = dir.join("loss.png");
    let train: Vec<f64> = (0..200).map(|i| 2.0 * (-(i as f64) / 40.0).exp()).collect();
    let valid: Vec<f64> = (0..200)
        .map(|i| 2.2 * (-(i as f64) / 50.0).exp() + 0.1)
        .collect();
    let opts = PlotOptions {
        title: "loss".into(),
        x_label: "step".into(),
        y_label: "loss".into(),
        log_y: false,
    };
    line_plot_png(&path, &[("train", &train), ("valid", &valid)], &opts).unwrap();
    let img = read_png(&path);
    assert_eq!((img.w, img.h), (960, 600));
    assert_ne!(SERIES_COLORS[0], SERIES_COLORS[1]);
    let (bb0, n0) = img.bbox_of(SERIES_COLORS[0]).expect("first series drawn");
    let (bb1, n1) = img.bbox_of(SERIES_COLORS[1]).expect("second series drawn");
    // Lines, not just legend swatches: they span most of the width.
    assert!(n0 > 300 && n1 > 300, "{n0} {n1}");
    assert!(bb0.2 - bb0.0 > 600 && bb1.2 - bb1.0 > 600);
    // Decreasing curves: the line starts high on the left and ends low on the right.
    assert!(bb0.3 - bb0.1 > 300, "{bb0:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn line_plot_log_axis_and_odd_values() {
    let dir = temp_dir("log");
    let path = dir.join("log.png");
    let a = [1.0, 0.1, f64::NAN, 0.001, 1e-4, 0.0, -1.0];
    let b = [5.0];
    let opts = PlotOptions {
        log_y: true,
        ..Default::default()
    };
    line_plot_png(&path, &[("a", &a), ("", &b)], &opts).unwrap();
    let img = read_png(&path);
    assert_eq!((img.w, img.h), (960, 600));
    assert!(img.count(SERIES_COLORS[0]) > 50);
    assert!(img.count(SERIES_COLORS[1]) > 10);

    // All values non-finite: still an image (empty axes), no panic.
    let c = [f64::NAN, f64::INFINITY];
    let path = dir.join("nan.png");
    line_plot_png(&path, &[("c", &c)], &PlotOptions::default()).unwrap();
    assert_eq!(read_png(&path).w, 960);
    // A constant series.
    let path = dir.join("const.png");
    line_plot_png(&path, &[("k", &[2.0; 10])], &PlotOptions::default()).unwrap();
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn line_plot_bad_inputs_are_errors() {
    let dir = temp_dir("linebad");
    let path = dir.join("bad.png");
    let err = line_plot_png(&path, &[], &PlotOptions::default()).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { arg: "series", .. }),
        "{err}"
    );
    let err =
        line_plot_png(&path, &[("a", &[1.0]), ("b", &[])], &PlotOptions::default()).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { arg: "series", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("\"b\""));
    assert!(!path.exists());
    let missing = dir.join("no-such-dir").join("x.png");
    let err = line_plot_png(&missing, &[("a", &[1.0])], &PlotOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Writes sample images to a fixed place for a person to look at; run with `--ignored`.
#[test]
#[ignore]
fn write_samples() {
    let dir = std::env::temp_dir().join("eingrad-plot-samples");
    std::fs::create_dir_all(&dir).unwrap();
    let (r, c) = (12, 20);
    let mut v: Vec<f64> = (0..r * c)
        .map(|k| {
            let (i, j) = ((k / c) as f64, (k % c) as f64);
            (i / 3.0).sin() * (j / 4.0).cos() * 2.5
        })
        .collect();
    v[5] = f64::NAN;
    v[30] = f64::INFINITY;
    let opts = HeatmapOptions {
        title: "∂y/∂x  Jacobian (12×20), |J|max = 2.5".into(),
        x_label: "input index j".into(),
        y_label: "output index i".into(),
        cell_px: 0,
    };
    heatmap_png(&dir.join("heatmap.png"), &v, r, c, &opts).unwrap();
    let (r, c) = (300, 1500);
    let v: Vec<f64> = (0..r * c)
        .map(|k| ((k / c) as f64 / 30.0).sin() + ((k % c) as f64 / 200.0).cos() - 0.5)
        .collect();
    heatmap_png(&dir.join("heatmap_large.png"), &v, r, c, &opts).unwrap();
    heatmap_png(
        &dir.join("heatmap_row.png"),
        &[0.5, -1.0, 0.25, 2.0, 0.0],
        1,
        5,
        &HeatmapOptions {
            title: "grad [x]".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let train: Vec<f64> = (0..300)
        .map(|i| 2.0 * (-(i as f64) / 60.0).exp() + 0.05 * ((i as f64) / 3.0).sin().abs())
        .collect();
    let valid: Vec<f64> = (0..300)
        .map(|i| 2.2 * (-(i as f64) / 80.0).exp() + 0.15)
        .collect();
    let opts = PlotOptions {
        title: "Training loss (seed 0)".into(),
        x_label: "step".into(),
        y_label: "loss".into(),
        log_y: false,
    };
    line_plot_png(
        &dir.join("loss.png"),
        &[("train", &train), ("valid", &valid)],
        &opts,
    )
    .unwrap();
    let opts = PlotOptions {
        log_y: true,
        title: "loss, log scale".into(),
        ..opts
    };
    line_plot_png(
        &dir.join("loss_log.png"),
        &[("train", &train), ("valid", &valid)],
        &opts,
    )
    .unwrap();
    let few = [3.0, 1.0, 0.5, 0.7, 0.2, -0.1];
    line_plot_png(
        &dir.join("few.png"),
        &[("few points", &few)],
        &PlotOptions::default(),
    )
    .unwrap();
}
