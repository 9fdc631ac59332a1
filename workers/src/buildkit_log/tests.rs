use super::format::human_bytes;
use super::text::drop_overwritten;
use super::updates::MAX_PARTIAL_LINE;
use super::*;
use std::time::{Duration, UNIX_EPOCH};

/// A fixed instant plus `ms` milliseconds.
fn t(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(ms)
}

fn vertex(digest: &str, name: &str) -> VertexUpdate {
    VertexUpdate {
        digest: digest.into(),
        name: name.into(),
        ..Default::default()
    }
}

fn started(digest: &str, name: &str, at: u64) -> VertexUpdate {
    VertexUpdate {
        started: Some(t(at)),
        ..vertex(digest, name)
    }
}

fn completed(digest: &str, name: &str, start: u64, end: u64) -> VertexUpdate {
    VertexUpdate {
        completed: Some(t(end)),
        ..started(digest, name, start)
    }
}

fn log(digest: &str, at: u64, msg: &[u8]) -> LogChunk {
    LogChunk {
        vertex: digest.into(),
        timestamp: Some(t(at)),
        stream: 1,
        msg: msg.to_vec(),
    }
}

fn vertexes(v: Vec<VertexUpdate>) -> StatusBatch {
    StatusBatch {
        vertexes: v,
        ..Default::default()
    }
}

fn logs(l: Vec<LogChunk>) -> StatusBatch {
    StatusBatch {
        logs: l,
        ..Default::default()
    }
}

/// Runs batches through a fresh printer, then `finish`, collecting all lines.
fn run(batches: &[StatusBatch]) -> Vec<String> {
    let mut printer = PlainPrinter::new();
    let mut lines: Vec<String> = batches.iter().flat_map(|b| printer.push(b)).collect();
    lines.extend(printer.finish());
    lines
}

const RUN: &str = "[2/3] RUN make";

#[test]
fn started_vertex_with_chunked_logs_then_done() {
    let lines = run(&[
        vertexes(vec![started("sha256:a", RUN, 0)]),
        logs(vec![log("sha256:a", 532, b"cc -o app ma")]),
        logs(vec![log("sha256:a", 700, b"in.c\nlinking")]),
        logs(vec![log("sha256:a", 900, b"...\nok\n")]),
        vertexes(vec![completed("sha256:a", RUN, 0, 1234)]),
    ]);
    assert_eq!(
        lines,
        [
            "#1 [2/3] RUN make",
            // Each line is stamped with the chunk that started it.
            "#1 0.532 cc -o app main.c",
            "#1 0.700 linking...",
            "#1 0.900 ok",
            "#1 DONE 1.2s",
        ]
    );
}

#[test]
fn header_is_printed_when_started_not_when_announced() {
    let mut printer = PlainPrinter::new();
    // BuildKit lists the whole graph before anything runs.
    let announced = printer.push(&vertexes(vec![
        vertex("sha256:a", "[1/2] FROM alpine"),
        vertex("sha256:b", RUN),
    ]));
    assert!(announced.is_empty());
    // The second vertex starts first, so it gets #1.
    assert_eq!(
        printer.push(&vertexes(vec![started("sha256:b", RUN, 0)])),
        ["#1 [2/3] RUN make"]
    );
    assert_eq!(printer.step_counts(), (1, 0));
}

#[test]
fn cached_vertex_prints_header_and_cached_once() {
    let cached = VertexUpdate {
        cached: true,
        ..completed("sha256:c", "[1/3] FROM docker.io/library/alpine", 5, 5)
    };
    let mut printer = PlainPrinter::new();
    assert_eq!(
        printer.push(&vertexes(vec![cached.clone()])),
        ["#1 [1/3] FROM docker.io/library/alpine", "#1 CACHED"]
    );
    assert!(printer
        .push(&vertexes(vec![cached.clone(), cached]))
        .is_empty());
    assert!(printer.finish().is_empty());
    assert_eq!(printer.step_counts(), (1, 1));
}

#[test]
fn cached_flag_arriving_with_completion_prints_cached_not_done() {
    let lines = run(&[
        vertexes(vec![started("sha256:c", "[1/3] COPY . .", 0)]),
        vertexes(vec![VertexUpdate {
            cached: true,
            ..completed("sha256:c", "[1/3] COPY . .", 0, 10)
        }]),
    ]);
    assert_eq!(lines, ["#1 [1/3] COPY . .", "#1 CACHED"]);
}

