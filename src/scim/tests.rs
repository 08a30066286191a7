//! The parts that need no store: filters, PATCH paths and operations,
//! reading resources, the snapshot.
