//! What the commands write for people: `seed bench`'s table, CSV and SVG
//! charts of plain [`Row`]s, and `seed solve`'s HTML page of a tree.

pub mod charts;
pub mod csv;
pub mod html;
mod row;
pub mod table;

pub use row::Row;
