//! Contraction-order planning for einsum, in the manner of opt_einsum.
//!
//! A many-operand einsum is evaluated as a sequence of pairwise contractions; the order matters
//! enormously for cost. [`plan_contraction`] picks an order (exhaustive search for few operands,
//! greedy for many) and describes every step: which operands it contracts, their labels, the
//! labels it keeps, its FLOP count and the size of its result.
//!
//! Labels are plain `char`s (see [`super::parse::resolve`], which expands ellipses into
//! synthetic non-letter labels). Repeated labels within a term (diagonals) are kept as given in
//! the step inputs and count once for FLOPs; output labels that appear in no input, and repeated
//! output labels, are left to the executor's final broadcast/diagonal embedding.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::error::{Error, Result};

/// A contraction path: each step contracts the listed positions of the current operand list
/// (opt_einsum convention: the two (or one) operands are removed and the result appended at the
/// end). Positions within a step are listed in ascending order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ContractionPath(pub Vec<Vec<usize>>);

/// How [`plan_contraction`] chooses the contraction order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PlanStrategy {
    /// [`PlanStrategy::Optimal`] for up to [`AUTO_OPTIMAL_MAX_OPERANDS`] operands, else
    /// [`PlanStrategy::Greedy`].
    #[default]
    Auto,
    /// Exhaustive search over all pairwise contraction trees (minimal total FLOPs, ties broken
    /// by the smaller largest intermediate); falls back to greedy beyond
    /// [`OPTIMAL_MAX_OPERANDS`] operands.
    Optimal,
    /// opt_einsum's greedy: repeatedly contract the pair whose result is smallest relative to
    /// its inputs (size of result minus sizes of inputs).
    Greedy,
    /// Contract operand 0 with 1, the result with 2, and so on (for benchmarking).
    LeftToRight,
}

/// The most operands for which [`PlanStrategy::Auto`] runs the exhaustive search.
pub const AUTO_OPTIMAL_MAX_OPERANDS: usize = 8;

/// The most operands for which [`PlanStrategy::Optimal`] runs the exhaustive search (its cost
/// grows as 3^n); beyond this it falls back to [`PlanStrategy::Greedy`].
pub const OPTIMAL_MAX_OPERANDS: usize = 12;

/// One step of a contraction plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanStep {
    /// Positions in the current operand list that this step contracts (ascending; one or two).
    pub operands: Vec<usize>,
    /// The label lists of those operands, in the order of `operands` (labels may repeat).
    pub inputs: Vec<Vec<char>>,
    /// The labels of the step's result (distinct); labels of the inputs not listed are summed.
    /// For the last step they follow the order of the final output.
    pub output: Vec<char>,
    /// The step's FLOP count (opt_einsum's `flop_count`).
    pub flops: f64,
    /// The number of elements of the step's result (saturating).
    pub size: usize,
}

/// A planned einsum: the contraction path, its steps and cost estimates.
#[derive(Debug, Clone, PartialEq)]
pub struct EinsumPlan {
    /// The pattern as the user wrote it (for display and errors).
    pub pattern: String,
    /// The label list of every input operand.
    pub inputs: Vec<Vec<char>>,
    /// The labels the contraction keeps (distinct, each held by some input).
    pub output: Vec<char>,
    /// The einsum's whole output as written: equal to `output`, or a generalised one that
    /// repeats a label (`i->ii`: the result embedded on a diagonal) or names an output-only
    /// label (`j->ij`: broadcast), which a last step after the contraction builds.
    pub final_output: Vec<char>,
    /// The size of every label.
    pub sizes: BTreeMap<char, usize>,
    /// The chosen contraction path.
    pub path: ContractionPath,
    /// One entry per path step.
    pub steps: Vec<PlanStep>,
    /// FLOPs of evaluating the whole einsum in one go.
    pub naive_flops: f64,
    /// Total FLOPs of the steps.
    pub optimized_flops: f64,
    /// The largest step result, in elements.
    pub largest_intermediate: usize,
}

fn plan_err(pattern: &str, msg: impl Into<String>) -> Error {
    Error::Einsum {
        pattern: pattern.to_string(),
        msg: msg.into(),
    }
}

/// A fixed-width bit set over label indices.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bits(Vec<u64>);

