//! Reporting: CSV tables, markdown tables and figures written into
//! `results/`, with one shared figure style for the CLI and the notebooks.
//!
//! Filled in by the reproduce issue; nothing is exported yet.
