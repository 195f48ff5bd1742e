//! Skip lists: which evals not to run, each with its reason.
//!
//! Two sources: a plain-text list (`FILE:LINE reason`, one a line, `#` comments), and the
//! classification columns of `evals.tsv`, the per-eval inventory beside Prometheus' scripts.

use std::collections::BTreeMap;

use crate::error::Error;

/// Reason given to evals that `evals.tsv` marks as needing native histograms.
pub const NATIVE_HISTOGRAMS: &str = "native histograms are not implemented";
/// Reason given to evals that `evals.tsv` marks as needing start timestamps.
pub const START_TIMESTAMPS: &str = "start timestamps (use-start-timestamps) are not implemented";

/// Evals to leave out, keyed by the script's file name (no directory) and the 1-based line of
/// the `eval` command, each with a reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkipList {
    /// file name → eval line → reason.
    entries: BTreeMap<String, BTreeMap<usize, String>>,
}

impl SkipList {
    /// Reads a skip-list file: one entry a line, `FILE:LINE` then spaces or a tab then the
    /// reason; blank lines and lines starting with `#` are ignored. An error names the line
    /// (`3: …`); the caller prefixes the file's path.
    pub fn parse(text: &str) -> Result<SkipList, Error> {
        let mut list = SkipList::default();
        for (idx, raw) in text.lines().enumerate() {
            let line_no = idx + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |message: String| Error::SkipList { line: line_no, message };
            let (key, reason) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let reason = reason.trim();
            let Some((file, eval_line)) = key.rsplit_once(':') else {
                return Err(bad(format!("expected FILE:LINE followed by a reason, got {key:?}")));
            };
            if file.is_empty() || file.contains('/') {
                return Err(bad(format!("expected a script file name (no directory) before ':', got {file:?}")));
            }
            let eval_line = match eval_line.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => return Err(bad(format!("expected a line number after {file}:, got {eval_line:?}"))),
            };
            if reason.is_empty() {
                return Err(bad(format!("{file}:{eval_line} has no reason")));
            }
            if !list.insert(file, eval_line, reason) {
                return Err(bad(format!("{file}:{eval_line} is listed twice")));
            }
        }
        Ok(list)
    }

    /// The entries `evals.tsv` implies: every eval that needs native histograms or start
    /// timestamps, with [`NATIVE_HISTOGRAMS`] or [`START_TIMESTAMPS`] as the reason.
    pub fn from_evals_tsv(rows: &[EvalsTsvRow]) -> SkipList {
        let mut list = SkipList::default();
        for row in rows {
            if let Some(reason) = row.skip_reason() {
                list.insert(&row.file, row.line, reason);
            }
        }
        list
    }

    /// Adds an entry; returns false (and keeps the old reason) when `file:line` is listed already.
    pub fn insert(&mut self, file: &str, line: usize, reason: &str) -> bool {
        let lines = self.entries.entry(file.to_string()).or_default();
        if lines.contains_key(&line) {
            return false;
        }
        lines.insert(line, reason.to_string());
        true
    }

    /// Adds `other`'s entries; where both list an eval, the reason already here stays.
    pub fn extend(&mut self, other: SkipList) {
        for (file, lines) in other.entries {
            let here = self.entries.entry(file).or_default();
            for (line, reason) in lines {
                here.entry(line).or_insert(reason);
            }
        }
    }

    /// Why `file:line` is listed, if it is.
    pub fn reason(&self, file: &str, line: usize) -> Option<&str> {
        self.entries.get(file)?.get(&line).map(String::as_str)
    }

    /// The entries as (file, line, reason), in file then line order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, usize, &str)> {
        self.entries.iter().flat_map(|(f, lines)| lines.iter().map(move |(l, r)| (f.as_str(), *l, r.as_str())))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.values().map(BTreeMap::len).sum()
    }

    /// True when nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.entries.values().all(BTreeMap::is_empty)
    }

    /// The `skip` argument of [`run_script`](super::run_script) for the script named `file`.
    pub fn for_file<'a>(&'a self, file: &'a str) -> impl Fn(usize) -> Option<String> + 'a {
        move |line| self.reason(file, line).map(str::to_string)
    }
}

/// One row of `evals.tsv`: an eval of Prometheus' scripts and the features it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EvalsTsvRow {
    /// Script file name, e.g. `functions.test`.
    pub file: String,
    /// 1-based line of the `eval` command.
    pub line: usize,
    pub native_hist: bool,
    pub start_ts: bool,
    /// Needs an experimental PromQL feature (named in `experimental_features`).
    pub experimental: bool,
    pub experimental_features: String,
}

impl EvalsTsvRow {
    /// Why this eval cannot run here: it needs native histograms or start timestamps.
    pub fn skip_reason(&self) -> Option<&'static str> {
        if self.native_hist {
            Some(NATIVE_HISTOGRAMS)
        } else if self.start_ts {
            Some(START_TIMESTAMPS)
        } else {
            None
        }
    }
}