impl Bits {
    fn empty(words: usize) -> Bits {
        Bits(vec![0; words])
    }
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] >> (i % 64) & 1 == 1
    }
    fn zip(&self, o: &Bits, f: impl Fn(u64, u64) -> u64) -> Bits {
        Bits(self.0.iter().zip(&o.0).map(|(&a, &b)| f(a, b)).collect())
    }
    fn or(&self, o: &Bits) -> Bits {
        self.zip(o, |a, b| a | b)
    }
    fn and(&self, o: &Bits) -> Bits {
        self.zip(o, |a, b| a & b)
    }
    fn and_not(&self, o: &Bits) -> Bits {
        self.zip(o, |a, b| a & !b)
    }
    fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }
    fn count(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(wi, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(wi * 64 + b)
            })
        })
    }
}

/// Label indexing and sizes shared by the planners.
struct Ctx {
    index: BTreeMap<char, usize>,
    label_sizes: Vec<usize>,
    words: usize,
    /// The final output labels that appear in some input.
    output: Bits,
}

impl Ctx {
    fn new(
        pattern: &str,
        inputs: &[Vec<char>],
        output: &[char],
        sizes: &BTreeMap<char, usize>,
    ) -> Result<Ctx> {
        let labels: BTreeSet<char> = inputs.iter().flatten().copied().collect();
        let mut index = BTreeMap::new();
        let mut label_sizes = Vec::with_capacity(labels.len());
        for (i, &c) in labels.iter().enumerate() {
            let s = sizes
                .get(&c)
                .copied()
                .ok_or_else(|| plan_err(pattern, format!("no size given for label '{c}'")))?;
            index.insert(c, i);
            label_sizes.push(s);
        }
        let words = labels.len().div_ceil(64).max(1);
        let mut ctx = Ctx {
            index,
            label_sizes,
            words,
            output: Bits::empty(words),
        };
        ctx.output = ctx.set_of(output);
        Ok(ctx)
    }
    /// The set of the known labels among `term`.
    fn set_of(&self, term: &[char]) -> Bits {
        let mut b = Bits::empty(self.words);
        for c in term {
            if let Some(&i) = self.index.get(c) {
                b.insert(i);
            }
        }
        b
    }
    /// `init` ∪ the labels of all `terms`.
    fn union_of(&self, terms: &[Vec<char>], init: Bits) -> Bits {
        terms.iter().fold(init, |acc, t| acc.or(&self.set_of(t)))
    }
    fn size_f64(&self, b: &Bits) -> f64 {
        b.iter().map(|i| self.label_sizes[i] as f64).product()
    }
    fn size_usize(&self, b: &Bits) -> usize {
        b.iter()
            .fold(1usize, |acc, i| acc.saturating_mul(self.label_sizes[i]))
    }
    /// opt_einsum's `flop_count`: size of all labels × (max(1, terms − 1) + [any summed]).
    fn flops(&self, all: &Bits, out: &Bits, num_terms: usize) -> f64 {
        let inner = if all.and_not(out).is_empty() { 0 } else { 1 };
        self.size_f64(all) * (num_terms.saturating_sub(1).max(1) + inner) as f64
    }
}

/// Plans the contraction of an einsum whose operands have the label lists `inputs`, whose output
/// is `output` and whose label sizes are `sizes` (every input label needs a size).
///
/// `pattern` is only used for display and error messages. Output labels that appear in no input
/// take no part in the steps; the executor broadcasts them after the last step.
pub fn plan_contraction(
    pattern: &str,
    inputs: &[Vec<char>],
    output: &[char],
    sizes: &BTreeMap<char, usize>,
    strategy: PlanStrategy,
) -> Result<EinsumPlan> {
    if inputs.is_empty() {
        return Err(plan_err(pattern, "einsum needs at least one operand"));
    }
    let ctx = Ctx::new(pattern, inputs, output, sizes)?;
    let n = inputs.len();
    let path = if n == 1 {
        vec![vec![0]]
    } else {
        let terms: Vec<Bits> = inputs.iter().map(|t| ctx.set_of(t)).collect();
        match strategy {
            PlanStrategy::Auto if n <= AUTO_OPTIMAL_MAX_OPERANDS => optimal_path(&ctx, &terms),
            PlanStrategy::Optimal if n <= OPTIMAL_MAX_OPERANDS => optimal_path(&ctx, &terms),
            PlanStrategy::LeftToRight => left_to_right_path(n),
            _ => greedy_path(&ctx, &terms),
        }
    };
    plan_from_path(pattern, inputs, output, sizes, &ContractionPath(path))
}