#[test]
fn error_flushes_partial_output_then_reports_error() {
    let failed = VertexUpdate {
        error: "process \"/bin/sh -c make\" did not complete successfully: exit code: 2".into(),
        ..completed("sha256:e", RUN, 0, 2000)
    };
    let lines = run(&[
        vertexes(vec![started("sha256:e", RUN, 0)]),
        logs(vec![log("sha256:e", 1500, b"make: *** [all] Error 1")]),
        vertexes(vec![failed.clone()]),
        vertexes(vec![failed]),
    ]);
    assert_eq!(
        lines,
        [
            "#1 [2/3] RUN make",
            "#1 1.500 make: *** [all] Error 1",
            "#1 ERROR: process \"/bin/sh -c make\" did not complete successfully: exit code: 2",
        ]
    );
}

#[test]
fn error_without_completion_still_finishes_the_vertex() {
    let mut printer = PlainPrinter::new();
    printer.push(&vertexes(vec![started("sha256:e", RUN, 0)]));
    let lines = printer.push(&vertexes(vec![VertexUpdate {
        error: "boom".into(),
        ..started("sha256:e", RUN, 0)
    }]));
    assert_eq!(lines, ["#1 ERROR: boom"]);
    // Not reported again as cancelled at the end.
    assert!(printer.finish().is_empty());
}

#[test]
fn cancelled_vertex_prints_canceled_not_error() {
    let lines = run(&[vertexes(vec![VertexUpdate {
        error: "failed to compute cache key: context canceled".into(),
        ..completed("sha256:x", RUN, 0, 300)
    }])]);
    assert_eq!(lines, ["#1 [2/3] RUN make", "#1 CANCELED"]);
}

#[test]
fn multi_line_name_and_error_become_separate_lines() {
    let name = "[2/2] RUN <<EOF\nset -e\nmake\nEOF";
    let lines = run(&[vertexes(vec![VertexUpdate {
        error: "exit code: 2\nsee above".into(),
        ..completed("sha256:h", name, 0, 100)
    }])]);
    assert_eq!(
        lines,
        [
            "#1 [2/2] RUN <<EOF",
            "#1 set -e",
            "#1 make",
            "#1 EOF",
            "#1 ERROR: exit code: 2",
            "#1 see above",
        ]
    );
}

#[test]
fn interleaved_vertices_are_separated_by_blank_lines() {
    let a = "[build 2/3] RUN go build";
    let b = "[test 2/3] RUN go test";
    let lines = run(&[
        vertexes(vec![started("sha256:a", a, 0)]),
        vertexes(vec![started("sha256:b", b, 100)]),
        logs(vec![log("sha256:a", 200, b"compiling\n")]),
        logs(vec![log("sha256:a", 250, b"still compiling\n")]),
        logs(vec![log("sha256:b", 300, b"=== RUN TestX\n")]),
        StatusBatch {
            vertexes: vec![completed("sha256:b", b, 100, 1100)],
            logs: vec![log("sha256:b", 1000, b"PASS\n")],
            ..Default::default()
        },
        vertexes(vec![completed("sha256:a", a, 0, 2000)]),
    ]);
    assert_eq!(
        lines,
        [
            "#1 [build 2/3] RUN go build",
            "",
            "#2 [test 2/3] RUN go test",
            "",
            "#1 0.200 compiling",
            "#1 0.250 still compiling",
            "",
            "#2 0.200 === RUN TestX",
            // Output in the same message as the completion comes first.
            "#2 0.900 PASS",
            "#2 DONE 1.0s",
            "",
            "#1 DONE 2.0s",
        ]
    );
}

#[test]
fn one_message_touching_several_vertices_prints_each_as_a_block() {
    let mut printer = PlainPrinter::new();
    printer.push(&vertexes(vec![
        started("sha256:a", "A", 0),
        started("sha256:b", "B", 0),
    ]));
    // #2 was printed last, so its output leads even though #1's comes first.
    let lines = printer.push(&logs(vec![
        log("sha256:a", 10, b"a1\n"),
        log("sha256:b", 20, b"b1\n"),
        log("sha256:a", 30, b"a2\n"),
        log("sha256:b", 40, b"b2\n"),
    ]));
    assert_eq!(
        lines,
        [
            "#2 0.020 b1",
            "#2 0.040 b2",
            "",
            "#1 0.010 a1",
            "#1 0.030 a2"
        ]
    );
}

#[test]
fn repeated_identical_updates_print_nothing_new() {
    let mut printer = PlainPrinter::new();
    let start = vertexes(vec![started("sha256:a", RUN, 0)]);
    let done = vertexes(vec![completed("sha256:a", RUN, 0, 500)]);
    assert_eq!(printer.push(&start), ["#1 [2/3] RUN make"]);
    assert!(printer.push(&start).is_empty());
    assert!(printer
        .push(&vertexes(vec![vertex("sha256:a", RUN)]))
        .is_empty());
    assert_eq!(printer.push(&done), ["#1 DONE 0.5s"]);
    assert!(printer.push(&done).is_empty());
    assert!(printer.push(&start).is_empty());
    assert!(printer.finish().is_empty());
    assert_eq!(printer.step_counts(), (1, 0));
}

