//! The server's storage as writers see it: every commit goes to the TSDB and, while the
//! configuration has `remote_write` endpoints, to the remote-write buffer whose queues send it
//! on (Prometheus' fanout storage of local and remote storage).

use std::sync::Arc;

use sextant_model::{Appendable, Appender, Labels, Querier, Queryable, StorageError};
use sextant_scrape::RemoteWriteStorage;
use sextant_tsdb::Db;

/// The TSDB for reads; the TSDB and the remote-write buffer for writes.
pub struct Fanout {
    db: Arc<Db>,
    remote: Arc<RemoteWriteStorage>,
}

impl Fanout {
    pub fn new(db: Arc<Db>, remote: Arc<RemoteWriteStorage>) -> Fanout {
        Fanout { db, remote }
    }
}

impl Appendable for Fanout {
    fn appender(&self) -> Box<dyn Appender + '_> {
        let local = Appendable::appender(&*self.db);
        if !self.remote.is_active() {
            return local;
        }
        Box::new(FanoutAppender { local, remote: self.remote.appender() })
    }
}

impl Queryable for Fanout {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier + '_>, StorageError> {
        Queryable::querier(&*self.db, mint, maxt)
    }
}

/// Appends to the TSDB first; only what it accepts goes to the buffer. The buffer is committed
/// after the TSDB, and dropped when the TSDB's commit fails (as Prometheus' fanout does).
struct FanoutAppender<'a> {
    local: Box<dyn Appender + 'a>,
    remote: Box<dyn Appender + 'a>,
}

impl Appender for FanoutAppender<'_> {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<(), StorageError> {
        self.local.append(labels, t, v)?;
        self.remote.append(labels, t, v)
    }

    fn append_cached(&mut self, series_ref: &mut u64, labels: &Labels, t: i64, v: f64) -> Result<(), StorageError> {
        self.local.append_cached(series_ref, labels, t, v)?;
        self.remote.append(labels, t, v)
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        match self.local.commit() {
            Ok(()) => self.remote.commit(),
            Err(e) => {
                self.remote.rollback();
                Err(e)
            }
        }
    }

    fn rollback(&mut self) {
        self.local.rollback();
        self.remote.rollback();
    }
}
