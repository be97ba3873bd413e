//! Class-balance statistics counted as samples stream past.
pub mod counts;
