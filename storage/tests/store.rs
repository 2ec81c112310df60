use std::time::Duration;

use bytes::Bytes;
use storage::*;

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("db")).unwrap();
    (dir, store)
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn txn(ops: Vec<Op>) -> Change {
    Change::Txn { ops, atomic: false }
}

fn create(key: &str, v: &str) -> Op {
    Op::Create { key: key.into(), value: b(v) }
}

fn update(key: &str, v: &str, expected: Option<u64>) -> Op {
    Op::Update { key: key.into(), value: b(v), expected_rev: expected }
}

fn delete(key: &str, expected: Option<u64>) -> Op {
    Op::Delete { key: key.into(), expected_rev: expected }
}

/// Applies one change at `rev` and returns its verdicts.
fn apply1(s: &Store, rev: u64, c: Change) -> Vec<OpResult> {
    s.apply(&[(rev, &c)], &[]).unwrap().remove(0)
}

#[test]
fn conditional_writes_and_revisions() {
    let (_d, s) = open();
    assert_eq!(apply1(&s, 1, txn(vec![create("/r/a", "1")])), vec![OpResult::Ok { create_rev: 1, prev: None }]);
    // Create of an existing key fails and reports its revision.
    assert_eq!(apply1(&s, 2, txn(vec![create("/r/a", "x")])), vec![OpResult::AlreadyExists { mod_rev: 1 }]);
    // Stale expected revision conflicts.
    assert_eq!(apply1(&s, 3, txn(vec![update("/r/a", "2", Some(7))])), vec![OpResult::Conflict { mod_rev: 1 }]);
    assert!(apply1(&s, 4, txn(vec![update("/r/a", "2", Some(1))]))[0].is_ok());
    let (kv, rev) = s.get("/r/a", None).unwrap();
    let kv = kv.unwrap();
    assert_eq!((kv.value, kv.create_rev, kv.mod_rev, rev), (b("2"), 1, 4, 4));
    assert_eq!(s.current_revision(), 4);
    // Delete with a stale revision conflicts; with the right one it succeeds and returns the value.
    assert_eq!(apply1(&s, 5, txn(vec![delete("/r/a", Some(1))])), vec![OpResult::Conflict { mod_rev: 4 }]);
    assert_eq!(apply1(&s, 6, txn(vec![delete("/r/a", Some(4))])), vec![OpResult::Ok { create_rev: 1, prev: Some(b("2")) }]);
    assert_eq!(apply1(&s, 7, txn(vec![delete("/r/a", None)])), vec![OpResult::NotFound]);
    assert_eq!(apply1(&s, 8, txn(vec![update("/r/a", "z", None)])), vec![OpResult::NotFound]);
    // Re-creating starts a new incarnation.
    assert_eq!(apply1(&s, 9, txn(vec![create("/r/a", "3")])), vec![OpResult::Ok { create_rev: 9, prev: None }]);
    // Reads at past revisions see the state as of then.
    assert_eq!(s.get("/r/a", Some(3)).unwrap().0.unwrap().value, b("1"));
    assert_eq!(s.get("/r/a", Some(5)).unwrap().0.unwrap().value, b("2"));
    assert!(s.get("/r/a", Some(6)).unwrap().0.is_none());
    assert_eq!(s.get("/r/a", Some(9)).unwrap().0.unwrap().create_rev, 9);
    assert!(matches!(s.get("/r/a", Some(50)), Err(StoreError::FutureRevision { .. })));
}

#[test]
fn revisions_must_increase_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Store::open(dir.path()).unwrap();
        apply1(&s, 10, txn(vec![create("/k", "v")]));
        s.apply(&[(11, &Change::Noop)], &[(b"raft/applied", b"11")]).unwrap();
        assert!(s.apply(&[(11, &Change::Noop)], &[]).is_err(), "same revision twice must be refused");
    }
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.current_revision(), 11);
    assert_eq!(s.sm_meta_get(b"raft/applied").unwrap().unwrap(), b"11");
    assert_eq!(s.get("/k", None).unwrap().0.unwrap().mod_rev, 10);
}

