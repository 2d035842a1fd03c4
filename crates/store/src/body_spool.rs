//! Large message bodies of an SQLite store, in append-only segment files beside the database
//! (`<database>-spool/`).
//!
//! A 100 KB body in SQLite is written twice, 4 KB at a time: a WAL frame per page (two writes each), then the
//! checkpoint reads every frame back and copies it into the database file; once the mail is delivered, its pages
//! are freed one by one. In a segment it is one write, and one `fdatasync` per group commit, made
//! before the commit of the rows that point at it, so that no row ever points at bytes not yet on disk. Bodies
//! under [`Tuning::min_bytes`] stay in `message_bodies.body`, where one page holds several.
//!
//! Invariants:
//! - Only the process holding the spool's lock file appends, sweeps and relocates; any process reads.
//! - A segment is appended to only while it is current, and one group's bodies go to one segment.
//! - A closed segment is deleted once no row points into it. That is asked on the writer connection: the
//!   committer writes one group at a time, so the commit of every group that appended to a segment was sent
//!   to the writer before the next group's append closed it, and the question is answered after it.
//! - Bodies that outstay [`Tuning::relocate_after`] in a closed segment (mail deferred, held back by limits, or
//!   retained) are moved into `message_bodies.body`, so that a few waiting mails do not keep segments on disk.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use sqlx::SqlitePool;

use crate::{BodySpoolUsage, StoreError};

/// Where a spooled body lives: `length` bytes at `offset` of segment `segment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpoolRef {
    pub(crate) segment: i64,
    pub(crate) offset: i64,
    pub(crate) length: i64,
}

/// The spool's sizes and periods.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tuning {
    /// Bodies of at least this many bytes are spooled.
    pub(crate) min_bytes: usize,
    /// A segment is closed once an append would take it past this size.
    pub(crate) segment_bytes: u64,
    /// Bodies still in a segment this long after it closed are moved into the database.
    pub(crate) relocate_after: Duration,
    /// How often the sweeper deletes and relocates.
    pub(crate) sweep_every: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            // Below a few pages a body costs SQLite little, and a page holds several 2 KB bodies.
            min_bytes: 16 * 1024,
            segment_bytes: 64 << 20,
            // Past the first attempts of a mail that is delivered at once; a deferred mail waits minutes.
            relocate_after: Duration::from_secs(60),
            sweep_every: Duration::from_secs(1),
        }
    }
}

/// Most bodies one relocation transaction moves.
const RELOCATE_CHUNK: i64 = 64;

/// The spool of one SQLite store.
pub(crate) struct BodySpool {
    dir: PathBuf,
    tuning: Tuning,
    state: Mutex<State>,
}

struct State {
    /// The lock file while this process owns the spool; `None`: it only reads.
    lock: Option<File>,
    current: Option<Segment>,
    next_segment: i64,
    /// Segments no longer appended to.
    closed: BTreeMap<i64, Closed>,
    /// The owner's open segment files, for reads.
    files: HashMap<i64, Arc<File>>,
}

/// A segment no longer appended to.
#[derive(Debug, Clone, Copy)]
struct Closed {
    at: Instant,
    bytes: u64,
}

struct Segment {
    number: i64,
    file: Arc<File>,
    len: u64,
}

/// Bodies written to a segment and being synced: where they are, once [`PendingAppend::durable`] returns.
pub(crate) struct PendingAppend {
    refs: Vec<SpoolRef>,
    sync: tokio::task::JoinHandle<io::Result<()>>,
}

