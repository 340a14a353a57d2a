//! The data the training commands read: the shipped character corpus (`data/shakespeare`) with
//! its character vocabulary, 90/10 split and random contiguous windows, and scikit-learn's
//! digits (`data/digits`) as batches. Nothing is downloaded; a malformed file is an error that
//! names the file and the place at fault.
//!
//! ```
//! use eingrad_cli::data::{CharCorpus, Rng, Vocab};
//! let corpus = CharCorpus::from_text("to be or not to be".into(), "example").unwrap();
//! assert_eq!(corpus.vocab().as_string(), " benort");
//! assert_eq!(corpus.vocab().encode("bet").unwrap(), vec![1, 2, 6]);
//! let e = corpus.vocab().encode("bee?").unwrap_err();
//! assert!(e.contains("'?'") && e.contains("position 3"), "{e}");
//! let mut rng = Rng::new(7);
//! let (x, y) = corpus.batch(corpus.train(), 2, 4, &mut rng).unwrap();
//! assert_eq!((x.len(), y.len()), (8, 8));
//! assert_eq!(&x[1..4], &y[..3]); // y is x shifted by one
//! # let _ = Vocab::from_text("ab");
//! ```

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The repository's `data/` folder, as seen from the source tree this binary was built from.
pub fn shipped_data_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("data");
    std::fs::canonicalize(&dir).unwrap_or(dir)
}

/// The shipped character corpus: `data/shakespeare/input.txt`.
pub fn shakespeare_path() -> PathBuf {
    shipped_data_dir().join("shakespeare").join("input.txt")
}

/// The shipped digits: `data/digits/digits.csv.gz`.
pub fn digits_path() -> PathBuf {
    shipped_data_dir().join("digits").join("digits.csv.gz")
}

/// A small deterministic random number generator (SplitMix64): the stream depends only on the
/// seed, and the whole state is one `u64`, so a checkpoint can store its position.
///
/// ```
/// use eingrad_cli::data::Rng;
/// let mut a = Rng::new(1);
/// let first = a.next_u64();
/// let mut b = Rng::from_state(Rng::new(1).state());
/// assert_eq!(b.next_u64(), first);
/// assert!(a.below(10) < 10);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }
    /// A generator at the position `state` (what [`Rng::state`] returned).
    pub fn from_state(state: u64) -> Rng {
        Rng { state }
    }
    /// The position in the stream.
    pub fn state(&self) -> u64 {
        self.state
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.state)
    }
    /// A uniform draw from `0..n` (`n ≥ 1`; multiply-shift, bias below 2⁻⁴⁰ for the sizes here).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
    /// A uniform draw from `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// SplitMix64's output function, a bijective mix of 64 bits.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An independent seed for part `k` of a run seeded with `seed`.
