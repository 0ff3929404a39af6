use super::*;

fn texts(r: &Routes) -> Vec<&str> {
    r.templates.iter().map(Template::text).collect()
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