impl PendingAppend {
    /// Waits until the bodies are on disk, and says where they are (in the order given to `append`).
    pub(crate) async fn durable(self) -> Result<Vec<SpoolRef>, StoreError> {
        match self.sync.await {
            Ok(Ok(())) => Ok(self.refs),
            Ok(Err(e)) => Err(io_error("syncing the body spool", e)),
            Err(e) => Err(StoreError::Unavailable(format!("the body spool's sync failed: {e}"))),
        }
    }
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sweep {
    /// Segments deleted (no body in them any more).
    pub(crate) deleted: usize,
    /// Bodies moved into the database.
    pub(crate) relocated: usize,
}

impl BodySpool {
    /// The spool in `dir` (created if missing). It owns the spool if no other store does; an owner takes over
    /// the segments left by earlier ones (every body a committed row points at is in them).
    pub(crate) fn open(dir: &Path, tuning: Tuning) -> Result<BodySpool, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| io_error("creating the body spool", e))?;
        let spool = BodySpool {
            dir: dir.to_path_buf(),
            tuning,
            state: Mutex::new(State {
                lock: None,
                current: None,
                next_segment: 1,
                closed: BTreeMap::new(),
                files: HashMap::new(),
            }),
        };
        spool.try_own(&mut spool.state())?;
        Ok(spool)
    }

    /// The spool's sizes and periods.
    pub(crate) fn tuning(&self) -> Tuning {
        self.tuning
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether this store appends to the spool (another one may own it).
    #[cfg(test)]
    pub(crate) fn is_owner(&self) -> bool {
        self.state().lock.is_some()
    }

    /// Takes the spool if no other store holds its lock, and with it every segment found (closed).
    fn try_own(&self, state: &mut State) -> Result<(), StoreError> {
        if state.lock.is_some() {
            return Ok(());
        }
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(self.dir.join("lock"))
            .map_err(|e| io_error("opening the body spool's lock", e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(()),
            Err(std::fs::TryLockError::Error(e)) => return Err(io_error("locking the body spool", e)),
        }
        let now = Instant::now();
        let entries = std::fs::read_dir(&self.dir).map_err(|e| io_error("listing the body spool", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error("listing the body spool", e))?;
            if let Some(number) = segment_number(&entry.file_name().to_string_lossy()) {
                let bytes = entry.metadata().map(|m| m.len()).unwrap_or(0);
                state.closed.insert(number, Closed { at: now, bytes });
                state.next_segment = state.next_segment.max(number + 1);
            }
        }
        state.lock = Some(lock);
        Ok(())
    }

    /// The segments this store owns on disk and their bytes (nothing when another store owns the spool).
    pub(crate) fn usage(&self) -> BodySpoolUsage {
        let state = self.state();
        let current = state.current.as_ref().map(|c| c.len);
        BodySpoolUsage {
            segments: (state.closed.len() + usize::from(current.is_some())) as u64,
            bytes: state.closed.values().map(|c| c.bytes).sum::<u64>() + current.unwrap_or(0),
        }
    }

    /// Gives the spool up (the store closes): another store may own it from now on.
    pub(crate) fn release(&self) {
        let mut state = self.state();
        state.current = None;
        state.closed.clear();
        state.files.clear();
        state.lock = None;
    }

    /// Writes `bodies` to the current segment and starts its `fdatasync` on a blocking thread. `None` when
    /// another store owns the spool: the bodies then go into the database.
    ///
    /// The writes themselves stay on the caller's thread: they only copy into the page cache, straight from the
    /// bodies, where gathering them into one buffer for a blocking thread cost a copy of every byte.
    pub(crate) fn append(&self, bodies: &[&[u8]]) -> Result<Option<PendingAppend>, StoreError> {
        let total: u64 = bodies.iter().map(|b| b.len() as u64).sum();
        let mut state = self.state();
        if state.lock.is_none() {
            return Ok(None);
        }
        let full = state
            .current
            .as_ref()
            .is_none_or(|c| c.len > 0 && c.len + total > self.tuning.segment_bytes);
        if full {
            self.rotate(&mut state)?;
        }
        let Some(current) = state.current.as_mut() else {
            return Err(StoreError::Unavailable("the body spool has no segment".into()));
        };
        let (segment, start, file) = (current.number, current.len, current.file.clone());
        // Reserved before the writes: the segment's length only grows, whatever they do.
        current.len += total;
        drop(state);
        let mut refs = Vec::with_capacity(bodies.len());
        let mut offset = start;
        for body in bodies {
            file.write_all_at(body, offset)
                .map_err(|e| io_error("writing to the body spool", e))?;
            refs.push(SpoolRef {
                segment,
                offset: offset as i64,
                length: body.len() as i64,
            });
            offset += body.len() as u64;
        }
        let sync = tokio::task::spawn_blocking(move || file.sync_data());
        Ok(Some(PendingAppend { refs, sync }))
    }

    /// Closes the current segment and starts the next; the new file's name is made durable before any row
    /// can point into it.
    fn rotate(&self, state: &mut State) -> Result<(), StoreError> {
        let number = state.next_segment;
        let path = self.dir.join(segment_name(number));
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_error("creating a body spool segment", e))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error("syncing the body spool's directory", e))?;
        let file = Arc::new(file);
        if let Some(old) = state.current.take() {
            let closed = Closed {
                at: Instant::now(),
                bytes: old.len,
            };
            state.closed.insert(old.number, closed);
        }
        state.files.insert(number, file.clone());
        state.next_segment = number + 1;
        state.current = Some(Segment { number, file, len: 0 });
        Ok(())
    }

    /// The spooled body `r`, or `None` if its segment is gone (the body was purged after it was read from the
    /// database: the mail is final).
    pub(crate) fn read(&self, r: SpoolRef) -> Result<Option<Vec<u8>>, StoreError> {
        let cached = self.state().files.get(&r.segment).cloned();
        let file = match cached {
            Some(f) => f,
            None => match File::open(self.dir.join(segment_name(r.segment))) {
                Ok(f) => Arc::new(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io_error("opening a body spool segment", e)),
            },
        };
        let length = usize::try_from(r.length).map_err(|_| corrupt(r))?;
        let offset = u64::try_from(r.offset).map_err(|_| corrupt(r))?;
        let mut body = vec![0; length];
        match file.read_exact_at(&mut body, offset) {
            Ok(()) => Ok(Some(body)),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(corrupt(r)),
            Err(e) => Err(io_error("reading a body spool segment", e)),
        }
    }

    /// Deletes the closed segments no row points into, and moves the bodies out of those closed longer than
    /// [`Tuning::relocate_after`]. Asks on `writer` (see the module's invariants). A store that does not own
    /// the spool tries to take it first (its owner closed).
    pub(crate) async fn sweep(&self, writer: &SqlitePool) -> Result<Sweep, StoreError> {
        let closed: Vec<(i64, Closed)> = {
            let mut state = self.state();
            self.try_own(&mut state)?;
            if state.lock.is_none() {
                return Ok(Sweep::default());
            }
            state.closed.iter().map(|(n, c)| (*n, *c)).collect()
        };
        let mut done = Sweep::default();
        // One segment's failure (a file that cannot be deleted, say) does not hold back the others.
        for (segment, closed) in closed {
            match self.sweep_segment(segment, closed.at, writer, &mut done).await {
                Ok(()) => {}
                Err(StoreError::Closed) => return Err(StoreError::Closed),
                Err(e) => tracing::warn!(segment, error = %e, "sweeping a body spool segment failed"),
            }
        }
        Ok(done)
    }

    async fn sweep_segment(
        &self,
        segment: i64,
        closed_at: Instant,
        writer: &SqlitePool,
        done: &mut Sweep,
    ) -> Result<(), StoreError> {
        let live: Option<i64> = sqlx::query_scalar("SELECT 1 FROM message_bodies WHERE spool_segment = ? LIMIT 1")
            .bind(segment)
            .fetch_optional(writer)
            .await?;
        if live.is_some() {
            if closed_at.elapsed() < self.tuning.relocate_after {
                return Ok(());
            }
            match self.relocate(segment, writer).await? {
                Some(moved) => {
                    done.relocated += moved;
                    return Ok(());
                }
                // Deleted behind the store's back: its bodies are lost, and there is nothing left to sweep.
                None => tracing::error!(
                    segment,
                    "a body spool segment is missing, and messages still point into it"
                ),
            }
        } else {
            match std::fs::remove_file(self.dir.join(segment_name(segment))) {
                Ok(()) => done.deleted += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error("deleting a body spool segment", e)),
            }
        }
        let mut state = self.state();
        state.closed.remove(&segment);
        state.files.remove(&segment);
        Ok(())
    }

    /// Moves up to [`RELOCATE_CHUNK`] bodies of `segment` into `message_bodies.body`, in one durable
    /// transaction (the segment is deleted only after it). The bytes of a spooled body never change, so reading
    /// them outside the transaction is safe; a row deleted meanwhile is simply not updated.
    /// `None` when the segment is gone.
    async fn relocate(&self, segment: i64, writer: &SqlitePool) -> Result<Option<usize>, StoreError> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT message_id, spool_offset, spool_length FROM message_bodies WHERE spool_segment = ? LIMIT ?",
        )
        .bind(segment)
        .bind(RELOCATE_CHUNK)
        .fetch_all(writer)
        .await?;
        let mut moved = Vec::with_capacity(rows.len());
        for (message, offset, length) in rows {
            let r = SpoolRef {
                segment,
                offset,
                length,
            };
            let Some(body) = self.read(r)? else {
                return Ok(None);
            };
            moved.push((message, body));
        }
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
        for (message, body) in &moved {
            sqlx::query(
                "UPDATE message_bodies SET body = ?, spool_segment = NULL, spool_offset = NULL, spool_length = NULL \
                 WHERE message_id = ? AND spool_segment = ?",
            )
            .bind(body)
            .bind(message)
            .bind(segment)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Some(moved.len()))
    }
}

