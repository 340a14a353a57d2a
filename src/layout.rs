//! [`Layout`]: how a tensor's logical indices map into its storage.
//!
//! Every view (permute, transpose, expand, narrow, diagonal, unfold, flip, squeeze, unsqueeze,
//! reshape when strides allow) is a pure function `&Layout -> Result<Layout>`; no data moves.

use crate::error::{Error, Result};

/// Shape, signed element strides and a starting offset into storage.
///
/// ```
/// use eingrad::Layout;
/// let l = Layout::contiguous(&[2, 3]);
/// assert_eq!(l.strides(), &[3, 1]);
/// let t = l.permute(&[1, 0]).unwrap();
/// assert_eq!(t.shape(), &[3, 2]);
/// assert_eq!(t.strides(), &[1, 3]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    shape: Dims,
    strides: Strides,
    offset: usize,
}

/// Dim sizes, inline up to rank 6 (no heap allocation for typical tensors).
pub type Dims = smallvec::SmallVec<[usize; 6]>;
/// Element strides, inline up to rank 6.
pub type Strides = smallvec::SmallVec<[isize; 6]>;

/// Row-major strides of a shape.
pub fn contiguous_strides(shape: &[usize]) -> Vec<isize> {
    let mut strides = vec![0isize; shape.len()];
    let mut acc = 1isize;
    for (s, &d) in strides.iter_mut().zip(shape).rev() {
        *s = acc;
        acc *= d.max(1) as isize;
    }
    strides
}

/// The element count of a shape given by a caller, or an error naming `op` and the shape
/// when the count does not fit in an `isize` (no buffer or stride could address it).
///
/// ```
/// assert_eq!(eingrad::layout::checked_numel("zeros", &[2, 3]).unwrap(), 6);
/// assert!(eingrad::layout::checked_numel("zeros", &[1 << 40, 1 << 40]).is_err());
/// ```
pub fn checked_numel(op: &'static str, shape: &[usize]) -> Result<usize> {
    if shape.contains(&0) {
        return Ok(0);
    }
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= isize::MAX as usize)
        .ok_or_else(|| {
            Error::arg(
                op,
                "shape",
                format!("{shape:?} has more elements than memory can address"),
            )
        })
}

/// Resolves a possibly negative dim against a rank.
pub fn resolve_dim(op: &'static str, dim: isize, rank: usize) -> Result<usize> {
    let r = rank as isize;
    let d = if dim < 0 { dim + r } else { dim };
    if d < 0 || d >= r {
        return Err(Error::DimOutOfRange { op, dim, rank });
    }
    Ok(d as usize)
}

impl Layout {
    /// A row-major layout of `shape` at offset 0.
    pub fn contiguous(shape: &[usize]) -> Self {
        Layout {
            shape: shape.into(),
            strides: contiguous_strides(shape).into(),
            offset: 0,
        }
    }
    /// A layout from its parts (the caller guarantees it stays within storage).
    pub fn new(shape: Vec<usize>, strides: Vec<isize>, offset: usize) -> Self {
        Layout {
            shape: shape.into(),
            strides: strides.into(),
            offset,
        }
    }
    /// The logical shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// Element strides, one per dim (may be 0 or negative).
    pub fn strides(&self) -> &[isize] {
        &self.strides
    }
    /// Offset of element `[0, …, 0]` in storage.
    pub fn offset(&self) -> usize {
        self.offset
    }
    /// Number of dims.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    /// True when the elements are row-major and dense starting at `offset`.
    pub fn is_contiguous(&self) -> bool {
        let mut acc = 1isize;
        for (&d, &s) in self.shape.iter().zip(&self.strides).rev() {
            if d != 1 && s != acc {
                return false;
            }
            // like `contiguous_strides`: a size-0 dim does not zero the strides before it
            acc *= d.max(1) as isize;
        }
        true
    }
    /// Storage offset of a multi-index.
    pub fn offset_of(&self, index: &[usize]) -> usize {
        let mut o = self.offset as isize;
        for (&i, &s) in index.iter().zip(&self.strides) {
            o += i as isize * s;
        }
        o as usize
    }
    /// The smallest and one-past-largest storage positions this layout touches.
    pub fn storage_span(&self) -> (usize, usize) {
        if self.numel() == 0 {
            return (self.offset, self.offset);
        }
        let (mut lo, mut hi) = (self.offset as isize, self.offset as isize);
        for (&d, &s) in self.shape.iter().zip(&self.strides) {
            let ext = (d as isize - 1) * s;
            if ext < 0 {
                lo += ext
            } else {
                hi += ext
            }
        }
        (lo as usize, hi as usize + 1)
    }

