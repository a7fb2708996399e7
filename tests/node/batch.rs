//! `POST /mostdb/batch` on the real binary (DESIGN §11): each operation answered with exactly
//! the envelope its own route gives, in order; malformed batches refused whole, with nothing
//! applied.

use crate::support::*;

const BATCH: &str = "/mostdb/batch";

#[test]
fn every_operation_gets_its_own_routes_envelope_in_order() {
    let node = Node::start();
    let mut c = node.client();
    c.post("/mostdb/set", &kv("old", "o")).assert_json(200, OK);
    c.post("/mostdb/set", &kv("gone", "g")).assert_json(200, OK);
    let body = r#"{"ops":[
        {"op":"set","key":"a","value":"1"},
        {"op":"get","key":"old"},
        {"op":"get","key":"missing"},
        {"op":"del","key":"gone"},
        {"op":"cas","key":"c","expect":{"present":true},"value":"x"},
        {"op":"set","key":"b","value":7},
        {"op":"set","key":"t","value":"v","ttl_ms":60000,"extra":"ignored"}
    ]}"#;
    let results = [
        OK.to_string(),
        got("old", "o"),
        NOT_FOUND.to_string(),
        OK.to_string(),
        r#"{"code":409,"message":"CompareFailed","success":false,"result":{"key":"c","version":"00000000000000000000000000000000"}}"#.to_string(),
        // A non-string value: refused as /set refuses it, the others still run.
        r#"{"code":500,"message":"参数有误","success":false,"detail":"value must be a string"}"#
            .to_string(),
        OK.to_string(),
    ];
    let want = format!(
        r#"{{"code":200,"success":true,"result":{{"results":[{}]}}}}"#,
        results.join(",")
    );
    c.post(BATCH, body).assert_json(200, &want);
    c.post("/mostdb/get", &k("a"))
        .assert_json(200, &got("a", "1"));
    c.post("/mostdb/get", &k("old"))
        .assert_json(200, &got("old", "o"));
    c.post("/mostdb/get", &k("gone"))
        .assert_json(200, NOT_FOUND);
    c.post("/mostdb/get", &k("b")).assert_json(200, NOT_FOUND);
    c.post("/mostdb/get", &k("t"))
        .assert_json(200, &got("t", "v"));
}

#[test]
fn malformed_batches_change_nothing() {
    let node = Node::start();
    let mut c = node.client();
    for body in [
        r#"{"ops":[{"op":"set","key":"x","value":"1"},{"op":"del","key":"x"}]}"#,
        r#"{"ops":[{"op":"set","key":"x","value":"1"},{"op":"put","key":"y"}]}"#,
        r#"{"ops":[{"op":"set","key":"x","value":"1"},{"op":"get"}]}"#,
        r#"{"ops":[]}"#,
        r#"{"ops":"set"}"#,
        r#"[{"op":"set","key":"x","value":"1"}]"#,
    ] {
        let resp = c.post(BATCH, body);
        assert_eq!(resp.status, 200, "{body}");
        assert!(
            resp.body_str()
                .starts_with(r#"{"code":500,"message":"参数有误","success":false"#),
            "{body}: {}",
            resp.body_str()
        );
    }
    c.post("/mostdb/get", &k("x")).assert_json(200, NOT_FOUND);
    let too_many = format!(
        r#"{{"ops":[{}]}}"#,
        (0..129)
            .map(|i| format!(r#"{{"op":"set","key":"k{i}","value":"v"}}"#))
            .collect::<Vec<_>>()
            .join(",")
    );
    c.post(BATCH, &too_many).assert_bad_param_with_detail();
    c.post("/mostdb/get", &k("k0")).assert_json(200, NOT_FOUND);
    // 128 is allowed.
    let full = format!(
        r#"{{"ops":[{}]}}"#,
        (0..128)
            .map(|i| format!(r#"{{"op":"set","key":"k{i}","value":"v{i}"}}"#))
            .collect::<Vec<_>>()
            .join(",")
    );
    let resp = c.post(BATCH, &full);
    assert_eq!(
        resp.body_str().matches(OK).count(),
        128,
        "{}",
        resp.body_str()
    );
    c.post("/mostdb/get", &k("k127"))
        .assert_json(200, &got("k127", "v127"));
}
