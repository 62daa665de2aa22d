//! The notebooks stay thin and light: their cells come from
//! `examples/notebooks/*.rs` (compiled by cargo), each code cell is a few
//! lines of library calls (median ≤ 4, none above 12, set-up excepted), and
//! every committed notebook is below 1 MB.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test/example code: fail loudly

use std::path::Path;

/// Code cells of one source: the lines between `// %%` markers inside
/// `fn main`, markdown cells and the set-up marker left out.
fn code_cells(src: &str) -> Vec<Vec<String>> {
    let body = src
        .split_once("fn main() {")
        .map(|(_, b)| b)
        .expect("fn main holds the cells");
    let mut cells: Vec<Vec<String>> = Vec::new();
    let mut code = false;
    for line in body.lines() {
        let t = line.trim();
        if t.starts_with("// %%") {
            code = t == "// %%";
            if code {
                cells.push(Vec::new());
            }
        } else if code
            && !t.is_empty()
            && line != "}"
            && let Some(c) = cells.last_mut()
        {
            c.push(t.to_string());
        }
    }
    cells.retain(|c| !c.is_empty());
    cells
}

#[test]
fn notebook_cells_are_short_library_calls() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/notebooks");
    let mut sources = 0;
    for e in std::fs::read_dir(&dir)
        .expect("examples/notebooks")
        .flatten()
    {
        let src = std::fs::read_to_string(e.path()).expect("source");
        let cells = code_cells(&src);
        let name = e.path().display().to_string();
        assert!(cells.len() >= 5, "{name}: only {} code cells", cells.len());
        let mut lens: Vec<usize> = cells.iter().map(Vec::len).collect();
        lens.sort_unstable();
        let median = lens[lens.len() / 2];
        let max = lens[lens.len() - 1];
        assert!(median <= 4, "{name}: median code cell {median} lines");
        assert!(max <= 12, "{name}: a code cell of {max} lines");
        sources += 1;
    }
    assert_eq!(sources, 5, "one source per notebook");
}

#[test]
fn committed_notebooks_are_below_one_megabyte() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("notebooks");
    let mut seen = 0;
    for e in std::fs::read_dir(&dir).expect("notebooks/").flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "ipynb") {
            let len = std::fs::metadata(&p).expect("size").len();
            assert!(len < 1 << 20, "{}: {len} bytes", p.display());
            seen += 1;
        }
    }
    assert_eq!(seen, 5);
}

#[test]
fn the_cell_splitter_sees_markers() {
    let src = "fn main() {\n    // %% md\n    // # Title\n    // %% setup\n    // %%\n    let a = 1;\n    let b = 2;\n    // %%\n    f(a, b);\n}\n";
    assert_eq!(
        code_cells(src),
        vec![
            vec!["let a = 1;".to_string(), "let b = 2;".to_string()],
            vec!["f(a, b);".to_string()]
        ]
    );
}
