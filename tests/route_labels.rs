//! Route labels on real API descriptions, with the empty configuration.

mod support;

use routemeter::route::learn::{Learned, Limits};
use support::apis::{self, Score};

fn learned_labels(requests: &[apis::Request]) -> Vec<String> {
    let lim = Limits::new(100, 16, true);
    let mut l = Learned::new();
    let mut seg = String::new();
    requests
        .iter()
        .map(|r| match l.observe(r.path.as_bytes(), &lim, &mut seg) {
            Some(n) => {
                let mut out = String::new();
                l.render(n, &mut out);
                out
            }
            None => apis::OTHER.to_string(),
        })
        .collect()
}

#[test]
#[ignore]
fn survey() {
    println!("{}", apis::HEADER);
    let mut total = Score::of(&[], &[]);
    let names: Vec<String> = match std::env::var("APIS") {
        Ok(list) => list.split(',').map(str::to_string).collect(),
        Err(_) => apis::APIS.iter().map(|s| s.to_string()).collect(),
    };
    for name in &names {
        let api = apis::load(name);
        let mut s = Score::of(&[], &[]);
        for seed in [1, 2] {
            for pool in [30, 300] {
                let reqs = apis::traffic(&api, seed * 1000 + pool as u64, Some(60), 25, pool);
                s.add(&Score::of(&reqs, &learned_labels(&reqs)));
            }
        }
        println!("{}", s.row(name));
        total.add(&s);
    }
    println!("{}", total.row("all"));
}

#[test]
#[ignore]
fn diagnose() {
    let name = std::env::var("API").unwrap_or_else(|_| "github".into());
    let api = apis::load(&name);
    let pool: usize = std::env::var("POOL").ok().and_then(|p| p.parse().ok()).unwrap_or(300);
    let reqs = apis::traffic(&api, 1000 + pool as u64, Some(60), 25, pool);
    let labels = learned_labels(&reqs);
    let mut by_t: std::collections::BTreeMap<usize, Vec<&str>> = Default::default();
    let mut users: std::collections::BTreeMap<&str, std::collections::BTreeSet<usize>> = Default::default();
    for (r, l) in reqs.iter().zip(&labels) {
        by_t.entry(r.template).or_default().push(l);
        users.entry(l).or_default().insert(r.template);
    }
    for (t, ls) in &by_t {
        let distinct: std::collections::BTreeSet<&&str> = ls.iter().collect();
        let shared = distinct.iter().any(|l| users[**l].len() > 1);
        if distinct.len() > 1 || shared {
            let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
            for l in ls { *counts.entry(l).or_default() += 1; }
            println!("{} {}{:?}", api.templates[*t].path, if shared { "SHARED " } else { "" }, counts);
        }
    }
}
