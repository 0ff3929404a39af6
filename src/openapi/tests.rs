use super::*;

fn texts(r: &Routes) -> Vec<&str> {
    r.rules.iter().map(|r| r.template.text()).collect()
}

#[test]
fn openapi_3_paths_become_templates_most_specific_first() {
    let doc = br#"{
      "openapi": "3.1.0",
      "info": {"title": "converter", "version": "1"},
      "servers": [{"url": "https://api.example.com/{version}", "variables": {"version": {"default": "v2"}}}],
      "paths": {
        "/users/{id}": {"get": {"responses": {}}},
        "/users/me": {"get": {}},
        "/files/{id}#download": {"get": {}},
        "/files/{id}": {"delete": {}},
        "/calls/{sid}.json": {"get": {}},
        "x-extension": {},
        "/bad path": {"get": {}}
      },
      "components": {"schemas": {"Huge": {"type": "object"}}}
    }"#;
    let r = parse(doc, None).unwrap();
    assert_eq!(r.base_path, "/v2");
    assert_eq!(texts(&r), ["/v2/users/me", "/v2/calls/{sid}.json", "/v2/files/{id}", "/v2/users/{id}"]);
    assert_eq!(
        r.skipped,
        [("/v2/bad path".to_string(), "template \"/v2/bad path\": segment \"bad path\" has characters outside RFC 3986 path characters (or ';', '=')".to_string())]
    );
}

#[test]
fn swagger_2_base_path_and_overrides() {
    let doc = br#"{"swagger": "2.0", "basePath": "/api/", "paths": {"/items/{id}": {"get": {}}}}"#;
    assert_eq!(texts(&parse(doc, None).unwrap()), ["/api/items/{id}"]);
    assert_eq!(texts(&parse(doc, Some("/")).unwrap()), ["/items/{id}"]);
    assert_eq!(texts(&parse(doc, Some("/gw/")).unwrap()), ["/gw/items/{id}"]);
}

#[test]
fn server_urls() {
    for (url, want) in [
        ("https://h", ""),
        ("https://h/", ""),
        ("https://h/v1/", "/v1"),
        ("/api", "/api"),
        ("//kubernetes.local", ""),
        ("https://h/{tenant}/x", ""),
    ] {
        let s = Server { url: url.to_string(), variables: BTreeMap::new() };
        assert_eq!(server_base(Some(&s)), want, "{url}");
    }
}

#[test]
fn what_is_not_openapi_is_refused() {
    let cases: &[(&[u8], &str)] = &[
        (b"{\"paths\": {}}", "not an OpenAPI document: no `openapi` or `swagger` field"),
        (b"{\"openapi\": \"3.0.0\"}", "the document has no `paths`"),
        (b"<html>", "not a JSON OpenAPI document: expected value at line 1 column 1"),
        (
            b"{\"openapi\": \"3.0.0\", \"paths\": []}",
            "not a JSON OpenAPI document: invalid type: sequence, expected a map at line 1 column 30",
        ),
    ];
    for (doc, want) in cases {
        assert_eq!(parse(doc, None).unwrap_err().to_string(), *want);
    }
}

/// Paths of one shape with differently named parameters (GitHub's attestations) apply to
/// their own operations' methods; every other template to all methods.
#[test]
fn same_shape_paths_apply_to_their_own_methods() {
    let doc = br##"{
      "openapi": "3.0.3",
      "paths": {
        "/orgs/{org}/attestations/{subject_digest}": {"get": {"responses": {}}, "parameters": []},
        "/orgs/{org}/attestations/{attestation_id}": {"delete": {}, "summary": "x"},
        "/orgs/{org}/repos": {"get": {}, "post": {}},
        "/orgs/{org}": {"$ref": "#/components/pathItems/org", "x-order": 1, "x-weight": 1.5},
        "x-extension": "ignored",
        "x-count": 5
      }
    }"##;
    let r = parse(doc, None).unwrap();
    let rules: Vec<(&str, Option<Vec<&str>>)> =
        r.rules.iter().map(|r| (r.template.text(), r.methods.map(MethodSet::names))).collect();
    assert_eq!(
        rules,
        [
            ("/orgs/{org}", None),
            ("/orgs/{org}/repos", None),
            ("/orgs/{org}/attestations/{attestation_id}", Some(vec!["DELETE"])),
            ("/orgs/{org}/attestations/{subject_digest}", Some(vec!["GET", "HEAD"])),
            // Any other method (OPTIONS): the shape's first template.
            ("/orgs/{org}/attestations/{attestation_id}", None),
        ]
    );
    assert_eq!(r.template_count(), 4);
}