/// Builds the plan for a given contraction `path` (validated: every step names one or two
/// distinct positions of the current list, and exactly one operand must remain at the end).
pub fn plan_from_path(
    pattern: &str,
    inputs: &[Vec<char>],
    output: &[char],
    sizes: &BTreeMap<char, usize>,
    path: &ContractionPath,
) -> Result<EinsumPlan> {
    if inputs.is_empty() {
        return Err(plan_err(pattern, "einsum needs at least one operand"));
    }
    let ctx = Ctx::new(pattern, inputs, output, sizes)?;
    let mut current: Vec<Vec<char>> = inputs.to_vec();
    let mut steps = Vec::with_capacity(path.0.len());
    for (si, positions) in path.0.iter().enumerate() {
        let mut pos = positions.clone();
        pos.sort_unstable();
        pos.dedup();
        if pos.is_empty() || pos.len() > 2 || pos.len() != positions.len() {
            return Err(plan_err(
                pattern,
                format!("path step {si} {positions:?} must name one or two distinct operands"),
            ));
        }
        if let Some(&bad) = pos.iter().find(|&&p| p >= current.len()) {
            return Err(plan_err(
                pattern,
                format!(
                    "path step {si} names operand {bad} but only {} remain",
                    current.len()
                ),
            ));
        }
        let step_inputs: Vec<Vec<char>> = pos.iter().map(|&p| current[p].clone()).collect();
        for &p in pos.iter().rev() {
            current.remove(p);
        }
        let all = ctx.union_of(&step_inputs, Bits::empty(ctx.words));
        let out_set = all.and(&ctx.union_of(&current, ctx.output.clone()));
        // Order: the final output's order for the last step, else first appearance.
        let order: Vec<char> = if current.is_empty() {
            output.to_vec()
        } else {
            step_inputs.iter().flatten().copied().collect()
        };
        let mut step_output: Vec<char> = Vec::with_capacity(out_set.count());
        for c in order {
            let keep = ctx.index.get(&c).is_some_and(|&i| out_set.contains(i));
            if keep && !step_output.contains(&c) {
                step_output.push(c);
            }
        }
        steps.push(PlanStep {
            operands: pos,
            flops: ctx.flops(&all, &out_set, step_inputs.len()),
            size: ctx.size_usize(&out_set),
            inputs: step_inputs,
            output: step_output.clone(),
        });
        current.push(step_output);
    }
    if current.len() != 1 {
        return Err(plan_err(
            pattern,
            format!("path leaves {} operands; it must leave one", current.len()),
        ));
    }
    let all = ctx.union_of(inputs, Bits::empty(ctx.words));
    let naive_flops = ctx.flops(&all, &all.and(&ctx.output), inputs.len());
    Ok(EinsumPlan {
        pattern: pattern.to_string(),
        inputs: inputs.to_vec(),
        output: output.to_vec(),
        final_output: output.to_vec(),
        sizes: sizes.clone(),
        path: path.clone(),
        optimized_flops: steps.iter().map(|s| s.flops).sum(),
        largest_intermediate: steps.iter().map(|s| s.size).max().unwrap_or(0),
        naive_flops,
        steps,
    })
}

/// `[[0, 1], [0, n-2], [0, n-3], …, [0, 1]]`: each original operand in turn with the running
/// result (which sits at the end of the list).
fn left_to_right_path(n: usize) -> Vec<Vec<usize>> {
    let mut path = vec![vec![0, 1]];
    for k in 2..n {
        path.push(vec![0, n - k]);
    }
    path
}

