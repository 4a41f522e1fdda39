//! A workload that creates templates as it goes, for the cost of matching
//! against many live templates: every template is
//! `pool task <six words> state <variable>`, so all of them share a tree
//! leaf (same token count, same leading tokens) and differ in six positions
//! (no two of them reach a similarity threshold above 0.4 together); the
//! words are five-letter pseudo-words, so no mask touches them.

/// A pseudo-random, reproducible 64-bit mix (splitmix64's finaliser).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn word(seed: u64, out: &mut String) {
    let mut x = mix(seed);
    for _ in 0..5 {
        out.push((b'a' + (x % 26) as u8) as char);
        x /= 26;
    }
}

/// Line `variant` of template `template`.
pub fn template_line(template: u64, variant: u64) -> String {
    let mut line = String::from("pool task");
    for position in 0..6 {
        line.push(' ');
        word(template * 8 + position, &mut line);
    }
    line.push_str(" state ");
    word(variant ^ 0x5555_5555_0000_0000, &mut line);
    line
}

/// The template of [`template_line`] as Drain writes it once its variable
/// has varied.
pub fn template_text(template: u64) -> String {
    let line = template_line(template, 0);
    let cut = line.rfind(' ').expect("the line has tokens");
    format!("{} <*>", &line[..cut])
}

/// Lines that bring an engine to `templates` templates (two per template,
/// so its variable position is already a wildcard).
pub fn prefill(templates: u64) -> impl Iterator<Item = String> {
    (0..templates).flat_map(|t| [template_line(t, 0), template_line(t, 1)])
}

/// `count` lines after a prefill of `templates`: half create a template,
/// half repeat a random known one with a new variable.
pub fn window(templates: u64, count: u64) -> Vec<String> {
    (0..count)
        .map(|i| {
            if i % 2 == 0 {
                template_line(templates + i / 2, 0)
            } else {
                template_line(mix(i) % templates.max(1), i + 2)
            }
        })
        .collect()
}
