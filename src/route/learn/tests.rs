use super::*;

fn lim() -> Limits {
    Limits::new(100, 16, true)
}

/// Observes `path` and returns its label; first checks that a path `resolve` calls final
/// would not change the state when observed (the invariant the VM cache relies on).
fn label(l: &mut Learned, lim: &Limits, path: &str) -> String {
    let mut seg = String::new();
    let before = l.clone();
    let resolved = l.lookup(path.as_bytes(), lim, &mut Promotions::default(), &mut seg);
    let node = l.observe(path.as_bytes(), lim, &mut seg);
    if let Lookup::Label(n) = resolved {
        assert_eq!(node, Some(n), "{path}: resolve said final");
        let mut unchanged = before;
        unchanged.dirty = l.dirty;
        assert_eq!(&unchanged, l, "{path}: a final path changed the state");
    }
    match node {
        Some(n) => {
            let mut out = String::new();
            l.render(n, &mut out);
            out
        }
        None => "__other__".to_string(),
    }
}

fn labels(l: &mut Learned, lim: &Limits, paths: &[&str]) -> Vec<String> {
    paths.iter().map(|p| label(l, lim, p)).collect()
}

#[test]
fn a_value_after_a_collection_is_a_parameter_at_once() {
    let mut l = Learned::new();
    assert_eq!(
        labels(&mut l, &lim(), &["/users/alice", "/users/bob/repos", "/users/carol?tab=1", "/users/42"]),
        ["/users/{id}", "/users/{id}/repos", "/users/{id}", "/users/{id}"]
    );
}

#[test]
fn static_words_under_a_version_stay_literal() {
    let mut l = Learned::new();
    let paths: Vec<String> = ["customers", "charges", "invoices", "refunds", "payouts", "products", "prices", "events"]
        .iter()
        .flat_map(|w| [format!("/v1/{w}"), format!("/v1/{w}/cus_NffrFeUfNV2Hib")])
        .collect();
    let got: Vec<String> = paths.iter().map(|p| label(&mut l, &lim(), p)).collect();
    let want: Vec<String> = ["customers", "charges", "invoices", "refunds", "payouts", "products", "prices", "events"]
        .iter()
        .flat_map(|w| [format!("/v1/{w}"), format!("/v1/{w}/{{id}}")])
        .collect();
    assert_eq!(got, want);
}

#[test]
fn values_sharing_a_continuation_make_a_parameter_after_a_parameter() {
    let mut l = Learned::new();
    let got = labels(
        &mut l,
        &lim(),
        &[
            "/repos/octo/hello-world/issues",
            "/repos/torvalds/linux/pulls",
            "/repos/alice/notes/pulls",
            "/repos/bob/site/issues",
            "/repos/carol/app/branches",
        ],
    );
    // `repos` is a collection: owners convert at once. `hello-world` and `linux` are two
    // repositories until `notes` continues with `pulls` like `linux` did.
    assert_eq!(
        got,
        [
            "/repos/{id}/hello-world/issues",
            "/repos/{id}/linux/pulls",
            "/repos/{id}/{id}/pulls",
            "/repos/{id}/{id}/issues",
            "/repos/{id}/{id}/branches"
        ]
    );
    // The labels the conversion merged are retired: only the three final ones are live.
    assert_eq!(l.label_counts(), (3, 5));
}

#[test]
fn sub_resources_after_a_parameter_stay_literal() {
    let mut l = Learned::new();
    let words = ["issues", "pulls", "branches", "labels", "hooks", "forks", "topics", "readme", "license", "tags"];
    for round in 0..3 {
        for (i, w) in words.iter().enumerate() {
            let got = label(&mut l, &lim(), &format!("/repos/o{round}{i}/r{round}{i}/{w}"));
            if round > 0 {
                assert_eq!(got, format!("/repos/{{id}}/{{id}}/{w}"));
            }
        }
    }
}

#[test]
fn after_a_singular_word_six_plain_values_convert() {
    let mut l = Learned::new();
    let got = labels(
        &mut l,
        &lim(),
        &["/page/kavo", "/page/mira", "/page/teno", "/page/loru", "/page/sapi", "/page/dune", "/page/wilo"],
    );
    assert_eq!(got[..5], ["/page/kavo", "/page/mira", "/page/teno", "/page/loru", "/page/sapi"]);
    assert_eq!(got[5..], ["/page/{id}", "/page/{id}"]);
    assert_eq!(l.label_counts(), (1, 6));
}

