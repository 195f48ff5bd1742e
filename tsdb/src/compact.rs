//! Compaction planning: which blocks to merge next.

/// The next set of blocks (by id) to merge, given `(id, min_time, max_time)` of each block:
/// first any group of overlapping blocks, then, for window sizes of 3, 9, 27… times
/// `block_range` up to `max_range`, the blocks wholly inside one aligned window when there are
/// several and the window is complete (the newest data is past its end) or `all` is set.
///
/// With `all` (imports: no more data will come), the largest window holding several blocks is
/// merged first, overlapping blocks included, so each sample is rewritten once rather than once
/// per level.
pub(crate) fn plan(blocks: &[(String, i64, i64)], block_range: i64, max_range: i64, all: bool) -> Option<Vec<String>> {
    let mut sorted: Vec<&(String, i64, i64)> = blocks.iter().collect();
    sorted.sort_by_key(|b| (b.1, b.2));
    if all {
        if let Some(ids) = plan_all(&sorted, block_range, max_range) {
            return Some(ids);
        }
    }
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

/// Groups of overlapping blocks (sorted by start) as `(ids, min, max)`.
fn overlap_groups(sorted: &[&(String, i64, i64)]) -> Vec<(Vec<String>, i64, i64)> {
    let mut groups: Vec<(Vec<String>, i64, i64)> = Vec::new();
    for b in sorted {
        match groups.last_mut() {
            Some(g) if b.1 <= g.2 => {
                g.0.push(b.0.clone());
                g.2 = g.2.max(b.2);
            }
            _ => groups.push((vec![b.0.clone()], b.1, b.2)),
        }
    }
    groups
}

/// For [`plan`] with `all`: the blocks of the first aligned window, at the largest window size
/// (3^k block ranges up to `max_range`) where one holds more than one block; overlapping blocks
/// go together.
fn plan_all(sorted: &[&(String, i64, i64)], block_range: i64, max_range: i64) -> Option<Vec<String>> {
    let groups = overlap_groups(sorted);
    let mut ranges = vec![block_range];
    while let Some(next) = ranges.last().and_then(|r| r.checked_mul(3)).filter(|r| *r <= max_range) {
        ranges.push(next);
    }
    for range in ranges.into_iter().rev() {
        let mut windows: std::collections::BTreeMap<i64, Vec<String>> = std::collections::BTreeMap::new();
        for (ids, min, max) in &groups {
            let w = min.div_euclid(range);
            if max.div_euclid(range) == w {
                windows.entry(w).or_default().extend(ids.iter().cloned());
            }
        }
        if let Some(ids) = windows.into_values().find(|ids| ids.len() > 1) {
            return Some(ids);
        }
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
        // With `all`: the largest window at once, overlapping blocks included (810 here).
        check(&[("a", 0, 9), ("b", 5, 12), ("c", 20, 29), ("d", 300, 309)], true, Some(&["a", "b", "c", "d"]));
        // A group straddling a window boundary waits for a larger window, or merges alone.
        check(&[("a", 800, 815), ("b", 805, 820)], true, Some(&["a", "b"]));
        check(&[("a", 800, 815), ("b", 830, 840), ("c", 835, 850)], true, Some(&["b", "c"]));
        // Negative times are aligned too.
        check(&[("a", -30, -21), ("b", -20, -11), ("c", 0, 5)], false, Some(&["a", "b"]));
    }
}
