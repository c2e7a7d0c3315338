/*
 * The rocksdb crate's bindings are generated from RocksDB 11's C API, and
 * its drop code names one function RocksDB 7.8 (Debian's librocksdb, which
 * KalamDB links to) does not have: the destructor of a write buffer
 * manager. KalamDB never creates one, so this is never called; it only
 * lets the program link.
 */
#include <stdlib.h>

void rocksdb_write_buffer_manager_destroy(void *manager) {
    (void)manager;
    abort();
}