#[test]
fn atomic_txn_is_all_or_nothing() {
    let (_d, s) = open();
    apply1(&s, 1, txn(vec![create("/a", "1")]));
    let res = apply1(&s, 2, Change::Txn { ops: vec![create("/b", "1"), create("/a", "2")], atomic: true });
    assert_eq!(res, vec![OpResult::Aborted, OpResult::AlreadyExists { mod_rev: 1 }]);
    assert!(s.get("/b", None).unwrap().0.is_none());
    // Non-atomic: each op stands alone.
    let res = apply1(&s, 3, txn(vec![create("/b", "1"), create("/a", "2")]));
    assert!(res[0].is_ok());
    assert!(!res[1].is_ok());
    // Sequential semantics inside one txn: create then update the same key.
    let res = apply1(&s, 4, Change::Txn { ops: vec![create("/c", "1"), update("/c", "2", Some(4))], atomic: true });
    assert!(res.iter().all(|r| r.is_ok()), "{res:?}");
    assert_eq!(s.get("/c", None).unwrap().0.unwrap().value, b("2"));
}

#[test]
fn batch_of_changes_sees_earlier_changes() {
    let (_d, s) = open();
    let c1 = txn(vec![create("/x", "1")]);
    let c2 = txn(vec![update("/x", "2", Some(1))]);
    let c3 = txn(vec![create("/x", "3")]);
    let res = s.apply(&[(1, &c1), (2, &c2), (3, &c3)], &[]).unwrap();
    assert!(res[0][0].is_ok());
    assert!(res[1][0].is_ok(), "{:?}", res[1]);
    assert_eq!(res[2][0], OpResult::AlreadyExists { mod_rev: 2 });
}

#[test]
fn list_pagination_at_one_revision() {
    let (_d, s) = open();
    let mut rev = 0;
    for i in 0..25 {
        rev += 1;
        apply1(&s, rev, txn(vec![create(&format!("/pods/ns/p{i:02}"), "v1")]));
    }
    apply1(&s, rev + 1, txn(vec![create("/pods2/other", "x")]));
    rev += 1;
    let first = s.list("/pods/", None, 10, None).unwrap();
    assert_eq!(first.items.len(), 10);
    assert!(first.more);
    assert_eq!(first.rev, rev);
    let at = first.rev;
    // Changes after the first page must not show in the following pages.
    rev += 1;
    apply1(&s, rev, txn(vec![delete("/pods/ns/p15", None), create("/pods/ns/p10a", "new"), update("/pods/ns/p20", "v2", None)]));
    let mut all: Vec<KeyValue> = first.items.clone();
    let mut last = first.items.last().unwrap().key.clone();
    loop {
        let page = s.list("/pods/", Some(&last), 10, Some(at)).unwrap();
        assert_eq!(page.rev, at);
        all.extend(page.items.iter().cloned());
        if !page.more {
            break;
        }
        last = page.items.last().unwrap().key.clone();
    }
    let names: Vec<_> = all.iter().map(|kv| kv.key.clone()).collect();
    let want: Vec<_> = (0..25).map(|i| format!("/pods/ns/p{i:02}")).collect();
    assert_eq!(names, want);
    assert!(all.iter().all(|kv| kv.value == b("v1")));
    // The latest view shows the changes.
    let now = s.list("/pods/", None, 0, None).unwrap();
    assert_eq!(now.items.len(), 25);
    assert!(!now.more);
    assert!(now.items.iter().any(|kv| kv.key == "/pods/ns/p10a"));
    assert_eq!(s.count("/pods/").unwrap(), 25);
    // Exact page boundary: limit equal to the remaining count reports no more.
    let p = s.list("/pods/", None, 25, Some(at)).unwrap();
    assert_eq!((p.items.len(), p.more), (25, false));
    let p = s.list("/pods/", None, 24, Some(at)).unwrap();
    assert_eq!((p.items.len(), p.more), (24, true));
}

