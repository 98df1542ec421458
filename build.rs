//! The migrations are embedded at compile time (`embed_migrations!`), and the macro does not
//! tell cargo to watch their folder: without this, a new migration was left out of a build
//! until some source file changed.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
