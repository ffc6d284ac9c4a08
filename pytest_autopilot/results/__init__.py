"""What a sweep leaves: journal, statistics, comparisons, reports, merges and baselines."""
