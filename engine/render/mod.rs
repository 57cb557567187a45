//! Renderers: the event stream as text, JSON or an HTML report.

pub mod app;
pub mod chat;
pub mod conn_order;
pub mod follow;
pub mod html;
pub mod json;
pub mod phrases;
pub mod report;
pub mod text;
