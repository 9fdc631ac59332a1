//! Git build contexts (being written).