#[tokio::test]
async fn watch_replays_history_then_follows_live_without_gaps() {
    let (_d, s) = open();
    for rev in 1..=50u64 {
        let op = if rev % 10 == 0 { delete(&format!("/w/k{}", rev - 1), None) } else { create(&format!("/w/k{rev}"), "v") };
        apply1(&s, rev, txn(vec![op, create(&format!("/other/{rev}"), "x")]));
    }
    let mut w = s.watch("/w/", 20).unwrap();
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for rev in 51..=3000u64 {
                apply1(&s, rev, txn(vec![Op::Put { key: format!("/w/k{}", rev % 7), value: b(&rev.to_string()) }]));
                if rev % 500 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let mut seen = Vec::new();
    while seen.last().copied().unwrap_or(0) < 3000 {
        let events = tokio::time::timeout(Duration::from_secs(10), w.next()).await.expect("watch stalled").unwrap();
        for e in events {
            assert!(e.key.starts_with("/w/"));
            seen.push(e.rev);
        }
    }
    writer.await.unwrap();
    let want: Vec<u64> = (21..=3000).collect();
    assert_eq!(seen, want, "events must be ordered, unique, gap-free");
}

#[tokio::test]
async fn slow_watcher_falls_back_to_replay() {
    let (_d, s) = open();
    let mut w = s.watch("/", 0).unwrap();
    // Far more revisions than the broadcast buffer holds, none read yet.
    for rev in 1..=5000u64 {
        apply1(&s, rev, txn(vec![Op::Put { key: "/k".into(), value: b(&rev.to_string()) }]));
    }
    let mut n = 0u64;
    while n < 5000 {
        for e in w.next().await.unwrap() {
            n += 1;
            assert_eq!(e.rev, n);
            assert_eq!(e.value, b(&n.to_string()));
            if n > 1 {
                assert_eq!(e.kind, EventKind::Modified);
                assert_eq!(e.prev_value, Some(b(&(n - 1).to_string())));
            }
        }
    }
}

#[tokio::test]
async fn compaction_drops_history_and_reports_too_old() {
    let (_d, s) = open();
    apply1(&s, 1, txn(vec![create("/c/a", "a1")]));
    apply1(&s, 2, txn(vec![update("/c/a", "a2", None)]));
    apply1(&s, 3, txn(vec![create("/c/b", "b1")]));
    apply1(&s, 4, txn(vec![delete("/c/b", None)]));
    apply1(&s, 5, txn(vec![update("/c/a", "a3", None)]));
    s.apply(&[(6, &Change::Compact { rev: 4 })], &[]).unwrap();
    assert_eq!(s.compacted_revision(), 4);
    assert_eq!(s.current_revision(), 6);
    assert!(matches!(s.get("/c/a", Some(3)), Err(StoreError::TooOld { requested: 3, compacted: 4 })));
    assert!(matches!(s.list("/c/", None, 0, Some(2)), Err(StoreError::TooOld { .. })));
    assert!(matches!(s.watch("/c/", 3), Err(StoreError::TooOld { .. })));
    // The state at the compacted revision itself is still readable.
    assert_eq!(s.get("/c/a", Some(4)).unwrap().0.unwrap().value, b("a2"));
    assert!(s.get("/c/b", Some(4)).unwrap().0.is_none());
    let l = s.list("/c/", None, 0, Some(4)).unwrap();
    assert_eq!(l.items.iter().map(|k| k.key.as_str()).collect::<Vec<_>>(), vec!["/c/a"]);
    // Watching from the compacted revision works and sees what came after it.
    let mut w = s.watch("/c/", 4).unwrap();
    let ev = w.next().await.unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0].rev, ev[0].value.clone(), ev[0].prev_value.clone()), (5, b("a3"), Some(b("a2"))));
    // Compaction survives reopen.
    let path = s.path().to_path_buf();
    drop(w);
    drop(s);
    let s = Store::open(path).unwrap();
    assert_eq!(s.compacted_revision(), 4);
    assert_eq!(s.get("/c/a", None).unwrap().0.unwrap().value, b("a3"));
}