#[test]
fn statuses_print_only_on_completion_and_once() {
    let layer = "sha256:0a1b2c3d";
    let status = |current, completed: Option<u64>| StatusUpdate {
        id: layer.into(),
        vertex: "sha256:f".into(),
        name: layer.into(),
        current,
        total: 3_400_000,
        started: Some(t(100)),
        completed: completed.map(t),
    };
    let mut printer = PlainPrinter::new();
    printer.push(&vertexes(vec![started("sha256:f", "[1/3] FROM alpine", 0)]));
    for current in [0, 1_000_000, 2_000_000] {
        let batch = StatusBatch {
            statuses: vec![status(current, None)],
            ..Default::default()
        };
        assert!(printer.push(&batch).is_empty());
    }
    let done = StatusBatch {
        statuses: vec![status(3_400_000, Some(1300))],
        ..Default::default()
    };
    assert_eq!(
        printer.push(&done),
        ["#1 sha256:0a1b2c3d 3.40MB / 3.40MB 1.2s done"]
    );
    assert!(printer.push(&done).is_empty());
}

#[test]
fn status_without_total_shows_current_if_any() {
    let status = |id: &str, current| StatusUpdate {
        id: id.into(),
        vertex: "sha256:ctx".into(),
        current,
        started: Some(t(0)),
        completed: Some(t(5)),
        ..Default::default()
    };
    let lines = run(&[
        vertexes(vec![started(
            "sha256:ctx",
            "[internal] load build context",
            0,
        )]),
        StatusBatch {
            statuses: vec![status("transferring context:", 35), status("resolve", 0)],
            ..Default::default()
        },
    ]);
    assert_eq!(
        lines,
        [
            "#1 [internal] load build context",
            "#1 transferring context: 35B done",
            "#1 resolve done",
            "#1 CANCELED",
        ]
    );
}

#[test]
fn carriage_returns_keep_only_the_final_redraw() {
    let lines = run(&[
        vertexes(vec![started("sha256:p", "[2/2] RUN curl -O x", 0)]),
        logs(vec![log("sha256:p", 10, b"  0%\r 50%")]),
        logs(vec![log("sha256:p", 20, b"\r100%\n")]),
        // A CRLF split across chunks.
        logs(vec![log("sha256:p", 30, b"saved\r")]),
        logs(vec![log("sha256:p", 40, b"\ndone\r\n")]),
    ]);
    assert_eq!(
        lines,
        [
            "#1 [2/2] RUN curl -O x",
            "#1 0.010 100%",
            "#1 0.030 saved",
            "#1 0.040 done",
            "#1 CANCELED",
        ]
    );
}

#[test]
fn finish_flushes_partial_lines_and_cancels_open_vertices_once() {
    let mut printer = PlainPrinter::new();
    printer.push(&vertexes(vec![
        started("sha256:a", "A", 0),
        completed("sha256:b", "B", 0, 100),
        vertex("sha256:never", "never started"),
    ]));
    printer.push(&logs(vec![log("sha256:a", 42, b"no newline")]));
    assert_eq!(printer.finish(), ["", "#1 0.042 no newline", "#1 CANCELED"]);
    assert!(printer.finish().is_empty());
    assert_eq!(printer.step_counts(), (2, 0));
}

#[test]
fn warnings_go_under_their_vertex_or_stand_alone() {
    let lines = run(&[
        vertexes(vec![completed(
            "sha256:d",
            "[internal] load build definition",
            0,
            50,
        )]),
        StatusBatch {
            warnings: vec![
                WarningUpdate {
                    vertex: "sha256:d".into(),
                    short:
                        b"FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)\n"
                            .to_vec(),
                },
                WarningUpdate {
                    vertex: String::new(),
                    short: b"no vertex".to_vec(),
                },
            ],
            ..Default::default()
        },
    ]);
    assert_eq!(
        lines,
        [
            "#1 [internal] load build definition",
            "#1 DONE 0.1s",
            "#1 WARN: FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)",
            "",
            "WARN: no vertex",
        ]
    );
}

