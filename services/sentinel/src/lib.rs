pub mod decision;