/// Sweeps `spool` every [`Tuning::sweep_every`] until the store is dropped or closed.
pub(crate) async fn run_sweeper(spool: Weak<BodySpool>, writer: SqlitePool) {
    loop {
        let Some(every) = spool.upgrade().map(|s| s.tuning.sweep_every) else {
            return;
        };
        tokio::time::sleep(every).await;
        let Some(s) = spool.upgrade() else {
            return;
        };
        if writer.is_closed() {
            return;
        }
        if let Err(e) = s.sweep(&writer).await {
            tracing::warn!(error = %e, "sweeping the body spool failed");
        }
    }
}

fn segment_name(number: i64) -> String {
    format!("{number:016}.seg")
}

fn segment_number(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(".seg")?;
    (digits.len() == 16 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

fn corrupt(r: SpoolRef) -> StoreError {
    StoreError::Corrupt(format!(
        "a body at {}+{} of spool segment {} lies beyond its end",
        r.offset, r.length, r.segment
    ))
}

fn io_error(what: &str, e: io::Error) -> StoreError {
    if e.kind() == io::ErrorKind::StorageFull {
        StoreError::DiskFull(format!("{what}: {e}"))
    } else {
        StoreError::Unavailable(format!("{what}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuning() -> Tuning {
        Tuning {
            min_bytes: 1,
            segment_bytes: 100,
            relocate_after: Duration::ZERO,
            sweep_every: Duration::from_secs(3600),
        }
    }

    /// `bodies` appended by the owner `spool`, durable.
    async fn appended(spool: &BodySpool, bodies: &[&[u8]]) -> Vec<SpoolRef> {
        let pending = spool.append(bodies).expect("append").expect("owner");
        pending.durable().await.expect("durable")
    }

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_number(&segment_name(42)), Some(42));
        assert_eq!(segment_number("0000000000000042.seg.tmp"), None);
        assert_eq!(segment_number("lock"), None);
        assert_eq!(segment_number("000000000000004x.seg"), None);
    }

    #[test]
    fn a_full_disk_is_disk_full() {
        let e = io_error("writing", io::Error::from(io::ErrorKind::StorageFull));
        assert!(e.is_disk_full(), "{e:?}");
        let e = io_error("writing", io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    }

    #[tokio::test]
    async fn appended_bodies_read_back_and_segments_rotate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = BodySpool::open(dir.path(), tuning()).expect("open");
        assert!(spool.is_owner());
        let first = appended(&spool, &[&[1u8; 60][..], &[2u8; 30][..]]).await;
        assert_eq!(first[0].segment, first[1].segment);
        assert_eq!((first[1].offset, first[1].length), (60, 30));
        // 90 + 20 > 100: the next group starts a new segment.
        let second = appended(&spool, &[&[3u8; 20][..]]).await;
        assert_ne!(second[0].segment, first[0].segment);
        assert_eq!(
            spool.usage(),
            BodySpoolUsage {
                segments: 2,
                bytes: 110
            }
        );
        assert_eq!(spool.read(first[1]).expect("read"), Some(vec![2u8; 30]));
        assert_eq!(spool.read(second[0]).expect("read"), Some(vec![3u8; 20]));
        let beyond = SpoolRef {
            length: 1000,
            ..second[0]
        };
        assert!(matches!(spool.read(beyond), Err(StoreError::Corrupt(_))));
        let gone = SpoolRef {
            segment: 999,
            ..second[0]
        };
        assert_eq!(spool.read(gone).expect("read"), None);
    }

    #[tokio::test]
    async fn a_segment_deleted_behind_the_spools_back_is_forgotten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("db");
        let (writer, _reader, spool) = crate::sqlite::open(
            &format!("sqlite:{}", db.display()),
            &crate::StoreOptions::default(),
            tuning(),
        )
        .await
        .expect("open");
        let spool = spool.expect("a file database has a spool");
        let refs = appended(&spool, &[&[5u8; 10][..]]).await;
        spool.rotate(&mut spool.state()).expect("rotate");
        // A row pointing into the segment, without the message tables a store would write first.
        sqlx::query("PRAGMA foreign_keys = OFF")
            .execute(&writer)
            .await
            .expect("pragma");
        sqlx::query(
            "INSERT INTO message_bodies (message_id, body, spool_segment, spool_offset, spool_length) \
             VALUES ('m', x'', ?, ?, ?)",
        )
        .bind(refs[0].segment)
        .bind(refs[0].offset)
        .bind(refs[0].length)
        .execute(&writer)
        .await
        .expect("row");
        std::fs::remove_file(spool.dir.join(segment_name(refs[0].segment))).expect("delete the segment");
        spool.state().files.clear();
        let swept = spool.sweep(&writer).await.expect("sweep");
        assert_eq!(swept, Sweep::default());
        assert!(
            !spool.state().closed.contains_key(&refs[0].segment),
            "nothing left to sweep"
        );
        assert_eq!(spool.read(refs[0]).expect("read"), None);
    }

    #[tokio::test]
    async fn one_owner_at_a_time_and_takeover_keeps_segments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let owner = BodySpool::open(dir.path(), tuning()).expect("open");
        let refs = appended(&owner, &[&[7u8; 10][..]]).await;
        let other = BodySpool::open(dir.path(), tuning()).expect("open");
        assert!(!other.is_owner());
        assert!(other.append(&[&[1u8; 10][..]]).expect("append").is_none());
        // A reader that is not the owner reads what the owner wrote.
        assert_eq!(other.read(refs[0]).expect("read"), Some(vec![7u8; 10]));
        owner.release();
        let next = BodySpool::open(dir.path(), tuning()).expect("open");
        assert!(next.is_owner());
        let state = next.state();
        assert!(
            state.closed.contains_key(&refs[0].segment),
            "the old segment is the new owner's to sweep"
        );
        assert!(state.next_segment > refs[0].segment);
    }
}