///
/// ```
/// use eingrad_cli::data::derive_seed;
/// assert_ne!(derive_seed(0, 1), derive_seed(0, 2));
/// assert_eq!(derive_seed(5, 1), derive_seed(5, 1));
/// ```
pub fn derive_seed(seed: u64, k: u64) -> u64 {
    mix64(mix64(seed ^ 0x5DEE_CE66_D1CE_4E5B).wrapping_add(k.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
}

/// A character vocabulary: ids are positions in a list of distinct characters (for a corpus,
/// its distinct characters in sorted order, as nanoGPT's `shakespeare_char/prepare.py`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocab {
    chars: Vec<char>,
    index: HashMap<char, usize>,
}

impl Vocab {
    /// The sorted distinct characters of `text`.
    pub fn from_text(text: &str) -> Vocab {
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        Vocab::build(chars)
    }

    /// The vocabulary whose id `i` is the `i`-th character of `chars` (as a checkpoint stores
    /// it). A repeated character or an empty string is an error.
    ///
    /// ```
    /// use eingrad_cli::data::Vocab;
    /// assert_eq!(Vocab::from_chars("ba").unwrap().encode("ab").unwrap(), vec![1, 0]);
    /// assert!(Vocab::from_chars("aba").unwrap_err().contains("twice"));
    /// ```
    pub fn from_chars(chars: &str) -> Result<Vocab, String> {
        let list: Vec<char> = chars.chars().collect();
        if list.is_empty() {
            return Err("the vocabulary is empty".into());
        }
        let v = Vocab::build(list);
        if v.index.len() != v.chars.len() {
            let mut seen = std::collections::HashSet::new();
            let c = v.chars.iter().find(|c| !seen.insert(**c)).copied();
            return Err(format!(
                "the vocabulary lists the character {:?} twice",
                c.unwrap_or(' ')
            ));
        }
        Ok(v)
    }

    fn build(chars: Vec<char>) -> Vocab {
        let index = chars.iter().enumerate().map(|(i, &c)| (c, i)).collect();
        Vocab { chars, index }
    }

    /// Number of characters.
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// True when there is no character.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The characters in id order, as one string (what a checkpoint's `vocab` holds).
    pub fn as_string(&self) -> String {
        self.chars.iter().collect()
    }

    /// The id of `c`.
    pub fn id(&self, c: char) -> Option<usize> {
        self.index.get(&c).copied()
    }

    /// The ids of the characters of `text`; a character outside the vocabulary is an error
    /// naming it and its position (in characters, from 0).
    pub fn encode(&self, text: &str) -> Result<Vec<usize>, String> {
        text.chars()
            .enumerate()
            .map(|(pos, c)| {
                self.id(c).ok_or_else(|| {
                    format!(
                        "the character {c:?} (U+{:04X}) at position {pos} is not in the \
                         vocabulary of {} characters",
                        c as u32,
                        self.len()
                    )
                })
            })
            .collect()
    }

    /// The text of `ids`; an id out of range is an error naming it.
    ///
    /// ```
    /// use eingrad_cli::data::Vocab;
    /// let v = Vocab::from_text("abc");
    /// assert_eq!(v.decode(&[2, 0]).unwrap(), "ca");
    /// assert!(v.decode(&[3]).unwrap_err().contains("id 3"));
    /// ```
    pub fn decode(&self, ids: &[usize]) -> Result<String, String> {
        ids.iter()
            .map(|&i| {
                self.chars.get(i).copied().ok_or_else(|| {
                    format!("id {i} is out of range for a vocabulary of {}", self.len())
                })
            })
            .collect()
    }
}

/// A character corpus encoded with its own vocabulary and split 90/10: the first 90% of the
/// characters train, the rest validate (nanoGPT's `shakespeare_char` split).
#[derive(Debug, Clone)]
pub struct CharCorpus {
    name: String,
    vocab: Vocab,
    ids: Vec<usize>,
    split: usize,
    checksum: u64,
}

impl CharCorpus {
    /// Reads and encodes the UTF-8 text file at `path`. A missing file, one that is not UTF-8
    /// (the error gives the byte offset) or one with fewer than 2 characters is an error.
    pub fn load(path: &Path) -> Result<CharCorpus, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            format!(
                "{} is not UTF-8 text: invalid byte at offset {}",
                path.display(),
                e.utf8_error().valid_up_to()
            )
        })?;
        CharCorpus::from_text(text, &path.display().to_string())
    }

    /// A corpus from `text` (named `name` in messages).
    pub fn from_text(text: String, name: &str) -> Result<CharCorpus, String> {
        let vocab = Vocab::from_text(&text);
        let ids = vocab.encode(&text)?;
        if ids.len() < 2 {
            return Err(format!(
                "{name} holds {} characters: a corpus needs at least 2",
                ids.len()
            ));
        }
        // nanoGPT: train = data[:int(n*0.9)].
        let split = (ids.len() as f64 * 0.9) as usize;
        Ok(CharCorpus {
            name: name.to_string(),
            vocab,
            checksum: fnv1a64(text.as_bytes()),
            ids,
            split,
        })
    }

    /// Where the corpus came from (a path), for messages.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The corpus's own vocabulary (its sorted distinct characters).
    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }
    /// The training ids (the first 90%).
    pub fn train(&self) -> &[usize] {
        &self.ids[..self.split]
    }
    /// The validation ids (the last 10%).
    pub fn val(&self) -> &[usize] {
        &self.ids[self.split..]
    }
    /// A 64-bit FNV-1a hash of the file's bytes (a checkpoint records it, so that a resumed run
    /// can tell that its data changed).
    pub fn checksum(&self) -> u64 {
        self.checksum
    }

    /// `b` random windows of `t` ids from `data` and their next ids: `x = data[i..i+t]`,
    /// `y = data[i+1..i+t+1]` with `i` uniform in `0..len−t` (nanoGPT's `get_batch`), both
    /// row-major `(b, t)`. Data of `t` ids or fewer is an error.
    pub fn batch(
        &self,
        data: &[usize],
        b: usize,
        t: usize,
        rng: &mut Rng,
    ) -> Result<(Vec<usize>, Vec<usize>), String> {
        if data.len() <= t {
            return Err(format!(
                "{}: a split of {} characters is too short for windows of {t} (block_size)",
                self.name,
                data.len()
            ));
        }
        let mut x = Vec::with_capacity(b * t);
        let mut y = Vec::with_capacity(b * t);
        for _ in 0..b {
            let i = rng.below(data.len() - t);
            x.extend_from_slice(&data[i..i + t]);
            y.extend_from_slice(&data[i + 1..i + t + 1]);
        }
        Ok((x, y))
    }
}

/// 64-bit FNV-1a.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// Pixels per digit image (8×8).
pub const DIGIT_PIXELS: usize = 64;
/// Images of the shipped digits that train (the first 1,500); the last 297 are the test set.
pub const DIGITS_TRAIN: usize = 1500;

/// Digit images as rows of 64 pixels scaled to `[0, 1]` (value / 16) with labels 0..9.
#[derive(Debug, Clone, PartialEq)]
pub struct Digits {
    /// `n × 64` pixels, row-major.
    pub pixels: Vec<f32>,
    /// `n` labels.
    pub labels: Vec<usize>,
}

