//! `timeseries`: history of a target as one `timeseries-wide` frame (in progress).