#[test]
fn confirmed_words_survive_a_conversion_and_raise_the_bar() {
    let mut l = Learned::new();
    let got = labels(
        &mut l,
        &lim(),
        &[
            "/gists/public",
            "/gists/public",
            "/gists/starred",
            "/gists/starred",
            "/gists/aa11",
            "/gists/kavo",
            "/gists/public",
        ],
    );
    // `public` and `starred` were each seen twice before another value came: confirmed. The
    // bar after a collection (1) is raised by them, at most to twice: two plain values.
    assert_eq!(
        got,
        [
            "/gists/public",
            "/gists/public",
            "/gists/starred",
            "/gists/starred",
            "/gists/aa11",
            "/gists/{id}",
            "/gists/public"
        ]
    );
    let got = labels(&mut l, &lim(), &["/gists/lemo", "/gists/starred", "/gists/aa11"]);
    assert_eq!(got, ["/gists/{id}", "/gists/starred", "/gists/{id}"]);
}

#[test]
fn ids_collapse_wherever_they_are_and_a_lone_repeated_number_after_api_is_a_version() {
    let mut l = Learned::new();
    let got = labels(
        &mut l,
        &lim(),
        &[
            "/rest/api/3/issue/PROJ-1",
            "/rest/api/3/project",
            "/rest/api/3/project",
            "/rest/api/3/field",
            "/items/1/x",
            "/items/1/x",
            "/items/1/x",
            "/items/1/x",
        ],
    );
    assert_eq!(
        got,
        [
            "/rest/api/{id}/issue/PROJ-1",
            "/rest/api/{id}/project",
            "/rest/api/3/project",
            "/rest/api/3/field",
            "/items/{id}/x",
            "/items/{id}/x",
            "/items/{id}/x",
            "/items/{id}/x"
        ]
    );
}

#[test]
fn promotion_adds_a_static_word_to_a_converted_position() {
    let mut l = Learned::new();
    let lim = lim();
    assert_eq!(label(&mut l, &lim, "/orders/search"), "/orders/search");
    assert_eq!(label(&mut l, &lim, "/orders/kavo"), "/orders/{id}");
    // Converted: new values go to {id}: ids, and `lemo`, which keeps coming back.
    let mut promotions = Promotions::default();
    let mut seg = String::new();
    let mut fired = None;
    for id in ["/orders/1", "/orders/2", "/orders/3"] {
        assert_eq!(label(&mut l, &lim, id), "/orders/{id}");
        l.lookup(id.as_bytes(), &lim, &mut promotions, &mut seg);
    }
    for _ in 0..5 {
        if let Lookup::Promote(depth) = l.lookup(b"/orders/lemo", &lim, &mut promotions, &mut seg) {
            fired = Some(depth);
        }
    }
    assert_eq!(fired, Some(1), "promoted after five, at segment 1");
    l.promote_at(b"/orders/lemo", 1, &lim, &mut seg);
    assert_eq!(label(&mut l, &lim, "/orders/lemo"), "/orders/lemo");
    assert_eq!(label(&mut l, &lim, "/orders/nira"), "/orders/{id}");
}

#[test]
fn the_cap_holds_live_labels_and_conversions_free_them() {
    let lim = Limits { max_live: 3, max_issued: 6, ..Limits::new(3, 16, true) };
    let mut l = Learned::new();
    // Four distinct words under a singular position: the fourth finds the cap full.
    let got = labels(&mut l, &lim, &["/page/kavo", "/page/mira", "/page/teno", "/page/loru"]);
    assert_eq!(got, ["/page/kavo", "/page/mira", "/page/teno", "__other__"]);
    assert_eq!(l.label_counts(), (3, 3));
    // More values: the position converts (6 plain values), the three guesses are retired
    // and their place goes to one label.
    let got = labels(&mut l, &lim, &["/page/sapi", "/page/dune", "/x/a"]);
    assert_eq!(got, ["__other__", "/page/{id}", "/x/a"]);
    assert_eq!(l.label_counts(), (2, 5));
    // The lifetime budget (6) ends new labels even with room under the live cap.
    assert_eq!(labels(&mut l, &lim, &["/y/a", "/z/a"]), ["/y/a", "__other__"]);
    assert_eq!(l.label_counts(), (3, 6));
}

#[test]
fn random_segments_at_every_depth_stay_bounded() {
    let lim = Limits::new(100, 16, true);
    let mut l = Learned::new();
    let mut x = 0x2545_F491_4F6C_DD1D_u64;
    let mut word = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (0..6).map(|i| (b'a' + ((x >> (i * 5)) % 26) as u8) as char).collect::<String>()
    };
    let mut other = 0;
    let mut labels_seen = HashSet::new();
    for i in 0..20_000 {
        let depth = 1 + i % 12;
        let path: String = (0..depth).map(|_| format!("/{}", word())).collect();
        let got = label(&mut l, &lim, &path);
        other += usize::from(got == "__other__");
        labels_seen.insert(got);
    }
    assert!(l.trie().len() <= lim.max_nodes, "{} nodes", l.trie().len());
    let (live, issued) = l.label_counts();
    assert!(live <= lim.max_live && issued <= lim.max_issued, "{live} {issued}");
    assert!(labels_seen.len() <= lim.max_issued as usize + 1);
    // Learning collapsed the noise: every depth ends as one label of parameters.
    assert_eq!(label(&mut l, &lim, "/kavo/mira/teno"), "/{id}/{id}/{id}");
    assert!(other < 20_000);
}

