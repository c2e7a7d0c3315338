//! Linked to a prebuilt RocksDB (`ROCKSDB_LIB_DIR`, see .cargo/config.toml),
//! the store supplies the one C function the rocksdb crate names that
//! RocksDB 7.8 lacks (csrc/rocksdb_7_8_compat.c). Built from source
//! (`ROCKSDB_COMPILE=1`), RocksDB has it itself.

fn main() {
    println!("cargo:rerun-if-env-changed=ROCKSDB_LIB_DIR");
    println!("cargo:rerun-if-env-changed=ROCKSDB_COMPILE");
    println!("cargo:rerun-if-changed=csrc/rocksdb_7_8_compat.c");
    let compiled = std::env::var("ROCKSDB_COMPILE").is_ok_and(|v| v == "1" || v == "true");
    if std::env::var_os("ROCKSDB_LIB_DIR").is_some() && !compiled {
        cc::Build::new()
            .file("csrc/rocksdb_7_8_compat.c")
            .compile("rocksdb_7_8_compat");
    }
}
