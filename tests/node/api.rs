//! The client API of the real binary, byte for byte: the rows of ORIGINAL.md §3 that mostdb keeps
//! (1–11, 14–20), the deliberate fixes (non-string values and long keys rejected with a
//! `detail`), routes, methods, the context path, the internal `/api/*` routes, health
//! endpoints and the API key.

use crate::support::*;

const SET: &str = "/mostdb/set";
const GET: &str = "/mostdb/get";
const DEL: &str = "/mostdb/del";

const ALLOW_POST: &str = "POST, OPTIONS";
const ALLOW_GET_POST: &str = "GET, POST, OPTIONS";

const FORBIDDEN_PREFIX: &str = r#"{"code":403,"message":"Forbidden","success":false,"detail":""#;

/// Rows 1–5: set, get, del, get after del, get of a never-set key, del of a missing key.
#[test]
fn set_get_del_round_trip() {
    let node = Node::start();
    let mut c = node.client();

    let r = c.post(SET, &kv("ping", "pong"));
    r.assert_json(200, OK);
    assert_eq!(r.body.len(), 27, "row 1 Content-Length");

    let r = c.post(GET, &k("ping"));
    r.assert_json(
        200,
        r#"{"code":200,"success":true,"result":{"key":"ping","value":"pong"}}"#,
    );
    assert_eq!(r.body.len(), 66, "row 2 Content-Length");

    c.post(DEL, &k("ping")).assert_json(200, OK);
    let r = c.post(GET, &k("ping"));
    r.assert_json(200, NOT_FOUND);
    assert_eq!(r.body.len(), 49, "row 4 Content-Length");

    c.post(GET, &k("xxx")).assert_json(200, NOT_FOUND);
    c.post(DEL, &k("nokey")).assert_json(200, OK);
    c.post(GET, &k("nokey")).assert_json(200, NOT_FOUND);

    // Overwrite: the last set wins; a set after a delete brings the key back.
    c.post(SET, &kv("ow", "one")).assert_json(200, OK);
    c.post(SET, &kv("ow", "two")).assert_json(200, OK);
    c.post(GET, &k("ow")).assert_json(200, &got("ow", "two"));
    c.post(DEL, &k("ow")).assert_json(200, OK);
    c.post(SET, &kv("ow", "three")).assert_json(200, OK);
    c.post(GET, &k("ow")).assert_json(200, &got("ow", "three"));

    // Keys are not trimmed.
    c.post(SET, &kv(" sp ", "spaced")).assert_json(200, OK);
    c.post(GET, &k("sp")).assert_json(200, NOT_FOUND);
    c.post(GET, &k(" sp "))
        .assert_json(200, &got(" sp ", "spaced"));
}