#[test]
fn learning_off_keeps_the_plain_heuristic() {
    let lim = Limits::new(100, 6, false);
    let mut l = Learned::new();
    let got = labels(
        &mut l,
        &lim,
        &[
            "/users/alice",
            "/users/42/files/7?x=1",
            "/a/b/c/d/e/f/g/h",
            "/rest/api/3/x",
            "/rest/api/3/x",
            "/rest/api/3/x",
        ],
    );
    assert_eq!(
        got,
        [
            "/users/alice",
            "/users/{id}/files/{id}",
            "/a/b/c/d/e/f/*",
            "/rest/api/{id}/x",
            "/rest/api/{id}/x",
            "/rest/api/{id}/x"
        ]
    );
}

#[test]
fn deep_paths_keep_sixteen_segments_by_default() {
    let mut l = Learned::new();
    let deep: String = (0..20).map(|i| format!("/s{i}")).collect();
    let want: String = (0..16).map(|i| format!("/s{i}")).collect::<String>() + "/*";
    assert_eq!(label(&mut l, &lim(), &deep), want);
}

#[test]
fn hostile_bytes_become_safe_labels() {
    let mut l = Learned::new();
    let lim = Limits::new(100, 16, false);
    let got = labels(&mut l, &lim, &["/caf\u{e9}/x", "/q\"uote/back\\slash", "/x;route=.=evil;.;/y", "", "/q/c."]);
    assert_eq!(got, ["/caf__/x", "/q_uote/back_slash", "/x_route_._evil_._/y", "/", "/q/c_"]);
}

