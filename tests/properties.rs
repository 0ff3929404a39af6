//! Property tests for the places where untrusted bytes become labels: learned route labels
//! (one path on a fresh state, and whole sequences), the learned state's encoding, and the
//! stat-name label encoding.

// A test crate: unwrap, expect and panic are how it fails (the filter itself denies them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use routemeter::metrics::{stat_name, Metric};
use routemeter::route::is_id_like;
use routemeter::route::is_label_safe;
use routemeter::route::learn::{decode, encode, Learned, Limits, Lookup, Promotions};

/// Paths that look like real ones more often than pure noise would.
fn paths() -> impl Strategy<Value = Vec<u8>> {
    let segment = prop_oneof![
        "[a-z]{1,12}".prop_map(String::into_bytes),
        "[0-9]{1,20}".prop_map(String::into_bytes),
        "[0-9a-f]{8,40}".prop_map(String::into_bytes),
        "[A-Za-z0-9_-]{15,80}".prop_map(String::into_bytes),
        "\\{[a-z]{1,5}\\}".prop_map(String::into_bytes),
        // Near the 64-byte limit, with a format suffix the shape checks strip.
        "[a-z]{55,66}\\.json".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..20),
    ];
    (proptest::collection::vec(segment, 0..40), "(\\?[ -~]{0,20})?").prop_map(|(segs, query)| {
        let mut p = Vec::new();
        for s in segs {
            p.push(b'/');
            p.extend(s);
        }
        p.extend(query.into_bytes());
        p
    })
}

/// The label of `path` on a fresh state with learning off: ids collapse, nothing else.
fn label_of(path: &[u8], depth: usize) -> String {
    label_in(&mut Learned::new(), &Limits::new(100, depth, false), path)
}