impl Digits {
    /// Reads scikit-learn's `digits.csv.gz` (gzip; one image per line: 64 pixels 0..16, then
    /// the label 0..9). A file that is not gzip, or a line with the wrong number of fields or
    /// a value out of range, is an error naming the file, line and column.
    pub fn load(path: &Path) -> Result<Digits, String> {
        let file = std::fs::File::open(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut text = String::new();
        flate2::read::GzDecoder::new(file)
            .read_to_string(&mut text)
            .map_err(|e| format!("{} is not a gzip-compressed text file: {e}", path.display()))?;
        Digits::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the CSV text of the digits (see [`Digits::load`]).
    ///
    /// ```
    /// use eingrad_cli::data::Digits;
    /// let line = format!("{}16,3\n", "0,".repeat(63));
    /// let d = Digits::parse(&line).unwrap();
    /// assert_eq!((d.labels[0], d.pixels[63]), (3, 1.0));
    /// assert!(Digits::parse("1,2\n").unwrap_err().contains("line 1"));
    /// ```
    pub fn parse(text: &str) -> Result<Digits, String> {
        let mut d = Digits {
            pixels: Vec::new(),
            labels: Vec::new(),
        };
        for (ln, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() != DIGIT_PIXELS + 1 {
                return Err(format!(
                    "line {}: {} fields, expected {} (64 pixels and a label)",
                    ln + 1,
                    fields.len(),
                    DIGIT_PIXELS + 1
                ));
            }
            for (col, f) in fields.iter().enumerate() {
                let v: u32 = f.trim().parse().map_err(|_| {
                    format!(
                        "line {}, column {}: {f:?} is not a whole number",
                        ln + 1,
                        col + 1
                    )
                })?;
                let max = if col == DIGIT_PIXELS { 9 } else { 16 };
                if v > max {
                    return Err(format!(
                        "line {}, column {}: {v} is out of range 0..={max}",
                        ln + 1,
                        col + 1
                    ));
                }
                if col == DIGIT_PIXELS {
                    d.labels.push(v as usize);
                } else {
                    d.pixels.push(v as f32 / 16.0);
                }
            }
        }
        if d.labels.is_empty() {
            return Err("holds no images".into());
        }
        Ok(d)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there is no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The first `n` images and the rest (train and test). `n` must leave both non-empty.
    pub fn split_at(&self, n: usize) -> Result<(Digits, Digits), String> {
        if n == 0 || n >= self.len() {
            return Err(format!(
                "{} images cannot be split into {n} training images and a non-empty test set",
                self.len()
            ));
        }
        let p = n * DIGIT_PIXELS;
        Ok((
            Digits {
                pixels: self.pixels[..p].to_vec(),
                labels: self.labels[..n].to_vec(),
            },
            Digits {
                pixels: self.pixels[p..].to_vec(),
                labels: self.labels[n..].to_vec(),
            },
        ))
    }

    /// The images at `indices`: `(pixels (k × 64), labels)`.
    pub fn gather(&self, indices: &[usize]) -> (Vec<f32>, Vec<usize>) {
        let mut px = Vec::with_capacity(indices.len() * DIGIT_PIXELS);
        let mut lb = Vec::with_capacity(indices.len());
        for &i in indices {
            px.extend_from_slice(&self.pixels[i * DIGIT_PIXELS..(i + 1) * DIGIT_PIXELS]);
            lb.push(self.labels[i]);
        }
        (px, lb)
    }

    /// A batch of `b` images drawn uniformly (with replacement) with `rng`.
    pub fn batch(&self, b: usize, rng: &mut Rng) -> (Vec<f32>, Vec<usize>) {
        let idx: Vec<usize> = (0..b).map(|_| rng.below(self.len())).collect();
        self.gather(&idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_corpus_and_digits() {
        let c = CharCorpus::load(&shakespeare_path()).unwrap();
        assert_eq!(c.vocab().len(), 76);
        assert_eq!(c.train().len() + c.val().len(), 1_105_209);
        assert_eq!(c.train().len(), 994_688);
        let d = Digits::load(&digits_path()).unwrap();
        assert_eq!(d.len(), 1797);
        let (tr, te) = d.split_at(DIGITS_TRAIN).unwrap();
        assert_eq!((tr.len(), te.len()), (1500, 297));
        assert!(d.pixels.iter().all(|&p| (0.0..=1.0).contains(&p)));
    }

    #[test]
    fn windows_are_deterministic_and_in_range() {
        let c = CharCorpus::from_text("abcdefghij".into(), "t").unwrap();
        let mut r1 = Rng::new(3);
        let mut r2 = Rng::new(3);
        let a = c.batch(c.train(), 5, 3, &mut r1).unwrap();
        let b = c.batch(c.train(), 5, 3, &mut r2).unwrap();
        assert_eq!(a, b);
        for w in a.1.chunks(3) {
            assert!(w.iter().all(|&i| i < 9));
        }
        assert!(c.batch(c.val(), 1, 3, &mut r1).is_err());
        let bad = String::from_utf8_lossy(&[0xff]).into_owned();
        assert!(CharCorpus::from_text(bad, "x").is_err());
    }
}
