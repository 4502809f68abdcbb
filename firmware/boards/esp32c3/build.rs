//! Links the ESP32-C3 image with esp-hal's linker scripts (`linkall.x`, which places the app
//! descriptor, the runtime and the memory map) and defmt's `defmt.x`.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-Tlinkall.x");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
}
