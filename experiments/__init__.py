"""Studies reproducing the paper's comparisons; see docs/RESULTS.md."""
