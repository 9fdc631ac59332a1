//! Multi-platform image indexes (being written).