/// Rows 6–11: every malformed request gets exactly the 参数有误 body, on every data route, and
/// nothing is stored.
#[test]
fn bad_parameters_get_the_original_body() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(BAD_PARAM.len(), 53, "参数有误 body is 53 bytes");

    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(kv("bom", "v").as_bytes());
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("empty key", kv("", "v").into_bytes()),
        ("missing key", br#"{"value":"v"}"#.to_vec()),
        ("empty object", b"{}".to_vec()),
        ("no body", Vec::new()),
        ("invalid JSON", br#"{"key":"a","value":"#.to_vec()),
        (
            "trailing garbage",
            br#"{"key":"tg","value":"v"} x"#.to_vec(),
        ),
        (
            "two objects",
            br#"{"key":"two","value":"v"}{"key":"two","value":"w"}"#.to_vec(),
        ),
        ("JSON array", b"[1,2]".to_vec()),
        (
            "array of objects",
            br#"[{"key":"arr","value":"v"}]"#.to_vec(),
        ),
        ("BOM + JSON", bom),
        ("plain text", b"hello world".to_vec()),
        ("form body", b"key=form&value=b".to_vec()),
        ("key is a number", br#"{"key":123,"value":"x"}"#.to_vec()),
        ("key is null", br#"{"key":null,"value":"x"}"#.to_vec()),
        ("JSON string", br#""key""#.to_vec()),
    ];
    for path in [SET, GET, DEL] {
        for (case, body) in &bodies {
            let r = c.call(&post(path, body));
            if r.masked() != expect_json(200, BAD_PARAM.as_bytes()) {
                panic!("{path} {case}: expected 参数有误, got {}", show(&r.raw));
            }
        }
    }
    for key in ["tg", "two", "arr", "bom", "form", "a", "123"] {
        c.post(GET, &k(key)).assert_json(200, NOT_FOUND);
    }
}

/// A bug fix over the original (ORIGINAL.md §5.4): a set whose value is not a string is refused
/// with a `detail`, and stores nothing (an earlier value stays). Keys over 8 KiB likewise.
#[test]
fn non_string_values_and_long_keys_are_refused_with_detail() {
    let node = Node::start();
    let mut c = node.client();

    let bad_values = [
        ("number", r#"{"key":"knum","value":123}"#),
        ("object", r#"{"key":"knum","value":{"a":1}}"#),
        ("true", r#"{"key":"knum","value":true}"#),
        ("null", r#"{"key":"knum","value":null}"#),
        ("array", r#"{"key":"knum","value":["x"]}"#),
        ("missing value", r#"{"key":"knum"}"#),
    ];
    for (case, body) in bad_values {
        let r = c.post(SET, body);
        if !r.body_str().contains("\"detail\":") {
            panic!(
                "set with {case} value: expected 参数有误 + detail, got {}",
                show(&r.raw)
            );
        }
        r.assert_bad_param_with_detail();
        c.post(GET, &k("knum")).assert_json(200, NOT_FOUND);
    }

    // An existing value is left alone by a refused set.
    c.post(SET, &kv("keep", "old")).assert_json(200, OK);
    for (_, body) in bad_values {
        let body = body.replace("knum", "keep");
        c.post(SET, &body).assert_bad_param_with_detail();
    }
    c.post(GET, &k("keep"))
        .assert_json(200, &got("keep", "old"));

    // 8 KiB of key is the limit: accepted at exactly 8192 bytes, refused at 8193.
    let max_key = "k".repeat(8192);
    c.post(SET, &kv(&max_key, "edge")).assert_json(200, OK);
    c.post(GET, &k(&max_key))
        .assert_json(200, &got(&max_key, "edge"));
    let long_key = "k".repeat(8193);
    for path in [SET, GET, DEL] {
        c.post(path, &kv(&long_key, "v"))
            .assert_bad_param_with_detail();
    }
    // The long-key del must not have touched the 8192-byte key.
    c.post(GET, &k(&max_key))
        .assert_json(200, &got(&max_key, "edge"));
}

/// Rows 13 (empty string), 14–16: decoding rules of Go's encoding/json.
#[test]
fn json_decoding_matches_the_original() {
    let node = Node::start();
    let mut c = node.client();

    // Empty value: stored, returned without "value".
    c.post(SET, &kv("kempty", "")).assert_json(200, OK);
    c.post(GET, &k("kempty")).assert_json(
        200,
        r#"{"code":200,"success":true,"result":{"key":"kempty"}}"#,
    );

    // 14: field names case-insensitive.
    c.post(SET, r#"{"KEY":"kcase","VALUE":"vv"}"#)
        .assert_json(200, OK);
    c.post(GET, &k("kcase"))
        .assert_json(200, &got("kcase", "vv"));
    c.post(GET, r#"{"Key":"kcase"}"#)
        .assert_json(200, &got("kcase", "vv"));
    c.post(SET, r#"{"kEy":"kmix","vAlUe":"mixed"}"#)
        .assert_json(200, OK);
    c.post(GET, &k("kmix"))
        .assert_json(200, &got("kmix", "mixed"));

    // 15: last duplicate wins.
    c.post(SET, r#"{"key":"d1","key":"d2","value":"dv"}"#)
        .assert_json(200, OK);
    c.post(GET, &k("d2")).assert_json(200, &got("d2", "dv"));
    c.post(GET, &k("d1")).assert_json(200, NOT_FOUND);
    c.post(SET, r#"{"key":"d3","value":"first","value":"last"}"#)
        .assert_json(200, OK);
    c.post(GET, &k("d3")).assert_json(200, &got("d3", "last"));

    // 16: unknown fields ignored (whatever their type), whitespace allowed.
    c.post(SET, r#"{"key":"kord","value":"s","extra":1}"#)
        .assert_json(200, OK);
    c.post(GET, &k("kord")).assert_json(200, &got("kord", "s"));
    c.post(
        SET,
        "{ \"extra\" : [1,{\"a\":null}] ,\n\t\"key\" : \"kws\" , \"value\" : \"w\" }\n",
    )
    .assert_json(200, OK);
    c.post(GET, &k("kws")).assert_json(200, &got("kws", "w"));
}

/// Rows 17–20: non-ASCII, Go's HTML-safe escaping, invalid UTF-8, NUL.
#[test]
fn json_escaping_matches_the_original() {
    let node = Node::start();
    let mut c = node.client();

    // 17: non-ASCII raw on output; \u escapes (with a surrogate pair) accepted on input.
    c.post(SET, &kv("键🔑", "值✓ é")).assert_json(200, OK);
    let expected = got("键🔑", "值✓ é");
    assert_eq!(expected.len(), 74, "row 17 Content-Length");
    c.post(GET, &k("键🔑")).assert_json(200, &expected);
    c.post(GET, r#"{"key":"\u952e\ud83d\udd11"}"#)
        .assert_json(200, &expected);

    // 18: < > & and U+2028 escaped like Go, quotes, backslash, control characters.
    let set18 = r#"{"key":"h<>&","value":"a<b>&c \"q\" \\ \n\t \u2028 /"}"#;
    c.post(SET, set18).assert_json(200, OK);
    let expected = r#"{"code":200,"success":true,"result":{"key":"h\u003c\u003e\u0026","value":"a\u003cb\u003e\u0026c \"q\" \\ \n\t \u2028 /"}}"#;
    assert_eq!(expected.len(), 121, "row 18 Content-Length");
    c.post(GET, &k("h<>&")).assert_json(200, expected);
    // U+2028 sent raw is stored as the same character.
    c.post(SET, "{\"key\":\"ls\",\"value\":\"x\u{2028}y\"}")
        .assert_json(200, OK);
    c.post(GET, &k("ls"))
        .assert_json(200, &got("ls", r"x\u2028y"));

    // 19: invalid UTF-8 becomes U+FFFD.
    let mut body = br#"{"key":"bad8","value":""#.to_vec();
    body.extend_from_slice(&[0xFF, 0xFE]);
    body.extend_from_slice(b"\"}");
    c.call(&post(SET, &body)).assert_json(200, OK);
    let expected = got("bad8", "\u{FFFD}\u{FFFD}");
    assert_eq!(expected.len(), 68, "row 19 Content-Length");
    c.post(GET, &k("bad8")).assert_json(200, &expected);

    // 20: NUL in a key, escaped as \u0000 on output.
    c.post(SET, r#"{"key":"a\u0000b","value":"nul"}"#)
        .assert_json(200, OK);
    let expected = got(r"a\u0000b", "nul");
    assert_eq!(expected.len(), 69, "row 20 Content-Length");
    c.post(GET, r#"{"key":"a\u0000b"}"#)
        .assert_json(200, &expected);
    c.post(GET, &k("ab")).assert_json(200, NOT_FOUND);

    // Other control characters come back as JSON escapes that decode to the same value.
    c.post(SET, r#"{"key":"ctl","value":"\u0001\u001f\r"}"#)
        .assert_json(200, OK);
    let r = c.post(GET, &k("ctl"));
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("get body is JSON");
    assert_eq!(v["result"]["value"], "\u{1}\u{1f}\r", "{}", show(&r.raw));
}

/// Methods and paths: 405 with Allow, OPTIONS, 404, the original's `GET /mostdb/get1`.
#[test]
fn methods_and_paths() {
    let node = Node::start();
    let mut c = node.client();
    let not_allowed = |allow| expect_text(405, "Method Not Allowed", Some(allow), false);

    for (method, path, allow) in [
        ("GET", SET, ALLOW_POST),
        ("PUT", SET, ALLOW_POST),
        ("DELETE", SET, ALLOW_POST),
        ("GET", DEL, ALLOW_POST),
        ("DELETE", DEL, ALLOW_POST),
        ("PUT", GET, ALLOW_GET_POST),
        ("DELETE", GET, ALLOW_GET_POST),
        ("PATCH", GET, ALLOW_GET_POST),
    ] {
        c.call(&request(method, path, &[], b""))
            .assert_bytes(&not_allowed(allow));
    }
    // A body on a refused request is consumed: the connection stays usable.
    c.call(&request("PUT", SET, &[], kv("put", "x").as_bytes()))
        .assert_bytes(&not_allowed(ALLOW_POST));
    c.post(GET, &k("put")).assert_json(200, NOT_FOUND);

    for (path, allow) in [(SET, ALLOW_POST), (DEL, ALLOW_POST), (GET, ALLOW_GET_POST)] {
        let r = c.call(&request("OPTIONS", path, &[], b""));
        let expected = format!(
            "HTTP/1.1 200 OK\r\nServer: mostdb\r\nDate: {DATE_MASK}\r\nContent-Length: 0\r\nAllow: {allow}\r\n\r\n"
        );
        r.assert_bytes(expected.as_bytes());
    }

    let not_found = expect_text(404, "Not Found", None, false);
    for (method, path) in [
        ("POST", "/mostdb/foo"),
        ("GET", "/"),
        ("POST", "/"),
        ("GET", "/foo"),
        ("POST", "/mostdb"),
        ("POST", "/mostdb/"),
        ("POST", "/mostdb/get/"),
        ("POST", "/MOSTDB/GET"),
        ("POST", "/mostdb/GET"),
        ("POST", "/mostdb/api/foo"),
    ] {
        let r = c.call(&request(method, path, &[], k("x").as_bytes()));
        if r.masked() != not_found {
            panic!("{method} {path}: expected 404, got {}", show(&r.raw));
        }
    }

    // The original's GET /mostdb/get1 (JSON in a GET's body), rows 33–35.
    c.post(SET, &kv("kord", "s")).assert_json(200, OK);
    c.call(&request("GET", "/mostdb/get1", &[], k("kord").as_bytes()))
        .assert_json(200, &got("kord", "s"));
    c.call(&request("GET", "/mostdb/get1", &[], b""))
        .assert_json(200, BAD_PARAM);
    c.call(&request("POST", "/mostdb/get1", &[], k("kord").as_bytes()))
        .assert_bytes(&not_allowed("GET, OPTIONS"));
}

/// Query strings: ignored on POST; on `GET {ctx}/get` they carry the key.
#[test]
fn query_strings() {
    let node = Node::start();
    let mut c = node.client();

    // A query string on POST is ignored: the body decides.
    c.call(&post(
        "/mostdb/set?key=zzz&value=q",
        kv("qs", "body").as_bytes(),
    ))
    .assert_json(200, OK);
    c.call(&post("/mostdb/get?x=1", k("qs").as_bytes()))
        .assert_json(200, &got("qs", "body"));
    c.post(GET, &k("zzz")).assert_json(200, NOT_FOUND);
    c.call(&post("/mostdb/get?key=zzz", k("qs").as_bytes()))
        .assert_json(200, &got("qs", "body"));

    // GET with the key in the query: percent-decoded, `+` is a space; same bodies as POST get.
    c.post(SET, &kv("ping", "pong")).assert_json(200, OK);
    let via_post = c.post(GET, &k("ping"));
    let via_get = c.call(&request("GET", "/mostdb/get?key=ping", &[], b""));
    assert_eq!(via_get.masked(), via_post.masked());
    via_get.assert_json(200, &got("ping", "pong"));
    c.post(SET, &kv("a b+c", "spaced")).assert_json(200, OK);
    c.call(&request("GET", "/mostdb/get?key=a+b%2Bc", &[], b""))
        .assert_json(200, &got("a b+c", "spaced"));
    c.call(&request("GET", "/mostdb/get?key=a%20b%2bc", &[], b""))
        .assert_json(200, &got("a b+c", "spaced"));
    c.post(SET, &kv("键🔑", "值")).assert_json(200, OK);
    c.call(&request(
        "GET",
        "/mostdb/get?other=1&key=%E9%94%AE%F0%9F%94%91",
        &[],
        b"",
    ))
    .assert_json(200, &got("键🔑", "值"));
    c.call(&request("GET", "/mostdb/get?key=missing", &[], b""))
        .assert_json(200, NOT_FOUND);
    c.call(&request("GET", "/mostdb/get", &[], b""))
        .assert_json(200, BAD_PARAM);
    c.call(&request("GET", "/mostdb/get?key=", &[], b""))
        .assert_json(200, BAD_PARAM);
}

/// `GET /healthz` and `GET /readyz` on a running node.
#[test]
fn health_endpoints() {
    let node = Node::start();
    let mut c = node.client();
    let r = c.call(&request("GET", "/healthz", &[], b""));
    r.assert_json(200, ALIVE);
    r.assert_date_current(5);
    c.call(&request("GET", "/readyz", &[], b""))
        .assert_json(200, READY);
    // The Date header follows the clock (a cached date may lag by a second, not more): time
    // has to pass for that to show, so this one test sleeps.
    std::thread::sleep(std::time::Duration::from_millis(3_500));
    let r = c.call(&request("GET", "/readyz", &[], b""));
    r.assert_json(200, READY);
    r.assert_date_current(2);
}

/// `GET /cluster` on a single node: one member, itself, a quorum of one.
#[test]
fn cluster_view_of_a_single_node() {
    let node = Node::start();
    let mut c = node.client();
    let r = c.call(&request("GET", "/cluster", &[], b""));
    assert_eq!(r.status, 200);
    let body = String::from_utf8(r.body.clone()).unwrap();
    let (head, tail) = body.split_once(r#""node_id":""#).expect("a node id");
    assert_eq!(head, r#"{"code":200,"success":true,"result":{"#);
    let (id, rest) = tail.split_once('"').unwrap();
    assert!(
        id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{body}"
    );
    let url = format!("http://127.0.0.1:{}", node.port());
    let (rest, clock) = rest.split_once(r#","clock":"#).expect("the clock section");
    // The node itself, as the monitor sees it (times and sizes vary: checked by type).
    let (head, rest) = rest.split_once(r#","nodes":["#).expect("nodes");
    assert_eq!(head, r#","members":1,"quorum":1,"up":1,"available":true"#);
    let (own, rest) = rest.split_once(r#"}],"#).expect("one node");
    let own: serde_json::Value = serde_json::from_str(&format!("{own}}}")).expect("JSON");
    assert_eq!(own["url"], url.as_str());
    assert_eq!(
        (own["self"].as_bool(), own["state"].as_str()),
        (Some(true), Some("self"))
    );
    assert_eq!(own["recovering"].as_bool(), Some(false));
    assert_eq!(own["version"].as_str(), Some(env!("CARGO_PKG_VERSION")));
    for field in [
        "state_since_unix_ms",
        "uptime_s",
        "approximate_keys",
        "disk_bytes",
    ] {
        assert!(own[field].is_u64(), "{field}: {own}");
    }
    assert_eq!(
        rest,
        r#""anti_entropy":{"passes":0,"passes_failed":0,"buckets_compared":0,"buckets_differing":0,"keys_copied_in":0,"keys_peer_behind":0,"bytes_copied":0,"copies_failed":0,"copies_refused":0,"promises_settled":0,"young_skipped":0,"digest_scans":0,"pages_served":0,"requests_refused":0,"last_pass_unix_ms":0,"last_pass_duration_ms":0}"#
    );
    // The clock: its HLC (near the wall clock), the skew bound and what it refused.
    let clock: serde_json::Value =
        serde_json::from_str(clock.strip_suffix("}}").expect("closes")).expect("JSON");
    let (hlc_ms, wall_ms) = (clock["hlc_ms"].as_u64(), clock["wall_ms"].as_u64());
    assert!(
        hlc_ms
            .zip(wall_ms)
            .is_some_and(|(h, w)| h.abs_diff(w) < 60_000),
        "{clock}"
    );
    assert_eq!(clock["max_skew_ms"], 60_000);
    assert_eq!(clock["versions_refused_future"], 0);
    assert_eq!(clock["observations_ignored"], 0);
}

/// `MOSTDB_CONTEXT_PATH` moves every data route; the old prefix is gone.
#[test]
fn context_path_moves_the_routes() {
    let node = Node::start_with(&[("MOSTDB_CONTEXT_PATH", "/kv")]);
    let mut c = node.client();
    c.post("/kv/set", &kv("ping", "pong")).assert_json(200, OK);
    assert_eq!(c.post("/kv/set", &kv("ping", "pong")).body.len(), 27);
    c.post("/kv/get", &k("ping"))
        .assert_json(200, &got("ping", "pong"));
    c.call(&request("GET", "/kv/get?key=ping", &[], b""))
        .assert_json(200, &got("ping", "pong"));
    c.post("/kv/api/get", &k("ping"))
        .assert_json(200, &got("ping", "pong"));
    let not_found = expect_text(404, "Not Found", None, false);
    for path in [SET, GET, DEL, "/mostdb/api/get"] {
        c.call(&post(path, k("ping").as_bytes()))
            .assert_bytes(&not_found);
    }
    c.post("/kv/del", &k("ping")).assert_json(200, OK);
    c.post("/kv/get", &k("ping")).assert_json(200, NOT_FOUND);
    c.call(&request("GET", "/healthz", &[], b""))
        .assert_json(200, ALIVE);
}

/// `/api/get` reads this node's copy; `/api/set` and `/api/del` are closed to clients (403) and
/// change nothing.
#[test]
fn internal_api_routes() {
    let node = Node::start();
    let mut c = node.client();
    c.post("/mostdb/api/get", &k("ak"))
        .assert_json(200, NOT_FOUND);
    c.post(SET, &kv("ak", "av")).assert_json(200, OK);
    let r = c.post("/mostdb/api/get", &k("ak"));
    r.assert_json(200, &got("ak", "av"));
    assert_eq!(r.body.len(), 62);
    c.post("/mostdb/api/get", "{}").assert_json(200, BAD_PARAM);

    c.post("/mostdb/api/set", &kv("ak", "evil"))
        .assert_envelope_with_detail(403, FORBIDDEN_PREFIX);
    c.post("/mostdb/api/set", &kv("new", "evil"))
        .assert_envelope_with_detail(403, FORBIDDEN_PREFIX);
    c.post("/mostdb/api/del", &k("ak"))
        .assert_envelope_with_detail(403, FORBIDDEN_PREFIX);
    c.post(GET, &k("ak")).assert_json(200, &got("ak", "av"));
    c.post(GET, &k("new")).assert_json(200, NOT_FOUND);
    c.post("/mostdb/api/get", &k("ak"))
        .assert_json(200, &got("ak", "av"));

    c.post(DEL, &k("ak")).assert_json(200, OK);
    c.post("/mostdb/api/get", &k("ak"))
        .assert_json(200, NOT_FOUND);
}

/// Every route a client can reach, as (method, path, body).
fn all_routes() -> Vec<(&'static str, &'static str, String)> {
    vec![
        ("POST", SET, kv("guarded", "intruder")),
        ("POST", GET, k("guarded")),
        ("POST", DEL, k("guarded")),
        ("GET", "/mostdb/get?key=guarded", String::new()),
        ("POST", "/mostdb/api/get", k("guarded")),
        ("POST", "/mostdb/api/set", kv("guarded", "intruder")),
        ("POST", "/mostdb/api/del", k("guarded")),
        ("GET", "/healthz", String::new()),
        ("GET", "/readyz", String::new()),
        ("GET", "/cluster", String::new()),
        ("GET", "/cluster?view=cluster", String::new()),
        ("GET", "/metrics", String::new()),
        ("GET", "/admin/config", String::new()),
        (
            "PUT",
            "/admin/config",
            r#"{"MOSTDB_API_KEY_ENABLE":"false"}"#.to_string(),
        ),
    ]
}

/// Checks a node that wants `name: value`: without it or with a wrong value every route
/// answers 401 and nothing changes; with it, normal answers.
fn check_api_key(node: &Node, name: &str, value: &str) {
    let mut c = node.client();
    let good = format!("{name}: {value}");
    c.call(&request(
        "POST",
        SET,
        &[&good],
        kv("guarded", "orig").as_bytes(),
    ))
    .assert_json(200, OK);

    let wrong_value = format!("{name}: {value}x");
    let prefix_value = format!("{name}: {}", &value[..value.len() - 1]);
    let wrong_name = format!("X-Other-Auth: {value}");
    let bad_headers: [&[&str]; 5] = [
        &[],
        &[&wrong_value],
        &[&prefix_value],
        &[&wrong_name],
        &[&format!("{name}:")],
    ];
    for headers in bad_headers {
        for (method, path, body) in all_routes() {
            let r = c.call(&request(method, path, headers, body.as_bytes()));
            if r.masked() != expect_json(401, UNAUTHORIZED.as_bytes()) {
                panic!(
                    "{method} {path} with {headers:?}: expected 401, got {}",
                    show(&r.raw)
                );
            }
        }
    }
    c.call(&request("POST", GET, &[&good], k("guarded").as_bytes()))
        .assert_json(200, &got("guarded", "orig"));

    // The header name is case-insensitive, as in all of HTTP.
    let lower = format!("{}: {value}", name.to_ascii_lowercase());
    c.call(&request("POST", GET, &[&lower], k("guarded").as_bytes()))
        .assert_json(200, &got("guarded", "orig"));
    c.call(&request("GET", "/healthz", &[&good], b""))
        .assert_json(200, ALIVE);
    c.call(&request("GET", "/readyz", &[&good], b""))
        .assert_json(200, READY);
    c.call(&request("POST", DEL, &[&good], k("guarded").as_bytes()))
        .assert_json(200, OK);
    c.call(&request("POST", GET, &[&good], k("guarded").as_bytes()))
        .assert_json(200, NOT_FOUND);
}

#[test]
fn api_key_guards_every_route() {
    let node = Node::start_with(&[
        ("MOSTDB_API_KEY_ENABLE", "true"),
        ("MOSTDB_API_KEY_NAME", "X-MOSTDB-AUTH"),
        ("MOSTDB_API_KEY_VALUE", "secret"),
    ]);
    check_api_key(&node, "X-MOSTDB-AUTH", "secret");
}

/// The original's misspelt variable still sets the key; ENABLE is case-insensitive (ORIGINAL §1).
#[test]
fn api_key_from_the_misspelt_variable() {
    let node = Node::start_with(&[
        ("MOSTDB_API_KEY_ENABLE", "True"),
        ("MOSTDB_API_KEY_NAME", "X-Api-Key"),
        ("MOSTDB_API_KEY_VAULE", "s3cr3t"),
    ]);
    check_api_key(&node, "X-Api-Key", "s3cr3t");
}

/// With the feature off, any auth header is ignored.
#[test]
fn api_key_disabled_ignores_the_header() {
    let node = Node::start_with(&[
        ("MOSTDB_API_KEY_ENABLE", "false"),
        ("MOSTDB_API_KEY_NAME", "X-MOSTDB-AUTH"),
        ("MOSTDB_API_KEY_VALUE", "secret"),
    ]);
    let mut c = node.client();
    let wrong = "X-MOSTDB-AUTH: wrong";
    c.call(&request("POST", SET, &[wrong], kv("free", "v").as_bytes()))
        .assert_json(200, OK);
    c.call(&request("POST", GET, &[], k("free").as_bytes()))
        .assert_json(200, &got("free", "v"));
    c.call(&request("GET", "/healthz", &[wrong], b""))
        .assert_json(200, ALIVE);
    c.call(&request("POST", DEL, &[wrong], k("free").as_bytes()))
        .assert_json(200, OK);
    c.call(&request("POST", GET, &[], k("free").as_bytes()))
        .assert_json(200, NOT_FOUND);
}
