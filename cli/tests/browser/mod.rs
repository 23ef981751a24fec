//! Renders a page in headless Chromium (Debian's `chromium`) and checks what a reader would:
//! it loads without console messages, and the screenshot shows something (its pixels vary).

use std::path::Path;

/// Renders `page` (an HTML file) at `width` x `height` into `<dir>/<name>.png`; panics with
/// Chromium's log on a console message, a failed run or a blank screenshot.
pub fn render_and_check(page: &Path, dir: &Path, name: &str, width: u32, height: u32) {
    let shot = dir.join(format!("{name}.png"));
    let out = std::process::Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0", "--hide-scrollbars"])
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--user-data-dir={}", dir.join(format!("profile-{name}")).display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium (Debian package chromium) runs");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    let (w, h, distinct) = colours(&std::fs::read(&shot).unwrap());
    assert_eq!((w, h), (width, height), "screenshot size");
    // Text, coloured badges and table lines: a blank or single-colour page has 1 or 2.
    assert!(distinct >= 16, "{name}: the screenshot is blank ({distinct} distinct colours)");
}

/// Width, height and the number of distinct colours of a PNG.
fn colours(png_bytes: &[u8]) -> (u32, u32, usize) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("a size")];
    let frame = reader.next_frame(&mut buf).expect("a frame");
    let bytes = &buf[..frame.buffer_size()];
    let step = frame.color_type.samples();
    let distinct: std::collections::HashSet<&[u8]> = bytes.chunks(step).collect();
    (frame.width, frame.height, distinct.len())
}