/// Exhaustive search over contraction trees by dynamic programming over operand subsets:
/// the best cost of producing the intermediate of subset S is the minimum over splits S = A ∪ B
/// of best(A) + best(B) + flops(A, B). The intermediate of S keeps the labels of S needed by
/// operands outside S or by the output. Ties (equal FLOPs) go to the smaller largest
/// intermediate, then to the first split in enumeration order. Requires 2 ≤ n ≤ 31.
fn optimal_path(ctx: &Ctx, terms: &[Bits]) -> Vec<Vec<usize>> {
    let n = terms.len();
    let full: usize = (1usize << n) - 1;
    let n_sets = full + 1;
    // Union of labels of every subset.
    let mut union = vec![Bits::empty(ctx.words); n_sets];
    for s in 1..n_sets {
        let low = s.trailing_zeros() as usize;
        union[s] = union[s & (s - 1)].or(&terms[low]);
    }
    // Labels of each subset's intermediate.
    let mut out = vec![Bits::empty(ctx.words); n_sets];
    let mut out_size = vec![0usize; n_sets];
    for s in 1..n_sets {
        out[s] = if s.count_ones() == 1 {
            terms[s.trailing_zeros() as usize].clone()
        } else {
            union[s].and(&union[full ^ s].or(&ctx.output))
        };
        out_size[s] = ctx.size_usize(&out[s]);
    }
    let mut cost = vec![0f64; n_sets];
    let mut largest = vec![0usize; n_sets];
    let mut split = vec![(0usize, 0usize); n_sets];
    for s in 1..n_sets {
        if s.count_ones() == 1 {
            continue;
        }
        let low = s & s.wrapping_neg();
        let rest = s ^ low;
        let mut best: Option<(f64, usize, usize, usize)> = None;
        // Every A ⊂ S containing S's lowest operand, with B = S \ A nonempty.
        let mut sub = rest;
        loop {
            sub = sub.wrapping_sub(1) & rest;
            let a = low | sub;
            let b = s ^ a;
            let all = out[a].or(&out[b]);
            let total = cost[a] + cost[b] + ctx.flops(&all, &out[s], 2);
            let big = largest[a].max(largest[b]).max(out_size[s]);
            let better = match best {
                None => true,
                Some((c, l, _, _)) => total < c || (total == c && big < l),
            };
            if better {
                best = Some((total, big, a, b));
            }
            if sub == 0 {
                break;
            }
        }
        if let Some((c, l, a, b)) = best {
            cost[s] = c;
            largest[s] = l;
            split[s] = (a, b);
        }
    }
    // Post-order walk of the tree, then translate subsets to list positions.
    let mut order: Vec<(usize, usize, usize)> = Vec::with_capacity(n - 1);
    let mut stack: Vec<(usize, bool)> = vec![(full, false)];
    while let Some((s, expanded)) = stack.pop() {
        if s.count_ones() < 2 {
            continue;
        }
        let (a, b) = split[s];
        if expanded {
            order.push((a, b, s));
        } else {
            stack.push((s, true));
            stack.push((b, false));
            stack.push((a, false));
        }
    }
    let mut list: Vec<usize> = (0..n).map(|i| 1usize << i).collect();
    let mut path = Vec::with_capacity(order.len());
    for (a, b, s) in order {
        let pa = list.iter().position(|&x| x == a);
        let pb = list.iter().position(|&x| x == b);
        if let (Some(pa), Some(pb)) = (pa, pb) {
            let (lo, hi) = (pa.min(pb), pa.max(pb));
            list.remove(hi);
            list.remove(lo);
            list.push(s);
            path.push(vec![lo, hi]);
        }
    }
    path
}

/// opt_einsum-style greedy: while more than one operand remains, contract the pair (i, j) that
/// minimises size(result) − size(i) − size(j), considering first only pairs that share a label
/// to be summed (not in the output), then any pair. Ties go to the lowest (i, j).
fn greedy_path(ctx: &Ctx, terms: &[Bits]) -> Vec<Vec<usize>> {
    let mut list: Vec<Bits> = terms.to_vec();
    // How many current operands hold each label, plus one for output labels.
    let mut refs = vec![0usize; ctx.label_sizes.len()];
    for t in &list {
        for i in t.iter() {
            refs[i] += 1;
        }
    }
    for i in ctx.output.iter() {
        refs[i] += 1;
    }
    let mut path = Vec::with_capacity(terms.len().saturating_sub(1));
    while list.len() > 1 {
        let mut best: Option<(f64, usize, usize, Bits)> = None;
        for shared_only in [true, false] {
            for i in 0..list.len() {
                for j in i + 1..list.len() {
                    let (a, b) = (&list[i], &list[j]);
                    if shared_only && a.and(b).and_not(&ctx.output).is_empty() {
                        continue;
                    }
                    let all = a.or(b);
                    let mut res = Bits::empty(ctx.words);
                    for l in all.iter() {
                        let own = usize::from(a.contains(l)) + usize::from(b.contains(l));
                        if refs[l] > own {
                            res.insert(l);
                        }
                    }
                    let c = ctx.size_f64(&res) - ctx.size_f64(a) - ctx.size_f64(b);
                    if best.as_ref().is_none_or(|(bc, _, _, _)| c < *bc) {
                        best = Some((c, i, j, res));
                    }
                }
            }
            if best.is_some() {
                break;
            }
        }
        let Some((_, i, j, res)) = best else { break };
        for t in [&list[i], &list[j]] {
            for l in t.iter() {
                refs[l] -= 1;
            }
        }
        for l in res.iter() {
            refs[l] += 1;
        }
        list.remove(j);
        list.remove(i);
        list.push(res);
        path.push(vec![i, j]);
    }
    path
}