/// Reads `evals.tsv`: a tab-separated header naming the columns (`file`, `line`,
/// `native_hist`, `start_ts`, `experimental`, `experimental_features` are used), then one
/// row per eval. An error names the line (`2: …`).
pub fn parse_evals_tsv(text: &str) -> Result<Vec<EvalsTsvRow>, Error> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split('\t').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| Error::SkipList { line: 1, message: format!("evals.tsv header has no {name:?} column") })
    };
    let (c_file, c_line, c_nh, c_st, c_exp, c_feat) = (
        col("file")?,
        col("line")?,
        col("native_hist")?,
        col("start_ts")?,
        col("experimental")?,
        col("experimental_features")?,
    );
    let n_cols = 1 + [c_file, c_line, c_nh, c_st, c_exp, c_feat].into_iter().max().unwrap_or(0);
    let mut rows = Vec::new();
    for (idx, l) in lines.enumerate() {
        let line_no = idx + 2;
        if l.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = l.split('\t').collect();
        let bad = |message: String| Error::SkipList { line: line_no, message };
        if f.len() < n_cols {
            return Err(bad(format!("expected at least {n_cols} tab-separated columns, got {}", f.len())));
        }
        let line = f[c_line].parse().map_err(|_| bad(format!("bad line number {:?}", f[c_line])))?;
        let flag = |c: usize| match f[c] {
            "1" => Ok(true),
            "0" => Ok(false),
            other => Err(bad(format!("expected 0 or 1 in column {:?}, got {other:?}", header[c]))),
        };
        rows.push(EvalsTsvRow {
            file: f[c_file].to_string(),
            line,
            native_hist: flag(c_nh)?,
            start_ts: flag(c_st)?,
            experimental: flag(c_exp)?,
            experimental_features: f[c_feat].to_string(),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Result<&[(&str, usize, &str)], &str>) {
        let got = SkipList::parse(text);
        match (got, expected) {
            (Ok(list), Ok(want)) => assert_eq!(list.iter().collect::<Vec<_>>(), want, "{text:?}"),
            (Err(e), Err(want)) => assert_eq!(e.to_string(), want, "{text:?}"),
            (got, want) => panic!("{text:?}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn skip_list_files() {
        check("", Ok(&[]));
        check("# only a comment\n\n   \n", Ok(&[]));
        check("a.test:3 why not", Ok(&[("a.test", 3, "why not")]));
        check("a.test:3\tbecause\n", Ok(&[("a.test", 3, "because")]));
        check(
            "  b.test:10    spaced   reason  \n# c\na.test:2 x",
            Ok(&[("a.test", 2, "x"), ("b.test", 10, "spaced   reason")]),
        );
        check("a.test:3", Err("1: a.test:3 has no reason"));
        check("\na.test:3   \n", Err("2: a.test:3 has no reason"));
        check("a.test reason", Err("1: expected FILE:LINE followed by a reason, got \"a.test\""));
        check("a.test:x reason", Err("1: expected a line number after a.test:, got \"x\""));
        check("a.test:0 reason", Err("1: expected a line number after a.test:, got \"0\""));
        check(":3 reason", Err("1: expected a script file name (no directory) before ':', got \"\""));
        check(
            "dir/a.test:3 reason",
            Err("1: expected a script file name (no directory) before ':', got \"dir/a.test\""),
        );
        check("a.test:3 one\na.test:3 two", Err("2: a.test:3 is listed twice"));
    }

    #[test]
    fn lookup_and_merge() {
        let mut list = SkipList::parse("a.test:3 first\nb.test:1 other").unwrap();
        assert_eq!(list.reason("a.test", 3), Some("first"));
        assert_eq!(list.reason("a.test", 4), None);
        assert_eq!(list.reason("a.tes", 3), None);
        list.extend(SkipList::parse("a.test:3 second\na.test:4 new").unwrap());
        assert_eq!(list.reason("a.test", 3), Some("first"));
        assert_eq!(list.reason("a.test", 4), Some("new"));
        assert_eq!(list.len(), 3);
        assert_eq!(list.for_file("b.test")(1), Some("other".to_string()));
        assert_eq!(list.for_file("b.test")(2), None);
    }

    #[test]
    fn evals_tsv() {
        let head = "file\tline\tkind\tnative_hist\texperimental\tstart_ts\texperimental_features\texpr\n";
        let text = format!(
            "{head}a.test\t4\tinstant\t0\t0\t0\t\tm\na.test\t9\trange\t1\t0\t1\t\tm\nb.test\t2\tinstant\t0\t1\t1\tfoo\tm\n"
        );
        let rows = parse_evals_tsv(&text).unwrap();
        assert_eq!(rows.len(), 3);
        assert!(rows[2].experimental && rows[2].experimental_features == "foo");
        let list = SkipList::from_evals_tsv(&rows);
        let want = [("a.test", 9, NATIVE_HISTOGRAMS), ("b.test", 2, START_TIMESTAMPS)];
        assert_eq!(list.iter().collect::<Vec<_>>(), want);

        let err = |t: &str| parse_evals_tsv(t).unwrap_err().to_string();
        assert_eq!(err("file\tline\n"), "1: evals.tsv header has no \"native_hist\" column");
        assert_eq!(err(&format!("{head}a.test\t4\n")), "2: expected at least 7 tab-separated columns, got 2");
        assert_eq!(err(&format!("{head}\na.test\tx\ti\t0\t0\t0\t\tm\n")), "3: bad line number \"x\"");
        assert_eq!(
            err(&format!("{head}a.test\t4\ti\t2\t0\t0\t\tm\n")),
            "2: expected 0 or 1 in column \"native_hist\", got \"2\""
        );
    }
}
