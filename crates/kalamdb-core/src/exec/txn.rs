//! `BEGIN`, `COMMIT` and `ROLLBACK` of a batch's session; the transaction
//! itself is `super::transaction`.

use super::transaction::Transaction;
use super::{Session, StatementResult};
use crate::error::{CoreError, Result};
use std::sync::Arc;

impl Session<'_> {
    /// `BEGIN`: the next statements of the batch run in a transaction.
    pub fn begin(&mut self) -> Result<StatementResult> {
        if self.txn.is_some() {
            return Err(CoreError::exec(
                "a transaction is already open (transactions do not nest); COMMIT or ROLLBACK first",
            ));
        }
        self.txn = Some(Arc::new(Transaction::begin(self.services)));
        Ok(StatementResult::message(&self.caller, "BEGIN".into()))
    }

    /// `COMMIT`: applies the transaction's writes together, or none.
    pub async fn commit(&mut self) -> Result<StatementResult> {
        let Some(txn) = self.txn.take() else {
            return Err(CoreError::exec(
                "COMMIT without an open transaction (BEGIN first; a transaction commits once)",
            ));
        };
        let rows = txn.commit().await?;
        Ok(StatementResult::affected(&self.caller, rows, "COMMIT:"))
    }

    /// `ROLLBACK`: forgets the transaction's writes.
    pub fn rollback(&mut self) -> Result<StatementResult> {
        if self.txn.take().is_none() {
            return Err(CoreError::exec("ROLLBACK without an open transaction"));
        }
        Ok(StatementResult::message(&self.caller, "ROLLBACK".into()))
    }
}