/// Maps every non-letter label among `labels` to a letter unused by `labels` (a–z, then A–Z),
/// in label order; labels left over once letters run out map to themselves.
fn display_map<'a>(labels: impl Iterator<Item = &'a char>) -> BTreeMap<char, char> {
    let all: BTreeSet<char> = labels.copied().collect();
    let mut free = ('a'..='z').chain('A'..='Z').filter(|c| !all.contains(c));
    all.iter()
        .filter(|c| !c.is_ascii_alphabetic())
        .map(|&c| (c, free.next().unwrap_or(c)))
        .collect()
}

fn term_str(term: &[char], map: &BTreeMap<char, char>) -> String {
    term.iter().map(|c| *map.get(c).unwrap_or(c)).collect()
}

fn step_str(step: &PlanStep, map: &BTreeMap<char, char>) -> String {
    let ins: Vec<String> = step.inputs.iter().map(|t| term_str(t, map)).collect();
    format!("{}->{}", ins.join(","), term_str(&step.output, map))
}

/// The step as an einsum string with letters, e.g. `"ab,bc->ac"`; synthetic ellipsis labels are
/// shown as letters unused by the step.
pub fn step_pattern(step: &PlanStep) -> String {
    let map = display_map(step.inputs.iter().flatten().chain(&step.output));
    step_str(step, &map)
}

/// Formats like Python's `"{:.3e}"`: `1.234e+05`.
fn sci(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let s = format!("{x:.3e}");
    match s.split_once('e') {
        Some((mant, exp)) => {
            let e: i32 = exp.parse().unwrap_or(0);
            let sign = if e < 0 { '-' } else { '+' };
            format!("{mant}e{sign}{:02}", e.abs())
        }
        None => s,
    }
}

