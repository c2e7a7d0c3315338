//! `system.cluster`, `system.cluster_groups` and `system.job_nodes`: the
//! original KalamDB runs as a Raft cluster and its clients read these.
//! This server is one node, so it reports itself as the whole cluster:
//! one node, leader of its one group, and every job run on it.

use super::build;
use crate::provider::RequestScope;
use crate::schema::field;
use crate::services::Services;
use datafusion::arrow::array::{ArrayRef, Float32Array, Int16Array};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result;
use kalamdb_commons::KalamType;
use std::sync::Arc;

pub const CLUSTER_ID: &str = "kalamdb-standalone";
/// The node's number (`system.jobs.node_id` names it `kalamdb-1`).
const NODE: i64 = 1;

pub fn cluster_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("cluster_id", KalamType::Text, false),
        field("node_id", KalamType::BigInt, false),
        field("role", KalamType::Text, false),
        field("status", KalamType::Text, false),
        field("rpc_addr", KalamType::Text, false),
        field("api_addr", KalamType::Text, false),
        field("is_self", KalamType::Boolean, false),
        field("is_leader", KalamType::Boolean, false),
        field("groups_leading", KalamType::Int, false),
        field("total_groups", KalamType::Int, false),
        field("current_term", KalamType::BigInt, true),
        field("last_applied_log", KalamType::BigInt, true),
        field("leader_last_log_index", KalamType::BigInt, true),
        field("snapshot_index", KalamType::BigInt, true),
        field("catchup_progress_pct", KalamType::SmallInt, true),
        field("replication_lag", KalamType::BigInt, true),
        field("hostname", KalamType::Text, true),
        field("version", KalamType::Text, true),
        field("memory_mb", KalamType::BigInt, true),
        field("memory_usage_mb", KalamType::BigInt, true),
        field("cpu_usage_percent", KalamType::Float, true),
        field("uptime_seconds", KalamType::BigInt, true),
        field("uptime_human", KalamType::Text, true),
        field("os", KalamType::Text, true),
        field("arch", KalamType::Text, true),
    ]))
}

/// `3d 4h`, `5h 2m`, `7m 30s` or `12s`.
fn uptime_human(seconds: i64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds / 3_600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// A figure from `/proc/meminfo` or `/proc/self/status`, in MiB (Linux
/// only; NULL elsewhere).
fn proc_mib(file: &str, key: &str) -> Option<i64> {
    let text = std::fs::read_to_string(file).ok()?;
    let rest = text.lines().find_map(|l| l.strip_prefix(key))?;
    let kib: i64 = rest.split_whitespace().next()?.parse().ok()?;
    Some(kib / 1024)
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .or_else(|| std::env::var("HOSTNAME").ok())
}

pub fn cluster_rows(services: &Services, _scope: &RequestScope) -> Result<RecordBatch> {
    let uptime = (services.clock.now_micros() - services.started_at).max(0) / 1_000_000;
    let api_addr = services
        .live
        .config
        .ws_url
        .trim_start_matches("ws://")
        .trim_end_matches("/v1/ws")
        .to_string();
    let null_i64 = || build::opt_int64([None]);
    let columns: Vec<ArrayRef> = vec![
        build::text([CLUSTER_ID]),
        build::int64([NODE]),
        build::text(["leader"]),
        build::text(["active"]),
        build::text([""]),
        build::text([api_addr]),
        build::boolean([true]),
        build::boolean([true]),
        build::int32([1]),
        build::int32([1]),
        null_i64(),
        null_i64(),
        null_i64(),
        null_i64(),
        Arc::new(Int16Array::from(vec![Some(100i16)])),
        build::opt_int64([Some(0)]),
        build::opt_text([hostname()]),
        build::opt_text([Some(env!("CARGO_PKG_VERSION").to_string())]),
        build::opt_int64([proc_mib("/proc/meminfo", "MemTotal:")]),
        build::opt_int64([proc_mib("/proc/self/status", "VmRSS:")]),
        Arc::new(Float32Array::from(vec![None::<f32>])),
        build::opt_int64([Some(uptime)]),
        build::opt_text([Some(uptime_human(uptime))]),
        build::opt_text([Some(std::env::consts::OS.to_string())]),
        build::opt_text([Some(std::env::consts::ARCH.to_string())]),
    ];
    Ok(RecordBatch::try_new(cluster_schema(), columns)?)
}

pub fn groups_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("group_id", KalamType::BigInt, false),
        field("cluster_id", KalamType::Text, false),
        field("node_id", KalamType::BigInt, false),
        field("group_type", KalamType::Text, false),
        field("current_term", KalamType::BigInt, true),
        field("vote", KalamType::Json, true),
        field("last_log_index", KalamType::BigInt, true),
        field("last_applied", KalamType::BigInt, true),
        field("snapshot", KalamType::BigInt, true),
        field("purged", KalamType::BigInt, true),
        field("committed", KalamType::BigInt, true),
        field("state", KalamType::Text, true),
        field("current_leader", KalamType::BigInt, true),
        field("millis_since_quorum_ack", KalamType::BigInt, true),
    ]))
}