#[tokio::test]
async fn checkpoint_export_restore_round_trip() {
    let (d, s) = open();
    let mut rev = 0;
    for i in 0..200 {
        rev += 1;
        apply1(&s, rev, txn(vec![create(&format!("/rt/{i:03}"), &format!("value-{i}"))]));
    }
    rev += 1;
    apply1(&s, rev, txn(vec![delete("/rt/007", None)]));
    s.apply(&[(rev + 1, &Change::Noop)], &[(b"raft/applied", b"meta-201")]).unwrap();
    rev += 1;
    let cp = d.path().join("cp");
    s.checkpoint(&cp).unwrap();
    // Writes after the checkpoint are not in the snapshot.
    apply1(&s, rev + 1, txn(vec![create("/rt/late", "x")]));
    s.log_append([(1u64, &b"log entry"[..])]).unwrap();
    s.local_put(&[(b"vote", b"local only")], true).unwrap();
    let file = d.path().join("snap.bin");
    let stats = snapshot::export_checkpoint(&cp, &file).unwrap();
    assert!(stats.records > 200);
    assert_eq!(snapshot::verify(&file).unwrap().records, stats.records);
    assert_eq!(snapshot::read_meta(&file).unwrap().get(&b"raft/applied"[..]).unwrap(), b"meta-201");

    // Restore into a different store that has its own unrelated data.
    let other_dir = tempfile::tempdir().unwrap();
    let t = Store::open(other_dir.path()).unwrap();
    apply1(&t, 1, txn(vec![create("/stale", "gone after restore")]));
    t.local_put(&[(b"vote", b"mine")], true).unwrap();
    let mut w = t.watch("/", 1).unwrap();
    t.restore(&file, &[(b"extra", b"1")]).unwrap();
    assert_eq!(t.current_revision(), rev);
    assert!(t.get("/stale", None).unwrap().0.is_none());
    assert!(t.get("/rt/late", None).unwrap().0.is_none());
    assert!(t.get("/rt/007", None).unwrap().0.is_none());
    assert_eq!(t.get("/rt/199", None).unwrap().0.unwrap().value, b("value-199"));
    assert_eq!(t.list("/rt/", None, 0, None).unwrap().items.len(), 199);
    assert_eq!(t.local_get(b"vote").unwrap().unwrap(), b"mine", "local metadata is not part of a snapshot");
    assert_eq!(t.sm_meta_get(b"extra").unwrap().unwrap(), b"1");
    // History came along: a past revision is readable and a watcher resumes from disk.
    assert_eq!(t.get("/rt/007", Some(100)).unwrap().0.unwrap().value, b("value-7"));
    let ev = w.next().await.unwrap();
    assert_eq!(ev[0].rev, 2, "watch continues from the restored history");

    // A corrupted file is refused and the store is untouched.
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    let bad = d.path().join("bad.bin");
    std::fs::write(&bad, &bytes).unwrap();
    assert!(matches!(t.restore(&bad, &[]), Err(StoreError::InvalidSnapshot(_))));
    assert_eq!(t.get("/rt/199", None).unwrap().0.unwrap().value, b("value-199"));
}

#[test]
fn log_area_append_range_truncate_purge() {
    let (_d, s) = open();
    let entries: Vec<(u64, Vec<u8>)> = (1..=20).map(|i| (i, format!("e{i}").into_bytes())).collect();
    s.log_append(entries.iter().map(|(i, v)| (*i, v.as_slice()))).unwrap();
    s.sync().unwrap();
    assert_eq!(s.log_range(5, 8).unwrap().iter().map(|e| e.0).collect::<Vec<_>>(), vec![5, 6, 7]);
    assert_eq!(s.log_last().unwrap().unwrap().0, 20);
    s.log_truncate_from(15).unwrap();
    assert_eq!(s.log_last().unwrap().unwrap().0, 14);
    s.log_purge_upto(4, &[(b"purged", b"4")]).unwrap();
    assert_eq!(s.log_range(0, 100).unwrap().first().unwrap().0, 5);
    assert_eq!(s.local_get(b"purged").unwrap().unwrap(), b"4");
}
