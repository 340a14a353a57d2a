//! [`Embedding`]: a lookup table of learned vectors, `weight[ids]`.

use super::init;
use super::Module;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// A table of `num_embeddings` vectors of size `embedding_dim`; looking up ids selects rows
/// (`index_select` on dim 0, whose backward adds each output gradient into its row, so
/// repeated ids accumulate).
///
/// ```
/// use eingrad::nn::Embedding;
/// use eingrad::Tensor;
/// let w = Tensor::from_vec(vec![0.0f32, 0.5, 1.0, 1.5, 2.0, 2.5], &[3, 2]).unwrap();
/// let emb = Embedding::from_weight(w).unwrap();
/// let y = emb.lookup(&[2, 0, 2], &[3]).unwrap();
/// assert_eq!(y.dims(), &[3, 2]);
/// assert_eq!(y.to_vec::<f32>().unwrap(), vec![2.0, 2.5, 0.0, 0.5, 2.0, 2.5]);
/// assert!(emb.lookup(&[3], &[1]).unwrap_err().to_string().contains("ids"));
/// ```
#[derive(Clone)]
pub struct Embedding {
    weight: Tensor,
}

impl Embedding {
    /// A table with PyTorch's default init, N(0, 1), drawn from `seed`.
    pub fn new(
        num_embeddings: usize,
        embedding_dim: usize,
        dtype: DType,
        seed: u64,
    ) -> Result<Embedding> {
        Ok(Embedding {
            weight: init::normal(&[num_embeddings, embedding_dim], 0.0, 1.0, dtype, seed)?,
        })
    }
    /// A table with the given weight `(num_embeddings, embedding_dim)`; a leaf is marked
    /// `requires_grad`.
    pub fn from_weight(weight: Tensor) -> Result<Embedding> {
        if weight.rank() != 2 {
            return Err(Error::arg(
                "Embedding::from_weight",
                "weight",
                format!(
                    "must have shape (num_embeddings, embedding_dim), got {:?}",
                    weight.dims()
                ),
            ));
        }
        Ok(Embedding {
            weight: super::as_parameter(weight),
        })
    }
    /// The table, `(num_embeddings, embedding_dim)`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
    /// Number of rows.
    pub fn num_embeddings(&self) -> usize {
        self.weight.dims()[0]
    }
    /// Size of each vector.
    pub fn embedding_dim(&self) -> usize {
        self.weight.dims()[1]
    }
    /// The vectors of `ids` (row-major, of `shape`): a tensor of shape `shape ++
    /// [embedding_dim]`.
    pub fn lookup(&self, ids: &[usize], shape: &[usize]) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        if n != ids.len() {
            return Err(Error::arg(
                "Embedding::lookup",
                "shape",
                format!("{shape:?} holds {n} ids, but {} were given", ids.len()),
            ));
        }
        if let Some((i, &id)) = ids
            .iter()
            .enumerate()
            .find(|(_, &id)| id >= self.num_embeddings())
        {
            return Err(Error::arg(
                "Embedding::lookup",
                "ids",
                format!(
                    "ids[{i}] = {id} is out of range for a table of {} rows",
                    self.num_embeddings()
                ),
            ));
        }
        let mut out_shape = shape.to_vec();
        out_shape.push(self.embedding_dim());
        self.weight.index_select(0, ids)?.reshape(&out_shape)
    }
}

/// Reads a tensor of ids (whole numbers stored as floats) into a list.
pub(crate) fn ids_of(op: &'static str, x: &Tensor) -> Result<Vec<usize>> {
    x.to_vec_f64()
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            if v >= 0.0 && v.fract() == 0.0 && v < usize::MAX as f64 {
                Ok(v as usize)
            } else {
                Err(Error::arg(
                    op,
                    "ids",
                    format!("element {i} is {v}, not a non-negative whole number"),
                ))
            }
        })
        .collect()
}

/// Reads a `(b, t)` tensor of ids (a language model's input): the ids row-major, `b`, `t`.
pub(crate) fn batch_ids_of(op: &'static str, x: &Tensor) -> Result<(Vec<usize>, usize, usize)> {
    if x.rank() != 2 {
        return Err(Error::arg(
            op,
            "x",
            format!("must hold ids of shape (b, t), got {:?}", x.dims()),
        ));
    }
    Ok((ids_of(op, x)?, x.dims()[0], x.dims()[1]))
}

impl Module for Embedding {
    /// `x` holds ids as whole numbers (any shape); the output has shape `x.shape ++
    /// [embedding_dim]`. [`Embedding::lookup`] takes ids directly.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let ids = ids_of("Embedding::forward", x)?;
        self.lookup(&ids, x.dims())
    }
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        vec![("weight".to_string(), self.weight.clone())]
    }
}

impl std::fmt::Debug for Embedding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Embedding({}, {})",
            self.num_embeddings(),
            self.embedding_dim()
        )
    }
}
