//! Reads over both HTTP versions: HTTP/1.1 and HTTP/2 without TLS (h2c,
//! prior knowledge) on the same port, and statements repeated with `$n`
//! parameters, which after their first run are answered from the
//! statement cache by a direct read, giving the same answers.
//! (BIGINT values travel as strings, so no value above 2^53 loses digits.)

use crate::common::{create_user, flush, rows, TestServer};
use serde_json::{json, Value};

const PASSWORD: &str = "pw-reader-1";

/// The results of a success body, without the timing.
fn results(body: &Value) -> Value {
    assert_eq!(body["status"], "success", "{body}");
    body["results"].clone()
}

fn post(client: &reqwest::blocking::Client, base: &str, body: &Value) -> (reqwest::Version, Value) {
    let response = client
        .post(format!("{base}/v1/api/sql"))
        .basic_auth("reader", Some(PASSWORD))
        .json(body)
        .send()
        .expect("request sent");
    assert_eq!(response.status().as_u16(), 200);
    let version = response.version();
    (version, response.json().expect("JSON"))
}

#[test]
fn reads_answer_alike_over_http1_and_h2c_and_when_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    server.root(
        "CREATE NAMESPACE r; \
         CREATE USER TABLE r.t (id INT PRIMARY KEY, v TEXT NOT NULL, n BIGINT NOT NULL)",
    );
    create_user(&server, "reader", PASSWORD, "user");
    let values: Vec<String> = (1..=20)
        .map(|i| format!("({i}, 'v{i}', {})", i * 10))
        .collect();
    server.ok_as(
        "reader",
        PASSWORD,
        &format!("INSERT INTO r.t VALUES {}", values.join(", ")),
    );
    flush(&server, "r.t");
    // Rows changed after their flush, and a new hot row.
    server.ok_as("reader", PASSWORD, "DELETE FROM r.t WHERE id = 3");
    server.ok_as(
        "reader",
        PASSWORD,
        "UPDATE r.t SET v = 'changed' WHERE id = 4",
    );
    server.ok_as(
        "reader",
        PASSWORD,
        "INSERT INTO r.t VALUES (21, 'v21', 210)",
    );

    let http1 = reqwest::blocking::Client::new();
    let h2c = reqwest::blocking::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let base = &server.base_url;
    let cases = [
        (
            "SELECT * FROM r.t WHERE id = $1",
            json!([4]),
            json!([[4, "changed", "40"]]),
        ),
        ("SELECT * FROM r.t WHERE id = $1", json!([3]), json!([])),
        (
            "SELECT v, id FROM r.t WHERE id IN ($1, $2, $3)",
            json!([21, 3, 1]),
            json!([["v1", 1], ["v21", 21]]),
        ),
        (
            "SELECT id FROM r.t ORDER BY id LIMIT 4",
            json!([]),
            json!([[1], [2], [4], [5]]),
        ),
        ("SELECT COUNT(*) AS n FROM r.t", json!([]), json!([["20"]])),
        ("SELECT 1 AS one", json!([]), json!([["1"]])),
    ];
    for (sql, params, want) in cases {
        let body = json!({ "sql": sql, "params": params });
        // First run (parsed, cached), then from the cache over each
        // version of HTTP.
        let (v1, first) = post(&http1, base, &body);
        let (v2, second) = post(&h2c, base, &body);
        let (_, third) = post(&http1, base, &body);
        assert_eq!(v1, reqwest::Version::HTTP_11);
        assert_eq!(v2, reqwest::Version::HTTP_2);
        assert_eq!(
            rows(&first),
            want.as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_array().unwrap().clone())
                .collect::<Vec<_>>(),
            "{sql} {params}"
        );
        assert_eq!(
            results(&first),
            results(&second),
            "{sql} {params}: over h2c"
        );
        assert_eq!(results(&first), results(&third), "{sql} {params}: repeated");
    }

    // Many requests at once on one HTTP/2 connection.
    let answers: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..=32)
            .map(|i| {
                let h2c = &h2c;
                s.spawn(move || {
                    let body =
                        json!({ "sql": "SELECT n FROM r.t WHERE id = $1", "params": [i % 21 + 1] });
                    post(h2c, base, &body).1
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, body) in (1..=32).zip(&answers) {
        let id = i % 21 + 1;
        let want: Vec<Vec<Value>> = if id == 3 {
            vec![]
        } else {
            vec![vec![json!((id * 10).to_string())]]
        };
        assert_eq!(rows(body), want, "id {id}");
    }
}