#[test]
fn non_utf8_output_is_converted_lossily_even_when_split() {
    let lines = run(&[
        vertexes(vec![started("sha256:u", "U", 0)]),
        // "é" split across chunks must survive; 0xff is invalid.
        logs(vec![log("sha256:u", 1, b"caf\xc3")]),
        logs(vec![log("sha256:u", 2, b"\xa9 \xff!\n")]),
    ]);
    assert_eq!(lines[1], "#1 0.001 caf\u{e9} \u{fffd}!");
}

#[test]
fn output_of_an_unannounced_vertex_is_kept_under_its_digest() {
    let lines = run(&[logs(vec![log("sha256:ghost", 0, b"hello\n")])]);
    // Without a start time offsets are relative to nothing.
    assert_eq!(lines, ["#1 sha256:ghost", "#1 0.000 hello"]);
}

#[test]
fn long_offsets_trade_decimals_for_digits() {
    let lines = run(&[
        vertexes(vec![started("sha256:s", "S", 0)]),
        logs(vec![
            log("sha256:s", 12_345, b"a\n"),
            log("sha256:s", 123_456, b"b\n"),
        ]),
        vertexes(vec![completed("sha256:s", "S", 0, 130_000)]),
    ]);
    assert_eq!(
        lines,
        ["#1 S", "#1 12.35 a", "#1 123.5 b", "#1 DONE 130.0s"]
    );
}

#[test]
fn runaway_partial_lines_are_bounded() {
    let mut printer = PlainPrinter::new();
    printer.push(&vertexes(vec![started("sha256:r", "R", 0)]));
    // A progress bar redrawn many times without a newline keeps only the
    // last redraw.
    for i in 0..10_000 {
        let frame = format!("\rprogress {i:05}");
        assert!(printer
            .push(&logs(vec![log("sha256:r", 1, frame.as_bytes())]))
            .is_empty());
    }
    let held = printer
        .vertices
        .get("sha256:r")
        .and_then(|v| v.partial.as_ref())
        .map(|p| p.bytes.len());
    assert_eq!(held, Some("progress 09999".len()));

    // Output without any line break is cut into bounded lines.
    let blob = "é".repeat(MAX_PARTIAL_LINE);
    let lines = printer.push(&logs(vec![
        log("sha256:r", 2, b"\n"),
        log("sha256:r", 3, blob.as_bytes()),
    ]));
    assert_eq!(lines[0], "#1 0.001 progress 09999");
    assert_eq!(lines.len(), 2);
    assert!(lines[1].starts_with("#1 0.003 é") && !lines[1].contains('\u{fffd}'));
    let rest = printer.finish();
    assert!(rest[0].starts_with("#1 0.003 é") && !rest[0].contains('\u{fffd}'));
    let total: usize = [&lines[1], &rest[0]]
        .iter()
        .map(|l| l.trim_start_matches("#1 0.003 ").chars().count())
        .sum();
    assert_eq!(total, MAX_PARTIAL_LINE);
}

#[test]
fn visible_text_handles_carriage_returns() {
    assert_eq!(visible_text(b"plain"), b"plain");
    assert_eq!(visible_text(b"crlf\r"), b"crlf");
    assert_eq!(visible_text(b"a\rb\rc"), b"c");
    assert_eq!(visible_text(b"a\rb\r\r"), b"b");
    assert_eq!(visible_text(b"\r\r"), b"");
    assert_eq!(visible_text(b""), b"");
}

#[test]
fn dropping_overwritten_text_preserves_what_is_visible() {
    for input in [
        &b"abc"[..],
        b"abc\r",
        b"abc\r\r",
        b"a\rbc",
        b"a\rbc\r",
        b"a\rb\r\r",
        b"\r",
        b"\rx",
    ] {
        let mut compacted = input.to_vec();
        drop_overwritten(&mut compacted);
        assert_eq!(visible_text(&compacted), visible_text(input), "{input:?}");
    }
}

#[test]
fn human_bytes_matches_buildx_units() {
    assert_eq!(human_bytes(0), "0B");
    assert_eq!(human_bytes(999), "999B");
    assert_eq!(human_bytes(1000), "1.00kB");
    assert_eq!(human_bytes(2_100), "2.10kB");
    assert_eq!(human_bytes(3_400_000), "3.40MB");
    assert_eq!(human_bytes(29_150_000_000), "29.15GB");
    assert_eq!(human_bytes(i64::MAX), "9.22EB");
    assert_eq!(human_bytes(-2_000), "-2.00kB");
}

#[test]
fn offsets_use_buildx_precision() {
    assert_eq!(format_offset(0.5321), "0.532");
    assert_eq!(format_offset(9.9), "9.900");
    assert_eq!(format_offset(42.123), "42.12");
    assert_eq!(format_offset(612.34), "612.3");
}