    /// Reorders dims: dim `i` of the result is dim `perm[i]` of `self`.
    pub fn permute(&self, perm: &[usize]) -> Result<Layout> {
        let n = self.rank();
        let mut seen = vec![false; n];
        if perm.len() != n
            || perm
                .iter()
                .any(|&p| p >= n || std::mem::replace(&mut seen[p], true))
        {
            return Err(Error::arg(
                "permute",
                "perm",
                format!("{perm:?} is not a permutation of 0..{n}"),
            ));
        }
        Ok(Layout {
            shape: perm.iter().map(|&p| self.shape[p]).collect(),
            strides: perm.iter().map(|&p| self.strides[p]).collect(),
            offset: self.offset,
        })
    }
    /// Swaps two dims.
    pub fn transpose(&self, a: isize, b: isize) -> Result<Layout> {
        let a = resolve_dim("transpose", a, self.rank())?;
        let b = resolve_dim("transpose", b, self.rank())?;
        let mut l = self.clone();
        l.shape.swap(a, b);
        l.strides.swap(a, b);
        Ok(l)
    }
    /// Broadcasts to `shape` (NumPy rules: align right, size-1 dims stretch with stride 0).
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Layout> {
        if shape.len() < self.rank() {
            return Err(Error::shapes("broadcast_to", &self.shape, shape));
        }
        checked_numel("broadcast_to", shape)?;
        let lead = shape.len() - self.rank();
        let mut strides = vec![0isize; shape.len()];
        for i in 0..self.rank() {
            let (from, to) = (self.shape[i], shape[lead + i]);
            if from == to {
                strides[lead + i] = self.strides[i];
            } else if from != 1 {
                return Err(Error::shapes("broadcast_to", &self.shape, shape));
            }
        }
        Ok(Layout {
            shape: shape.into(),
            strides: strides.into(),
            offset: self.offset,
        })
    }
    /// Elements `start, start+step, …` below `end` along `dim` (step ≥ 1).
    pub fn slice(&self, dim: isize, start: usize, end: usize, step: usize) -> Result<Layout> {
        let d = resolve_dim("slice", dim, self.rank())?;
        let n = self.shape[d];
        if step == 0 {
            return Err(Error::arg("slice", "step", "must be at least 1"));
        }
        if start > end || end > n {
            return Err(Error::arg(
                "slice",
                "start..end",
                format!("{start}..{end} does not fit dim {d} of size {n}"),
            ));
        }
        let mut l = self.clone();
        l.shape[d] = (end - start).div_ceil(step);
        if l.numel() > 0 {
            // an empty result keeps its offset, so offsets never run past the storage
            l.offset = (l.offset as isize + start as isize * self.strides[d]) as usize;
        }
        l.strides[d] = self.strides[d] * step as isize;
        Ok(l)
    }
    /// `len` elements from `start` along `dim`.
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Result<Layout> {
        self.slice(dim, start, start.saturating_add(len), 1)
    }
    /// The diagonal over `dims` (at least two dims of equal size): those dims are removed and
    /// one dim of their common size is appended last, like `torch.diagonal`.
    pub fn diagonal(&self, dims: &[usize]) -> Result<Layout> {
        if dims.len() < 2 {
            return Err(Error::arg("diagonal", "dims", "needs at least two dims"));
        }
        let mut seen = vec![false; self.rank()];
        for &d in dims {
            if d >= self.rank() || std::mem::replace(&mut seen[d], true) {
                return Err(Error::arg(
                    "diagonal",
                    "dims",
                    format!("{dims:?} must be distinct dims below {}", self.rank()),
                ));
            }
        }
        let size = self.shape[dims[0]];
        if dims.iter().any(|&d| self.shape[d] != size) {
            let sizes: Vec<usize> = dims.iter().map(|&d| self.shape[d]).collect();
            return Err(Error::arg(
                "diagonal",
                "dims",
                format!("dims {dims:?} have different sizes {sizes:?}"),
            ));
        }
        let mut shape = Dims::new();
        let mut strides = Strides::new();
        for (i, _) in seen.iter().enumerate().filter(|(_, &s)| !s) {
            shape.push(self.shape[i]);
            strides.push(self.strides[i]);
        }
        shape.push(size);
        strides.push(dims.iter().map(|&d| self.strides[d]).sum());
        Ok(Layout {
            shape,
            strides,
            offset: self.offset,
        })
    }
    /// Sliding windows of `size` every `step` along `dim`; the window axis is appended last.
    pub fn unfold(&self, dim: isize, size: usize, step: usize) -> Result<Layout> {
        let d = resolve_dim("unfold", dim, self.rank())?;
        if step == 0 {
            return Err(Error::arg("unfold", "step", "must be at least 1"));
        }
        if size > self.shape[d] {
            return Err(Error::arg(
                "unfold",
                "size",
                format!(
                    "window {size} is larger than dim {d} of size {}",
                    self.shape[d]
                ),
            ));
        }
        let mut l = self.clone();
        l.shape[d] = (self.shape[d] - size) / step + 1;
        l.strides[d] = self.strides[d] * step as isize;
        l.shape.push(size);
        l.strides.push(self.strides[d]);
        Ok(l)
    }
    /// Inserts a size-1 dim at `dim` (which may equal the rank).
    pub fn unsqueeze(&self, dim: isize) -> Result<Layout> {
        let d = resolve_dim("unsqueeze", dim, self.rank() + 1)?;
        let mut l = self.clone();
        l.shape.insert(d, 1);
        l.strides.insert(d, 0);
        Ok(l)
    }
    /// Removes size-1 dims: all of them (`None`) or the one given.
    pub fn squeeze(&self, dim: Option<isize>) -> Result<Layout> {
        let mut l = self.clone();
        match dim {
            Some(dim) => {
                let d = resolve_dim("squeeze", dim, self.rank())?;
                if l.shape[d] == 1 {
                    l.shape.remove(d);
                    l.strides.remove(d);
                }
            }
            None => {
                let keep: Vec<usize> = (0..self.rank()).filter(|&i| self.shape[i] != 1).collect();
                l.shape = keep.iter().map(|&i| self.shape[i]).collect();
                l.strides = keep.iter().map(|&i| self.strides[i]).collect();
            }
        }
        Ok(l)
    }
    /// Reverses the order along each of `dims`.
    pub fn flip(&self, dims: &[isize]) -> Result<Layout> {
        let mut l = self.clone();
        let mut seen = vec![false; self.rank()];
        for &dim in dims {
            let d = resolve_dim("flip", dim, self.rank())?;
            if std::mem::replace(&mut seen[d], true) {
                return Err(Error::arg(
                    "flip",
                    "dims",
                    format!("dim {dim} appears more than once in {dims:?}"),
                ));
            }
            if l.numel() > 0 {
                l.offset = (l.offset as isize + (l.shape[d] as isize - 1) * l.strides[d]) as usize;
            }
            l.strides[d] = -l.strides[d];
        }
        Ok(l)
    }
    /// The layout of `shape` over the same elements without copying, if strides allow.
    pub fn reshape_view(&self, shape: &[usize]) -> Option<Layout> {
        if shape.iter().product::<usize>() != self.numel() {
            return None;
        }
        if self.is_contiguous() {
            return Some(Layout {
                shape: shape.into(),
                strides: contiguous_strides(shape).into(),
                offset: self.offset,
            });
        }
        // Group old dims into runs that are contiguous among themselves, then split each run.
        let old: Vec<(usize, isize)> = self
            .shape
            .iter()
            .zip(&self.strides)
            .filter(|(&d, _)| d != 1)
            .map(|(&d, &s)| (d, s))
            .collect();
        let mut strides = vec![0isize; shape.len()];
        let mut oi = 0;
        let mut ni = 0;
        while ni < shape.len() {
            if shape[ni] == 1 {
                strides[ni] = 0;
                ni += 1;
                continue;
            }
            if oi >= old.len() {
                return None;
            }
            // collect a chunk of old dims whose product equals a chunk of new dims
            let mut old_prod = old[oi].0;
            let mut old_end = oi + 1;
            let mut new_prod = shape[ni];
            let mut new_end = ni + 1;
            while old_prod != new_prod {
                if old_prod < new_prod {
                    if old_end >= old.len() {
                        return None;
                    }
                    // must be mergeable: stride[k-1] == stride[k]*size[k]
                    if old[old_end - 1].1 != old[old_end].1 * old[old_end].0 as isize {
                        return None;
                    }
                    old_prod *= old[old_end].0;
                    old_end += 1;
                } else {
                    if new_end >= shape.len() {
                        return None;
                    }
                    new_prod *= shape[new_end];
                    new_end += 1;
                }
            }
            // the chunk's old dims must be mutually contiguous
            for k in oi + 1..old_end {
                if old[k - 1].1 != old[k].1 * old[k].0 as isize {
                    return None;
                }
            }
            let mut acc = old[old_end - 1].1;
            for k in (ni..new_end).rev() {
                strides[k] = acc;
                acc *= shape[k] as isize;
            }
            oi = old_end;
            ni = new_end;
        }
        if oi != old.len() {
            return None;
        }
        Some(Layout {
            shape: shape.into(),
            strides: strides.into(),
            offset: self.offset,
        })
    }
}

/// Broadcast shape of two shapes under NumPy rules.
pub fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(Error::ShapeMismatch {
                op,
                lhs: a.to_vec(),
                rhs: b.to_vec(),
                detail: format!(" (dim {i}: {da} vs {db} cannot broadcast)"),
            });
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_view_of_transposed_splits_runs() {
        let l = Layout::contiguous(&[4, 6]).transpose(0, 1).unwrap(); // (6,4) strides (1,6)
        assert!(l.reshape_view(&[24]).is_none());
        let split = l.reshape_view(&[2, 3, 4]).unwrap();
        assert_eq!(split.strides(), &[3, 1, 6]);
    }

    #[test]
    fn diagonal_sums_strides() {
        let l = Layout::contiguous(&[3, 3]).diagonal(&[0, 1]).unwrap();
        assert_eq!((l.shape(), l.strides()), (&[3usize][..], &[4isize][..]));
    }

    #[test]
    fn broadcast_errors_name_the_dim() {
        let e = broadcast_shapes("add", &[2, 3], &[4]).unwrap_err();
        assert!(e.to_string().contains("dim 1"), "{e}");
    }
}
