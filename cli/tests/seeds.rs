//! `eingrad seeds`: all five experiments pass, and the PNGs are written and decode.

#[test]
fn all_five_seeds_pass_and_write_pngs() {
    let dir = std::env::temp_dir().join(format!("eingrad-seeds-{}", std::process::id()));
    let outcomes = eingrad_cli::seeds::run_all(Some(&dir)).unwrap();
    assert_eq!(outcomes.len(), 5);
    for o in &outcomes {
        assert!(
            o.passed(),
            "seed {} failed: {:?}\n{}",
            o.id,
            o.failures,
            o.report
        );
    }
    let mut pngs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    pngs.sort();
    assert!(pngs.len() >= 8, "{pngs:?}");
    for p in &pngs {
        let decoder = png::Decoder::new(std::fs::File::open(p).unwrap());
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        assert!(info.width > 100 && info.height > 100, "{p:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
