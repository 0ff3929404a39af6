use super::*;

fn label(json: &str, headers: &mut Vec<String>) -> AttributeLabel {
    AttributeLabel::from_raw("labels[0]", serde_json::from_str(json).unwrap(), headers).unwrap()
}

fn set(headers: &mut Vec<String>) -> AttributeSet {
    AttributeSet::new(vec![
        label(r#"{"name": "format", "query": "output_format", "values": ["csv", "xlsx"]}"#, headers),
        label(r#"{"name": "tenant", "header": "X-Tenant", "values": ["a", "b"], "default": "a"}"#, headers),
    ])
}

#[test]
fn values_come_from_query_and_headers_and_stay_bounded() {
    let mut headers = Vec::new();
    let s = set(&mut headers);
    assert_eq!(headers, ["x-tenant"]);
    // format: csv, xlsx, other, none; tenant: a, b, other (its default is listed).
    assert_eq!(s.combinations(), 12);
    type Case<'a> = (&'a str, Option<&'a str>, [(&'a str, &'a str); 2]);
    let cases: &[Case] = &[
        ("/convert?output_format=csv&compression=gzip", Some("b"), [("format", "csv"), ("tenant", "b")]),
        ("/convert?compression=gzip&output_format=xlsx#x", None, [("format", "xlsx"), ("tenant", "a")]),
        ("/convert", Some("evil\u{1}"), [("format", "none"), ("tenant", "other")]),
        ("/convert?output_format=CSV", Some("a"), [("format", "other"), ("tenant", "a")]),
        ("/convert?output_format", Some("a"), [("format", "other"), ("tenant", "a")]),
    ];
    for (path, tenant, want) in cases {
        let h = [tenant.map(|t| t.as_bytes().to_vec())];
        let c = s.combination(path.as_bytes(), &h);
        assert!(u64::from(c) < s.combinations(), "{path}");
        assert_eq!(s.values(c), want, "{path}");
    }
    // 20,000 hostile values give at most the combinations there are.
    let distinct: std::collections::BTreeSet<u32> = (0..20_000)
        .map(|i| s.combination(format!("/c?output_format=v{i}").as_bytes(), &[Some(format!("t{i}").into_bytes())]))
        .collect();
    assert_eq!(distinct.len(), 1);
}

#[test]
fn errors_name_the_field() {
    let cases = [
        (r#"{"name": "route", "query": "q", "values": ["a"]}"#, "labels[0].name: \"route\" must be 1-64 characters of a-z, 0-9 and '_', not starting with a digit, and not one of [\"method\", \"route\", \"status\", \"le\", \"quantile\"]"),
        (r#"{"name": "f", "values": ["a"]}"#, "labels[0]: needs exactly one of \"query\" (a parameter name) or \"header\" (a header name)"),
        (r#"{"name": "f", "query": "q", "header": "h", "values": ["a"]}"#, "labels[0]: needs exactly one of \"query\" (a parameter name) or \"header\" (a header name)"),
        (r#"{"name": "f", "query": "q", "values": []}"#, "labels[0].values: must list 1 to 64 values, got 0"),
        (r#"{"name": "f", "query": "q", "values": ["a", "a;b"]}"#, "labels[0].values[1]: \"a;b\" must be 1-64 label-safe characters (RFC 3986 path characters but ';' and '='), not ending in '.', not \"other\", and not listed twice"),
        (r#"{"name": "f", "query": "q", "values": ["a"], "default": "other"}"#, "labels[0].default: \"other\" must be 1-64 label-safe characters, not ending in '.', not \"other\""),
    ];
    for (json, want) in cases {
        let raw: RawAttribute = serde_json::from_str(json).unwrap();
        assert_eq!(
            AttributeLabel::from_raw("labels[0]", raw, &mut Vec::new()).unwrap_err().to_string(),
            want,
            "{json}"
        );
    }
}
