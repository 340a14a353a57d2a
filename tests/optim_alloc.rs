//! An optimizer step and gradient clipping allocate nothing once warmed up (issue #12 part 4):
//! the update is one fused in-place loop per parameter, the moments live in buffers made at
//! the first step, and clipping scales the gradients where they are.
//!
//! This binary's global allocator counts allocation calls (as tests/memory.rs counts bytes).
//! Everything runs in one test function: another test finishing meanwhile would allocate
//! (the harness prints its result) and be counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use eingrad::optim::{
    clip_grad_norm, split_decay_by_rank, Adam, AdamConfig, LrSchedule, Optimizer, ParamGroup, Sgd,
    SgdConfig, WarmupCosine,
};
use eingrad::{DType, Tensor};

/// Counts the calls that obtain memory (alloc, alloc_zeroed, realloc).
struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.alloc_zeroed(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// How many allocations `f` makes.
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCS.load(Ordering::SeqCst);
    f();
    ALLOCS.load(Ordering::SeqCst) - before
}

/// A GPT-ish parameter list (weights, biases, a norm gain) with a contiguous gradient each.
fn params_with_grads(dims: &[&[usize]], dtype: DType) -> Vec<Tensor> {
    dims.iter()
        .enumerate()
        .map(|(i, d)| {
            let p = Tensor::randn(d, dtype, i as u64)
                .unwrap()
                .requires_grad_(true);
            let g = Tensor::randn(d, dtype, 100 + i as u64).unwrap();
            p.set_grad(Some(g)).unwrap();
            p
        })
        .collect()
}

fn adamw_with_groups(params: &[Tensor]) -> Adam {
    let (decay, no_decay) = split_decay_by_rank(params);
    Adam::with_groups(
        vec![
            ParamGroup::new(decay).weight_decay(0.1),
            ParamGroup::new(no_decay).weight_decay(0.0),
        ],
        AdamConfig {
            betas: (0.9, 0.95),
            ..AdamConfig::adamw()
        },
    )
    .unwrap()
}

/// Runs clip + AdamW + SGD steps and counts what they allocate: `(clips, adam, loop)`.
fn measure(params: &[Tensor], adam: &mut Adam, sgd: &mut Sgd, sched: &WarmupCosine) -> [usize; 3] {
    let clip = allocations(|| {
        for _ in 0..20 {
            // the norm shrinks to 0.5, then to 0.25: both passes run
            clip_grad_norm(params, 0.5).unwrap();
            clip_grad_norm(params, 0.25).unwrap();
        }
    });
    let adam_steps = allocations(|| {
        for t in 2..22 {
            adam.set_lr(sched.lr_at(t)).unwrap();
            adam.step().unwrap();
        }
    });
    let loop_steps = allocations(|| {
        for t in 22..42 {
            clip_grad_norm(params, 1.0).unwrap();
            adam.set_lr(sched.lr_at(t)).unwrap();
            adam.step().unwrap();
            sgd.step().unwrap();
        }
    });
    [clip, adam_steps, loop_steps]
}

/// Parameters small enough to be updated on the calling thread, then ones large enough to be
/// split across rayon's threads.
///
/// A parallel loop started from outside rayon's pool hands the pool one job through its global
/// queue, a linked list of 63-job blocks: one allocation per 63 such loops, rayon's own. On a
/// pool thread (a training loop inside `rayon::scope` or `ThreadPool::install`) even that goes.
#[test]
fn optimizer_steps_and_clipping_allocate_nothing_after_warm_up() {
    let small: &[&[usize]] = &[&[64, 32], &[32], &[32, 16], &[16], &[16]];
    let n = eingrad::kernels::min_parallel_elements();
    let large: &[&[usize]] = &[&[n / 64 + 1, 128], &[128], &[2 * n]];
    let sched = WarmupCosine::new(1e-3, 1e-4, 2, 50).unwrap();
    let threads = rayon::current_num_threads();
    // rayon's threads start at its first use: let them all start and run once
    rayon::broadcast(|_| ());
    rayon::scope(|_| ());
    for (what, dims) in [("small", small), ("large", large)] {
        let parallel = dims
            .iter()
            .filter(|d| d.iter().product::<usize>() >= n)
            .count();
        for dtype in [DType::F32, DType::F64] {
            for on_pool in [false, true] {
                let params = params_with_grads(dims, dtype);
                let mut adam = adamw_with_groups(&params);
                let mut sgd = Sgd::with_groups(
                    vec![ParamGroup::new(params.clone()).lr_scale(0.1)],
                    SgdConfig {
                        momentum: 0.9,
                        ..Default::default()
                    },
                )
                .unwrap();
                // warm-up: the first steps make the state buffers (and rayon its threads)
                for t in 0..2 {
                    clip_grad_norm(&params, 1.0).unwrap();
                    adam.set_lr(sched.lr_at(t)).unwrap();
                    adam.step().unwrap();
                    sgd.step().unwrap();
                }
                let counts = if on_pool {
                    let mut counts = [0; 3];
                    rayon::scope(|_| counts = measure(&params, &mut adam, &mut sgd, &sched));
                    counts
                } else {
                    measure(&params, &mut adam, &mut sgd, &sched)
                };
                let label = format!(
                    "{what} {dtype:?}, {} ({threads} threads)",
                    if on_pool {
                        "on a pool thread"
                    } else {
                        "from the main thread"
                    }
                );
                eprintln!(
                    "{label}: allocations in 40 clips {}, 20 AdamW steps {}, 20 clip + AdamW + \
                     SGD steps {}",
                    counts[0], counts[1], counts[2]
                );
                // Parallel loops started from outside the pool: two per large parameter in a
                // clip (norm, scale), one in each optimizer step.
                let outside = if on_pool || threads == 1 {
                    [0; 3]
                } else {
                    [40 * 2 * parallel, 20 * parallel, 20 * 4 * parallel]
                };
                for ((got, jobs), name) in counts.iter().zip(outside).zip(["clip", "AdamW", "loop"])
                {
                    let bound = jobs.div_ceil(63);
                    assert!(
                        *got <= bound,
                        "{label}: {name} allocated {got} times (bound {bound})"
                    );
                }
                assert_eq!(adam.steps_taken(0), 42);
            }
        }
    }
}