#[test]
fn the_encoding_round_trips_and_garbage_is_refused() {
    let mut l = Learned::new();
    labels(&mut l, &lim(), &["/repos/a/b/issues", "/repos/c/d/issues", "/v1/x/1", "/v1/x/2", "/deep/a/b/c"]);
    l.observe_name("catch_all", &lim());
    let bytes = encode(&l);
    let mut back = decode(&bytes).unwrap();
    l.dirty = false;
    back.dirty = false;
    assert_eq!(back, l);
    assert_eq!(encode(&back), bytes);
    for cut in [0, 5, bytes.len() / 2, bytes.len() - 1] {
        assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut bad = bytes.clone();
    bad[4] = 9;
    assert_eq!(decode(&bad).unwrap_err().to_string(), "learned routes in shared data: unknown format");
    // The last node (`/a`: kind, flags, parent, hits, id hash, id count, "a") pointed at
    // itself, then at a slot that does not exist; and a label count that does not add up.
    let mut one = Learned::new();
    label(&mut one, &lim(), "/a");
    let good = encode(&one);
    let parent_at = good.len() - (4 + 4 + 2 + 1 + 1) - 4;
    for (parent, want) in [(1u32, "malformed node"), (9, "parent out of range")] {
        let mut bytes = good.clone();
        bytes[parent_at..parent_at + 4].copy_from_slice(&parent.to_le_bytes());
        assert_eq!(decode(&bytes).unwrap_err().to_string(), format!("learned routes in shared data: {want}"));
    }
    let mut bytes = good.clone();
    bytes[5] = 7;
    assert_eq!(decode(&bytes).unwrap_err().to_string(), "learned routes in shared data: label counts do not add up");
}

#[test]
fn route_names_share_the_cap() {
    let lim = Limits::new(2, 16, true);
    let mut l = Learned::new();
    assert_eq!(l.observe_name("api", &lim), Some(0));
    assert_eq!(label(&mut l, &lim, "/a"), "/a");
    assert_eq!(l.observe_name("web", &lim), None);
    assert_eq!(l.lookup_name("api", &lim), Ok(0));
    assert_eq!(l.lookup_name("web", &lim), Err(false));
}

#[test]
fn version_ids() {
    for (raw, want) in [
        ("3", true),
        ("12", true),
        ("1.0", true),
        ("2.10", true),
        ("123", false),
        ("1.2345", false),
        ("v1", false),
        ("", false),
    ] {
        assert_eq!(is_version_number(raw.as_bytes()), want, "{raw}");
    }
    for (seg, want) in [
        ("v1", true),
        ("V2beta1", true),
        ("2.0", true),
        ("2010-04-01", false),
        ("api", true),
        ("Rest", true),
        ("video", false),
        ("users", false),
    ] {
        assert_eq!(is_version_word(seg), want, "{seg}");
    }
}

#[test]
fn a_long_segment_with_a_format_suffix_is_an_id_not_a_literal() {
    // 65 bytes with `.json`: longer than any literal may be (every VM must decode the state).
    let mut l = Learned::new();
    let long = format!("/x/{}.json", "a".repeat(60));
    assert_eq!(label(&mut l, &lim(), &long), "/x/{id}");
    assert!(decode(&encode(&l)).is_ok());
}

#[test]
fn a_repeated_id_after_a_word_stays_a_record_and_settles() {
    let mut l = Learned::new();
    let got = labels(
        &mut l,
        &lim(),
        &["/user/7", "/user/7", "/user/7", "/user/7", "/report/2024-01-01", "/report/2024-01-01", "/report/2024-01-01"],
    );
    assert_eq!(
        got,
        ["/user/{id}", "/user/{id}", "/user/{id}", "/user/{id}", "/report/{id}", "/report/{id}", "/report/{id}"]
    );
    // Settled after the third: a fourth costs nothing (no state change, no shared write).
    let mut seg = String::new();
    assert_eq!(
        l.lookup(b"/user/7", &lim(), &mut Promotions::default(), &mut seg),
        Lookup::Label(l.observe(b"/user/7", &lim(), &mut seg).unwrap())
    );
}

#[test]
fn a_lone_id_repeated_costs_a_few_learning_steps_then_none() {
    let mut l = Learned::new();
    let path = "/users/5f0c2a3e-9b1d-4c7a-8e2f-0123456789ab/x";
    let mut seg = String::new();
    let mut changed = 0;
    for _ in 0..100 {
        if !matches!(l.lookup(path.as_bytes(), &lim(), &mut Promotions::default(), &mut seg), Lookup::Label(_)) {
            l.observe(path.as_bytes(), &lim(), &mut seg);
            changed += usize::from(l.take_dirty());
        }
    }
    // Created; `users` and `x` confirmed, the id seen twice; the id seen three times: settled.
    assert_eq!(changed, 3);
}

#[test]
fn a_version_relabel_reissues_the_labels_below_it() {
    let mut l = Learned::new();
    let got =
        labels(&mut l, &lim(), &["/rest/api/3/issue", "/rest/api/3/field", "/rest/api/3/issue", "/rest/api/3/field"]);
    assert_eq!(got, ["/rest/api/{id}/issue", "/rest/api/{id}/field", "/rest/api/3/issue", "/rest/api/3/field"]);
    // Two labels live; four ever issued (the two with {id} retired by the relabel).
    assert_eq!(l.label_counts(), (2, 4));
}

#[test]
fn with_the_node_budget_spent_an_id_at_a_known_position_still_learns() {
    let lim = Limits { max_nodes: 4, ..lim() };
    let mut l = Learned::new();
    assert_eq!(label(&mut l, &lim, "/items/1"), "/items/{id}");
    assert_eq!(label(&mut l, &lim, "/other"), "/other");
    assert_eq!(l.trie().len(), 4);
    let mut seg = String::new();
    assert_eq!(l.lookup(b"/items/2", &lim, &mut Promotions::default(), &mut seg), Lookup::Learn);
    assert_eq!(label(&mut l, &lim, "/items/2"), "/items/{id}");
    assert_eq!(label(&mut l, &lim, "/new"), "__other__");
}

#[test]
fn names_that_repeat_still_make_a_parameter() {
    // Every name twice in a row (a user reloading a page): each gets confirmed, yet the
    // position converts once it holds three times its threshold of plain values.
    let mut l = Learned::new();
    let names: Vec<String> = (0..300)
        .map(|i| format!("name{}x", char::from(b'a' + (i % 26) as u8).to_string().repeat(1 + i / 26)))
        .collect();
    let mut other = 0;
    for n in &names {
        for _ in 0..2 {
            other += usize::from(label(&mut l, &lim(), &format!("/page/{n}")) == "__other__");
        }
    }
    assert_eq!(label(&mut l, &lim(), "/page/zzzz"), "/page/{id}");
    assert_eq!(other, 0);
}

#[test]
fn corrupted_parents_are_refused_not_followed() {
    let mut l = Learned::new();
    label(&mut l, &lim(), "/a/b");
    let mut bytes = encode(&l);
    // Header 19 bytes; a slot is kind, flags, parent (4), hits (4), id hash (4), id count
    // (2), segment length and bytes. Root (17 bytes), `a` (18), `b`: point `a` at `b` and
    // `b` at slot 999.
    let (a, b) = (19 + 17, 19 + 17 + 18);
    bytes[a + 2..a + 6].copy_from_slice(&2u32.to_le_bytes());
    bytes[b + 2..b + 6].copy_from_slice(&999u32.to_le_bytes());
    assert_eq!(decode(&bytes).unwrap_err().to_string(), "learned routes in shared data: parent out of range");
}
