//! A full spool disk loses no call: a spool file holding a valid prefix is kept (not set
//! aside) while the disk is full and recovered and uploaded once space is back, and a session
//! started on a full disk records again as soon as space returns, with what it dropped in
//! the archive, and so does a session whose disk fills mid-call (the file is cut back to its
//! last whole frame and written on from there).
//!
//! The disk is a small tmpfs, which needs root (CAP_SYS_ADMIN); without it these tests say so
//! on stderr and skip.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use calltape_format::Record;
use calltape_recorder::{Attributes, Recorder, UploadOutcome};
use common::*;

/// A mounted tmpfs of a few MiB, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(test: &str, size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallDisk { dir }),
            Ok(o) => {
                eprintln!(
                    "{test}: SKIPPED: cannot mount a tmpfs to simulate a full disk (needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("{test}: SKIPPED: cannot run mount to simulate a full disk: {e}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk up with a filler file until a write fails for want of space.
    fn fill(&self) {
        let mut f = std::fs::File::create(self.filler()).unwrap();
        let block = vec![0xA5u8; 4096];
        loop {
            match f.write_all(&block) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        let _ = f.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }

    fn filler(&self) -> PathBuf {
        self.path().join("filler")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A recorded call's archive, cut where its summary starts: every chunk, no tail — what a
/// spool file holds when the process dies (or the disk fills) before the close. The call is
/// padded (an event with an incompressible attribute) until the tail cannot fit into the
/// prefix's last 4 KiB page, so a full tmpfs really refuses to take it.
async fn archive_without_tail(id: &str) -> Vec<u8> {
    const PAGE: usize = 4096;
    for pad in 0..400usize {
        let (spool, dest) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let rec = Recorder::builder()
            .destination(format!("file://{}", dest.path().display()))
            .spool_dir(spool.path())
            .retry_interval(None)
            .build()
            .await
            .unwrap();
        let s = rec.start_session(call_info(id)).unwrap();
        script(&s);
        let mut x = 0x9E37_79B9u32;
        let noise: String = (0..pad * 16)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect();
        let mut attrs = Attributes::new();
        attrs.insert("pad".into(), noise.into());
        s.at(4_400 * MS).event("padding", attrs);
        let report = s.finish().await.unwrap();
        let bytes = std::fs::read(dest.path().join(&report.upload.key)).unwrap();
        let cut = read_back(&bytes).archive.footer.summary_offset as usize;
        let slack = (PAGE - cut % PAGE) % PAGE;
        if slack + 256 < bytes.len() - cut {
            return bytes[..cut].to_vec();
        }
    }
    panic!("no padding made the archive's tail overflow its last page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_file_with_a_valid_prefix_waits_out_a_full_disk_and_is_uploaded_after() {
    let test = "a_spool_file_with_a_valid_prefix_waits_out_a_full_disk_and_is_uploaded_after";
    let Some(disk) = SmallDisk::mount(test, "2m") else {
        return;
    };
    let spool = disk.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let prefix = archive_without_tail("call-cut-by-full-disk").await;
    std::fs::write(spool.join("call-cut-by-full-disk.calltape.part"), &prefix).unwrap();
    disk.fill();

    let dest = tempfile::tempdir().unwrap();
    let rec = Recorder::builder()
        .destination(format!("file://{}", dest.path().display()))
        .spool_dir(&spool)
        .retry_interval(None)
        .upload_on_start(false)
        .build()
        .await
        .unwrap();
    // the disk is full: recovery cannot write the tail, and the file must stay as it is
    let reports = rec.upload_pending().await;
    assert!(reports.is_empty(), "{reports:?}");
    assert_eq!(names(&spool), ["call-cut-by-full-disk.calltape.part"]);
    let problem = rec.health().last_error.unwrap_or_default();
    assert!(problem.contains("recovered at the next scan"), "{problem}");

    disk.free();
    let reports = rec.upload_pending().await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].outcome, UploadOutcome::Uploaded, "{reports:?}");
    assert!(reports[0].recovered);
    assert!(names(&spool).is_empty(), "{:?}", names(&spool));
    let bytes = std::fs::read(dest.path().join(&reports[0].key)).unwrap();
    let rb = read_back(&bytes);
    assert_eq!(rb.archive.footer.flags & 1, 1, "flagged as recovered");
    // every chunk of the prefix is there: the whole scripted call
    assert_scripted_call(&rb, "call-cut-by-full-disk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_started_on_a_full_disk_records_once_space_is_back() {
    let test = "a_session_started_on_a_full_disk_records_once_space_is_back";
    let Some(disk) = SmallDisk::mount(test, "2m") else {
        return;
    };
    let spool = disk.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    disk.fill();
    let dest = tempfile::tempdir().unwrap();
    let rec = Recorder::builder()
        .destination(format!("file://{}", dest.path().display()))
        .spool_dir(&spool)
        .retry_interval(None)
        .build()
        .await
        .unwrap();
    let s = rec.start_session(call_info("call-on-full-disk")).unwrap();
    for i in 0..10u64 {
        s.at(i * MS).event("while_full", Attributes::new());
    }
    s.drained().await;
    assert_eq!(s.status().dropped_records, 10, "{:?}", s.status());
    assert_eq!(
        names(&spool),
        Vec::<String>::new(),
        "no empty spool file left behind"
    );

    disk.free();
    // the writer tries again to create the file (once a second) as records come in
    let mut t = 10u64;
    while s.status().records_written == 0 {
        assert!(
            t < 10 + 100,
            "no record written 10 s after space came back: {:?}",
            s.status()
        );
        s.at(t * MS).event("waiting_for_space", Attributes::new());
        s.drained().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        t += 1;
    }
    s.at(t * MS).event("after_space_is_back", Attributes::new());
    let report = s.finish().await.unwrap();
    assert_eq!(report.upload.outcome, UploadOutcome::Uploaded, "{report:?}");
    let rb = read_back(&std::fs::read(dest.path().join(&report.upload.key)).unwrap());
    let dropped: u64 = rb
        .records
        .iter()
        .filter_map(|r| match &r.record {
            Record::Dropped(d) if d.reason == "spool_unavailable" => Some(d.count),
            _ => None,
        })
        .sum();
    assert_eq!(
        dropped, report.dropped_records,
        "every drop is in the archive"
    );
    assert!(dropped >= 10, "{dropped}");
    let names: Vec<&str> = rb
        .records
        .iter()
        .filter_map(|r| match &r.record {
            Record::Event(e) => Some(e.name.as_str()),
            _ => None,
        })
        .collect();
    assert!(names.contains(&"after_space_is_back"), "{names:?}");
    assert!(!names.contains(&"while_full"), "{names:?}");
}

/// Records `[from_ms, to_ms)` of incompressible audio on track 1 (20 ms frames) and an event
/// named `name` every 100 ms. Returns the samples sent.
fn noisy_stretch(s: &calltape_recorder::Session, from_ms: u64, to_ms: u64, name: &str) -> u64 {
    let mut x = 0x9E37_79B9u32 ^ from_ms as u32;
    let mut sent = 0;
    for t in (from_ms..to_ms).step_by(20) {
        let frame: Vec<i16> = (0..320)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as i16
            })
            .collect();
        s.at(t * MS).audio(1, &frame);
        sent += 320;
        if t % 100 == 0 {
            let mut a = Attributes::new();
            a.insert("t_ms".into(), t.into());
            s.at(t * MS).event(name, a);
        }
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_whose_writes_fail_mid_call_resumes_once_space_is_back() {
    let test = "a_session_whose_writes_fail_mid_call_resumes_once_space_is_back";
    let Some(disk) = SmallDisk::mount(test, "4m") else {
        return;
    };
    let spool = disk.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let reported = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r2 = reported.clone();
    let rec = Recorder::builder()
        .destination(format!("file://{}", dest.path().display()))
        .spool_dir(&spool)
        .retry_interval(None)
        .on_error(move |_| {
            r2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        })
        .build()
        .await
        .unwrap();
    let s = rec.start_session(call_info("call-disk-fills")).unwrap();
    let mut sent = noisy_stretch(&s, 0, 2_000, "before_full");
    s.drained().await;
    assert!(!s.status().degraded, "{:?}", s.status());

    // the disk fills mid-call: the chunks due next cannot be written
    disk.fill();
    sent += noisy_stretch(&s, 2_000, 5_000, "while_full");
    s.drained().await;
    let during = s.status();
    assert!(during.degraded, "{during:?}");
    assert!(
        during.dropped_samples > 0 && during.dropped_records > 0,
        "{during:?}"
    );
    assert!(
        during
            .error
            .as_deref()
            .unwrap_or("")
            .contains("until writing succeeds again"),
        "{during:?}"
    );

    // space is back: the next records written after the retry interval go in again
    disk.free();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    sent += noisy_stretch(&s, 5_000, 7_000, "after_space_is_back");
    s.drained().await;
    let after = s.status();
    assert!(!after.degraded, "writing again: {after:?}");
    assert!(after.records_written > during.records_written, "{after:?}");
    let report = s.finish().await.unwrap();
    assert_eq!(report.upload.outcome, UploadOutcome::Uploaded, "{report:?}");
    assert!(!report.upload.recovered, "closed normally: {report:?}");
    assert_eq!(
        reported.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the failure is reported once"
    );
    assert!(names(&spool).is_empty(), "{:?}", names(&spool));

    let rb = read_back(&std::fs::read(dest.path().join(&report.upload.key)).unwrap());
    assert_eq!(rb.archive.footer.flags & 1, 0, "not a recovered file");
    let (mut dropped_records, mut dropped_samples) = (0, 0);
    let mut events: Vec<(&str, u64)> = Vec::new();
    let mut outage = None;
    let mut kept_samples = 0u64;
    for r in &rb.records {
        match &r.record {
            Record::Dropped(d) => {
                assert_eq!(d.reason, "spool_unavailable", "{d:?}");
                match d.unit.as_str() {
                    "records" => dropped_records += d.count,
                    "samples" => dropped_samples += d.count,
                    u => panic!("unit {u}"),
                }
            }
            Record::Event(e) if e.name == "spool_unavailable" => outage = Some(e.clone()),
            Record::Event(e) => events.push((e.name.as_str(), r.time_ns)),
            Record::Audio(a) => kept_samples += a.samples.len() as u64,
            _ => {}
        }
    }
    // every drop is in the archive, and every sample sent is either kept or counted
    assert_eq!(dropped_records, report.dropped_records, "{report:?}");
    assert_eq!(dropped_samples, report.dropped_samples, "{report:?}");
    assert_eq!(kept_samples + dropped_samples, sent);
    // what came before the disk filled and after space came back is all there
    let count = |n: &str| events.iter().filter(|(e, _)| *e == n).count();
    assert_eq!(count("before_full"), 20, "{events:?}");
    assert_eq!(count("after_space_is_back"), 20, "{events:?}");
    assert!(count("while_full") < 30, "{events:?}");
    // the outage says from when to when, within the call's time
    let outage = outage.expect("a spool_unavailable event");
    let from = outage.attributes["from_ns"].as_u64().unwrap();
    let to = outage.attributes["to_ns"].as_u64().unwrap();
    assert!(
        (1_000 * MS..=5_000 * MS).contains(&from) && (from..=7_000 * MS).contains(&to),
        "{outage:?}"
    );
    assert!(outage.attributes["error"].as_str().is_some(), "{outage:?}");
}