/// One group, `meta`: a single node holds all data itself. The log
/// positions are the hot tier's last `_seq`, the nearest thing it has.
pub fn groups_rows(services: &Services, _scope: &RequestScope) -> Result<RecordBatch> {
    let last = Some(services.hot.store().last_seq() as i64);
    let none = || build::opt_int64([None]);
    let columns: Vec<ArrayRef> = vec![
        build::int64([0]),
        build::text([CLUSTER_ID]),
        build::int64([NODE]),
        build::text(["meta"]),
        none(),
        build::opt_text([None]),
        build::opt_int64([last]),
        build::opt_int64([last]),
        none(),
        none(),
        build::opt_int64([last]),
        build::opt_text([Some("Leader".to_string())]),
        build::opt_int64([Some(NODE)]),
        build::opt_int64([Some(0)]),
    ];
    Ok(RecordBatch::try_new(groups_schema(), columns)?)
}

pub fn job_nodes_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("job_id", KalamType::Text, false),
        field("node_id", KalamType::BigInt, false),
        field("status", KalamType::Text, false),
        field("error_message", KalamType::Text, true),
        field("created_at", KalamType::Timestamp, false),
        field("started_at", KalamType::Timestamp, true),
        field("finished_at", KalamType::Timestamp, true),
        field("updated_at", KalamType::Timestamp, false),
    ]))
}

/// Every job, as run on this node; errors are shown as `system.jobs`
/// shows them to the caller.
pub fn job_nodes_rows(services: &Services, scope: &RequestScope) -> Result<RecordBatch> {
    let jobs = super::jobs::visible_jobs(services, scope)?;
    Ok(RecordBatch::try_new(
        job_nodes_schema(),
        vec![
            build::text(jobs.iter().map(|j| j.job_id.as_str())),
            build::int64(jobs.iter().map(|_| NODE)),
            build::text(jobs.iter().map(|j| j.status.as_str())),
            build::opt_text(jobs.iter().map(|j| j.error.clone())),
            build::timestamps(jobs.iter().map(|j| Some(j.created_at))),
            build::timestamps(jobs.iter().map(|j| j.started_at)),
            build::timestamps(jobs.iter().map(|j| j.finished_at)),
            build::timestamps(
                jobs.iter()
                    .map(|j| Some(j.finished_at.or(j.started_at).unwrap_or(j.created_at))),
            ),
        ],
    )?)
}

#[cfg(test)]
mod tests {
    use super::uptime_human;

    #[test]
    fn uptime_reads_in_its_two_largest_units() {
        assert_eq!(uptime_human(12), "12s");
        assert_eq!(uptime_human(450), "7m 30s");
        assert_eq!(uptime_human(5 * 3600 + 120), "5h 2m");
        assert_eq!(uptime_human(3 * 86_400 + 4 * 3600 + 59), "3d 4h");
    }
}
