//! Bad input never panics and memory stays bounded by the input; whatever parses encodes to
//! something that parses back to the same families.

use proptest::prelude::*;

use super::*;

const TEXT_CORPUS: &str = "# HELP go_gc_duration_seconds A summary of the GC \\\\ invocation\\n durations.\n\
# TYPE go_gc_duration_seconds summary\n\
go_gc_duration_seconds{quantile=\"0\"} 4.9351e-05\n\
go_gc_duration_seconds{ quantile = \"0.5\" , a = \"b\\\"c\\n\" , } 8.3835e-05 1700000000000\n\
go_gc_duration_seconds_sum 0.012139815\n\
go_gc_duration_seconds_count 99\n\
# a comment\n\
\n\
{\"my.metric\", \"a.b\"=\"c\"} +Inf\n\
# TYPE h histogram\n\
h_bucket{le=\"1\"} 1\n\
h_bucket{le=\"+Inf\"} 2\n\
h_sum 3\n\
h_count 2\n";

const OM_CORPUS: &str = "# TYPE a_seconds counter\n\
# UNIT a_seconds seconds\n\
# HELP a_seconds he\\\"lp\n\
a_seconds_total{b=\"c\"} 1 1.5 # {t=\"x\"} 2 3.25\n\
a_seconds_created{b=\"c\"} 1.7e9\n\
# TYPE h histogram\n\
h_bucket{le=\"1.0\"} 0 # {a=\"b\"} 0.5\n\
h_bucket{le=\"+Inf\"} 3\n\
h_count 3\n\
h_sum 2\n\
# TYPE s stateset\n\
s{s=\"a\"} 1\n\
{\"u.v\",w=\"x\"} NaN\n\
# EOF\n";

/// Parses `input` every way there is and checks the bounds; returns nothing, must not panic.
fn exercise(input: &[u8]) {
    for parser in
        [Parser::new(input, Format::Text), Parser::new(input, Format::OpenMetrics), Parser::openmetrics_strict(input)]
    {
        let mut n_entries = 0;
        let mut owned_bytes = 0;
        for entry in parser {
            n_entries += 1;
            assert!(n_entries <= input.len() + 1, "more entries than bytes");
            let Ok(entry) = entry else { continue };
            if let Entry::Series(s) = &entry {
                assert!(s.series().len() <= input.len());
                for (name, value) in s.labels() {
                    owned_bytes += name.len() + value.len();
                }
                if let Ok(labels) = s.to_labels() {
                    owned_bytes += labels.iter().map(|l| l.name.len() + l.value.len()).sum::<usize>();
                }
                if let Some(e) = s.exemplar() {
                    let _ = e.to_labels();
                }
            }
            // Unescaping only shrinks text; normalising `le`/`quantile` may add a few bytes.
            assert!(owned_bytes <= 4 * input.len() + 64 * n_entries, "owned {owned_bytes} for {} bytes", input.len());
        }
    }
    for format in [Format::Text, Format::OpenMetrics] {
        if let Ok(families) = parse_families(input, format) {
            let encoded = encode(&families, format);
            let back = parse_families(encoded.as_bytes(), format)
                .unwrap_or_else(|e| panic!("encoded output does not parse: {e}\n{encoded}"));
            let n = |f: &[MetricFamily]| f.iter().map(|f| f.samples.len()).sum::<usize>();
            assert_eq!(n(&families), n(&back), "{encoded}");
            assert_eq!(encode(&back, format), encoded, "encoding is not stable");
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop::sample::select(b"{}=\",# \n\\\t\0\xff.:_eE+-0123456789aINf".to_vec());
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), interesting).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1..8usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(input: &str, mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = input.as_bytes().to_vec();
    for m in mutations {
        let len = bytes.len().max(1);
        match *m {
            Mutation::Flip(i, b) if !bytes.is_empty() => bytes[i % len] ^= b,
            Mutation::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Mutation::Delete(i, n) if !bytes.is_empty() => {
                let start = i % len;
                let end = (start + n).min(bytes.len());
                bytes.drain(start..end);
            }
            Mutation::Truncate(i) => bytes.truncate(i % (bytes.len() + 1)),
            _ => {}
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..256)) {
        exercise(&input);
    }

    #[test]
    fn random_exposition_alphabet_never_panics(
        input in prop::collection::vec(prop::sample::select(b"{}=\",# \n\\\tab_:.019eE+-INaf".to_vec()), 0..128)
    ) {
        exercise(&input);
    }

    #[test]
    fn mutated_text_never_panics(mutations in prop::collection::vec(mutation(), 1..6)) {
        exercise(&mutate(TEXT_CORPUS, &mutations));
    }

    #[test]
    fn mutated_openmetrics_never_panics(mutations in prop::collection::vec(mutation(), 1..6)) {
        exercise(&mutate(OM_CORPUS, &mutations));
    }
}

#[test]
fn corpora_parse_cleanly() {
    assert!(Parser::new(TEXT_CORPUS.as_bytes(), Format::Text).all(|e| e.is_ok()));
    // (Strict OpenMetrics 1.0 rejects the quoted metric name at the end.)
    let errors: Vec<_> = Parser::new(OM_CORPUS.as_bytes(), Format::OpenMetrics).filter_map(Result::err).collect();
    assert!(errors.is_empty(), "{errors:?}");
    exercise(TEXT_CORPUS.as_bytes());
    exercise(OM_CORPUS.as_bytes());
}