impl fmt::Display for EinsumPlan {
    /// Prints like opt_einsum's `PathInfo`: a summary then one row per step.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let map = display_map(
            (self.inputs.iter().flatten())
                .chain(&self.output)
                .chain(&self.final_output),
        );
        let mut labels_in: BTreeSet<char> = BTreeSet::new();
        labels_in.extend(self.inputs.iter().flatten().copied());
        let scaling = |s: &PlanStep| {
            s.inputs
                .iter()
                .flatten()
                .copied()
                .collect::<BTreeSet<char>>()
                .len()
        };
        let opt_scaling = self.steps.iter().map(scaling).max().unwrap_or(0);
        let speedup = if self.optimized_flops > 0.0 {
            self.naive_flops / self.optimized_flops
        } else {
            1.0
        };
        writeln!(f, "  Complete contraction:  {}", self.pattern)?;
        writeln!(f, "         Naive scaling:  {}", labels_in.len())?;
        writeln!(f, "     Optimized scaling:  {opt_scaling}")?;
        writeln!(f, "      Naive FLOP count:  {}", sci(self.naive_flops))?;
        writeln!(f, "  Optimized FLOP count:  {}", sci(self.optimized_flops))?;
        writeln!(f, "   Theoretical speedup:  {}", sci(speedup))?;
        writeln!(
            f,
            "  Largest intermediate:  {} elements",
            sci(self.largest_intermediate as f64)
        )?;
        writeln!(f, "{}", "-".repeat(80))?;
        writeln!(f, "{:>7} {:>22} {:>37}", "scaling", "current", "remaining")?;
        write!(f, "{}", "-".repeat(80))?;
        // The remaining column ends in the einsum's output as written.
        let out = term_str(&self.final_output, &map);
        let mut current: Vec<Vec<char>> = self.inputs.clone();
        for step in &self.steps {
            for &p in step.operands.iter().rev() {
                if p < current.len() {
                    current.remove(p);
                }
            }
            current.push(step.output.clone());
            let rem: Vec<String> = current.iter().map(|t| term_str(t, &map)).collect();
            let cur = step_str(step, &map);
            let remaining = format!("{}->{}", rem.join(","), out);
            let width = 56usize.saturating_sub(cur.len().max(22));
            write!(
                f,
                "\n{:>4}    {:>22}    {:>width$}",
                scaling(step),
                cur,
                remaining
            )?;
        }
        if self.final_output != self.output {
            // The generalised output: a diagonal embedding and/or a broadcast of the result.
            let full = term_str(&self.final_output, &map);
            let distinct: BTreeSet<char> = self.final_output.iter().copied().collect();
            let cur = format!("{}->{full}", term_str(&self.output, &map));
            let width = 56usize.saturating_sub(cur.len().max(22));
            let rem = format!("{full}->{full}");
            write!(f, "\n{:>4}    {cur:>22}    {rem:>width$}", distinct.len())?;
            let mut what: Vec<String> = Vec::new();
            let mut seen: Vec<char> = Vec::new();
            for &l in &self.final_output {
                if seen.contains(&l) {
                    continue;
                }
                seen.push(l);
                let name = *map.get(&l).unwrap_or(&l);
                let count = self.final_output.iter().filter(|&&o| o == l).count();
                if count > 1 {
                    what.push(format!(
                        "'{name}' repeated {count}× (embedded on the diagonal, zeros elsewhere)"
                    ));
                }
                if !self.output.contains(&l) {
                    what.push(format!("'{name}' only in the output (broadcast)"));
                }
            }
            if what.is_empty() {
                what.push("dims reordered".to_string());
            }
            write!(
                f,
                "\n  last step writes the generalised output: {}",
                what.join("; ")
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(s: &str) -> (Vec<Vec<char>>, Vec<char>) {
        let (ins, out) = s.split_once("->").unwrap();
        let ins = ins.split(',').map(|t| t.chars().collect()).collect();
        (ins, out.chars().collect())
    }

    /// Plans `p` with `sz[k]` the size of the k-th distinct letter of `p` in ASCII order.
    fn plan(p: &str, sz: &[usize], st: PlanStrategy) -> EinsumPlan {
        let letters: BTreeSet<char> = p.chars().filter(char::is_ascii_alphabetic).collect();
        plan_map(
            p,
            &letters.into_iter().zip(sz.iter().copied()).collect(),
            st,
        )
    }

    fn plan_map(p: &str, sz: &BTreeMap<char, usize>, st: PlanStrategy) -> EinsumPlan {
        let (ins, out) = terms(p);
        plan_contraction(p, &ins, &out, sz, st).unwrap()
    }

    fn path_cost(p: &str, sz: &BTreeMap<char, usize>, path: Vec<Vec<usize>>) -> f64 {
        let (ins, out) = terms(p);
        let plan = plan_from_path(p, &ins, &out, sz, &ContractionPath(path));
        plan.unwrap().optimized_flops
    }

    /// Every pairwise contraction order of `n` operands (as paths).
    fn all_paths(n: usize) -> Vec<Vec<Vec<usize>>> {
        if n <= 1 {
            return vec![vec![]];
        }
        let mut out = Vec::new();
        for i in 0..n {
            for j in i + 1..n {
                for rest in all_paths(n - 1) {
                    out.push([vec![vec![i, j]], rest].concat());
                }
            }
        }
        out
    }

    use PlanStrategy::{Auto, Greedy, LeftToRight, Optimal};

    #[test]
    fn two_operands() {
        let p = plan("ij,jk->ik", &[2, 3, 4], Auto);
        assert_eq!(p.path, ContractionPath(vec![vec![0, 1]]));
        assert_eq!(p.steps.len(), 1);
        assert_eq!(p.steps[0].output, vec!['i', 'k']);
        assert_eq!(p.steps[0].flops, 2.0 * 24.0);
        assert_eq!(p.naive_flops, 48.0);
        assert_eq!(p.largest_intermediate, 8);
        for st in [Greedy, Optimal, LeftToRight] {
            let q = plan("ij,jk->ik", &[2, 3, 4], st);
            assert_eq!(q.path.0, vec![vec![0, 1]]);
        }
    }

    #[test]
    fn one_operand() {
        let p = plan("ii->i", &[5], Auto);
        assert_eq!(p.path.0, vec![vec![0]]);
        assert_eq!(p.steps[0].inputs, vec![vec!['i', 'i']]);
        assert_eq!(p.steps[0].output, vec!['i']);
        assert_eq!(p.steps[0].flops, 5.0);
        let p = plan("ij->", &[2, 3], Auto);
        assert_eq!(p.steps[0].output, Vec::<char>::new());
        assert_eq!(p.steps[0].flops, 12.0);
        let p = plan("ij->jii", &[2, 3], Auto);
        assert_eq!(p.steps[0].output, vec!['j', 'i']);
        // Output-only labels take no part in the steps.
        let p = plan("i->ik", &[2, 7], Auto);
        assert_eq!(p.steps[0].output, vec!['i']);
        assert_eq!(p.steps[0].size, 2);
    }

    #[test]
    fn chain_auto_beats_left_to_right() {
        // With these sizes every path ends with a step over a, e and d (or b): ≥ 2e7 FLOPs, so
        // left to right (6e7) can only be 3× worse; the naive single-shot cost is 4e11.
        let (p, sz) = ("ab,bc,cd,de->ae", [1000, 10, 1000, 10, 1000]);
        let auto = plan(p, &sz, Auto);
        let ltr = plan(p, &sz, LeftToRight);
        assert_eq!(ltr.optimized_flops, 6.0e7);
        assert_eq!(auto.optimized_flops, 2.04e7);
        assert!(auto.optimized_flops * 10.0 <= auto.naive_flops);
        assert_eq!(plan(p, &sz, Greedy).optimized_flops, 2.04e7);
        assert_eq!(auto.steps.last().unwrap().output, vec!['a', 'e']);
        assert_eq!(ltr.path.0, vec![vec![0, 1], vec![0, 2], vec![0, 1]]);
        // Matrix chain times a vector: right to left is far cheaper than left to right.
        let (p, sz) = ("ab,bc,cd,de,e->a", [300; 5]);
        let auto = plan(p, &sz, Auto);
        assert!(auto.optimized_flops * 10.0 <= plan(p, &sz, LeftToRight).optimized_flops);
        assert_eq!(auto.largest_intermediate, 300);
    }

    #[test]
    fn steps_keep_needed_labels() {
        let p = plan("ab,bc,cd->ad", &[2, 3, 4, 5], LeftToRight);
        assert_eq!(p.steps[0].output, vec!['a', 'c']);
        assert_eq!(p.steps[1].inputs, vec![vec!['c', 'd'], vec!['a', 'c']]);
        assert_eq!(p.steps[1].output, vec!['a', 'd']);
        // Batch label shared by all is kept to the end; a label only in one operand is summed.
        let p = plan("bij,bjk,bkx->bi", &[2, 3, 4, 5, 6], LeftToRight);
        assert_eq!(p.steps[0].output, vec!['b', 'i', 'k']);
        assert_eq!(p.steps[1].output, vec!['b', 'i']);
    }

    #[test]
    fn optimal_never_worse() {
        // Deterministic pseudo-random small cases, checked against brute force.
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rnd = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        let letters = ['a', 'b', 'c', 'd', 'e', 'f'];
        for _case in 0..150 {
            let n = 2 + rnd(3) as usize;
            let ins: Vec<String> = (0..n)
                .map(|_| (0..1 + rnd(3)).map(|_| letters[rnd(6) as usize]).collect())
                .collect();
            let used: BTreeSet<char> = ins.iter().flat_map(|t| t.chars()).collect();
            let out: String = used.iter().filter(|_| rnd(3) == 0).collect();
            let p = format!("{}->{}", ins.join(","), out);
            let sz: BTreeMap<char, usize> =
                letters.iter().map(|&c| (c, 1 + rnd(9) as usize)).collect();
            let opt = plan_map(&p, &sz, Optimal).optimized_flops;
            let greedy = plan_map(&p, &sz, Greedy).optimized_flops;
            let ltr = plan_map(&p, &sz, LeftToRight).optimized_flops;
            let brute = all_paths(n)
                .into_iter()
                .map(|path| path_cost(&p, &sz, path))
                .fold(f64::INFINITY, f64::min);
            assert!(opt <= greedy && opt <= ltr, "{p}: {opt} {greedy} {ltr}");
            assert_eq!(opt, brute, "{p}");
        }
    }

    #[test]
    fn deterministic_and_fast() {
        let p = "ab,bc,cd,de,ef,fg,gh,hi->ai";
        let first = plan(p, &[7; 9], Auto);
        for _ in 0..3 {
            assert_eq!(plan(p, &[7; 9], Auto), first);
        }
        let start = std::time::Instant::now();
        let p = "ab,bc,cd,de,ef,fg,gh,ha,ac,bd->";
        let opt = plan(p, &[5; 8], Optimal);
        assert_eq!(opt.steps.len(), 9);
        assert!(start.elapsed().as_secs_f64() < 5.0);
        assert!(opt.optimized_flops <= plan(p, &[5; 8], Greedy).optimized_flops);
    }

    #[test]
    fn many_operands_greedy() {
        let n = 40;
        let labels: Vec<char> = (0..=n).filter_map(|i| char::from_u32(0x100 + i)).collect();
        let ins: Vec<Vec<char>> = labels.windows(2).map(|w| w.to_vec()).collect();
        let out = vec![labels[0], labels[n as usize]];
        let sz: BTreeMap<char, usize> = labels.iter().map(|&c| (c, 3)).collect();
        let p = plan_contraction("chain", &ins, &out, &sz, Auto).unwrap();
        assert_eq!(p.steps.len(), n as usize - 1);
        assert_eq!(p.steps.last().unwrap().output, out);
        let text = step_pattern(&p.steps[0]);
        assert!(text
            .chars()
            .all(|c| c.is_ascii_alphabetic() || ",->".contains(c)));
    }

    #[test]
    fn outer_products_and_hadamard() {
        let p = plan("i,j,k->ijk", &[2, 3, 4], Greedy);
        assert_eq!(p.steps.len(), 2);
        assert_eq!(p.steps[1].output, vec!['i', 'j', 'k']);
        assert_eq!(plan("ij,ij,ij->ij", &[2, 3], Auto).optimized_flops, 12.0);
    }

    #[test]
    fn errors() {
        let sz: BTreeMap<char, usize> = [('i', 2)].into_iter().collect();
        let ins = vec![vec!['i'], vec!['j']];
        assert!(plan_contraction("i,j", &ins, &[], &sz, Auto).is_err());
        assert!(plan_contraction("", &[], &[], &sz, Auto).is_err());
        let ins = vec![vec!['i'], vec!['i']];
        for bad in [
            vec![vec![0, 2]],
            vec![vec![0, 0]],
            vec![vec![0, 1, 2]],
            vec![vec![]],
            vec![vec![0]],
            vec![vec![0, 1], vec![0, 1]],
        ] {
            let r = plan_from_path("i,i", &ins, &[], &sz, &ContractionPath(bad));
            assert!(matches!(r, Err(Error::Einsum { .. })));
        }
    }

    #[test]
    fn display() {
        let s = plan("ab,bc,cd->ad", &[10, 20, 30, 40], Auto).to_string();
        let needles =
            "Complete contraction:  ab,bc,cd->ad|Naive scaling:  4|Optimized scaling:  3|\
                       Naive FLOP count|Optimized FLOP count|Theoretical speedup|\
                       Largest intermediate|elements|scaling|current|remaining|e+0|->ad";
        for needle in needles.split('|') {
            assert!(s.contains(needle), "missing {needle:?} in\n{s}");
        }
        let syn = '\u{100}';
        let step = PlanStep {
            operands: vec![0, 1],
            inputs: vec![vec![syn, 'a'], vec!['a', 'b']],
            output: vec![syn, 'b'],
            flops: 0.0,
            size: 0,
        };
        assert_eq!(step_pattern(&step), "ca,ab->cb");
        assert_eq!(sci(4000.0), "4.000e+03");
        assert_eq!(sci(0.0), "0.000e+00");
        assert_eq!(sci(1.5e-7), "1.500e-07");
        assert_eq!(sci(9.9999e5), "1.000e+06");
    }
}
