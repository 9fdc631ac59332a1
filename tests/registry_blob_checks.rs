//! Blob existence checks (`HEAD`) and downloads read the database without writing to it, so a
//! pull keeps going while something else holds SQLite's write lock.

mod common;

use common::oci::{get, header, push_blob};
use common::TestServer;
use reqwest::StatusCode;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

#[tokio::test]
async fn blob_checks_and_downloads_answer_while_the_database_is_being_written() {
    let ts = TestServer::start().await;
    let http = ts.http();
    let body = vec![7u8; 3 << 20];
    let d = push_blob(&http, &ts.url, "busy/app", &body).await;
    let url = format!("{}/v2/busy/app/blobs/{d}", ts.url);

    // Another writer holds the write lock for as long as the checks take.
    let mut writer = SqliteConnectOptions::new()
        .filename(ts.data.path().join("kiln.db"))
        .connect()
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut writer)
        .await
        .unwrap();

    // A blob pushed a moment ago keeps its grace: checking it needs no write.
    for _ in 0..3 {
        let head = http.head(&url).send().await.unwrap();
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(header(&head, "content-length"), body.len().to_string());
    }
    let got = get(&http, &url).await;
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.bytes().await.unwrap().len(), body.len());
    let part = http
        .get(&url)
        .header("range", "bytes=1048570-2097160")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&part, "content-range"),
        format!("bytes 1048570-2097160/{}", body.len())
    );
    assert_eq!(part.bytes().await.unwrap().len(), 2097160 - 1048570 + 1);

    sqlx::query("ROLLBACK").execute(&mut writer).await.unwrap();
    writer.close().await.unwrap();
}