fn label_in(state: &mut Learned, lim: &Limits, path: &[u8]) -> String {
    let mut seg = String::new();
    match state.observe(path, lim, &mut seg) {
        Some(node) => {
            let mut out = String::new();
            state.render(node, &mut out);
            out
        }
        None => "__other__".to_string(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn labels_are_safe_rooted_bounded_and_never_end_in_a_dot(path in paths(), depth in 1usize..12) {
        let label = label_of(&path, depth);
        prop_assert!(label.starts_with('/'));
        prop_assert!(label.bytes().all(|b| is_label_safe(b) || b == b'{' || b == b'}'), "{label:?}");
        prop_assert!(!label.ends_with('.'));
        prop_assert!(!label.contains("=.=") && !label.contains(";.;"));
        // Depth segments plus a possible "/*"; each segment at most 64 bytes.
        let segments = label.split('/').filter(|s| !s.is_empty()).count();
        prop_assert!(segments <= depth + 1, "{segments} segments in {label:?}");
        prop_assert!(label.len() <= (depth + 1) * 65 + 2, "{} bytes", label.len());
    }

    /// Stable on its own output: a label, with each `{id}` put back as an id (a literal `{`
    /// in a path is sanitised, so `{id}` itself would not survive), normalises to itself.
    #[test]
    fn normalising_a_label_again_changes_nothing(path in paths(), depth in 1usize..12) {
        let once = label_of(&path, depth);
        let as_path = once.replace("{id}", "0");
        prop_assert_eq!(label_of(as_path.as_bytes(), depth + 1), once);
    }

    #[test]
    fn query_and_fragment_never_change_the_label(path in paths(), tail in "[?#][ -~]{0,30}") {
        let clean: Vec<u8> = path.split(|&b| b == b'?' || b == b'#').next().unwrap_or_default().to_vec();
        let mut with_tail = clean.clone();
        with_tail.extend(tail.bytes());
        prop_assert_eq!(label_of(&with_tail, 6), label_of(&clean, 6));
    }

    #[test]
    fn decimal_and_uuid_segments_always_collapse(n in any::<u64>(), u in "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}") {
        prop_assert!(is_id_like(n.to_string().as_bytes()));
        prop_assert!(is_id_like(u.as_bytes()));
        prop_assert_eq!(label_of(format!("/a/{n}/b/{u}").as_bytes(), 6), "/a/{id}/b/{id}");
    }

}

proptest! {
    // Each case learns a whole sequence: fewer cases, same coverage per path.
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Learning over a whole sequence keeps every label safe and bounded, keeps the state
    /// within its budget, and a path the read-only resolution calls final is one that
    /// learning would not change (what lets a VM skip the shared state).
    #[test]
    fn learned_sequences_stay_safe_bounded_and_consistent(paths in proptest::collection::vec(paths(), 1..60)) {
        let lim = Limits { max_nodes: 300, ..Limits::new(20, 8, true) };
        let mut state = Learned::new();
        let mut seg = String::new();
        let mut promotions = Promotions::default();
        for path in &paths {
            let before = state.clone();
            let resolved = state.lookup(path, &lim, &mut promotions, &mut seg);
            // As the VM does it: a promotion, then the path itself.
            if let Lookup::Promote(depth) = resolved {
                state.promote_at(path, depth, &lim, &mut seg);
            }
            let label = label_in(&mut state, &lim, path);
            prop_assert!(label == "__other__" || label.starts_with('/'));
            prop_assert!(label.bytes().all(|b| is_label_safe(b) || b == b'{' || b == b'}'), "{label:?}");
            prop_assert!(!label.ends_with('.'));
            prop_assert!(state.trie().len() <= lim.max_nodes + 1);
            let (live, issued) = state.label_counts();
            prop_assert!(live <= lim.max_live && issued <= lim.max_issued);
            match resolved {
                Lookup::Label(_) => prop_assert_eq!(encode(&before), encode(&state), "a final path changed the state"),
                Lookup::Other => {
                    prop_assert_eq!(label.as_str(), "__other__");
                    prop_assert_eq!(encode(&before), encode(&state), "a path resolved as __other__ changed the state");
                }
                _ => {}
            }
        }
        let back = decode(&encode(&state)).unwrap();
        prop_assert_eq!(encode(&back), encode(&state));
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut framed = b"RMLR\x01".to_vec();
        framed.extend(bytes);
        let _ = decode(&framed);
    }

    /// A valid state with bytes changed anywhere (parents, kinds, flags, lengths, counts):
    /// decoding refuses it or gives a state that encodes and resolves without a panic.
    #[test]
    fn decoding_corrupted_states_never_panics(
        paths in proptest::collection::vec(paths(), 1..20),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let lim = Limits::new(20, 8, true);
        let mut state = Learned::new();
        for path in &paths {
            label_in(&mut state, &lim, path);
        }
        let mut bytes = encode(&state);
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Ok(mut decoded) = decode(&bytes) {
            let _ = encode(&decoded);
            for path in &paths {
                label_in(&mut decoded, &lim, path);
            }
        }
    }

    #[test]
    fn encoded_labels_decode_back_exactly(path in paths(), method in "(GET|POST|OTHER)", status in 0u16..1000) {
        let route = label_of(&path, 6);
        let code = status.to_string();
        let name = stat_name(Metric::RequestsTotal, &[&method, &route, &code]);
        // Decode the way the bootstrap's stats_tags do: `key=.=value;.;` pairs, non-greedy.
        let mut rest = name.as_str();
        let mut decoded = Vec::new();
        while let Some(eq) = rest.find("=.=") {
            let end = eq + rest[eq..].find(";.;").unwrap();
            decoded.push((rest[..eq].to_string(), rest[eq + 3..end].to_string()));
            rest = &rest[end + 3..];
        }
        prop_assert_eq!(rest, "http_requests_total");
        let want = vec![("method".to_string(), method), ("route".to_string(), route), ("status".to_string(), code)];
        prop_assert_eq!(decoded, want);
    }
}
