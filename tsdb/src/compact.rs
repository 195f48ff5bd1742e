//! Compaction planning: which blocks to merge next.

/// The next set of blocks (by id) to merge, given `(id, min_time, max_time)` of each block:
/// first any group of overlapping blocks, then, for window sizes of 3, 9, 27… times
/// `block_range` up to `max_range`, the blocks wholly inside one aligned window when there are
/// several and the window is complete (the newest data is past its end) or `all` is set.
pub(crate) fn plan(blocks: &[(String, i64, i64)], block_range: i64, max_range: i64, all: bool) -> Option<Vec<String>> {
    let mut sorted: Vec<&(String, i64, i64)> = blocks.iter().collect();
    sorted.sort_by_key(|b| (b.1, b.2));
    // Overlaps.
    let mut group: Vec<&(String, i64, i64)> = Vec::new();
    let mut group_max = i64::MIN;
    for b in &sorted {
        if !group.is_empty() && b.1 <= group_max {
            group.push(b);
            group_max = group_max.max(b.2);
            continue;
        }
        if group.len() > 1 {
            break;
        }
        group = vec![b];
        group_max = b.2;
    }
    if group.len() > 1 {
        return Some(group.iter().map(|b| b.0.clone()).collect());
    }
    let newest = sorted.iter().map(|b| b.2).max()?;
    let mut range = block_range.checked_mul(3)?;
    while range <= max_range {
        let mut windows: std::collections::BTreeMap<i64, Vec<String>> = std::collections::BTreeMap::new();
        for b in &sorted {
            let w = b.1.div_euclid(range);
            if b.2.div_euclid(range) == w {
                windows.entry(w).or_default().push(b.0.clone());
            }
        }
        for (w, ids) in windows {
            let end = w.saturating_add(1).saturating_mul(range);
            if ids.len() > 1 && (all || newest >= end) {
                return Some(ids);
            }
        }
        range = range.checked_mul(3)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::plan;

    fn check(blocks: &[(&str, i64, i64)], all: bool, expected: Option<&[&str]>) {
        let blocks: Vec<(String, i64, i64)> = blocks.iter().map(|b| (b.0.to_string(), b.1, b.2)).collect();
        let got = plan(&blocks, 10, 1000, all);
        assert_eq!(got, expected.map(|e| e.iter().map(|s| s.to_string()).collect::<Vec<_>>()), "{blocks:?}");
    }

    #[test]
    fn plans() {
        check(&[], false, None);
        check(&[("a", 0, 9)], false, None);
        // Overlapping blocks merge first.
        check(&[("a", 0, 9), ("b", 10, 19), ("c", 5, 12)], false, Some(&["a", "c", "b"]));
        // Three 10-blocks fill the 30-window; merged only once newer data exists (or `all`).
        check(&[("a", 0, 9), ("b", 10, 19), ("c", 20, 29)], false, None);
        check(&[("a", 0, 9), ("b", 10, 19), ("c", 20, 29), ("d", 30, 39)], false, Some(&["a", "b", "c"]));
        check(&[("a", 0, 9), ("b", 10, 19), ("c", 20, 29)], true, Some(&["a", "b", "c"]));
        // Three 30-blocks into a 90-window.
        check(&[("a", 0, 29), ("b", 30, 59), ("c", 60, 89), ("d", 90, 99)], false, Some(&["a", "b", "c"]));
        // A block straddling a window is left alone at that level.
        check(&[("a", 25, 34), ("b", 35, 44), ("c", 95, 99)], false, Some(&["a", "b"]));
        // Negative times are aligned too.
        check(&[("a", -30, -21), ("b", -20, -11), ("c", 0, 5)], false, Some(&["a", "b"]));
    }
}
